// Snapshots over a failing COW device, and suspend / resume with I/O in flight.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/faulty/faulty_device.h"
#include "volume/snapshot/testing/snapshot_fixture.h"

namespace ferry::volume::snapshot {
namespace {

using testing::Bytes;
using ::testing::HasSubstr;

constexpr uint64_t kOriginBytes = 128 << 10;
constexpr uint64_t kSectors = kOriginBytes / 512;

class SnapshotFaultTest : public testing::SnapshotFixture {
 protected:
  void SetUp() override {
    SnapshotFixture::SetUp();
    origin_ = AddRam("o", kOriginBytes);
    faulty_ = std::make_shared<backends::FaultyDevice>(AddRam("cow-ram", 1 << 20), "cow");
    ASSERT_TRUE(registry_.Add(faulty_).ok());
  }
  std::shared_ptr<block::BlockDevice> origin_;
  std::shared_ptr<backends::FaultyDevice> faulty_;
};

TEST_F(SnapshotFaultTest, FailedCopyInvalidatesTheSnapshotAndTheOriginWriteGoesOn) {
  auto ov = Vol("ov", Line(kSectors, "snapshot-origin", "o"));
  auto s = Vol("s", Line(kSectors, "snapshot", "o cow P 8"));
  ASSERT_EQ(Io(*ov, block::IoOp::kWrite, 0, 8, 1), IoStatus::kOk);  // chunk 0 saved
  EXPECT_EQ(Read(*s, 0, 8), Bytes(4096, 0));
  faulty_->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(1 << 11), .on_read = false});
  ASSERT_EQ(Io(*ov, block::IoOp::kWrite, 8, 8, 2), IoStatus::kOk);  // copy fails
  EXPECT_THAT(s->StatusText(), HasSubstr("snapshot Invalid"));
  EXPECT_EQ(Io(*s, block::IoOp::kRead, 0, 8), IoStatus::kIoError);
  EXPECT_EQ(Read(*ov, 8, 8), Bytes(4096, 2));
  ASSERT_EQ(Io(*ov, block::IoOp::kWrite, 16, 8, 3), IoStatus::kOk);  // no more copies tried
  EXPECT_EQ(Read(*ov, 16, 8), Bytes(4096, 3));
}

TEST_F(SnapshotFaultTest, FailedReadOfTheCowDeviceFailsTheReadOnly) {
  auto ov = Vol("ov", Line(kSectors, "snapshot-origin", "o"));
  auto s = Vol("s", Line(kSectors, "snapshot", "o cow P 8"));
  ASSERT_EQ(Io(*ov, block::IoOp::kWrite, 0, 8, 1), IoStatus::kOk);
  faulty_->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(1 << 11), .on_write = false});
  EXPECT_EQ(Io(*s, block::IoOp::kRead, 0, 8), IoStatus::kIoError);
  EXPECT_EQ(Read(*s, 8, 8), Bytes(4096, 0));  // from the origin
  faulty_->ClearFaults();
  EXPECT_EQ(Read(*s, 0, 8), Bytes(4096, 0));
  EXPECT_THAT(s->StatusText(), ::testing::Not(HasSubstr("Invalid")));
}

TEST_F(SnapshotFaultTest, FailedOpenSaysWhichDevice) {
  faulty_->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(8)});
  EXPECT_THAT(PrepareError(Line(kSectors, "snapshot", "o cow P 8")),
              HasSubstr("reading the header on COW device 'cow' failed"));
}

// Writes in flight on the origin and the snapshot (slowed by a delayed COW device) while
// both volumes suspend: the suspends drain them, requests sent while suspended wait, and
// after resume everything reads back as the model says.
TEST_F(SnapshotFaultTest, SuspendResumeWithIoInFlight) {
  auto ov = Vol("ov", Line(kSectors, "snapshot-origin", "o"));
  auto s = Vol("s", Line(kSectors, "snapshot", "o cow P 8"));
  faulty_->SetDelay(std::chrono::microseconds(2000));
  std::vector<std::unique_ptr<volume::testing::Pending>> inflight;
  for (uint64_t c = 0; c < 8; ++c) {
    inflight.push_back(Start(*ov, block::IoOp::kWrite, c * 8, 8, static_cast<uint8_t>(c + 1)));
    inflight.push_back(Start(*s, block::IoOp::kWrite, 64 + c * 8, 4, static_cast<uint8_t>(0x80)));
  }
  SuspendAndWait(*ov);
  SuspendAndWait(*s);
  for (auto& p : inflight) {
    EXPECT_EQ(p->calls, 1);
    EXPECT_EQ(p->status, IoStatus::kOk);
  }
  auto queued_o = Start(*ov, block::IoOp::kWrite, 64, 8, 0x55);
  auto queued_s = Start(*s, block::IoOp::kRead, 64, 8);
  Drain();
  EXPECT_FALSE(queued_o->done());
  EXPECT_FALSE(queued_s->done());
  ASSERT_TRUE(s->Resume().ok());
  EXPECT_EQ(Wait(*queued_s), IoStatus::kOk);
  Bytes want(4096, 0);
  std::fill(want.begin(), want.begin() + 2048, 0x80);
  EXPECT_EQ(queued_s->buf, want);
  ASSERT_TRUE(ov->Resume().ok());
  EXPECT_EQ(Wait(*queued_o), IoStatus::kOk);
  for (uint64_t c = 0; c < 8; ++c) {
    EXPECT_EQ(Read(*ov, c * 8, 8), Bytes(4096, c + 1));
    EXPECT_EQ(Read(*s, c * 8, 8), Bytes(4096, 0));
  }
  EXPECT_EQ(Read(*s, 64, 8), want);  // the origin write after it did not reach the snapshot
  EXPECT_EQ(Read(*ov, 64, 8), Bytes(4096, 0x55));
}

}  // namespace
}  // namespace ferry::volume::snapshot
