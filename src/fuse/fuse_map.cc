#include "fuse/fuse_map.h"

#include <fcntl.h>
#include <linux/falloc.h>

#include <algorithm>
#include <cerrno>

namespace ferry::fuse {

CopyPlan PlanCopy(const CopyArgs& a) {
  if (a.off_in >= a.size_in) return {};
  if (a.off_out >= a.size_out) return {ENOSPC, 0};
  if (a.off_in % a.bs_in != 0 || a.off_out % a.bs_out != 0) return {EOPNOTSUPP, 0};
  uint64_t len =
      std::min({a.len, a.size_in - a.off_in, a.size_out - a.off_out, kMaxCopyReplyBytes});
  // Block sizes are powers of two: the larger is a multiple of the smaller.
  const uint64_t unit = std::max(a.bs_in, a.bs_out);
  len -= len % unit;
  if (len == 0) return {EOPNOTSUPP, 0};
  return {0, len};
}

BlockSpan WidenToBlocks(uint64_t off, uint64_t len, uint32_t block_size) {
  const uint64_t first = off - off % block_size;
  uint64_t end = off + len;
  if (end % block_size != 0) end += block_size - end % block_size;
  return {first, end - first, off - first};
}

uint64_t ClampToDevice(uint64_t off, uint64_t len, uint64_t size) {
  if (off >= size) return 0;
  return std::min(len, size - off);
}

int64_t SeekProvisioned(uint64_t off, uint64_t size, uint32_t block_size, bool data,
                        const ProvisioningFn& provisioning) {
  if (off >= size) return -ENXIO;
  const uint64_t blocks = size / block_size;
  uint64_t lba = off / block_size;
  while (lba < blocks) {
    const block::ProvisioningExtent e = provisioning(Lba(lba), BlockCount(blocks - lba));
    const uint64_t run = std::clamp<uint64_t>(e.blocks.value(), 1, blocks - lba);
    if (e.mapped == data) return static_cast<int64_t>(std::max(off, lba * block_size));
    lba += run;
  }
  return data ? -ENXIO : static_cast<int64_t>(size);
}

uint64_t AllocatedBytes(uint64_t size, uint32_t block_size, const ProvisioningFn& provisioning,
                        uint32_t max_runs) {
  const uint64_t blocks = size / block_size;
  uint64_t lba = 0, mapped = 0;
  for (uint32_t runs = 0; lba < blocks && runs < max_runs; ++runs) {
    const block::ProvisioningExtent e = provisioning(Lba(lba), BlockCount(blocks - lba));
    const uint64_t run = std::clamp<uint64_t>(e.blocks.value(), 1, blocks - lba);
    if (e.mapped) mapped += run;
    lba += run;
  }
  mapped += blocks - lba;  // not looked at: allocated, as the comment in the header says
  return mapped * block_size;
}

FallocatePlan PlanFallocate(int mode, uint64_t off, uint64_t len, uint64_t size,
                            uint32_t block_size, bool discard_zeroes) {
  FallocatePlan p;
  if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE) {
    if (off + len > size || off + len < off) return {.error = ENOSPC};
    p.noop = true;
    return p;
  }
  if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
    p.op = discard_zeroes ? block::IoOp::kDiscard : block::IoOp::kWriteZeroes;
  } else if (mode == FALLOC_FL_ZERO_RANGE || mode == (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)) {
    p.op = block::IoOp::kWriteZeroes;
  } else {
    return {.error = EOPNOTSUPP};
  }
  p.off = off;
  p.len = ClampToDevice(off, len, size);
  if (p.len == 0) {
    p.noop = true;
    return p;
  }
  const uint64_t end = off + p.len;
  if (off % block_size != 0 || (end % block_size != 0 && end != size)) return {.error = EINVAL};
  return p;
}

TruncatePlan PlanTruncate(uint64_t new_size, uint64_t size, uint32_t block_size) {
  if (new_size == size) return {.noop = true};
  if (new_size > size) return {.error = EFBIG};
  if (new_size % block_size != 0) return {.error = EINVAL};
  return {.off = new_size, .len = size - new_size};
}

int ErrnoOf(IoStatus st) {
  switch (st) {
    case IoStatus::kOk: return 0;
    case IoStatus::kNoSpace: return ENOSPC;
    case IoStatus::kNoResources: return EAGAIN;
    case IoStatus::kInvalid: return EINVAL;
    case IoStatus::kNotSupported: return EOPNOTSUPP;
    case IoStatus::kAborted: return ECANCELED;
    case IoStatus::kReadOnly: return EROFS;
    case IoStatus::kTimeout: return ETIMEDOUT;
    case IoStatus::kIoError:
    case IoStatus::kMiscompare: break;
  }
  return EIO;
}

}  // namespace ferry::fuse
