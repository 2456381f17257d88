// Copies into an rbd device from an rbd device of the same cluster (rbd_device.h, "Copies"):
// planning on the device's worker thread, steps on the leg's reactor.
#include "backends/rbd/rbd_copy.h"

#include <rados/librados.h>

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "backends/rbd/rbd_copy_plan.h"
#include "backends/rbd/rbd_device.h"
#include "base/log.h"

namespace ferry::backends::rbd {
namespace {

constexpr uint32_t kCopyDepth = 8;               // steps in flight per leg
constexpr uint64_t kCopyBufferBytes = 4u << 20;  // one gateway step; the device's max I/O
constexpr char kLuksMagic[6] = {'L', 'U', 'K', 'S', '\xba', '\xbe'};

std::string ObjectName(const std::string& prefix, uint64_t objno) {
  char num[20];
  std::snprintf(num, sizeof(num), "%016" PRIx64, objno);
  return prefix + "." + num;
}

bool StartsWithLuks(rbd_image_t image) {
  char head[sizeof(kLuksMagic)] = {};
  return rbd_read(image, 0, sizeof(head), head) == static_cast<ssize_t>(sizeof(head)) &&
         std::memcmp(head, kLuksMagic, sizeof(head)) == 0;
}

int CollectData(uint64_t off, size_t len, int exists, void* arg) {
  if (exists != 0 && len > 0) static_cast<std::vector<ByteRange>*>(arg)->push_back({off, len});
  return 0;
}

uint64_t LoadLe64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// cls_rbd get_snapcontext's answer: snap_seq (u64), then the snapshot ids (u32 count, u64 each).
bool DecodeSnapContext(const char* buf, size_t len, uint64_t* seq,
                       std::vector<librados::snap_t>* snaps) {
  if (len < 12) return false;
  *seq = LoadLe64(buf);
  uint32_t n = 0;
  for (int i = 3; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(buf[8 + i]);
  if (len < 12 + 8ull * n) return false;
  snaps->clear();
  for (uint32_t i = 0; i < n; ++i) snaps->push_back(LoadLe64(buf + 12 + 8ull * i));
  std::sort(snaps->begin(), snaps->end(), std::greater<>());  // a snap context is descending
  return true;
}

}  // namespace

// One leg in flight: its plan, and up to kCopyDepth steps, each in a slot.
struct RbdDevice::CopyLeg {
  struct Slot {
    CopyLeg* leg = nullptr;
    size_t index = 0;
    bool busy = false;
    CopyStep step;
    std::unique_ptr<uint8_t[]> buf;  // from the device's stash, returned at the leg's end
    iovec iov{};
    block::IoRequest rd;
    block::IoRequest wr;
    std::unique_ptr<librados::ObjectWriteOperation> op;
    librados::AioCompletion* comp = nullptr;
  };

  RbdDevice* dst = nullptr;
  RbdDevice* src = nullptr;
  block::CopyLegRequest* req = nullptr;
  io::Reactor* reactor = nullptr;
  std::string why_not;        // why the cluster does not copy; "" when it does
  bool mark_objects = false;  // the destination keeps an object map (MarkObject)
  uint64_t seq = 0;           // the destination's snapshot context
  std::vector<librados::snap_t> snaps;
  std::vector<CopyStep> steps;
  size_t next = 0;
  uint32_t in_flight = 0;
  IoStatus status = IoStatus::kOk;
  uint64_t server = 0, gateway = 0, zeroed = 0, parent = 0, marked = 0;
  std::array<Slot, kCopyDepth> slots;
};

Status RbdDevice::ReadCopyInfo() {
  auto info = std::make_unique<CopyInfo>();
  char buf[128];
  int r = rados_cluster_fsid(cluster_->handle(), buf, sizeof(buf));
  if (r < 0) return Unavailable("reading the cluster's fsid: " + ErrnoText(r));
  info->fsid.assign(buf, static_cast<size_t>(r));
  if (r = rbd_get_id(image_, buf, sizeof(buf)); r < 0) {
    return FailedPrecondition("no image id (an old format 1 image?): " + ErrnoText(r));
  }
  info->header_oid = std::string("rbd_header.") + buf;
  if (r = rbd_get_block_name_prefix(image_, buf, sizeof(buf)); r < 0) {
    return Unavailable("reading the block name prefix: " + ErrnoText(r));
  }
  info->data_prefix = buf;
  const int64_t data_pool = rbd_get_data_pool_id(image_);
  rados_ioctx_t io = nullptr;
  if (r = rados_ioctx_create2(cluster_->handle(), data_pool, &io); r < 0) {
    return Unavailable("opening the data pool: " + ErrnoText(r));
  }
  librados::IoCtx::from_rados_ioctx_t(io, info->data);  // takes its own reference
  rados_ioctx_destroy(io);
  rbd_get_stripe_unit(image_, &info->stripe_unit);
  rbd_get_stripe_count(image_, &info->stripe_count);
  copy_ = std::move(info);
  return Status::Ok();
}

BlockingWorker& RbdDevice::Worker() {
  std::lock_guard<std::mutex> lock(mu_);
  if (worker_ == nullptr) worker_ = std::make_unique<BlockingWorker>();
  return *worker_;
}

RbdDevice::CopyStats RbdDevice::copy_stats() const {
  CopyStats s;
  if (copy_ == nullptr) return s;
  s.server_bytes = copy_->server_bytes.load();
  s.gateway_bytes = copy_->gateway_bytes.load();
  s.zeroed_bytes = copy_->zeroed_bytes.load();
  s.parent_objects = copy_->parent_objects.load();
  s.marked_objects = copy_->marked_objects.load();
  s.fallback_legs = copy_->fallback_legs.load();
  return s;
}

bool RbdDevice::CanCopyFrom(const block::BlockDevice& src, std::string* why_not) const {
  auto say = [why_not](std::string s) {
    if (why_not != nullptr) *why_not = std::move(s);
    return false;
  };
  if (read_only_) return say("rbd:" + spec_ + " is open read-only");
  const auto* s = dynamic_cast<const RbdDevice*>(&src);
  if (s == nullptr) {
    return say("'" + std::string(src.name()) + "' is a " + std::string(src.type()) +
               " device; the rbd backend copies natively only between rbd images");
  }
  if (copy_ == nullptr || s->copy_ == nullptr) {
    return say("rbd:" + (copy_ == nullptr ? spec_ : s->spec_) +
               ": the image's copy information could not be read at open");
  }
  if (s->copy_->fsid != copy_->fsid) {
    return say("rbd:" + s->spec_ + " and rbd:" + spec_ + " are in different Ceph clusters");
  }
  return true;
}

void RbdDevice::SubmitCopy(block::CopyLegRequest& req) {
  io::Reactor* reactor = io::Reactor::Current();
  auto* src = dynamic_cast<RbdDevice*>(req.src);
  IoStatus bad = IoStatus::kOk;
  if (read_only_) {
    bad = IoStatus::kReadOnly;
  } else if (src == nullptr || !CanCopyFrom(*src, &req.refusal)) {
    bad = IoStatus::kNotSupported;
  } else if (req.segments.empty() || req.segments.size() > limits_.max_copy_segments) {
    bad = IoStatus::kInvalid;
  }
  const uint64_t sbs = src == nullptr ? 1 : src->geometry_.block_size;
  const uint64_t ssize = src == nullptr ? 0 : src->geometry().size_bytes();
  const uint64_t dsize = geometry().size_bytes();
  for (const block::CopySegment& s : req.segments) {
    if (bad != IoStatus::kOk) break;
    const bool aligned = s.len_bytes > 0 && s.src_offset_bytes % sbs == 0 &&
                         s.len_bytes % sbs == 0 && s.dst_offset_bytes % geometry_.block_size == 0 &&
                         s.len_bytes % geometry_.block_size == 0;
    const bool inside = s.src_offset_bytes <= ssize && s.len_bytes <= ssize - s.src_offset_bytes &&
                        s.dst_offset_bytes <= dsize && s.len_bytes <= dsize - s.dst_offset_bytes;
    if (!aligned || !inside) bad = IoStatus::kInvalid;
    // Steps run in parallel: a segment overlapping itself on one image (memmove) is left to
    // the engine's ordered emulation.
    if (bad == IoStatus::kOk && src == this &&
        s.src_offset_bytes < s.dst_offset_bytes + s.len_bytes &&
        s.dst_offset_bytes < s.src_offset_bytes + s.len_bytes) {
      req.refusal = "source and destination ranges overlap on one image";
      bad = IoStatus::kNotSupported;
    }
  }
  if (bad != IoStatus::kOk) {
    reactor->Post([&req, bad] { req.done(bad); });
    return;
  }
  auto* leg = new CopyLeg();
  leg->dst = this;
  leg->src = src;
  leg->req = &req;
  leg->reactor = reactor;
  for (size_t i = 0; i < kCopyDepth; ++i) leg->slots[i] = {.leg = leg, .index = i};
  Worker().Add([this, leg] {
    PrepareCopy(leg);
    leg->reactor->Post([this, leg] { PumpCopy(leg); });
  });
}

std::string RbdDevice::ServerSideRefusal(const RbdDevice& src) const {
  uint64_t f = 0;
  if (int r = rbd_get_features(image_, &f); r < 0) {
    return "reading the destination's features failed (" + ErrnoText(r) + ")";
  }
  if ((f & RBD_FEATURE_EXCLUSIVE_LOCK) == 0) {
    return "the destination has no exclusive-lock feature, so the gateway cannot hold it";
  }
  int owner = 0;
  if (rbd_is_exclusive_lock_owner(image_, &owner) < 0 || owner == 0) {
    return "the gateway does not hold the destination's exclusive lock";
  }
  if ((f & RBD_FEATURE_JOURNALING) != 0) {
    return "the destination is journaled, and writes behind librbd would bypass the journal";
  }
  if (src.object_size_ != object_size_) {
    return "the object sizes differ (source " + std::to_string(src.object_size_) +
           " bytes, destination " + std::to_string(object_size_) + ")";
  }
  for (const RbdDevice* d : {&src, this}) {
    if (d->copy_->stripe_count != 1 || d->copy_->stripe_unit != d->object_size_) {
      return "rbd:" + d->spec_ + " is striped (stripe unit " +
             std::to_string(d->copy_->stripe_unit) + ", count " +
             std::to_string(d->copy_->stripe_count) + ")";
    }
  }
  if (src.copy_->snapshot) return "the source is a snapshot";
  for (const RbdDevice* d : {&src, this}) {
    if (StartsWithLuks(d->image_)) return "rbd:" + d->spec_ + " is encrypted (LUKS header)";
  }
  return "";
}

// On the worker thread: decides whether the cluster may copy, makes the writes it copies
// visible to it, finds the source's data and plans the steps.
void RbdDevice::PrepareCopy(CopyLeg* leg) {
  RbdDevice& src = *leg->src;
  leg->why_not = ServerSideRefusal(src);
  uint64_t features = 0;
  leg->mark_objects =
      rbd_get_features(image_, &features) == 0 && (features & RBD_FEATURE_OBJECT_MAP) != 0;
  if (leg->why_not.empty()) {
    int r = rbd_flush(src.image_);
    if (r == 0) r = rbd_flush(image_);
    if (r < 0) leg->why_not = "flushing the images before the copy failed (" + ErrnoText(r) + ")";
  }
  if (leg->why_not.empty()) {
    char buf[4096];
    const int r = rados_exec(pool_.get(), copy_->header_oid.c_str(), "rbd", "get_snapcontext",
                             nullptr, 0, buf, sizeof(buf));
    if (r < 0 ||
        !DecodeSnapContext(buf, static_cast<size_t>(std::max(r, 0)), &leg->seq, &leg->snaps)) {
      leg->why_not = "reading the destination's snapshot context failed (" +
                     (r < 0 ? ErrnoText(r) : std::string("undecodable")) + ")";
    }
  }
  std::vector<ByteRange> data;
  for (const block::CopySegment& s : leg->req->segments) {
    const int r = rbd_diff_iterate2(src.image_, nullptr, s.src_offset_bytes, s.len_bytes,
                                    /*include_parent=*/1, /*whole_object=*/0, &CollectData, &data);
    if (r < 0) {
      // Not knowing where the holes are costs reads, not correctness: copy it all.
      FERRY_LOG_WARN("rbd:{}: rbd_diff_iterate2: {}; copying every byte", src.spec_, ErrnoText(r));
      data.push_back({s.src_offset_bytes, s.len_bytes});
    }
  }
  NormalizeRanges(&data);
  leg->steps = PlanCopySteps({.segments = leg->req->segments,
                              .src_data = data,
                              .src_object_bytes = src.object_size_,
                              .dst_object_bytes = object_size_,
                              .server_allowed = leg->why_not.empty(),
                              .max_io_bytes = std::min(kCopyBufferBytes, limits_.max_io_bytes),
                              .max_zero_bytes = limits_.max_write_zeroes_bytes});
}

void RbdDevice::PumpCopy(CopyLeg* leg) {
  for (CopyLeg::Slot& s : leg->slots) {
    if (leg->status != IoStatus::kOk || leg->next == leg->steps.size()) break;
    if (s.busy) continue;
    s.busy = true;
    s.step = leg->steps[leg->next++];
    ++leg->in_flight;
    IssueStep(leg, s.index);
  }
  if (leg->in_flight == 0 && (leg->next == leg->steps.size() || leg->status != IoStatus::kOk)) {
    FinishCopy(leg);
  }
}

void RbdDevice::IssueStep(CopyLeg* leg, size_t slot) {
  CopyLeg::Slot& s = leg->slots[slot];
  const CopyStep& st = s.step;
  const uint32_t bs = geometry_.block_size;
  s.wr = {};
  s.wr.lba = Lba(st.dst_off / bs);
  s.wr.blocks = BlockCount(st.len / bs);
  if (st.kind == CopyStep::kZero) {
    s.wr.op = block::IoOp::kWriteZeroes;
    s.wr.done = [this, leg, slot](IoStatus x) {
      if (x == IoStatus::kOk) leg->zeroed += leg->slots[slot].step.len;
      StepDone(leg, slot, x);
    };
    return Submit(s.wr);
  }
  if (st.kind == CopyStep::kGateway) {
    if (s.buf == nullptr) {
      std::lock_guard<std::mutex> lock(copy_->buf_mu);
      if (copy_->free_bufs.empty()) {
        s.buf = std::make_unique<uint8_t[]>(kCopyBufferBytes);
      } else {
        s.buf = std::move(copy_->free_bufs.back());
        copy_->free_bufs.pop_back();
      }
    }
    s.iov = {s.buf.get(), st.len};
    s.wr.op = block::IoOp::kWrite;
    s.wr.iov = &s.iov;
    s.wr.iovcnt = 1;
    s.wr.done = [this, leg, slot](IoStatus x) {
      if (x == IoStatus::kOk) leg->gateway += leg->slots[slot].step.len;
      StepDone(leg, slot, x);
    };
    const uint32_t sbs = leg->src->geometry_.block_size;
    s.rd = {.op = block::IoOp::kRead,
            .lba = Lba(st.src_off / sbs),
            .blocks = BlockCount(st.len / sbs),
            .iov = &s.iov,
            .iovcnt = 1};
    s.rd.done = [this, leg, slot](IoStatus x) {
      if (x != IoStatus::kOk) return StepDone(leg, slot, x);
      Submit(leg->slots[slot].wr);
    };
    return leg->src->Submit(s.rd);
  }
  if (leg->mark_objects) return MarkObject(leg, slot);
  IssueServerCopy(leg, slot);
}

// A destination with an object map: librbd keeps the map (on disk and in memory) and reads an
// object it believes absent as zeroes, and fast-diff reports from it what changed since a
// snapshot. A copy-from behind librbd would leave the map saying "absent". So librbd marks the
// object first: it writes one block of zeroes there (updating the map before the write), the
// flush waits until that write is in the OSD (librbd's writearound cache acknowledges writes
// before sending them), and only then does the copy-from replace the whole object, the block
// included. The write carries librbd's snapshot context, so an object the destination's
// snapshots share is cloned by it, and the copy-from, with the same context, clones nothing.
void RbdDevice::MarkObject(CopyLeg* leg, size_t slot) {
  static const std::array<uint8_t, 4096> kZeroBlock{};  // rbd_params.cc: 512 or 4096 bytes
  CopyLeg::Slot& s = leg->slots[slot];
  const uint32_t bs = geometry_.block_size;
  s.iov = {const_cast<uint8_t*>(kZeroBlock.data()), std::min<size_t>(bs, kZeroBlock.size())};
  s.wr = {.op = block::IoOp::kWrite,
          .lba = Lba(s.step.dst_off / bs),
          .blocks = BlockCount(1),
          .iov = &s.iov,
          .iovcnt = 1};
  s.wr.done = [this, leg, slot](IoStatus x) {
    if (x != IoStatus::kOk) return StepDone(leg, slot, x);
    Submit(leg->slots[slot].rd);
  };
  s.rd = {.op = block::IoOp::kFlush};
  s.rd.done = [this, leg, slot](IoStatus x) {
    if (x != IoStatus::kOk) return StepDone(leg, slot, x);
    ++leg->marked;
    IssueServerCopy(leg, slot);
  };
  Submit(s.wr);
}

// The OSD holding the destination object reads the source object and replaces the
// destination object with it, cloning the old one first for the destination's snapshots (the
// snapshot context passed here).
void RbdDevice::IssueServerCopy(CopyLeg* leg, size_t slot) {
  CopyLeg::Slot& s = leg->slots[slot];
  const CopyStep& st = s.step;
  const uint64_t os = object_size_;
  s.op = std::make_unique<librados::ObjectWriteOperation>();
  s.op->copy_from2(ObjectName(leg->src->copy_->data_prefix, st.src_off / os), leg->src->copy_->data,
                   /*src_version=*/0, /*truncate_seq=*/0,
                   /*truncate_size=*/0,
                   LIBRADOS_OP_FLAG_FADVISE_SEQUENTIAL | LIBRADOS_OP_FLAG_FADVISE_NOCACHE);
  // On a librados thread: only hand the result to the leg's reactor.
  auto on_done = [](librados::completion_t c, void* arg) {
    auto* sl = static_cast<CopyLeg::Slot*>(arg);
    const int r = rados_aio_get_return_value(c);
    sl->leg->reactor->Post([sl, r] { sl->leg->dst->ServerStepDone(sl->leg, sl->index, r); });
  };
  s.comp = librados::Rados::aio_create_completion(&s, on_done);
  const int r = copy_->data.aio_operate(ObjectName(copy_->data_prefix, st.dst_off / os), s.comp,
                                        s.op.get(), leg->seq, leg->snaps);
  if (r < 0) {
    s.comp->release();
    s.comp = nullptr;
    leg->reactor->Post([this, leg, slot, r] { StepDone(leg, slot, IoStatusFromErrno(r)); });
  }
}

void RbdDevice::ServerStepDone(CopyLeg* leg, size_t slot, int r) {
  CopyLeg::Slot& s = leg->slots[slot];
  s.comp->release();
  s.comp = nullptr;
  s.op.reset();
  if (r == -ENOENT) {
    // The source holds data there but has no object: its parent's data (a clone). Read it
    // through librbd, which follows the parent.
    ++leg->parent;
    for (uint64_t done = 0; done < s.step.len;) {
      const uint64_t n = std::min(s.step.len - done, kCopyBufferBytes);
      leg->steps.push_back({CopyStep::kGateway, s.step.src_off + done, s.step.dst_off + done, n});
      done += n;
    }
    return StepDone(leg, slot, IoStatus::kOk);
  }
  if (r == 0) leg->server += s.step.len;
  StepDone(leg, slot, r < 0 ? IoStatusFromErrno(r) : IoStatus::kOk);
}

void RbdDevice::StepDone(CopyLeg* leg, size_t slot, IoStatus st) {
  CopyLeg::Slot& s = leg->slots[slot];
  s.busy = false;
  --leg->in_flight;
  if (st != IoStatus::kOk && leg->status == IoStatus::kOk) {
    FERRY_LOG_WARN("rbd:{}: copy from rbd:{} failed at destination bytes [{}, {}): {}", spec_,
                   leg->src->spec_, s.step.dst_off, s.step.dst_off + s.step.len, IoStatusName(st));
    leg->status = st;
  }
  PumpCopy(leg);
}

void RbdDevice::FinishCopy(CopyLeg* leg) {
  {
    std::lock_guard<std::mutex> lock(copy_->buf_mu);
    for (CopyLeg::Slot& s : leg->slots) {
      if (s.buf != nullptr) copy_->free_bufs.push_back(std::move(s.buf));
    }
  }
  if (leg->server == 0) return CompleteCopy(leg);
  // Objects written behind librbd: drop what its cache holds of them.
  Worker().Add([this, leg] {
    if (int r = rbd_invalidate_cache(image_); r < 0) {
      FERRY_LOG_WARN("rbd:{}: rbd_invalidate_cache after a copy: {}", spec_, ErrnoText(r));
    }
    leg->reactor->Post([this, leg] { CompleteCopy(leg); });
  });
}

void RbdDevice::CompleteCopy(CopyLeg* leg) {
  block::CopyLegRequest& req = *leg->req;
  const IoStatus st = leg->status;
  if (leg->server > 0) {
    req.mechanism = block::CopyMechanism::kRadosCopy;
    req.secondary = block::CopyMechanism::kRbdGateway;
    req.secondary_bytes = leg->gateway;
  } else {
    req.mechanism = block::CopyMechanism::kRbdGateway;
  }
  copy_->server_bytes += leg->server;
  copy_->gateway_bytes += leg->gateway;
  copy_->zeroed_bytes += leg->zeroed;
  copy_->parent_objects += leg->parent;
  copy_->marked_objects += leg->marked;
  if (!leg->why_not.empty() && leg->gateway > 0) {
    ++copy_->fallback_legs;
    req.refusal = "not copied inside the cluster: " + leg->why_not + "; copied by the gateway";
  } else if (leg->parent > 0) {
    req.refusal = "source objects missing (a clone's parent data) read through librbd";
  }
  delete leg;
  req.done(st);
}

}  // namespace ferry::backends::rbd
