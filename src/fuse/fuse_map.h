// The pure arithmetic of the FUSE mount (server.h): how a file request on a device file
// becomes block requests and copy-engine extents. No I/O, no libfuse: unit-tested alone
// (fuse_map_test.cc).
//
// Offsets and lengths are in bytes, device sizes are multiples of their block sizes, block
// sizes are powers of two. Errors are positive errno values, the way FUSE replies carry them.
#pragma once

#include <cstdint>
#include <functional>

#include "ferry/block_device.h"

namespace ferry::fuse {

// The largest copy_file_range answered at once. Protocol 7.28's reply (fuse_write_out) holds
// the bytes copied in 32 bits and libfuse 3.14 has no COPY_FILE_RANGE_64, so a longer
// request is cut here (1 MiB under 4 GiB, so that a cut stays aligned for every block size
// and copy granularity up to 1 MiB); the kernel returns the short count and callers loop.
inline constexpr uint64_t kMaxCopyReplyBytes = (uint64_t{4} << 30) - (uint64_t{1} << 20);

struct CopyArgs {
  uint64_t off_in = 0, off_out = 0, len = 0;
  uint64_t size_in = 0, size_out = 0;
  uint32_t bs_in = 512, bs_out = 512;
};

// What copy_file_range does with a request: copy `len` bytes (error 0, len > 0), answer 0
// bytes (error 0, len 0: the source ends before off_in), or fail with `error`:
//   ENOSPC      off_out at or past the destination's end (a device does not grow);
//   EOPNOTSUPP  an offset off its device's blocks, or less than one block left to copy: the
//               kernel then copies through read and write (never ENOSYS, which would turn
//               copy_file_range off for the whole mount).
struct CopyPlan {
  int error = 0;
  uint64_t len = 0;
};
CopyPlan PlanCopy(const CopyArgs& a);

// A byte range widened to whole blocks: [first, first + len) covers the caller's
// [first + head, first + head + caller_len).
struct BlockSpan {
  uint64_t first = 0;
  uint64_t len = 0;
  uint64_t head = 0;
  bool aligned() const { return head == 0; }
};
BlockSpan WidenToBlocks(uint64_t off, uint64_t len, uint32_t block_size);

// Bytes of [off, off + len) inside a device of `size` bytes (0 when off >= size).
uint64_t ClampToDevice(uint64_t off, uint64_t len, uint64_t size);

// The provisioning lookup of a device (block::BlockDevice::Provisioning).
using ProvisioningFn = std::function<block::ProvisioningExtent(Lba, BlockCount)>;

// lseek SEEK_DATA (`data`) or SEEK_HOLE from `off`: the offset, or -ENXIO (off at or past
// the end; no data after off). The end of the device counts as a hole, as for files.
int64_t SeekProvisioned(uint64_t off, uint64_t size, uint32_t block_size, bool data,
                        const ProvisioningFn& provisioning);

// Bytes that hold space (st_blocks * 512), from at most `max_runs` provisioning runs; what
// lies past the last run looked at counts as allocated (so st_blocks never claims a hole
// that is not there, which would make cp skip data).
uint64_t AllocatedBytes(uint64_t size, uint32_t block_size, const ProvisioningFn& provisioning,
                        uint32_t max_runs);

// What fallocate(2) does on a device file: nothing (`noop`), a block request `op` over
// [off, off + len), or `error`:
//   mode 0 / KEEP_SIZE      nothing inside the device (its space exists), ENOSPC past it;
//   PUNCH_HOLE|KEEP_SIZE    discard when the device reads discarded blocks as zeroes,
//                           write-zeroes otherwise;
//   ZERO_RANGE[|KEEP_SIZE]  write-zeroes;
//   anything else           EOPNOTSUPP.
// Punch and zero ranges are cut at the device's end (nothing past it), and must start and
// end on blocks (or at the end): EINVAL otherwise, as for a block device.
struct FallocatePlan {
  int error = 0;
  bool noop = false;
  block::IoOp op = block::IoOp::kWriteZeroes;
  uint64_t off = 0, len = 0;
};
FallocatePlan PlanFallocate(int mode, uint64_t off, uint64_t len, uint64_t size,
                            uint32_t block_size, bool discard_zeroes);

// What truncate(2) to `new_size` does on a device file, whose size never changes: nothing
// at the device's size, EFBIG above it, EINVAL off a block; below it the device from
// `new_size` to its end is zeroed (so that O_TRUNC followed by writes and holes, which is
// how cp fills a file, leaves the copy's bytes and zeroes elsewhere).
struct TruncatePlan {
  int error = 0;
  bool noop = false;
  uint64_t off = 0, len = 0;  // the range to zero
};
TruncatePlan PlanTruncate(uint64_t new_size, uint64_t size, uint32_t block_size);

// The errno a FUSE reply carries for a block-layer status.
int ErrnoOf(IoStatus st);

}  // namespace ferry::fuse
