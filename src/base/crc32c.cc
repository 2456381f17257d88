#include "base/crc32c.h"

#include <isa-l/crc.h>

namespace ferry {

uint32_t Crc32cUpdate(uint32_t running, std::span<const uint8_t> data) {
  // ISA-L takes a non-const pointer but does not write through it.
  return crc32_iscsi(const_cast<uint8_t*>(data.data()), static_cast<int>(data.size()), running);
}

uint32_t Crc32c(std::span<const uint8_t> data) { return ~Crc32cUpdate(kCrc32cStart, data); }

}  // namespace ferry
