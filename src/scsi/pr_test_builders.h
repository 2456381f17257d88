// Builders of PERSISTENT RESERVE OUT parameter lists shared by the reservation tests.
#pragma once

#include <cstdint>
#include <vector>

#include "base/endian.h"

namespace ferry::scsi::pr_testing {

// SPC-4 6.16.3 basic parameter list: reservation key, service action reservation key, and
// the flags byte (SPEC_I_PT 08h, ALL_TG_PT 04h, APTPL 01h); no TransportIDs.
inline std::vector<uint8_t> Basic(uint64_t key, uint64_t sark, uint8_t flags = 0) {
  std::vector<uint8_t> p(24, 0);
  StoreBe64(&p[0], key);
  StoreBe64(&p[8], sark);
  p[20] = flags;
  return p;
}

}  // namespace ferry::scsi::pr_testing
