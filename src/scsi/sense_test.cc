#include "scsi/sense.h"

#include <gtest/gtest.h>

namespace ferry::scsi {
namespace {

TEST(Sense, FixedFormatWithFieldPointer) {
  uint8_t b[kMaxSenseBytes];
  ASSERT_EQ(EncodeSense(InvalidFieldInCdb(2, 5), false, b), 18u);
  EXPECT_EQ(b[0], 0x70);
  EXPECT_EQ(b[2], 0x05);
  EXPECT_EQ(b[7], 10);
  EXPECT_EQ(b[12], 0x24);
  EXPECT_EQ(b[13], 0x00);
  EXPECT_EQ(b[15], 0x80 | 0x40 | 0x08 | 5);  // SKSV, C/D, BPV, bit 5
  EXPECT_EQ(b[16], 0);
  EXPECT_EQ(b[17], 2);
}

TEST(Sense, FixedFormatInformation) {
  Sense s = MakeSense(SenseKey::kMiscompare, Asc::kMiscompareDuringVerify);
  s.information = 0x1234;
  uint8_t b[kMaxSenseBytes];
  ASSERT_EQ(EncodeSense(s, false, b), 18u);
  EXPECT_EQ(b[0], 0xf0);  // VALID
  EXPECT_EQ(b[2], 0x0e);
  EXPECT_EQ(b[5], 0x12);
  EXPECT_EQ(b[6], 0x34);
  EXPECT_EQ(b[12], 0x1d);
}

TEST(Sense, DescriptorFormat) {
  Sense s = InvalidFieldInParameterList(300);
  s.information = 0x1122334455667788ull;
  uint8_t b[kMaxSenseBytes];
  size_t n = EncodeSense(s, true, b);
  ASSERT_EQ(n, 8u + 12 + 8);
  EXPECT_EQ(b[0], 0x72);
  EXPECT_EQ(b[1], 0x05);
  EXPECT_EQ(b[2], 0x26);
  EXPECT_EQ(b[7], 20);
  EXPECT_EQ(b[8], 0x00);  // information descriptor
  EXPECT_EQ(b[10], 0x80);
  EXPECT_EQ(b[12], 0x11);
  EXPECT_EQ(b[19], 0x88);
  EXPECT_EQ(b[20], 0x02);  // sense-key specific
  EXPECT_EQ(b[24], 0x80);  // SKSV, data (C/D 0), no bit
  EXPECT_EQ(b[25], 0x01);
  EXPECT_EQ(b[26], 0x2c);
  uint8_t small[10];
  EXPECT_EQ(EncodeSense(s, false, small), 0u);
}

TEST(Sense, EveryIoStatusHasAnAnswer) {
  for (int v = 0; v <= static_cast<int>(IoStatus::kMiscompare); ++v) {
    auto st = static_cast<IoStatus>(v);
    Status status = StatusForIoStatus(st);
    Sense s = SenseForIoStatus(st, false);
    if (st == IoStatus::kOk) {
      EXPECT_EQ(status, Status::kGood);
      continue;
    }
    if (st == IoStatus::kNoResources) {
      EXPECT_EQ(status, Status::kTaskSetFull);
      continue;
    }
    EXPECT_EQ(status, Status::kCheckCondition) << IoStatusName(st);
    EXPECT_NE(s.key, SenseKey::kNoSense) << IoStatusName(st);
  }
  EXPECT_EQ(SenseForIoStatus(IoStatus::kIoError, true).asc, Asc::kWriteError);
  EXPECT_EQ(SenseForIoStatus(IoStatus::kIoError, false).asc, Asc::kUnrecoveredReadError);
  EXPECT_EQ(SenseForIoStatus(IoStatus::kReadOnly, true).key, SenseKey::kDataProtect);
  EXPECT_EQ(SenseForIoStatus(IoStatus::kMiscompare, false).key, SenseKey::kMiscompare);
  EXPECT_EQ(SenseForIoStatus(IoStatus::kNoSpace, true).asc,
            Asc::kSpaceAllocationFailedWriteProtect);
}

}  // namespace
}  // namespace ferry::scsi
