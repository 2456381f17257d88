// The thin targets over failing devices: a data device that fails writes or reads, and a
// metadata device that fails the commit.
#include <gtest/gtest.h>

#include "backends/faulty/faulty_device.h"
#include "volume/thin/testing/thin_fixture.h"

namespace ferry::volume::thin {
namespace {

using block::IoOp;

class ThinFaultTest : public testing::ThinFixture {
 protected:
  // A pool over "meta" and "data", each a faulty device over RAM.
  std::shared_ptr<Volume> FaultyPool(uint64_t data_blocks) {
    meta_ram_ = AddRamUnregistered("meta-ram", 1 << 20);
    data_ram_ = AddRamUnregistered("data-ram", data_blocks * kBlock);
    meta_f_ = std::make_shared<backends::FaultyDevice>(meta_ram_, "meta");
    data_f_ = std::make_shared<backends::FaultyDevice>(data_ram_, "data");
    EXPECT_TRUE(registry_.Add(meta_f_).ok());
    EXPECT_TRUE(registry_.Add(data_f_).ok());
    return MakePool(data_blocks, "", /*make_devices=*/false);
  }
  std::shared_ptr<backends::RamDevice> AddRamUnregistered(const std::string& name, uint64_t bytes) {
    return std::move(backends::RamDevice::Create({.name = name, .size_bytes = bytes})).value();
  }
  IoStatus WriteStatus(block::BlockDevice& dev, uint64_t lba, const std::vector<uint8_t>& data) {
    auto p = Start(dev, IoOp::kWrite, lba, data.size() / 512, 0, 0, &data);
    return Wait(*p);
  }

  std::shared_ptr<backends::RamDevice> meta_ram_, data_ram_;
  std::shared_ptr<backends::FaultyDevice> meta_f_, data_f_;
};

std::vector<uint8_t> Bytes(size_t n, uint8_t v) { return std::vector<uint8_t>(n, v); }

TEST_F(ThinFaultTest, FailedDataWritesNeverExposeOtherData) {
  FaultyPool(16);
  auto t = MakeThin("t", 1, 1 << 20);
  // Old contents of the data device (a block freed by another thin, say).
  Write(*data_ram_, 0, Bytes(16 * kBlock, 0xee));
  data_f_->AddErrorRange(
      {.lba = Lba(0), .blocks = BlockCount(16 * kBlock / 512), .on_read = false});
  EXPECT_EQ(WriteStatus(*t, 0, Bytes(4096, 0x11)), IoStatus::kIoError);
  EXPECT_EQ(WriteStatus(*t, 128, Bytes(kBlock, 0x22)), IoStatus::kIoError);
  data_f_->ClearFaults();
  // A failed write may leave old or new data in its range, never the data device's junk
  // (the provisioned block is unmapped again).
  const std::vector<uint8_t> head = Read(*t, 0, 8);
  EXPECT_TRUE(head == Bytes(4096, 0) || head == Bytes(4096, 0x11));
  const std::vector<uint8_t> rest = Read(*t, 8, 120);
  EXPECT_EQ(rest, Bytes(120 * 512, 0));
  const std::vector<uint8_t> second = Read(*t, 128, 128);
  EXPECT_TRUE(second == Bytes(kBlock, 0) || second == Bytes(kBlock, 0x22));
  EXPECT_TRUE(Meta().Check().ok()) << Meta().Check().ToString();
  // The device works again once the faults clear.
  Write(*t, 0, Bytes(kBlock, 0x33));
  EXPECT_EQ(Read(*t, 0, 128), Bytes(kBlock, 0x33));
  EXPECT_EQ(Flush(*t), IoStatus::kOk);
}

TEST_F(ThinFaultTest, FailedCopyOnWriteKeepsTheSharedData) {
  auto pool = FaultyPool(16);
  auto t = MakeThin("t", 1, 1 << 20);
  Write(*t, 0, Bytes(2 * kBlock, 0x55));
  ASSERT_TRUE(Msg(*pool, "create_snap 2 1").ok());
  auto snap = Vol("s", "0 2048 thin pool 2");
  ASSERT_NE(snap, nullptr);
  // Junk where the copies would go; every write to the data device fails.
  Write(*data_ram_, 2 * kBlock / 512, Bytes(14 * kBlock, 0xee));
  data_f_->AddErrorRange(
      {.lba = Lba(0), .blocks = BlockCount(16 * kBlock / 512), .on_read = false});
  EXPECT_EQ(WriteStatus(*t, 0, Bytes(kBlock, 0x66)), IoStatus::kIoError);  // whole block
  EXPECT_EQ(WriteStatus(*t, 136, Bytes(4096, 0x77)), IoStatus::kIoError);  // copy first
  EXPECT_EQ(WriteStatus(*snap, 0, Bytes(4096, 0x88)), IoStatus::kIoError);
  data_f_->ClearFaults();
  EXPECT_EQ(Read(*t, 0, 256), Bytes(2 * kBlock, 0x55));
  EXPECT_EQ(Read(*snap, 0, 256), Bytes(2 * kBlock, 0x55));
  EXPECT_TRUE(Meta().Check().ok()) << Meta().Check().ToString();
  // Copy-on-write works once the device does, and the snapshot keeps its data.
  Write(*t, 0, Bytes(4096, 0x99));
  std::vector<uint8_t> want = Bytes(kBlock, 0x55);
  std::fill(want.begin(), want.begin() + 4096, 0x99);
  EXPECT_EQ(Read(*t, 0, 128), want);
  EXPECT_EQ(Read(*snap, 0, 256), Bytes(2 * kBlock, 0x55));
  EXPECT_EQ(Flush(*t), IoStatus::kOk);
  EXPECT_TRUE(Meta().Check().ok()) << Meta().Check().ToString();
}

TEST_F(ThinFaultTest, FailedDataReadsFailOnlyTheirRange) {
  FaultyPool(16);
  auto t = MakeThin("t", 1, 1 << 20);
  Write(*t, 0, Bytes(2 * kBlock, 0x44));
  data_f_->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(kBlock / 512), .on_write = false});
  auto p = Start(*t, IoOp::kRead, 0, 8, 0, 0, nullptr);
  EXPECT_EQ(Wait(*p), IoStatus::kIoError);
  EXPECT_EQ(Read(*t, 128, 128), Bytes(kBlock, 0x44));  // the other block
}

TEST_F(ThinFaultTest, AFailedCommitMakesThePoolReadOnly) {
  auto pool = FaultyPool(16);
  auto t = MakeThin("t", 1, 1 << 20);
  Write(*t, 0, Bytes(kBlock, 0x55));
  EXPECT_EQ(Flush(*t), IoStatus::kOk);
  meta_f_->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(2048), .on_read = false});
  Write(*t, 128, Bytes(kBlock, 0x66));  // provisions: needs a commit
  EXPECT_NE(Flush(*t), IoStatus::kOk);
  EXPECT_NE(pool->StatusText().find(" ro "), std::string::npos) << pool->StatusText();
  EXPECT_NE(pool->StatusText().find("needs_check"), std::string::npos) << pool->StatusText();
  // What was committed still reads; new provisioning is refused.
  EXPECT_EQ(Read(*t, 0, 128), Bytes(kBlock, 0x55));
  EXPECT_NE(WriteStatus(*t, 256, Bytes(kBlock, 0x77)), IoStatus::kOk);
}

}  // namespace
}  // namespace ferry::volume::thin
