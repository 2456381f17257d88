// Fuzz target: the mirror's region log as found on a log device (src/volume/mirror/
// log_format.h). DecodeLog must give a clear error or a log, never crash or read out of
// bounds; a decoded log re-encodes to an image that decodes to the same state.
//
// Input:
//   flags(1)  bit 0: recompute the header CRC32C and (when the image holds them) the bitmap
//             CRC32C first, so that mutations reach the checks behind the checksums;
//             bit 1: compact input (scripts/fuzz caps inputs at 4096 bytes): the image is the
//             first 512 bytes of the rest as its header block, zero-padded to 4096 bytes,
//             then the remaining bytes as the start of the bitmaps, zero-padded to the
//             length the header asks for (when it asks for at most kMaxCompactRegions)
//   image     the log device's first bytes
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "base/endian.h"
#include "volume/mirror/log_format.h"

namespace ferry::volume::mirror {
namespace {

void Expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "mirror_log_fuzz: %s\n", what);
    std::abort();
  }
}

constexpr uint64_t kMaxCompactRegions = uint64_t{1} << 20;

std::vector<uint8_t> Expand(const uint8_t* data, size_t size) {
  const size_t head = size < 512 ? size : 512;
  std::vector<uint8_t> img(data, data + head);
  img.resize(kHeaderBytes, 0);
  img.insert(img.end(), data + head, data + size);
  if (size >= 24) {
    const uint64_t count = LoadBe64(img.data() + 16);
    if (count > 0 && count <= kMaxCompactRegions && img.size() < LogBytes(count)) {
      img.resize(LogBytes(count), 0);
    }
  }
  return img;
}

void FixChecksums(std::vector<uint8_t>& img) {
  if (img.size() < kHeaderBytes) return;
  const uint64_t count = LoadBe64(img.data() + 16);
  if (count > 0 && count <= kMaxRegions && img.size() >= LogBytes(count)) {
    const uint64_t bm = BitmapBytes(count);
    StoreBe32(img.data() + 48, Crc32c({img.data() + kHeaderBytes, 2 * bm}));
  }
  StoreBe32(img.data() + 508, Crc32c({img.data(), 508}));
}

void CheckSame(const LogImage& a, const LogImage& b) {
  Expect(a.region_sectors == b.region_sectors && a.region_count == b.region_count &&
             a.num_legs == b.num_legs && a.failed_mask == b.failed_mask &&
             a.catching_up_mask == b.catching_up_mask && a.sequence == b.sequence,
         "re-encoded header differs");
  for (uint64_t r = 0; r < a.region_count; ++r) {
    Expect(TestBit(a.dirty, r) == TestBit(b.dirty, r), "re-encoded dirty bit differs");
    Expect(TestBit(a.stale, r) == TestBit(b.stale, r), "re-encoded stale bit differs");
  }
}

}  // namespace
}  // namespace ferry::volume::mirror

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry::volume::mirror;
  if (size < 1) return 0;
  std::vector<uint8_t> img =
      (data[0] & 2) ? Expand(data + 1, size - 1) : std::vector<uint8_t>(data + 1, data + size);
  if (data[0] & 1) FixChecksums(img);
  auto d = DecodeLog(img);
  if (!d.ok() || d->kind == LogKind::kBlank) return 0;
  const LogImage& got = d->image;
  const uint64_t used = (got.region_count + 7) / 8;
  Expect(got.dirty.size() == used && got.stale.size() == used, "bitmap sizes");
  Expect(img.size() >= LogBytes(got.region_count), "decoded past the image");
  std::vector<uint8_t> again = EncodeLog(got);
  auto d2 = DecodeLog(again);
  Expect(d2.ok() && d2->kind == LogKind::kLog && d2->image.bitmaps_valid,
         "re-encoded log does not decode");
  CheckSame(got, d2->image);
  return 0;
}
