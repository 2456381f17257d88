#include "backends/iscsi/iscsi_sense.h"

#include <gtest/gtest.h>

namespace ferry::backends::iscsi {
namespace {

SenseVerdict Check(uint8_t key, uint16_t code) {
  return ClassifyScsiResult(kScsiStatusCheckCondition,
                            SenseView{.key = key,
                                      .asc = static_cast<uint8_t>(code >> 8),
                                      .ascq = static_cast<uint8_t>(code & 0xff)});
}

TEST(ClassifyScsiResultTest, Statuses) {
  EXPECT_EQ(ClassifyScsiResult(kScsiStatusGood, {}).status, IoStatus::kOk);
  EXPECT_EQ(ClassifyScsiResult(kScsiStatusBusy, {}).status, IoStatus::kNoResources);
  EXPECT_EQ(ClassifyScsiResult(kScsiStatusTaskSetFull, {}).status, IoStatus::kNoResources);
  EXPECT_EQ(ClassifyScsiResult(kScsiStatusReservationConflict, {}).status, IoStatus::kIoError);
}

// The inverse of src/scsi/sense.cc SenseForIoStatus, row by row.
TEST(ClassifyScsiResultTest, InvertsTheTargetTable) {
  struct Row {
    uint8_t key;
    uint16_t code;
    IoStatus want;
  };
  const Row rows[] = {
      {0x3, 0x0c00, IoStatus::kIoError},       // MEDIUM ERROR, WRITE ERROR
      {0x3, 0x1100, IoStatus::kIoError},       // MEDIUM ERROR, UNRECOVERED READ ERROR
      {0x7, 0x2707, IoStatus::kNoSpace},       // SPACE ALLOCATION FAILED WRITE PROTECT
      {0xb, 0x5503, IoStatus::kNoResources},   // INSUFFICIENT RESOURCES
      {0x5, 0x2100, IoStatus::kInvalid},       // LBA OUT OF RANGE
      {0x5, 0x2000, IoStatus::kNotSupported},  // INVALID COMMAND OPERATION CODE
      {0x7, 0x2700, IoStatus::kReadOnly},      // WRITE PROTECTED
      {0xb, 0x2e02, IoStatus::kTimeout},       // COMMAND TIMEOUT DURING PROCESSING
      {0xe, 0x1d00, IoStatus::kMiscompare},    // MISCOMPARE DURING VERIFY
  };
  for (const Row& r : rows) {
    SenseVerdict v = Check(r.key, r.code);
    EXPECT_EQ(v.status, r.want) << std::hex << int(r.key) << "/" << r.code;
    EXPECT_EQ(v.action, SenseAction::kComplete) << std::hex << int(r.key) << "/" << r.code;
  }
}

TEST(ClassifyScsiResultTest, OtherSense) {
  EXPECT_EQ(Check(0x0, 0).status, IoStatus::kOk);
  EXPECT_EQ(Check(0x1, 0x1700).status, IoStatus::kOk);  // RECOVERED ERROR
  EXPECT_EQ(Check(0x5, 0x2400).status, IoStatus::kInvalid);
  EXPECT_EQ(Check(0x5, 0x2500).status, IoStatus::kIoError);  // LU NOT SUPPORTED
  EXPECT_EQ(Check(0x4, 0x4400).status, IoStatus::kIoError);
  EXPECT_EQ(Check(0x2, 0x0402).status, IoStatus::kIoError);
  EXPECT_EQ(Check(0x2, 0x0401).action, SenseAction::kRetry);
  EXPECT_EQ(Check(0x6, 0x2900).action, SenseAction::kRetry);
  EXPECT_EQ(Check(0x6, 0x2a09).action, SenseAction::kRetryCapacityChanged);
  SenseVerdict aborted = Check(0xb, 0x0000);
  EXPECT_EQ(aborted.action, SenseAction::kRetryOnce);
  EXPECT_EQ(aborted.status, IoStatus::kIoError);
}

}  // namespace
}  // namespace ferry::backends::iscsi
