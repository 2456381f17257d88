#include "backends/rbd/rbd_device.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "backends/rbd/rbd_copy.h"
#include "base/log.h"

namespace ferry::backends::rbd {
namespace {

constexpr uint64_t kMaxIoBytes = 4u << 20;
constexpr uint64_t kMaxOneCallBytes = 1ull << 30;  // discard / write-zeroes per request
constexpr uint32_t kRbdSectorBytes = 512;          // librbd's compare-and-write unit
constexpr int kPollBatch = 32;

// The lock holders of `image`, for the message when another client has it.
std::string LockOwners(rbd_image_t image) {
  rbd_lock_mode_t mode;
  char* owners[8];
  size_t n = 8;
  if (rbd_lock_get_owners(image, &mode, owners, &n) < 0 || n == 0) return "another client";
  std::string text;
  for (size_t i = 0; i < n; ++i) text += (i == 0 ? "" : ", ") + std::string(owners[i]);
  rbd_lock_get_owners_cleanup(owners, n);
  return text;
}

}  // namespace

// One request in flight (a record from its reactor's free list).
struct RbdDevice::Op {
  RbdDevice* dev = nullptr;
  block::IoRequest* req = nullptr;
  ReactorState* home = nullptr;
  bool flush_next = false;  // a FUA write whose write is done: the flush is in flight
  uint64_t mismatch = 0;    // kCompareAndWrite: librbd's offset of the first differing byte
};

// What one reactor thread keeps for this device. Touched only on `reactor`.
struct RbdDevice::ReactorState {
  io::Reactor* reactor = nullptr;
  uint32_t in_flight = 0;
  io::UringOp poll_op;
  io::Reactor::PollId poll_id = 0;  // 0: not armed
  std::vector<std::unique_ptr<Op>> ops;
  std::vector<Op*> free_ops;

  Op* Get() {
    if (free_ops.empty()) {
      ops.push_back(std::make_unique<Op>());
      free_ops.push_back(ops.back().get());
    }
    Op* op = free_ops.back();
    free_ops.pop_back();
    op->home = this;
    op->flush_next = false;
    return op;
  }
};

Result<std::shared_ptr<RbdDevice>> RbdDevice::Open(RbdOptions o) {
  std::shared_ptr<RbdDevice> dev(new RbdDevice());
  dev->spec_ = o.Spec();
  dev->name_ = o.name.empty() ? "rbd:" + dev->spec_ : o.name;
  dev->read_only_ = o.read_only;
  auto context = [&dev](const Status& s) { return s.WithContext("rbd:" + dev->spec_); };
  auto cluster = RadosCluster::Connect(o);
  if (!cluster.ok()) return context(cluster.status());
  dev->cluster_ = *std::move(cluster);
  auto pool = dev->cluster_->OpenPool(o.pool);
  if (!pool.ok()) return context(pool.status());
  dev->pool_ = std::move(*pool);
  if (Status s = dev->OpenImage(o); !s.ok()) return context(s);
  if (Status s = dev->SetUpNotification(); !s.ok()) return context(s);
  if (Status s = dev->ReadCopyInfo(); !s.ok()) {
    FERRY_LOG_WARN("rbd:{}: {}; copies into and from it go through the copy engine", dev->spec_,
                   s.message());
  }
  if (dev->copy_ != nullptr) dev->copy_->snapshot = !o.snap.empty();
  if (!dev->read_only_) {
    if (Status s = dev->TakeExclusiveLock(); !s.ok()) return context(s);
  }
  uint64_t size = 0;
  if (int r = rbd_get_size(dev->image_, &size); r < 0) {
    return Unavailable("rbd:" + dev->spec_ + ": reading the size: " + ErrnoText(r));
  }
  if (size < o.block_size) {
    return FailedPrecondition("rbd:" + dev->spec_ + ": the image (" + std::to_string(size) +
                              " bytes) is smaller than one block");
  }
  dev->SetGeometryAndLimits(size, o.block_size);
  if (o.snap.empty()) dev->WatchSize();
  FERRY_LOG_INFO("rbd:{}: {} blocks of {} bytes, objects of {} bytes{}", dev->spec_,
                 dev->geometry_.num_blocks.value(), o.block_size, dev->object_size_,
                 dev->read_only_ ? ", read-only" : "");
  return dev;
}

Status RbdDevice::OpenImage(const RbdOptions& o) {
  const char* snap = o.snap.empty() ? nullptr : o.snap.c_str();
  int r = read_only_ ? rbd_open_read_only(pool_.get(), o.image.c_str(), &image_, snap)
                     : rbd_open(pool_.get(), o.image.c_str(), &image_, nullptr);
  if (r < 0) {
    image_ = nullptr;
    if (r == -ENOENT) {
      return NotFound(snap == nullptr ? "no such image in pool '" + o.pool + "'"
                                      : "no such image, or no snapshot '" + o.snap + "' of it");
    }
    return Unavailable("opening the image: " + ErrnoText(r));
  }
  rbd_image_info_t info{};
  if (r = rbd_stat(image_, &info, sizeof(info)); r < 0) {
    return Unavailable("reading the image's header: " + ErrnoText(r));
  }
  object_size_ = info.obj_size;
  return Status::Ok();
}

Status RbdDevice::SetUpNotification() {
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) return Internal("eventfd: " + ErrnoText(errno));
  if (int r = rbd_set_image_notification(image_, event_fd_, EVENT_TYPE_EVENTFD); r < 0) {
    return Internal("rbd_set_image_notification: " + ErrnoText(r));
  }
  return Status::Ok();
}

// Without the exclusive-lock feature there is nothing to take (and rbd_lock_acquire would
// fail): writers then coordinate outside Ceph, as with any shared disk.
Status RbdDevice::TakeExclusiveLock() {
  uint64_t features = 0;
  if (int r = rbd_get_features(image_, &features); r < 0) {
    return Unavailable("reading the image's features: " + ErrnoText(r));
  }
  if ((features & RBD_FEATURE_EXCLUSIVE_LOCK) == 0) return Status::Ok();
  if (int r = rbd_lock_acquire(image_, RBD_LOCK_MODE_EXCLUSIVE); r < 0) {
    return FailedPrecondition("the image's exclusive lock is held by " + LockOwners(image_) + " (" +
                              ErrnoText(r) + "); open it read-only or stop the other client");
  }
  return Status::Ok();
}

void RbdDevice::SetGeometryAndLimits(uint64_t size_bytes, uint32_t block_size) {
  geometry_.block_size = block_size;
  geometry_.num_blocks = BlockCount(size_bytes / block_size);
  if (size_bytes % block_size != 0) {
    FERRY_LOG_WARN("rbd:{}: the last {} bytes are not a whole block and are not used", spec_,
                   size_bytes % block_size);
  }
  block::QueueLimits& l = limits_;
  l.max_io_bytes = kMaxIoBytes;
  l.buffer_alignment = 1;
  l.max_iovecs = 1024;
  l.max_discard_bytes = kMaxOneCallBytes - kMaxOneCallBytes % block_size;
  // rbd_cluster.cc turns rbd_skip_partial_discard off: librbd then discards the whole range
  // (whole objects removed, parts of objects zeroed), so it reads back as zeroes. Were it
  // on, parts smaller than the discard granularity would keep their data.
  const bool partial = cluster_->ConfGet("rbd_skip_partial_discard") == "false";
  l.discard_zeroes_data = partial;
  const uint64_t granularity =
      std::strtoull(cluster_->ConfGet("rbd_discard_granularity_bytes").c_str(), nullptr, 10);
  if (!partial && granularity > block_size && granularity <= object_size_) {
    l.discard_granularity_bytes = static_cast<uint32_t>(granularity);
  }
  l.max_write_zeroes_bytes = l.max_discard_bytes;
  // WRITE SAME and COMPARE AND WRITE run in the cluster (rbd_aio_writesame,
  // rbd_aio_compare_and_write). librbd compares only within one 512-byte sector (it
  // answers -EINVAL otherwise): one block of a 512-byte-block LU, which is VMware's ATS.
  // Larger ranges, and LUs of larger blocks, are compared by the caller under its lock.
  // Never pass librbd a request it refuses this way: it fails such a completion without
  // announcing it on the image's eventfd, and the request would never complete here.
  l.max_write_same_bytes = l.max_discard_bytes;
  l.max_compare_write_bytes = block_size == kRbdSectorBytes ? kRbdSectorBytes : 0;
  // Native copy from rbd images of the same cluster (rbd_copy.cc), any block-aligned leg.
  l.max_copy_bytes = kMaxOneCallBytes - kMaxOneCallBytes % block_size;
  l.max_copy_segments = 256;
  l.copy_granularity_bytes = block_size;
}

// A failed watch is not fatal: the device serves, but does not notice a resize until it is
// opened again.
void RbdDevice::WatchSize() {
  if (int r = rbd_update_watch(image_, &watch_handle_, &RbdDevice::OnImageUpdated, this); r < 0) {
    FERRY_LOG_WARN("rbd:{}: rbd_update_watch: {}; a resize of the image is not noticed", spec_,
                   ErrnoText(r));
    return;
  }
  watching_ = true;
}

void RbdDevice::OnImageUpdated(void* arg) { static_cast<RbdDevice*>(arg)->ReadSize(); }

// Runs on a librbd thread: reads the size and stores it, nothing else (the SCSI layer
// compares num_blocks at its next command). Any header change calls it (snapshots, features,
// locks), so an unchanged size is the usual case and says nothing.
void RbdDevice::ReadSize() {
  uint64_t size = 0;
  if (int r = rbd_get_size(image_, &size); r < 0) {
    FERRY_LOG_WARN("rbd:{}: reading the size after an update: {}", spec_, ErrnoText(r));
    return;
  }
  std::lock_guard<std::mutex> lock(size_mu_);
  const uint64_t blocks = size / geometry_.block_size;
  if (blocks == geometry_.num_blocks.value()) return;
  if (blocks == 0) {
    FERRY_LOG_WARN(
        "rbd:{}: the image shrank to {} bytes, less than one block; the device keeps "
        "{} blocks (requests fail in librbd)",
        spec_, size, geometry_.num_blocks.value());
    return;
  }
  FERRY_LOG_WARN("rbd:{}: resized from {} to {} blocks of {} bytes", spec_,
                 geometry_.num_blocks.value(), blocks, geometry_.block_size);
  geometry_.num_blocks = BlockCount(blocks);
}

RbdDevice::~RbdDevice() {
  if (watching_) {
    // Waits for a callback in progress, so none runs on a destroyed device.
    if (int r = rbd_update_unwatch(image_, watch_handle_); r < 0) {
      FERRY_LOG_WARN("rbd:{}: rbd_update_unwatch: {}", spec_, ErrnoText(r));
    }
  }
  worker_.reset();
  if (image_ != nullptr) {
    if (int r = rbd_close(image_); r < 0) {
      FERRY_LOG_WARN("rbd:{}: closing the image: {}", spec_, ErrnoText(r));
    }
  }
  if (event_fd_ >= 0) close(event_fd_);
}

RbdDevice::ReactorState& RbdDevice::CurrentState() {
  io::Reactor* r = io::Reactor::Current();
  std::lock_guard<std::mutex> lock(mu_);
  auto& st = states_[r];
  if (st == nullptr) {
    st = std::make_unique<ReactorState>();
    st->reactor = r;
    st->poll_op.done = [this, s = st.get()](int32_t res) { OnEventFd(*s, res); };
  }
  return *st;
}

void RbdDevice::Submit(block::IoRequest& req) {
  IoStatus status = block::ValidateRequest(*this, req);
  const uint64_t bytes = req.blocks.bytes(geometry_.block_size);
  if (status == IoStatus::kOk && req.op == block::IoOp::kDiscard &&
      bytes > limits_.max_discard_bytes) {
    status = IoStatus::kInvalid;
  }
  if (status == IoStatus::kOk && req.op == block::IoOp::kWriteZeroes &&
      bytes > limits_.max_write_zeroes_bytes) {
    status = IoStatus::kInvalid;
  }
  if (status == IoStatus::kOk) {
    ReactorState& st = CurrentState();
    Op* op = st.Get();
    op->dev = this;
    op->req = &req;
    if (int r = Start(op); r < 0) {
      st.free_ops.push_back(op);
      status = IoStatusFromErrno(r);
    } else {
      ++st.in_flight;
      if (st.poll_id == 0) Arm(st);
      return;
    }
  }
  io::Reactor::Current()->RunAfter(std::chrono::nanoseconds(0),
                                   [&req, status] { req.done(status); });
}

int RbdDevice::Start(Op* op) {
  const block::IoRequest& req = *op->req;
  const bool caw = req.op == block::IoOp::kCompareAndWrite && !op->flush_next;
  rbd_completion_t c = nullptr;
  // No callback: the completion is queued on the image and announced on the eventfd. But
  // librbd 16.2 neither queues nor announces a compare-and-write's completion (its
  // rbd_poll_io_events never returns one), so that one alone has a callback.
  if (int r = rbd_aio_create_completion(op, caw ? &RbdDevice::OnCompareAndWriteDone : nullptr, &c);
      r < 0) {
    return r;
  }
  const uint64_t off = req.lba.value() * geometry_.block_size;
  const uint64_t len = req.blocks.bytes(geometry_.block_size);
  const int iovcnt = static_cast<int>(req.iovcnt);
  int r = 0;
  if (op->flush_next) {
    r = rbd_aio_flush(image_, c);
  } else {
    switch (req.op) {
      case block::IoOp::kRead: r = rbd_aio_readv(image_, req.iov, iovcnt, off, c); break;
      case block::IoOp::kWrite: r = rbd_aio_writev(image_, req.iov, iovcnt, off, c); break;
      case block::IoOp::kFlush: r = rbd_aio_flush(image_, c); break;
      case block::IoOp::kDiscard: r = rbd_aio_discard(image_, off, len, c); break;
      case block::IoOp::kWriteZeroes:
        r = rbd_aio_write_zeroes(image_, off, len, c, /*zero_flags=*/0, /*op_flags=*/0);
        break;
      case block::IoOp::kWriteSame:
        r = rbd_aio_writesame(image_, off, len, static_cast<const char*>(req.iov[0].iov_base),
                              geometry_.block_size, c, /*op_flags=*/0);
        break;
      case block::IoOp::kCompareAndWrite: {
        const auto* cmp = static_cast<const char*>(req.iov[0].iov_base);
        r = static_cast<int>(
            rbd_aio_compare_and_write(image_, off, len, cmp, cmp + len, c, &op->mismatch, 0));
        break;
      }
    }
  }
  if (r < 0) rbd_aio_release(c);
  return r;
}

void RbdDevice::Arm(ReactorState& st) {
  st.poll_id = st.reactor->PollFd(&st.poll_op, event_fd_, POLLIN);
}

void RbdDevice::OnEventFd(ReactorState& st, int32_t res) {
  st.poll_id = 0;
  if (res < 0) FERRY_LOG_WARN("rbd:{}: polling the eventfd: {}", spec_, ErrnoText(res));
  Drain();
  if (st.in_flight > 0 && st.poll_id == 0) Arm(st);
}

void RbdDevice::Drain() {
  // Reset the counter first: a completion queued after this read writes it again, so no
  // wakeup is lost; one queued before is taken below (and its write only wakes us twice).
  uint64_t counter = 0;
  if (read(event_fd_, &counter, sizeof(counter)) < 0 && errno != EAGAIN) {
    FERRY_LOG_WARN("rbd:{}: reading the eventfd: {}", spec_, ErrnoText(errno));
  }
  io::Reactor* here = io::Reactor::Current();
  rbd_completion_t comps[kPollBatch];
  int n = kPollBatch;
  while (n == kPollBatch) {
    n = rbd_poll_io_events(image_, comps, kPollBatch);
    for (int i = 0; i < n; ++i) {
      Op* op = static_cast<Op*>(rbd_aio_get_arg(comps[i]));
      const ssize_t ret = rbd_aio_get_return_value(comps[i]);
      rbd_aio_release(comps[i]);
      if (op->home->reactor == here) {
        Finish(op, ret);
      } else {
        op->home->reactor->Post([this, op, ret] { Finish(op, ret); });
      }
    }
  }
}

void RbdDevice::OnCompareAndWriteDone(rbd_completion_t c, void* arg) {
  auto* op = static_cast<Op*>(arg);
  const ssize_t ret = rbd_aio_get_return_value(c);
  rbd_aio_release(c);
  op->home->reactor->Post([op, ret] { op->dev->Finish(op, ret); });
}

void RbdDevice::Finish(Op* op, ssize_t ret) {
  const block::IoOp kind = op->req->op;
  if (kind == block::IoOp::kCompareAndWrite && ret == -EILSEQ) {
    // The OSD compared and found a difference; librbd 16.2 reports where from the start of
    // the range (its one sector).
    op->req->miscompare_offset = op->mismatch;
    return Complete(op, IoStatus::kMiscompare);
  }
  const bool writes = kind == block::IoOp::kWrite || kind == block::IoOp::kWriteSame ||
                      kind == block::IoOp::kCompareAndWrite;
  if (ret >= 0 && writes && (op->req->flags & block::kIoFua) != 0 && !op->flush_next) {
    op->flush_next = true;  // FUA: the write is done, now make it durable
    const int r = Start(op);
    if (r >= 0) return;
    ret = r;
  }
  if (ret < 0) {
    FERRY_LOG_DEBUG("rbd:{}: {} failed: {}", spec_, block::IoOpName(op->req->op),
                    ErrnoText(static_cast<int>(ret)));
  }
  Complete(op, ret < 0 ? IoStatusFromErrno(static_cast<int>(ret)) : IoStatus::kOk);
}

void RbdDevice::Complete(Op* op, IoStatus status) {
  ReactorState& st = *op->home;
  block::IoRequest& req = *op->req;
  st.free_ops.push_back(op);
  if (--st.in_flight == 0 && st.poll_id != 0) {
    st.reactor->CancelPoll(st.poll_id);
    st.poll_id = 0;
  }
  req.done(status);
}

}  // namespace ferry::backends::rbd
