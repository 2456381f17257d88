// The mirror's on-disk region log (docs/targets/mirror.md, "On-disk log format").
//
// Layout on the log device, from byte 0 (integers big-endian):
//   header block, kHeaderBytes:
//     0  magic "FERRYMLG"            8
//     8  version (1)                 4
//     12 region size, sectors        4
//     16 region count                8
//     24 number of legs              4
//     28 failed-leg mask             4   bit i: leg i failed (excluded until readd)
//     32 catching-up mask            4   bit i: leg i readded, its resync not finished
//     36 flags                       4   must be 0 in version 1
//     40 commit sequence             8
//     48 bitmap CRC32C               4   over both bitmaps
//     52 zero up to byte 508
//     508 header CRC32C              4   over bytes 0..507
//   dirty bitmap, BitmapBytes(region count): bit r (byte r/8, LSB first) set = region r
//     may differ between legs (written or resyncing when the log was committed);
//   stale bitmap, same size: region r was written while some leg was failed.
// Unused header bytes and bitmap bits past the region count are written as zero.
//
// DecodeLog is the decoder of outside input (the log device): pure, bounds-checked, never
// crashes on any bytes (fuzz/mirror_log_fuzz.cc). A header that checks out but whose
// bitmaps do not (a torn commit) decodes with bitmaps_valid = false: the caller treats every
// region as dirty.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/crc32c.h"
#include "base/status.h"

namespace ferry::volume::mirror {

inline constexpr uint64_t kHeaderBytes = 4096;
inline constexpr uint32_t kLogVersion = 1;
inline constexpr uint32_t kMaxLegs = 32;
inline constexpr uint64_t kMaxRegions = uint64_t{1} << 26;

struct LogImage {
  uint32_t region_sectors = 0;
  uint64_t region_count = 0;
  uint32_t num_legs = 0;
  uint32_t failed_mask = 0;
  uint32_t catching_up_mask = 0;
  uint64_t sequence = 0;
  bool bitmaps_valid = true;
  std::vector<uint8_t> dirty;  // BitmapBytes(region_count) bytes
  std::vector<uint8_t> stale;
};

// Bytes of one bitmap: region_count bits rounded up to a multiple of kHeaderBytes.
uint64_t BitmapBytes(uint64_t region_count);
// Bytes of the whole log.
uint64_t LogBytes(uint64_t region_count);

// Encodes `img` (bitmaps sized BitmapBytes) into LogBytes(region_count) bytes.
std::vector<uint8_t> EncodeLog(const LogImage& img);

enum class LogKind { kBlank, kLog };
struct Decoded {
  LogKind kind = LogKind::kBlank;
  LogImage image;
};
// Decodes a log from its first bytes. kBlank: the header block is all zeroes (format it).
// Errors say what is wrong (not a log, checksum, version, limits, image too short).
Result<Decoded> DecodeLog(std::span<const uint8_t> bytes);

inline bool TestBit(const std::vector<uint8_t>& bm, uint64_t i) {
  return (bm[i / 8] >> (i % 8)) & 1;
}
inline void SetBit(std::vector<uint8_t>& bm, uint64_t i) {
  bm[i / 8] = static_cast<uint8_t>(bm[i / 8] | (1u << (i % 8)));
}

}  // namespace ferry::volume::mirror
