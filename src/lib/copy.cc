// Context's copies: submission checks, the engine's completion, progress, cancel, reap.
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "block/splitter.h"
#include "io/reactor.h"
#include "lib/context.h"
#include "lib/error.h"
#include "lib/no_fallback_device.h"

namespace ferry::api {
namespace {

constexpr uint32_t kKnownCopyFlags = FERRY_COPY_NO_FALLBACK | FERRY_COPY_FUA;

std::string RangeName(size_t i, const ferry_range& r) {
  return "range " + std::to_string(i) + " (src_off " + std::to_string(r.src_off) + ", dst_off " +
         std::to_string(r.dst_off) + ", len " + std::to_string(r.len) + ")";
}

CopyStats StatsOf(const copy::CopyCounters& c, uint64_t total) {
  // The engine's counters are separate atomics: a snapshot may see a chunk in one and not
  // yet in the other. The sum of the two paths is what has reached the destination.
  return CopyStats{.total = total,
                   .done = c.offloaded_bytes + c.emulated_bytes,
                   .offloaded = c.offloaded_bytes,
                   .emulated = c.emulated_bytes,
                   .mechanism = DominantMechanism(c)};
}

}  // namespace

// Everything the engine would refuse, and the C API's own rules, with precise errnos.
int Context::CheckRanges(const ferry_dev* src, const ferry_dev* dst,
                         std::span<const ferry_range> ranges, uint32_t flags) {
  const char* fn = "ferry_copy_submit: ";
  if (flags & ~kKnownCopyFlags) {
    return Fail(-EINVAL, fn + std::string("unknown flags 0x") + std::to_string(flags));
  }
  if (dst->dev->read_only()) {
    return Fail(-EROFS, fn + std::string("destination '") + dst->uri + "' is read-only");
  }
  const uint64_t src_size = src->dev->geometry().size_bytes();
  const uint64_t dst_size = dst->dev->geometry().size_bytes();
  const uint32_t sbs = src->dev->geometry().block_size;
  const uint32_t dbs = dst->dev->geometry().block_size;
  for (size_t i = 0; i < ranges.size(); ++i) {
    const ferry_range& r = ranges[i];
    if (r.len == 0) return Fail(-EINVAL, fn + RangeName(i, r) + " has length 0");
    if (r.src_off % sbs || r.len % sbs) {
      return Fail(-EINVAL, fn + RangeName(i, r) +
                               " is not a multiple of the source's block size (" +
                               std::to_string(sbs) + " bytes)");
    }
    if (r.dst_off % dbs || r.len % dbs) {
      return Fail(-EINVAL, fn + RangeName(i, r) +
                               " is not a multiple of the destination's block size (" +
                               std::to_string(dbs) + " bytes)");
    }
    if (r.src_off > src_size || r.len > src_size - r.src_off) {
      return Fail(-EINVAL, fn + RangeName(i, r) + " reaches past the end of source '" + src->uri +
                               "' (" + std::to_string(src_size) + " bytes)");
    }
    if (r.dst_off > dst_size || r.len > dst_size - r.dst_off) {
      return Fail(-ENOSPC, fn + std::string("destination '") + dst->uri + "' is too short (" +
                               std::to_string(dst_size) + " bytes): " + RangeName(i, r) +
                               " reaches past its end");
    }
  }
  if (flags & FERRY_COPY_NO_FALLBACK) {
    std::string why = "it has no native copy";
    block::CopyOffload* offload = dst->dev->copy_offload();
    if (offload == nullptr || !offload->CanCopyFrom(*src->dev, &why)) {
      return Fail(-EOPNOTSUPP, fn + std::string("FERRY_COPY_NO_FALLBACK: '") + dst->uri +
                                   "' cannot copy natively from '" + src->uri + "': " + why);
    }
  }
  return 0;
}

copy::CopyDescriptor Context::Describe(CopyRecord& rec, std::span<const ferry_range> ranges) {
  copy::CopyDescriptor d;
  d.src = rec.src->dev.get();
  rec.engine_dst = rec.dst->dev;
  // One device object for both sides keeps the engine's overlap ordering (copy.h); such a
  // copy relies on the submission check alone for FERRY_COPY_NO_FALLBACK.
  if ((rec.flags & FERRY_COPY_NO_FALLBACK) && rec.src != rec.dst) {
    rec.engine_dst = std::make_shared<NoFallbackDevice>(rec.dst->dev);
  }
  copy::CopyDestination dst{rec.engine_dst.get(), {}};
  const uint32_t sbs = rec.src->dev->geometry().block_size;
  const uint32_t dbs = rec.dst->dev->geometry().block_size;
  for (const ferry_range& r : ranges) {
    d.src_extents.push_back({Lba(r.src_off / sbs), BlockCount(r.len / sbs)});
    dst.extents.push_back({Lba(r.dst_off / dbs), BlockCount(r.len / dbs)});
    rec.total_bytes += r.len;
  }
  d.dsts.push_back(std::move(dst));
  return d;
}

int Context::Submit(ferry_dev* src, ferry_dev* dst, std::span<const ferry_range> ranges,
                    uint32_t flags, void* user_data, uint64_t* cookie) {
  if (src->ctx != this || dst->ctx != this) {
    return Fail(-EINVAL, "ferry_copy_submit: a device of another context");
  }
  if (int err = CheckRanges(src, dst, ranges, flags); err != 0) return err;
  auto owned = std::make_unique<CopyRecord>();
  CopyRecord* rec = owned.get();
  rec->user_data = user_data;
  rec->flags = flags;
  rec->src = src;
  rec->dst = dst;
  copy::CopyDescriptor desc = Describe(*rec, ranges);
  {
    std::lock_guard<std::mutex> lock(mu_);
    rec->cookie = next_cookie_++;
    copies_.emplace(rec->cookie, std::move(owned));
    ++in_flight_;
    ++src->copies_in_flight;
    ++dst->copies_in_flight;
  }
  Status st;
  RunSync([&] {
    auto job = engine_->Submit(std::move(desc),
                               [this, rec](copy::CopyResult r) { OnCopyDone(rec, std::move(r)); });
    std::lock_guard<std::mutex> lock(mu_);
    if (!job.ok()) {
      st = job.status();
      return;
    }
    rec->job = std::move(job).value();
    if (rec->cancel_requested) rec->job->Cancel();
  });
  if (!st.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
    --src->copies_in_flight;
    --dst->copies_in_flight;
    copies_.erase(rec->cookie);
    return Fail(st.WithContext("ferry_copy_submit"));
  }
  *cookie = rec->cookie;
  return 0;
}

void Context::OnCopyDone(CopyRecord* rec, copy::CopyResult result) {
  rec->final_counters = result.counters;
  const int err = ErrnoOf(result.status);
  if (err != 0 || !(rec->flags & FERRY_COPY_FUA)) {
    Finish(rec, err);
    return;
  }
  rec->flush.op = block::IoOp::kFlush;
  rec->flush.done = [this, rec](IoStatus st) { Finish(rec, ErrnoOf(st)); };
  block::SubmitSplit(*rec->dst->dev, rec->flush);
}

void Context::Finish(CopyRecord* rec, int result) {
  // Released here, on the reactor thread, after the lock.
  std::shared_ptr<copy::CopyJob> job;
  std::shared_ptr<block::BlockDevice> engine_dst;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job = std::move(rec->job);
    engine_dst = std::move(rec->engine_dst);
    rec->done = true;
    rec->result = result;
    --rec->src->copies_in_flight;
    --rec->dst->copies_in_flight;
    --in_flight_;
    if (completed_.empty()) {
      const uint64_t one = 1;
      // Cannot fail: the counter is 0 here (reapers drain it under mu_).
      (void)!write(event_fd_, &one, sizeof(one));
    }
    completed_.push_back(rec->cookie);
    cv_.notify_all();
  }
}

int Context::Progress(uint64_t cookie, CopyStats* out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = copies_.find(cookie);
  if (it == copies_.end()) {
    return Fail(-ENOENT, "ferry_copy_progress: no copy " + std::to_string(cookie));
  }
  const CopyRecord& rec = *it->second;
  const copy::CopyCounters c = rec.job ? rec.job->progress() : rec.final_counters;
  *out = StatsOf(c, rec.total_bytes);
  return 0;
}

int Context::Cancel(uint64_t cookie) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = copies_.find(cookie);
  if (it == copies_.end()) {
    return Fail(-ENOENT, "ferry_copy_cancel: no copy " + std::to_string(cookie));
  }
  CopyRecord& rec = *it->second;
  if (rec.done) {
    return Fail(-EALREADY, "ferry_copy_cancel: copy " + std::to_string(cookie) +
                               " has completed already (reap it)");
  }
  rec.cancel_requested = true;
  if (rec.job) rec.job->Cancel();
  return 0;
}

int Context::Reap(std::vector<Completion>* out, size_t min, size_t max, int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
  std::unique_lock<std::mutex> lock(mu_);
  auto enough = [&] { return completed_.size() >= min || completed_.size() + in_flight_ < min; };
  if (timeout_ms < 0) {
    cv_.wait(lock, enough);
  } else if (timeout_ms > 0) {
    cv_.wait_until(lock, deadline, enough);
  }
  while (!completed_.empty() && out->size() < max) {
    auto it = copies_.find(completed_.front());
    completed_.pop_front();
    const CopyRecord& rec = *it->second;
    out->push_back(Completion{.cookie = rec.cookie,
                              .user_data = rec.user_data,
                              .result = rec.result,
                              .stats = StatsOf(rec.final_counters, rec.total_bytes)});
    copies_.erase(it);
  }
  if (completed_.empty()) {
    uint64_t value = 0;
    (void)!read(event_fd_, &value, sizeof(value));  // EAGAIN when already drained
  }
  return static_cast<int>(out->size());
}

}  // namespace ferry::api
