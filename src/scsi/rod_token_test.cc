#include "scsi/rod_token.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>

#include "base/endian.h"

namespace ferry::scsi {
namespace {

using Token = std::array<uint8_t, kRodTokenBytes>;

constexpr std::array<uint8_t, 16> kNaa = {0x60, 0x01, 0x40, 0x5f, 0, 1, 2,  3,
                                          4,    5,    6,    7,    8, 9, 10, 11};

RodToken Sample() {
  RodToken t;
  t.rod_type = kRodTypePitChangeVulnerable;
  t.id = 0x0123456789abcdefull;
  t.creator = CscdForNaa(kNaa, 4096);
  t.bytes_represented = 0xfedcba9876543210ull;
  for (size_t i = 0; i < t.capacity_data.size(); ++i) t.capacity_data[i] = uint8_t(0x10 + i);
  for (size_t i = 0; i < t.nonce.size(); ++i) t.nonce[i] = uint8_t(0x80 + i);
  for (size_t i = 0; i < t.mac.size(); ++i) t.mac[i] = uint8_t(0xc0 + i);
  return t;
}

void ExpectSameToken(const RodToken& a, const RodToken& b) {
  EXPECT_EQ(a.rod_type, b.rod_type);
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.creator, b.creator);
  EXPECT_EQ(a.bytes_represented, b.bytes_represented);
  EXPECT_EQ(a.capacity_data, b.capacity_data);
  EXPECT_EQ(a.nonce, b.nonce);
  EXPECT_EQ(a.mac, b.mac);
}

TEST(RodToken, EncodeLayout) {
  const RodToken t = Sample();
  Token b;
  b.fill(0xaa);  // every byte must be written
  EncodeRodToken(t, b);
  EXPECT_EQ(LoadBe32(&b[0]), kRodTypePitChangeVulnerable);
  EXPECT_EQ(LoadBe16(&b[4]), 0);
  EXPECT_EQ(LoadBe16(&b[6]), 0x01f8);
  EXPECT_EQ(LoadBe64(&b[8]), t.id);
  EXPECT_TRUE(std::equal(t.creator.begin(), t.creator.end(), b.begin() + 16));
  EXPECT_EQ(LoadBe64(&b[48]), 0u);  // high half of the 128-bit NUMBER OF BYTES REPRESENTED
  EXPECT_EQ(LoadBe64(&b[56]), t.bytes_represented);
  EXPECT_TRUE(std::all_of(b.begin() + 64, b.begin() + 96, [](uint8_t x) { return x == 0; }));
  EXPECT_TRUE(std::equal(t.capacity_data.begin(), t.capacity_data.end(), b.begin() + 96));
  EXPECT_TRUE(std::all_of(b.begin() + 120, b.begin() + 448, [](uint8_t x) { return x == 0; }));
  EXPECT_TRUE(std::equal(t.nonce.begin(), t.nonce.end(), b.begin() + 448));
  EXPECT_TRUE(std::equal(t.mac.begin(), t.mac.end(), b.begin() + 480));
}

TEST(RodToken, RoundTrip) {
  const RodToken t = Sample();
  Token b;
  EncodeRodToken(t, b);
  const RodTokenResult r = DecodeRodToken(b);
  ASSERT_TRUE(std::holds_alternative<RodToken>(r));
  ExpectSameToken(std::get<RodToken>(r), t);
  // Every ROD type round-trips: which types are acceptable is the token store's decision.
  for (uint32_t type : {0u, kRodTypeAccessOnReference, kRodTypePitDefault, kRodTypePitAny,
                        kRodTypePitPersistent, 0xfffffff0u}) {
    RodToken u = t;
    u.rod_type = type;
    EncodeRodToken(u, b);
    const RodTokenResult ru = DecodeRodToken(b);
    ASSERT_TRUE(std::holds_alternative<RodToken>(ru)) << std::hex << type;
    EXPECT_EQ(std::get<RodToken>(ru).rod_type, type);
  }
}

TEST(RodToken, WrongLengthIsInvalidTokenLength) {
  Token b;
  EncodeRodToken(Sample(), b);
  for (uint16_t len : {0x0000, 0x01f7, 0x01f9, 0xffff, 0xf801}) {
    StoreBe16(&b[6], len);
    const RodTokenResult r = DecodeRodToken(b);
    ASSERT_TRUE(std::holds_alternative<Sense>(r)) << len;
    const Sense& s = std::get<Sense>(r);
    EXPECT_EQ(s.key, SenseKey::kIllegalRequest);
    EXPECT_EQ(s.asc, Asc::kInvalidTokenOperationInvalidTokenLength);
    ASSERT_TRUE(s.has_field_pointer);
    EXPECT_FALSE(s.in_cdb);
    EXPECT_EQ(s.field_byte, 16 + 6);  // in the WRITE USING TOKEN parameter list
  }
}

TEST(RodToken, BlockDeviceZeroTokenDecodesByTypeAlone) {
  Token b{};
  StoreBe32(&b[0], kRodTypeBlockDeviceZero);
  StoreBe16(&b[6], 0x01f8);
  RodTokenResult r = DecodeRodToken(b);
  ASSERT_TRUE(std::holds_alternative<RodToken>(r));
  EXPECT_EQ(std::get<RodToken>(r).rod_type, kRodTypeBlockDeviceZero);
  // With any length and any other bytes: nothing but its type is read.
  std::fill(b.begin() + 4, b.end(), 0x5a);
  r = DecodeRodToken(b);
  ASSERT_TRUE(std::holds_alternative<RodToken>(r));
  RodToken want;
  want.rod_type = kRodTypeBlockDeviceZero;
  ExpectSameToken(std::get<RodToken>(r), want);
}

TEST(RodToken, UnusedBytesAreNotRead) {
  // Reserved and zero regions of a token as sent do not change what it decodes to (its MAC
  // is the token store's check).
  Token b;
  EncodeRodToken(Sample(), b);
  Token c = b;
  c[4] = 0xff;
  std::fill(c.begin() + 48, c.begin() + 56, 0x77);
  std::fill(c.begin() + 64, c.begin() + 96, 0x77);
  std::fill(c.begin() + 120, c.begin() + 448, 0x77);
  const RodTokenResult rb = DecodeRodToken(b);
  const RodTokenResult rc = DecodeRodToken(c);
  ASSERT_TRUE(std::holds_alternative<RodToken>(rb));
  ASSERT_TRUE(std::holds_alternative<RodToken>(rc));
  ExpectSameToken(std::get<RodToken>(rc), std::get<RodToken>(rb));
}

TEST(CscdForNaa, Layout) {
  const std::array<uint8_t, 32> d = CscdForNaa(kNaa, 0x12345678);
  EXPECT_EQ(d[0], 0xe4);
  EXPECT_EQ(d[1], 0x00);
  EXPECT_EQ(LoadBe16(&d[2]), 0);
  EXPECT_EQ(d[4], 0x01);
  EXPECT_EQ(d[5], 0x03);
  EXPECT_EQ(d[6], 0x00);
  EXPECT_EQ(d[7], 16);
  EXPECT_TRUE(std::equal(kNaa.begin(), kNaa.end(), d.begin() + 8));
  EXPECT_TRUE(std::all_of(d.begin() + 24, d.begin() + 29, [](uint8_t x) { return x == 0; }));
  EXPECT_EQ(LoadBe24(&d[29]), 0x345678u);  // DISK BLOCK LENGTH is 24 bits
  EXPECT_EQ(LoadBe24(&CscdForNaa(kNaa, 512)[29]), 512u);
}

TEST(CscdForNaa, DecodesAsAnExtendedCopyCscd) {
  std::array<uint8_t, 16 + 32> p{};
  StoreBe16(&p[2], 32);
  p[1] = 0x10;  // LIST ID USAGE discard
  const auto d = CscdForNaa(kNaa, 4096);
  std::copy(d.begin(), d.end(), p.begin() + 16);
  const ExtendedCopyResult r = DecodeExtendedCopy(p, false);
  ASSERT_TRUE(std::holds_alternative<ExtendedCopyList>(r));
  const ExtendedCopyList& l = std::get<ExtendedCopyList>(r);
  ASSERT_EQ(l.cscds.size(), 1u);
  EXPECT_EQ(l.cscds[0].designator_type, 3);
  EXPECT_EQ(l.cscds[0].block_length, 4096u);
  EXPECT_TRUE(std::equal(kNaa.begin(), kNaa.end(), l.cscds[0].designator_bytes().begin(),
                         l.cscds[0].designator_bytes().end()));
}

}  // namespace
}  // namespace ferry::scsi
