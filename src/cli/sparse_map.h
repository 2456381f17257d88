// The data regions of a device, for `ferryctl copy --sparse`.
#pragma once

#include <cstdint>
#include <vector>

#include "ferry/block_device.h"

namespace ferry::cli {

struct ByteRange {
  uint64_t offset = 0;
  uint64_t len = 0;
  bool operator==(const ByteRange&) const = default;
};

// The regions of [offset, offset+len) of `dev` that hold data, in order, each widened to
// multiples of `align` (a power of two, 1 for none) and merged where they then touch, all
// clipped to the range; from the device's provisioning status (BlockDevice::Provisioning:
// SEEK_DATA / SEEK_HOLE for files, the allocation maps of RAM and thin devices; devices that
// cannot tell are all data). `offset` and `len` are multiples of the device's block size.
std::vector<ByteRange> DeviceDataRanges(const block::BlockDevice& dev, uint64_t offset,
                                        uint64_t len, uint64_t align);

// The complement of `data` inside [offset, offset+len): the holes.
std::vector<ByteRange> HoleRanges(const std::vector<ByteRange>& data, uint64_t offset,
                                  uint64_t len);

}  // namespace ferry::cli
