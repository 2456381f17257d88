// flakey and delay: fault injection driven by the table's clock and the reactor's timers.
#include <gtest/gtest.h>

#include "volume/testing/volume_fixture.h"

namespace ferry::volume {
namespace {

using block::IoOp;
using namespace std::chrono_literals;

class FlakeyTest : public testing::VolumeFixture {
 protected:
  void SetUp() override {
    VolumeFixture::SetUp();
    a_ = AddRam("a", 1 << 20);
  }
  // A flakey volume over `a` from sector 0: up 2 s, down 3 s, with `features`.
  std::shared_ptr<Volume> Flakey(const std::string& features) {
    return MakeVolume("v", "0 64 flakey a 0 2 3" + (features.empty() ? "" : " " + features));
  }
  void GoDown() { now_ += 2s; }
  std::shared_ptr<backends::RamDevice> a_;
};

TEST_F(FlakeyTest, IntervalsFollowTheDrivenClock) {
  auto v = Flakey("");
  EXPECT_EQ(Io(*v, IoOp::kWrite, 0, 8, 0x11), IoStatus::kOk);
  now_ += 1999ms;
  EXPECT_EQ(Io(*v, IoOp::kRead, 0, 8), IoStatus::kOk);
  now_ += 1ms;  // 2 s: down; without features reads and writes fail
  EXPECT_EQ(Io(*v, IoOp::kRead, 0, 8), IoStatus::kIoError);
  EXPECT_EQ(Io(*v, IoOp::kWrite, 0, 8, 0x22), IoStatus::kIoError);
  EXPECT_EQ(Io(*v, IoOp::kFlush, 0, 0), IoStatus::kIoError);
  EXPECT_EQ(v->StatusText(), "0 64 flakey down auto\n");
  now_ += 3s;  // 5 s: up again (the cycle is 5 s)
  EXPECT_EQ(Read(*v, 0, 1)[0], 0x11);
  now_ += 7s;  // 12 s = 2 s into the third cycle: down
  EXPECT_EQ(Io(*v, IoOp::kRead, 0, 8), IoStatus::kIoError);
}

TEST_F(FlakeyTest, DropWrites) {
  auto v = Flakey("1 drop_writes");
  EXPECT_EQ(Io(*v, IoOp::kWrite, 0, 8, 0x11), IoStatus::kOk);
  GoDown();
  EXPECT_EQ(Io(*v, IoOp::kWrite, 0, 8, 0x22), IoStatus::kOk);  // acknowledged, dropped
  EXPECT_EQ(Io(*v, IoOp::kWriteZeroes, 0, 8), IoStatus::kOk);
  EXPECT_EQ(Io(*v, IoOp::kDiscard, 0, 8), IoStatus::kOk);
  EXPECT_EQ(Read(*v, 0, 8), std::vector<uint8_t>(8 * 512, 0x11));  // reads work
}

TEST_F(FlakeyTest, ErrorWrites) {
  auto v = Flakey("1 error_writes");
  EXPECT_EQ(Io(*v, IoOp::kWrite, 0, 8, 0x11), IoStatus::kOk);
  GoDown();
  EXPECT_EQ(Io(*v, IoOp::kWrite, 0, 8, 0x22), IoStatus::kIoError);
  EXPECT_EQ(Io(*v, IoOp::kDiscard, 0, 8), IoStatus::kIoError);
  EXPECT_EQ(Read(*v, 0, 8), std::vector<uint8_t>(8 * 512, 0x11));
}

TEST_F(FlakeyTest, ErrorReads) {
  auto v = Flakey("1 error_reads");
  GoDown();
  EXPECT_EQ(Io(*v, IoOp::kRead, 0, 8), IoStatus::kIoError);
  EXPECT_EQ(Io(*v, IoOp::kWrite, 0, 8, 0x33), IoStatus::kOk);  // writes work
  EXPECT_EQ(Read(*a_, 0, 1)[0], 0x33);
}

TEST_F(FlakeyTest, CorruptReads) {
  auto v = Flakey("5 corrupt_bio_byte 10 r 255 0");
  EXPECT_EQ(Io(*v, IoOp::kWrite, 0, 8, 0x11), IoStatus::kOk);
  EXPECT_EQ(Read(*v, 0, 8)[9], 0x11);  // up: untouched
  GoDown();
  auto got = Read(*v, 0, 8);
  EXPECT_EQ(got[8], 0x11);
  EXPECT_EQ(got[9], 0xff);  // byte 10 counts from 1
  EXPECT_EQ(got[10], 0x11);
  EXPECT_EQ(Read(*a_, 0, 1)[9], 0x11);                         // the device keeps the right data
  EXPECT_EQ(Io(*v, IoOp::kWrite, 0, 8, 0x22), IoStatus::kOk);  // writes pass
  EXPECT_EQ(Read(*a_, 0, 1)[9], 0x22);
}

TEST_F(FlakeyTest, CorruptWritesMatchingFlags) {
  // Only writes with the FUA flag (bit 0) are corrupted.
  auto v = Flakey("5 corrupt_bio_byte 1 w 0 1");
  GoDown();
  auto p = Start(*v, IoOp::kWrite, 0, 8, 0x44);
  ASSERT_EQ(Wait(*p), IoStatus::kOk);
  EXPECT_EQ(Read(*a_, 0, 1)[0], 0x44);
  p = Start(*v, IoOp::kWrite, 0, 8, 0x55, block::kIoFua);
  ASSERT_EQ(Wait(*p), IoStatus::kOk);
  EXPECT_EQ(p->buf[0], 0x55);  // the caller's payload is not touched
  auto got = Read(*a_, 0, 1);
  EXPECT_EQ(got[0], 0x00);
  EXPECT_EQ(got[1], 0x55);
  EXPECT_EQ(Read(*v, 0, 1)[0], 0x00);  // reads are not corrupted
}

TEST_F(FlakeyTest, MessagesForceTheState) {
  auto v = Flakey("1 error_reads");
  ASSERT_TRUE(v->Message(0, std::vector<std::string>{"down"}).ok());
  EXPECT_EQ(Io(*v, IoOp::kRead, 0, 8), IoStatus::kIoError);
  GoDown();
  ASSERT_TRUE(v->Message(0, std::vector<std::string>{"up"}).ok());
  EXPECT_EQ(v->StatusText(), "0 64 flakey up forced\n");
  EXPECT_EQ(Io(*v, IoOp::kRead, 0, 8), IoStatus::kOk);
  ASSERT_TRUE(v->Message(0, std::vector<std::string>{"auto"}).ok());
  EXPECT_EQ(Io(*v, IoOp::kRead, 0, 8), IoStatus::kIoError);
}

TEST_F(FlakeyTest, OnlyTheFlakeyLineFails) {
  auto v = MakeVolume("v", "0 8 linear a 0\n8 8 flakey a 8 0 1\n16 8 linear a 16");
  EXPECT_EQ(Io(*v, IoOp::kRead, 0, 8), IoStatus::kOk);
  EXPECT_EQ(Io(*v, IoOp::kRead, 16, 8), IoStatus::kOk);
  EXPECT_EQ(Io(*v, IoOp::kRead, 4, 8), IoStatus::kIoError);  // up interval 0: always down
}

class DelayTest : public testing::VolumeFixture {
 protected:
  void SetUp() override {
    VolumeFixture::SetUp();
    a_ = AddRam("a", 1 << 20);
    b_ = AddRam("b", 1 << 20);
  }
  // Runs a request and returns how long it took to complete, in reactor time.
  std::chrono::nanoseconds Timed(block::BlockDevice& dev, IoOp op, uint64_t lba, uint64_t blocks,
                                 uint8_t fill = 0) {
    const auto start = std::chrono::steady_clock::now();
    auto p = Start(dev, op, lba, blocks, fill);
    reactor_->RunUntil([&] { return p->done(); });
    EXPECT_EQ(p->status, IoStatus::kOk);
    return std::chrono::steady_clock::now() - start;
  }
  std::shared_ptr<backends::RamDevice> a_, b_;
};

TEST_F(DelayTest, CompletesNoEarlierThanTheDelay) {
  auto v = MakeVolume("v", "0 64 delay a 0 30");
  const auto start = std::chrono::steady_clock::now();
  auto p = Start(*v, IoOp::kRead, 0, 8);
  Drain();
  EXPECT_FALSE(p->done());
  EXPECT_EQ(v->StatusText(), "0 64 delay 1 0 0\n");
  reactor_->RunUntil([&] { return p->done(); });
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  EXPECT_EQ(p->status, IoStatus::kOk);
  EXPECT_EQ(v->StatusText(), "0 64 delay 0 0 0\n");
  EXPECT_GE(Timed(*v, IoOp::kWrite, 0, 8, 1), 30ms);
  EXPECT_GE(Timed(*v, IoOp::kFlush, 0, 0), 30ms);
}

TEST_F(DelayTest, SeparateWriteAndFlushClasses) {
  auto v = MakeVolume("v", "0 64 delay a 0 0 b 128 25 a 0 0");
  EXPECT_EQ(Io(*v, IoOp::kWrite, 0, 8, 0x66), IoStatus::kOk);
  EXPECT_EQ(Read(*b_, 128, 1)[0], 0x66);  // writes go to the write device and offset
  EXPECT_EQ(Read(*v, 0, 1)[0], 0x00);     // reads come from the read device
  EXPECT_LT(Timed(*v, IoOp::kRead, 0, 8), 25ms);
  EXPECT_GE(Timed(*v, IoOp::kWrite, 0, 8), 25ms);
  EXPECT_GE(Timed(*v, IoOp::kDiscard, 0, 8), 25ms);
  EXPECT_LT(Timed(*v, IoOp::kFlush, 0, 0), 25ms);
}

}  // namespace
}  // namespace ferry::volume
