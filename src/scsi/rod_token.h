// ROD tokens (SPC-4 7.8.17 / SBC-3 block device ROD tokens): the 512-byte layout of the
// tokens Ferry's copy manager creates, and a pure decoder for tokens initiators hand back.
//
// Layout of a Ferry token (offsets in bytes; big-endian):
//   0-3     ROD TYPE (kRodTypePitChangeVulnerable for every token Ferry makes)
//   6-7     ROD TOKEN LENGTH = 01F8h
//   8-15    COPY MANAGER ROD TOKEN IDENTIFIER (random)
//   16-47   CREATOR LOGICAL UNIT DESCRIPTOR (a CSCD E4h descriptor with the LU's NAA)
//   48-63   NUMBER OF BYTES REPRESENTED (128-bit)
//   96-127  device type specific data: READ CAPACITY(16) parameter data bytes 8-31
//   128-447 zero
//   448-479 vendor specific: a random nonce
//   480-511 vendor specific: HMAC-SHA256 over bytes 0-479 under the copy manager's key
// The first 96 bytes are the management ROD token (REPORT ALL ROD TOKENS). Authentication
// (the HMAC) is the token store's job; this file only moves bytes.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <variant>

#include "scsi/sense.h"
#include "scsi/tpc_params.h"

namespace ferry::scsi {

inline constexpr uint32_t kRodTypeAccessOnReference = 0x00010000;
inline constexpr uint32_t kRodTypePitDefault = 0x00800000;
inline constexpr uint32_t kRodTypePitChangeVulnerable = 0x00800001;
inline constexpr uint32_t kRodTypePitPersistent = 0x00800002;
inline constexpr uint32_t kRodTypePitAny = 0x0080ffff;
inline constexpr uint32_t kRodTypeBlockDeviceZero = 0xffff0001;  // SBC-3
inline constexpr uint16_t kRodTokenLengthField = 0x01f8;
inline constexpr size_t kManagementRodTokenBytes = 96;
inline constexpr size_t kRodTokenMacOffset = 480;
inline constexpr size_t kRodTokenNonceOffset = 448;

struct RodToken {
  uint32_t rod_type = kRodTypePitChangeVulnerable;
  uint64_t id = 0;
  std::array<uint8_t, 32> creator{};  // CSCD E4h descriptor
  uint64_t bytes_represented = 0;
  std::array<uint8_t, 24> capacity_data{};  // READ CAPACITY(16) data bytes 8-31
  std::array<uint8_t, 32> nonce{};
  std::array<uint8_t, 32> mac{};
};

// Writes every field; bytes Ferry does not use are zero.
void EncodeRodToken(const RodToken& t, std::span<uint8_t, kRodTokenBytes> out);

// A token as an initiator sent it: the fields, or the sense for a token that cannot be
// one of ours (a ROD TOKEN LENGTH other than 01F8h: INVALID TOKEN OPERATION, INVALID TOKEN
// LENGTH). The block device zero token decodes with rod_type kRodTypeBlockDeviceZero and
// nothing else checked (SBC-3: only its type matters).
using RodTokenResult = std::variant<RodToken, Sense>;
RodTokenResult DecodeRodToken(std::span<const uint8_t, kRodTokenBytes> in);

// A CSCD E4h descriptor naming an LU by its 16-byte NAA designator (binary, LU, NAA),
// peripheral type 00h, with the given disk block length.
std::array<uint8_t, 32> CscdForNaa(std::span<const uint8_t, 16> naa, uint32_t block_length);

}  // namespace ferry::scsi
