// Test-only builders of EXTENDED COPY segment descriptors (SPC-4 6.4.6), shared by the
// decoder tests and the copy manager tests.
#pragma once

#include <cstdint>
#include <vector>

#include "base/endian.h"

namespace ferry::scsi::tpc_testing {

// 02h block to block, 28 bytes. `flags`: byte 1 (bit 1 DC, bit 0 CAT).
inline std::vector<uint8_t> SegmentB2b(uint16_t src, uint16_t dst, uint16_t blocks,
                                       uint64_t src_lba, uint64_t dst_lba, uint8_t flags = 0) {
  std::vector<uint8_t> d(28, 0);
  d[0] = 0x02;
  d[1] = flags;
  StoreBe16(&d[2], 0x18);
  StoreBe16(&d[4], src);
  StoreBe16(&d[6], dst);
  StoreBe16(&d[10], blocks);
  StoreBe64(&d[12], src_lba);
  StoreBe64(&d[20], dst_lba);
  return d;
}

// 0Ah block to block with byte counts and byte offsets, 32 bytes.
inline std::vector<uint8_t> SegmentB2bOffset(uint16_t src, uint16_t dst, uint32_t bytes,
                                             uint64_t src_lba, uint64_t dst_lba,
                                             uint16_t src_offset, uint16_t dst_offset,
                                             uint8_t flags = 0) {
  std::vector<uint8_t> d(32, 0);
  d[0] = 0x0a;
  d[1] = flags;
  StoreBe16(&d[2], 0x1c);
  StoreBe16(&d[4], src);
  StoreBe16(&d[6], dst);
  StoreBe32(&d[8], bytes);
  StoreBe64(&d[12], src_lba);
  StoreBe64(&d[20], dst_lba);
  StoreBe16(&d[28], src_offset);
  StoreBe16(&d[30], dst_offset);
  return d;
}

// 07h verify CSCD, 12 bytes.
inline std::vector<uint8_t> SegmentVerify(uint16_t src, bool tur = false) {
  std::vector<uint8_t> d(12, 0);
  d[0] = 0x07;
  StoreBe16(&d[2], 0x08);
  StoreBe16(&d[4], src);
  d[8] = tur ? 1 : 0;
  return d;
}

}  // namespace ferry::scsi::tpc_testing
