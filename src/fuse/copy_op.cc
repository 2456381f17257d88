// copy_file_range between two files of the mount: one request to Ferry's copy engine, which
// offloads what the devices can copy natively (thin sharing, reflink, copy_file_range on the
// backing file system, a remote array's XCOPY or ODX) and emulates the rest.
#include <cerrno>

#include "base/log.h"
#include "fuse/core.h"
#include "fuse/fuse_map.h"

namespace ferry::fuse {
namespace {

void CountCopy(MountStats& s, const copy::CopyResult& r) {
  s.bytes_offloaded += r.counters.offloaded_bytes;
  s.bytes_emulated += r.counters.emulated_bytes;
  for (size_t i = 0; i < s.by_mechanism.size(); ++i)
    s.by_mechanism[i] += r.counters.by_mechanism[i];
}

}  // namespace

// Linux 6.x checks before the request reaches the server: both files open (EBADF), flags
// (EINVAL), overlap within one file (EINVAL), the source's end (a short or empty copy), other
// file systems (EXDEV). What is left is the device's view: PlanCopy (fuse_map.h).
void OpCopyFileRange(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, fuse_file_info* fi_in,
                     fuse_ino_t ino_out, off_t off_out, fuse_file_info* fi_out, size_t len,
                     int flags) {
  (void)fi_in;
  (void)fi_out;
  Core& c = CoreOf(req);
  auto in = c.Find(ino_in);
  auto out = c.Find(ino_out);
  if (in == nullptr || out == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if (flags != 0 || off_in < 0 || off_out < 0) return (void)fuse_reply_err(req, EINVAL);
  if (out->read_only) return (void)fuse_reply_err(req, EROFS);
  const block::Geometry& gi = in->dev->geometry();
  const block::Geometry& go = out->dev->geometry();
  const CopyPlan plan = PlanCopy({.off_in = static_cast<uint64_t>(off_in),
                                  .off_out = static_cast<uint64_t>(off_out),
                                  .len = len,
                                  .size_in = gi.size_bytes(),
                                  .size_out = go.size_bytes(),
                                  .bs_in = gi.block_size,
                                  .bs_out = go.block_size});
  if (plan.error == EOPNOTSUPP) ++c.stats.copies_declined;
  if (plan.error != 0) return (void)fuse_reply_err(req, plan.error);
  if (plan.len == 0) return (void)fuse_reply_write(req, 0);
  copy::CopyDescriptor d;
  d.src = in->dev.get();
  d.src_extents = {{Lba(off_in / gi.block_size), BlockCount(plan.len / gi.block_size)}};
  d.dsts = {
      {out->dev.get(), {{Lba(off_out / go.block_size), BlockCount(plan.len / go.block_size)}}}};
  const uint64_t id = c.next_job++;
  struct Held {
    std::shared_ptr<DeviceFile> in, out;
  };
  auto held = std::make_shared<Held>(Held{in, out});  // the devices outlive the copy
  auto job = c.engine->Submit(std::move(d), [&c, req, id, held, n = plan.len](copy::CopyResult r) {
    --c.in_flight;
    c.jobs.erase(id);
    CountCopy(c.stats, r);
    if (r.status != IoStatus::kOk) {
      ++c.stats.copies_failed;
      FERRY_LOG_WARN("fuse: copy_file_range {} -> {} ({} bytes) failed: {}", held->in->name,
                     held->out->name, n, IoStatusName(r.status));
      return (void)fuse_reply_err(req, ErrnoOf(r.status));
    }
    ++c.stats.copies;
    fuse_reply_write(req, n);
  });
  if (!job.ok()) {
    // The engine refused the descriptor: let the kernel copy by read and write.
    ++c.stats.copies_declined;
    FERRY_LOG_DEBUG("fuse: copy engine refused {} -> {}: {}", in->name, out->name,
                    job.status().message());
    return (void)fuse_reply_err(req, EOPNOTSUPP);
  }
  ++c.in_flight;
  c.jobs[id] = *job;
}

}  // namespace ferry::fuse
