#include "cli/sparse_map.h"

#include <algorithm>

namespace ferry::cli {

namespace {

// Appends [b, e) widened to `align` and clipped to [offset, end), merging with the last
// range where they touch.
void AddData(std::vector<ByteRange>& out, uint64_t offset, uint64_t end, uint64_t align, uint64_t b,
             uint64_t e) {
  b = std::max(offset, b / align * align);
  e = std::min(end, (e + align - 1) / align * align);
  if (b >= e) return;
  if (!out.empty() && out.back().offset + out.back().len >= b) {
    uint64_t new_end = std::max(out.back().offset + out.back().len, e);
    out.back().len = new_end - out.back().offset;
  } else {
    out.push_back({b, e - b});
  }
}

}  // namespace

std::vector<ByteRange> DeviceDataRanges(const block::BlockDevice& dev, uint64_t offset,
                                        uint64_t len, uint64_t align) {
  std::vector<ByteRange> out;
  const uint64_t bs = dev.geometry().block_size;
  const uint64_t end = offset + len;
  uint64_t lba = offset / bs;
  while (lba * bs < end) {
    const uint64_t left = end / bs - lba;
    block::ProvisioningExtent e = dev.Provisioning(Lba(lba), BlockCount(left));
    const uint64_t n = std::clamp<uint64_t>(e.blocks.value(), 1, left);
    if (e.mapped) AddData(out, offset, end, align, lba * bs, (lba + n) * bs);
    lba += n;
  }
  return out;
}

std::vector<ByteRange> HoleRanges(const std::vector<ByteRange>& data, uint64_t offset,
                                  uint64_t len) {
  std::vector<ByteRange> holes;
  uint64_t pos = offset;
  for (const ByteRange& d : data) {
    if (d.offset > pos) holes.push_back({pos, d.offset - pos});
    pos = std::max(pos, d.offset + d.len);
  }
  if (pos < offset + len) holes.push_back({pos, offset + len - pos});
  return holes;
}

}  // namespace ferry::cli
