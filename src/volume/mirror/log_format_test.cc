#include "volume/mirror/log_format.h"

#include <gtest/gtest.h>

#include <string>

namespace ferry::volume::mirror {
namespace {

LogImage Sample(uint64_t regions) {
  LogImage img;
  img.region_sectors = 128;
  img.region_count = regions;
  img.num_legs = 3;
  img.failed_mask = 0b100;
  img.catching_up_mask = 0b010;
  img.sequence = 42;
  img.dirty.assign(BitmapBytes(regions), 0);
  img.stale.assign(BitmapBytes(regions), 0);
  SetBit(img.dirty, 0);
  SetBit(img.dirty, regions - 1);
  SetBit(img.stale, regions / 2);
  return img;
}

TEST(MirrorLogFormat, RoundTrips) {
  for (uint64_t regions : {1u, 7u, 8u, 9u, 32768u, 32769u}) {
    const LogImage img = Sample(regions);
    const std::vector<uint8_t> bytes = EncodeLog(img);
    EXPECT_EQ(bytes.size(), LogBytes(regions));
    auto d = DecodeLog(bytes);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    ASSERT_EQ(d->kind, LogKind::kLog);
    EXPECT_TRUE(d->image.bitmaps_valid);
    EXPECT_EQ(d->image.region_count, regions);
    EXPECT_EQ(d->image.region_sectors, 128u);
    EXPECT_EQ(d->image.num_legs, 3u);
    EXPECT_EQ(d->image.failed_mask, 0b100u);
    EXPECT_EQ(d->image.catching_up_mask, 0b010u);
    EXPECT_EQ(d->image.sequence, 42u);
    for (uint64_t r = 0; r < regions; ++r) {
      EXPECT_EQ(TestBit(d->image.dirty, r), r == 0 || r == regions - 1);
      EXPECT_EQ(TestBit(d->image.stale, r), r == regions / 2);
    }
  }
}

TEST(MirrorLogFormat, Crc32cIsCastagnoli) {
  const std::string check = "123456789";
  EXPECT_EQ(Crc32c({reinterpret_cast<const uint8_t*>(check.data()), check.size()}), 0xe3069283u);
}

TEST(MirrorLogFormat, BlankAndCorruptImages) {
  std::vector<uint8_t> zero(kHeaderBytes, 0);
  auto d = DecodeLog(zero);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->kind, LogKind::kBlank);
  EXPECT_NE(DecodeLog(std::vector<uint8_t>(100, 0)).status().message().find("header alone"),
            std::string::npos);
  std::vector<uint8_t> bytes = EncodeLog(Sample(100));
  std::vector<uint8_t> bad = bytes;
  bad[0] = 'X';
  EXPECT_NE(DecodeLog(bad).status().message().find("bad magic"), std::string::npos);
  bad = bytes;
  bad[20] ^= 1;
  EXPECT_NE(DecodeLog(bad).status().message().find("header checksum"), std::string::npos);
  bad = bytes;
  bad[kHeaderBytes] ^= 0x80;  // a torn bitmap: decodes, but is not trusted
  d = DecodeLog(bad);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->image.bitmaps_valid);
  bad.resize(kHeaderBytes + 10);
  EXPECT_NE(DecodeLog(bad).status().message().find("for its bitmaps"), std::string::npos);
}

}  // namespace
}  // namespace ferry::volume::mirror
