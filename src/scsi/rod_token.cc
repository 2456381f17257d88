#include "scsi/rod_token.h"

#include <algorithm>

#include "base/endian.h"

namespace ferry::scsi {
namespace {

// Offsets in the token (layout table in rod_token.h).
constexpr size_t kRodTypeOffset = 0;
constexpr size_t kLengthOffset = 6;
constexpr size_t kIdOffset = 8;
constexpr size_t kCreatorOffset = 16;
constexpr size_t kBytesRepresentedOffset = 48;  // 128-bit; Ferry uses the low 64 bits
constexpr size_t kCapacityDataOffset = 96;
// Where the token sits in the WRITE USING TOKEN parameter list (SBC-3), for field pointers.
constexpr uint16_t kTokenInWriteUsingToken = 16;

static_assert(kCapacityDataOffset + sizeof(RodToken::capacity_data) <= 128);
static_assert(kRodTokenNonceOffset + sizeof(RodToken::nonce) == kRodTokenMacOffset);
static_assert(kRodTokenMacOffset + sizeof(RodToken::mac) == kRodTokenBytes);

}  // namespace

void EncodeRodToken(const RodToken& t, std::span<uint8_t, kRodTokenBytes> out) {
  uint8_t* p = out.data();
  std::fill(out.begin(), out.end(), 0);
  StoreBe32(p + kRodTypeOffset, t.rod_type);
  StoreBe16(p + kLengthOffset, kRodTokenLengthField);
  StoreBe64(p + kIdOffset, t.id);
  std::copy(t.creator.begin(), t.creator.end(), p + kCreatorOffset);
  StoreBe64(p + kBytesRepresentedOffset + 8, t.bytes_represented);
  std::copy(t.capacity_data.begin(), t.capacity_data.end(), p + kCapacityDataOffset);
  std::copy(t.nonce.begin(), t.nonce.end(), p + kRodTokenNonceOffset);
  std::copy(t.mac.begin(), t.mac.end(), p + kRodTokenMacOffset);
}

RodTokenResult DecodeRodToken(std::span<const uint8_t, kRodTokenBytes> in) {
  const uint8_t* p = in.data();
  RodToken t;
  t.rod_type = LoadBe32(p + kRodTypeOffset);
  // SBC-3: the block device zero token means "write zeros" by its type alone; initiators
  // are not consistent about the rest, so nothing else is read.
  if (t.rod_type == kRodTypeBlockDeviceZero) return RodToken{.rod_type = t.rod_type};
  if (LoadBe16(p + kLengthOffset) != kRodTokenLengthField) {
    return ParameterListError(Asc::kInvalidTokenOperationInvalidTokenLength,
                              kTokenInWriteUsingToken + kLengthOffset);
  }
  t.id = LoadBe64(p + kIdOffset);
  std::copy(p + kCreatorOffset, p + kCreatorOffset + t.creator.size(), t.creator.begin());
  // The high 64 bits of NUMBER OF BYTES REPRESENTED are not kept: a token with them set is
  // not one Ferry made, and its MAC (over the bytes as sent) will not verify.
  t.bytes_represented = LoadBe64(p + kBytesRepresentedOffset + 8);
  std::copy(p + kCapacityDataOffset, p + kCapacityDataOffset + t.capacity_data.size(),
            t.capacity_data.begin());
  std::copy(p + kRodTokenNonceOffset, p + kRodTokenNonceOffset + t.nonce.size(), t.nonce.begin());
  std::copy(p + kRodTokenMacOffset, p + kRodTokenMacOffset + t.mac.size(), t.mac.begin());
  return t;
}

// SPC-4 6.4.5.6 identification descriptor CSCD descriptor with a 16-byte NAA designator
// (SPC-4 7.8.6.6.6 NAA IEEE Registered Extended).
std::array<uint8_t, 32> CscdForNaa(std::span<const uint8_t, 16> naa, uint32_t block_length) {
  std::array<uint8_t, 32> d{};
  d[0] = 0xe4;
  d[1] = 0x00;  // LU ID TYPE 00b (LUN), NUL 0, PERIPHERAL DEVICE TYPE 00h
  d[4] = 0x01;  // CODE SET binary
  d[5] = 0x03;  // ASSOCIATION 00b (LU), DESIGNATOR TYPE NAA
  d[7] = static_cast<uint8_t>(naa.size());
  std::copy(naa.begin(), naa.end(), d.begin() + 8);
  d[28] = 0x00;  // PAD 0, FIXED 0
  StoreBe24(&d[29], block_length & 0xffffff);
  return d;
}

}  // namespace ferry::scsi
