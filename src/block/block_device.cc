#include "ferry/block_device.h"

#include <algorithm>

#include "io/reactor.h"

namespace ferry::block {

std::string_view IoOpName(IoOp op) {
  switch (op) {
    case IoOp::kRead: return "read";
    case IoOp::kWrite: return "write";
    case IoOp::kFlush: return "flush";
    case IoOp::kDiscard: return "discard";
    case IoOp::kWriteZeroes: return "write-zeroes";
    case IoOp::kWriteSame: return "write-same";
    case IoOp::kCompareAndWrite: return "compare-and-write";
  }
  return "unknown";
}

std::string_view CopyMechanismName(CopyMechanism m) {
  switch (m) {
    case CopyMechanism::kNone: return "none";
    case CopyMechanism::kEmulated: return "emulated";
    case CopyMechanism::kRamNative: return "ram";
    case CopyMechanism::kReflink: return "reflink";
    case CopyMechanism::kCopyFileRange: return "copy_file_range";
    case CopyMechanism::kThinShare: return "thin_share";
    case CopyMechanism::kXcopy: return "xcopy";
    case CopyMechanism::kOdx: return "odx";
    case CopyMechanism::kRadosCopy: return "rados_copy";
    case CopyMechanism::kRbdGateway: return "rbd_gateway";
  }
  return "unknown";
}

void BlockDevice::QueryProvisioning(Lba lba, BlockCount max, uint32_t max_extents,
                                    ProvisioningDone done) {
  std::vector<ProvisioningExtent> runs;
  const uint64_t end = std::min(lba.value() + max.value(), geometry().num_blocks.value());
  for (uint64_t at = lba.value(); at < end && runs.size() < max_extents;) {
    ProvisioningExtent e = Provisioning(Lba(at), BlockCount(end - at));
    e.blocks = BlockCount(std::clamp<uint64_t>(e.blocks.value(), 1, end - at));
    at += e.blocks.value();
    runs.push_back(e);
  }
  io::Reactor::Current()->Post([done = std::move(done), runs = std::move(runs)]() mutable {
    done(IoStatus::kOk, std::move(runs));
  });
}

namespace {

// kWriteSame and kCompareAndWrite: supported, within their limit, one aligned iovec of one
// block (write same) or twice the range (compare and write).
IoStatus ValidatePatternRequest(const Geometry& g, const QueueLimits& l, const IoRequest& req) {
  const bool same = req.op == IoOp::kWriteSame;
  const uint64_t max = same ? l.max_write_same_bytes : l.max_compare_write_bytes;
  if (max == 0) return IoStatus::kNotSupported;
  const uint64_t range = req.blocks.bytes(g.block_size);
  if (range > max || req.iovcnt != 1 || req.iov == nullptr) return IoStatus::kInvalid;
  const uint64_t want = same ? g.block_size : 2 * range;
  const iovec& v = req.iov[0];
  if (v.iov_len != want || reinterpret_cast<uintptr_t>(v.iov_base) % l.buffer_alignment != 0) {
    return IoStatus::kInvalid;
  }
  return IoStatus::kOk;
}

}  // namespace

IoStatus ValidateRequest(const BlockDevice& dev, const IoRequest& req) {
  const Geometry& g = dev.geometry();
  const QueueLimits& l = dev.limits();
  if (req.op == IoOp::kFlush) return IoStatus::kOk;
  if (req.op != IoOp::kRead && dev.read_only()) return IoStatus::kReadOnly;
  if (req.blocks.value() == 0) return IoStatus::kInvalid;
  if (req.lba.value() > g.num_blocks.value() ||
      req.blocks.value() > g.num_blocks.value() - req.lba.value()) {
    return IoStatus::kInvalid;
  }
  if (req.op == IoOp::kDiscard && l.max_discard_bytes == 0) return IoStatus::kNotSupported;
  if (req.op == IoOp::kWriteSame || req.op == IoOp::kCompareAndWrite) {
    return ValidatePatternRequest(g, l, req);
  }
  if (req.op != IoOp::kRead && req.op != IoOp::kWrite) return IoStatus::kOk;
  uint64_t want = req.blocks.bytes(g.block_size);
  if (want > l.max_io_bytes) return IoStatus::kInvalid;
  if (req.iovcnt == 0 || req.iov == nullptr || req.iovcnt > l.max_iovecs) {
    return IoStatus::kInvalid;
  }
  uint64_t have = 0;
  for (uint32_t i = 0; i < req.iovcnt; ++i) {
    const iovec& v = req.iov[i];
    if (reinterpret_cast<uintptr_t>(v.iov_base) % l.buffer_alignment != 0 ||
        v.iov_len % l.buffer_alignment != 0) {
      return IoStatus::kInvalid;
    }
    have += v.iov_len;
  }
  return have == want ? IoStatus::kOk : IoStatus::kInvalid;
}

}  // namespace ferry::block
