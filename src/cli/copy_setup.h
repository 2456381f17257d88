// The preparation half of `ferryctl copy`: arguments checked, files resolved and opened,
// the ranges to copy computed. Every failure is a Status whose message tells the user what
// to fix; nothing has been written to the destination unless a field below says so.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "cli/copy_command.h"
#include "cli/sparse_map.h"
#include "ferry/block_device.h"

namespace ferry::cli {

struct CopySetup {
  std::string src_path;  // a path, or the URI of a device of another backend
  std::string dst_path;  // "DIR/basename(SRC)" when DST is a directory
  // Both the same object when SRC and DST are one file (copies inside it are memmove-like).
  std::shared_ptr<block::BlockDevice> src_dev;
  std::shared_ptr<block::BlockDevice> dst_dev;
  uint64_t src_offset = 0;
  uint64_t dst_offset = 0;
  uint64_t length = 0;
  // Source byte ranges to copy, in order (one range unless --sparse found holes).
  std::vector<ByteRange> data;
  // Destination byte ranges to zero because they are source holes over old data.
  std::vector<ByteRange> dst_zero;
  uint64_t skipped_hole_bytes = 0;
  // Engine settings from the arguments.
  uint64_t chunk_bytes = 1u << 20;
  uint64_t throttle_bytes_per_sec = 0;
  uint32_t queue_depth = 8;
};

// Checks the arguments, opens the source (read-only) and the destination and computes the
// ranges. SRC and DST are paths or device URIs (backends/builtin.h: "iscsi://...",
// "ram:SIZE", "file:PATH"). A regular-file destination is created, grown or truncated as the
// arguments say; a device of another backend must exist and be large enough.
Result<CopySetup> PrepareCopy(const CopyArgs& args);

// Destination byte offset of source byte offset `src_byte`.
inline uint64_t DstByte(const CopySetup& s, uint64_t src_byte) {
  return src_byte - s.src_offset + s.dst_offset;
}

}  // namespace ferry::cli
