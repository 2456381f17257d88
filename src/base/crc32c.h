// CRC32C (Castagnoli), iSCSI's convention: initial value and final XOR all ones. One
// checksum for every on-disk format (thin metadata, snapshot store, mirror log), computed
// by ISA-L.
#pragma once

#include <cstdint>
#include <span>

namespace ferry {

// The CRC32C of `data` (Crc32c("123456789") == 0xE3069283).
uint32_t Crc32c(std::span<const uint8_t> data);
// A running CRC32C over several pieces: start from kCrc32cStart, feed every piece, and
// finish with ~ (so Crc32c(d) == ~Crc32cUpdate(kCrc32cStart, d)).
inline constexpr uint32_t kCrc32cStart = 0xffffffffu;
uint32_t Crc32cUpdate(uint32_t running, std::span<const uint8_t> data);

}  // namespace ferry
