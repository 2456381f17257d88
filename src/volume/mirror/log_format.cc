#include "volume/mirror/log_format.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "base/endian.h"

namespace ferry::volume::mirror {

namespace {

constexpr uint8_t kMagic[8] = {'F', 'E', 'R', 'R', 'Y', 'M', 'L', 'G'};
constexpr size_t kHeaderCrcAt = 508;

uint32_t BitmapsCrc(std::span<const uint8_t> dirty, std::span<const uint8_t> stale) {
  return ~Crc32cUpdate(Crc32cUpdate(kCrc32cStart, dirty), stale);
}

std::string Num(uint64_t v) { return std::to_string(v); }

}  // namespace

uint64_t BitmapBytes(uint64_t region_count) {
  const uint64_t bytes = (region_count + 7) / 8;
  return std::max<uint64_t>(kHeaderBytes, (bytes + kHeaderBytes - 1) / kHeaderBytes * kHeaderBytes);
}

uint64_t LogBytes(uint64_t region_count) { return kHeaderBytes + 2 * BitmapBytes(region_count); }

std::vector<uint8_t> EncodeLog(const LogImage& img) {
  const uint64_t bm = BitmapBytes(img.region_count);
  std::vector<uint8_t> out(LogBytes(img.region_count), 0);
  uint8_t* h = out.data();
  std::memcpy(h, kMagic, sizeof(kMagic));
  StoreBe32(h + 8, kLogVersion);
  StoreBe32(h + 12, img.region_sectors);
  StoreBe64(h + 16, img.region_count);
  StoreBe32(h + 24, img.num_legs);
  StoreBe32(h + 28, img.failed_mask);
  StoreBe32(h + 32, img.catching_up_mask);
  StoreBe32(h + 36, 0);
  StoreBe64(h + 40, img.sequence);
  uint8_t* dirty = h + kHeaderBytes;
  uint8_t* stale = dirty + bm;
  // Only the region_count bits are meaningful; the rest of each bitmap stays zero.
  for (uint64_t r = 0; r < img.region_count; ++r) {
    if (r / 8 < img.dirty.size() && TestBit(img.dirty, r)) dirty[r / 8] |= 1u << (r % 8);
    if (r / 8 < img.stale.size() && TestBit(img.stale, r)) stale[r / 8] |= 1u << (r % 8);
  }
  StoreBe32(h + 48, BitmapsCrc({dirty, bm}, {stale, bm}));
  StoreBe32(h + kHeaderCrcAt, Crc32c({h, kHeaderCrcAt}));
  return out;
}

Result<Decoded> DecodeLog(std::span<const uint8_t> bytes) {
  if (bytes.size() < kHeaderBytes) {
    return InvalidArgument("mirror log is " + Num(bytes.size()) +
                           " bytes; the header alone needs " + Num(kHeaderBytes));
  }
  const uint8_t* h = bytes.data();
  Decoded d;
  if (std::all_of(h, h + kHeaderBytes, [](uint8_t b) { return b == 0; })) return d;
  if (std::memcmp(h, kMagic, sizeof(kMagic)) != 0) {
    return InvalidArgument(
        "log device does not hold a mirror log (bad magic); zero its first 4096 bytes to "
        "format it");
  }
  if (LoadBe32(h + kHeaderCrcAt) != Crc32c({h, kHeaderCrcAt})) {
    return DataLoss(
        "mirror log header checksum mismatch (corrupt header); zero the log device "
        "and load the table with 'sync' to resync every region");
  }
  LogImage& img = d.image;
  const uint32_t version = LoadBe32(h + 8);
  if (version != kLogVersion) {
    return InvalidArgument("mirror log version " + Num(version) + " is not supported (expected " +
                           Num(kLogVersion) + ")");
  }
  img.region_sectors = LoadBe32(h + 12);
  img.region_count = LoadBe64(h + 16);
  img.num_legs = LoadBe32(h + 24);
  img.failed_mask = LoadBe32(h + 28);
  img.catching_up_mask = LoadBe32(h + 32);
  img.sequence = LoadBe64(h + 40);
  if (LoadBe32(h + 36) != 0) return InvalidArgument("mirror log has unknown flags set");
  if (img.region_sectors == 0 || img.region_count == 0 || img.region_count > kMaxRegions) {
    return InvalidArgument("mirror log header has region size " + Num(img.region_sectors) +
                           " and region count " + Num(img.region_count) + " (out of range)");
  }
  if (img.num_legs < 2 || img.num_legs > kMaxLegs) {
    return InvalidArgument("mirror log header says " + Num(img.num_legs) + " legs (2.." +
                           Num(kMaxLegs) + " allowed)");
  }
  const uint64_t bm = BitmapBytes(img.region_count);
  if (bytes.size() < LogBytes(img.region_count)) {
    return InvalidArgument("mirror log needs " + Num(LogBytes(img.region_count)) +
                           " bytes for its bitmaps; only " + Num(bytes.size()) + " given");
  }
  std::span<const uint8_t> dirty = bytes.subspan(kHeaderBytes, bm);
  std::span<const uint8_t> stale = bytes.subspan(kHeaderBytes + bm, bm);
  const uint64_t used = (img.region_count + 7) / 8;
  img.dirty.assign(dirty.begin(), dirty.begin() + used);
  img.stale.assign(stale.begin(), stale.begin() + used);
  img.bitmaps_valid = LoadBe32(h + 48) == BitmapsCrc(dirty, stale);
  d.kind = LogKind::kLog;
  return d;
}

}  // namespace ferry::volume::mirror
