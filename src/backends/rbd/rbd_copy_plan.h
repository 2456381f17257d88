// Planning a copy leg between two RBD images: a pure function from the leg's segments and
// the source's data extents (rbd_diff_iterate2) to the steps rbd_copy.cc runs. No I/O.
//
// The leg is cut at the destination's object boundaries, so a step never spans two
// destination objects. Each piece becomes:
// - kZero when the source holds no data there (a hole, in the image and in its parents):
//   the destination range is zeroed through librbd instead of read and written;
// - kServer when server-side copy is allowed, the piece is one whole object on both images
//   (same object size, both offsets on an object boundary): RADOS copies the source object
//   onto the destination object (copy-from), and the bytes never leave the OSDs;
// - kGateway otherwise: read from the source and written to the destination through librbd,
//   at most `max_io_bytes` per step.
// Consecutive kZero pieces are merged up to `max_zero_bytes`.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ferry/block_device.h"

namespace ferry::backends::rbd {

struct ByteRange {
  uint64_t off = 0;
  uint64_t len = 0;
};

struct CopyStep {
  enum Kind : uint8_t { kZero, kServer, kGateway };
  Kind kind = kGateway;
  uint64_t src_off = 0;
  uint64_t dst_off = 0;
  uint64_t len = 0;
};

struct CopyPlanInput {
  std::span<const block::CopySegment> segments;
  // Where the source holds data, in source bytes, sorted by offset, not overlapping.
  std::span<const ByteRange> src_data;
  uint64_t src_object_bytes = 0;
  uint64_t dst_object_bytes = 0;
  bool server_allowed = false;
  uint64_t max_io_bytes = 0;
  uint64_t max_zero_bytes = 0;
};

std::vector<CopyStep> PlanCopySteps(const CopyPlanInput& in);

// Sorts `ranges` and merges those that touch or overlap.
void NormalizeRanges(std::vector<ByteRange>* ranges);

}  // namespace ferry::backends::rbd
