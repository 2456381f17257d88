#include "volume/thin/testing/crash_device.h"

#include <gtest/gtest.h>

#include <vector>

#include "io/reactor.h"

namespace ferry::volume::thin::testing {
namespace {

class CrashDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reactor_ = std::move(io::Reactor::Create()).value();
    dev_ = *CrashDevice::Create({.size_bytes = 64 * 512});
  }

  IoStatus Io(CrashDevice& dev, block::IoOp op, uint64_t lba, std::vector<uint8_t>* buf,
              uint8_t flags = 0) {
    iovec iov{};
    block::IoRequest req;
    req.op = op;
    req.flags = flags;
    req.lba = Lba(lba);
    if (buf != nullptr) {
      iov = {buf->data(), buf->size()};
      req.blocks = BlockCount(buf->size() / 512);
      req.iov = &iov;
      req.iovcnt = 1;
    }
    bool done = false;
    IoStatus st = IoStatus::kIoError;
    req.done = [&](IoStatus s) {
      st = s;
      done = true;
    };
    dev.Submit(req);
    EXPECT_FALSE(done) << "completed inline";
    reactor_->RunUntil([&] { return done; });
    return st;
  }
  void Write(CrashDevice& dev, uint64_t lba, uint8_t fill, uint32_t blocks = 1, uint8_t flags = 0) {
    std::vector<uint8_t> buf(blocks * 512, fill);
    ASSERT_EQ(Io(dev, block::IoOp::kWrite, lba, &buf, flags), IoStatus::kOk);
  }
  uint8_t ReadByte(CrashDevice& dev, uint64_t lba) {
    std::vector<uint8_t> buf(512, 0xee);
    EXPECT_EQ(Io(dev, block::IoOp::kRead, lba, &buf), IoStatus::kOk);
    return buf[0];
  }
  void Flush(CrashDevice& dev) {
    ASSERT_EQ(Io(dev, block::IoOp::kFlush, 0, nullptr), IoStatus::kOk);
  }

  std::unique_ptr<io::Reactor> reactor_;
  std::shared_ptr<CrashDevice> dev_;
};

TEST_F(CrashDeviceTest, UnflushedWritesAreReadableButLostInACrash) {
  Write(*dev_, 3, 0xaa);
  EXPECT_EQ(ReadByte(*dev_, 3), 0xaa);
  EXPECT_EQ(dev_->volatile_blocks(), 1u);
  auto crashed = dev_->Crash();
  EXPECT_EQ(ReadByte(*crashed, 3), 0);
  Flush(*dev_);
  EXPECT_EQ(dev_->volatile_blocks(), 0u);
  EXPECT_EQ(ReadByte(*dev_->Crash(), 3), 0xaa);
}

TEST_F(CrashDeviceTest, FuaWriteIsDurableAtOnce) {
  Write(*dev_, 5, 0x11, 1, block::kIoFua);
  EXPECT_EQ(ReadByte(*dev_->Crash(), 5), 0x11);
}

TEST_F(CrashDeviceTest, CrashAfterReplaysTheJournalPrefix) {
  Write(*dev_, 0, 0x01);
  Flush(*dev_);
  dev_->Mark();
  Write(*dev_, 0, 0x02);  // event 0
  Flush(*dev_);           // event 1
  Write(*dev_, 1, 0x03);  // event 2
  ASSERT_EQ(dev_->events_since_mark(), 3u);
  EXPECT_EQ(ReadByte(*dev_->CrashAfter(0, nullptr), 0), 0x01);
  EXPECT_EQ(ReadByte(*dev_->CrashAfter(1, nullptr), 0), 0x01);
  EXPECT_EQ(ReadByte(*dev_->CrashAfter(2, nullptr), 0), 0x02);
  EXPECT_EQ(ReadByte(*dev_->CrashAfter(3, nullptr), 1), 0);
}

TEST_F(CrashDeviceTest, RandomSurvivorsAreWholeBlocksOfWrittenVersions) {
  std::mt19937_64 rng(7);
  int survived = 0;
  int lost = 0;
  for (int i = 0; i < 64; ++i) {
    dev_->Mark();
    Write(*dev_, 8, 0x10, 4);  // a 4-block write may be torn at block boundaries
    Write(*dev_, 8, 0x20, 1);
    auto crashed = dev_->CrashAfter(2, &rng);
    for (uint64_t lba = 8; lba < 12; ++lba) {
      uint8_t b = ReadByte(*crashed, lba);
      EXPECT_TRUE(b == 0 || b == 0x10 || (lba == 8 && b == 0x20)) << int(b);
      (b == 0 ? lost : survived)++;
    }
    Flush(*dev_);
    Write(*dev_, 8, 0, 4);
    Flush(*dev_);
  }
  EXPECT_GT(survived, 0);
  EXPECT_GT(lost, 0);
}

TEST_F(CrashDeviceTest, ImagesRoundTrip) {
  Write(*dev_, 2, 0x42, 2);
  Flush(*dev_);
  std::vector<uint8_t> image = dev_->DurableImage();
  ASSERT_EQ(image.size(), 4u * 512);
  auto copy = *CrashDevice::FromImage({.size_bytes = 64 * 512}, image);
  EXPECT_EQ(ReadByte(*copy, 3), 0x42);
  EXPECT_FALSE(CrashDevice::FromImage({.size_bytes = 512}, image).ok());
}

TEST_F(CrashDeviceTest, InvalidRequestsFail) {
  std::vector<uint8_t> buf(512);
  EXPECT_EQ(Io(*dev_, block::IoOp::kWrite, 64, &buf), IoStatus::kInvalid);
  EXPECT_EQ(dev_->writes(), 0u);
}

}  // namespace
}  // namespace ferry::volume::thin::testing
