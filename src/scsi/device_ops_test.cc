// COMPARE AND WRITE and WRITE SAME on a device that does them itself (block::IoOp::
// kCompareAndWrite, kWriteSame; an RBD image runs them in the cluster): the LU hands the
// command over whole, reports the device's miscompare offset, and does the work itself
// when the device declines.
#include <algorithm>
#include <cstring>
#include <vector>

#include "scsi/logical_unit_test.h"

namespace ferry::scsi {
namespace {

// Memory that offers both operations (or, with `decline`, completes them kNotSupported)
// and counts the requests it gets by operation.
class PatternDevice : public block::BlockDevice {
 public:
  explicit PatternDevice(uint64_t bytes) : mem_(bytes, 0) {
    geometry_ = {.block_size = 512, .num_blocks = BlockCount(bytes / 512)};
    limits_.max_write_zeroes_bytes = bytes;
    limits_.max_write_same_bytes = 1 << 20;
    limits_.max_compare_write_bytes = 64 << 10;
  }
  std::string_view name() const override { return "pattern"; }
  std::string_view type() const override { return "test"; }
  const block::Geometry& geometry() const override { return geometry_; }
  const block::QueueLimits& limits() const override { return limits_; }

  void Submit(block::IoRequest& req) override {
    ++asked[static_cast<size_t>(req.op)];
    IoStatus st = block::ValidateRequest(*this, req);
    if (st == IoStatus::kOk) st = Do(req);
    io::Reactor::Current()->Post([&req, st] { req.done(st); });
  }

  bool decline = false;
  uint64_t asked[static_cast<size_t>(block::IoOp::kCompareAndWrite) + 1] = {};
  uint64_t Asked(block::IoOp op) const { return asked[static_cast<size_t>(op)]; }
  uint8_t* at(uint64_t lba) { return mem_.data() + lba * 512; }

 private:
  IoStatus Do(block::IoRequest& req) {
    uint8_t* p = at(req.lba.value());
    const uint64_t len = req.blocks.bytes(512);
    const auto* src =
        req.iov != nullptr ? static_cast<const uint8_t*>(req.iov[0].iov_base) : nullptr;
    switch (req.op) {
      case block::IoOp::kRead:
      case block::IoOp::kWrite:
        for (uint32_t i = 0; i < req.iovcnt; ++i) {
          auto* b = static_cast<uint8_t*>(req.iov[i].iov_base);
          if (req.op == block::IoOp::kRead) std::memcpy(b, p, req.iov[i].iov_len);
          if (req.op == block::IoOp::kWrite) std::memcpy(p, b, req.iov[i].iov_len);
          p += req.iov[i].iov_len;
        }
        return IoStatus::kOk;
      case block::IoOp::kFlush: return IoStatus::kOk;
      case block::IoOp::kDiscard:
      case block::IoOp::kWriteZeroes: std::memset(p, 0, len); return IoStatus::kOk;
      case block::IoOp::kWriteSame:
        if (decline) return IoStatus::kNotSupported;
        for (uint64_t o = 0; o < len; o += 512) std::memcpy(p + o, src, 512);
        return IoStatus::kOk;
      case block::IoOp::kCompareAndWrite: {
        if (decline) return IoStatus::kNotSupported;
        const auto m = std::mismatch(p, p + len, src);
        if (m.first != p + len) {
          req.miscompare_offset = static_cast<uint64_t>(m.first - p);
          return IoStatus::kMiscompare;
        }
        std::memcpy(p, src + len, len);
        return IoStatus::kOk;
      }
    }
    return IoStatus::kInvalid;
  }

  std::vector<uint8_t> mem_;
  block::Geometry geometry_;
  block::QueueLimits limits_;
};

class DeviceOpsTest : public LuTest {
 protected:
  void SetUp() override {
    LuTest::SetUp();
    dev_ = std::make_shared<PatternDevice>(1 << 20);
    LuIdentity id;
    id.serial = "ops1";
    lu_ = std::make_unique<LogicalUnit>(dev_, id, false);
  }
  // COMPARE AND WRITE of `blocks` at `lba`: verify data, then write data.
  Task Caw(uint64_t lba, uint8_t blocks, std::vector<uint8_t>& out) {
    auto c = Cdb16(kCompareAndWrite, 0, lba, 0);
    c[13] = blocks;
    return Make(c, out);
  }
  std::shared_ptr<PatternDevice> dev_;
};

TEST_F(DeviceOpsTest, CompareAndWriteIsHandedToTheDevice) {
  std::vector<uint8_t> out(2 * kBs, 0);  // the blocks hold zeroes: compare zeroes
  std::fill(out.begin() + kBs, out.end(), 0xab);
  Task t = Caw(10, 1, out);
  Run(t);
  ASSERT_EQ(t.status, Status::kGood);
  EXPECT_EQ(dev_->Asked(block::IoOp::kCompareAndWrite), 1u);
  EXPECT_EQ(dev_->Asked(block::IoOp::kRead), 0u) << "the gateway compared, not the device";
  EXPECT_EQ(dev_->Asked(block::IoOp::kWrite), 0u);
  EXPECT_EQ(dev_->at(10)[0], 0xab);
  EXPECT_EQ(dev_->at(10)[kBs - 1], 0xab);
}

TEST_F(DeviceOpsTest, TheDevicesMiscompareOffsetIsTheSenseInformation) {
  std::vector<uint8_t> out(4 * kBs, 0);
  out[kBs + 7] = 1;  // the verify data differs from the medium at byte 519
  std::fill(out.begin() + 2 * kBs, out.end(), 0xcd);
  Task t = Caw(20, 2, out);
  Run(t);
  ExpectSense(t, SenseKey::kMiscompare, Asc::kMiscompareDuringVerify);
  EXPECT_EQ(t.sense.information, kBs + 7u);
  EXPECT_EQ(dev_->at(20)[0], 0) << "a miscompare writes nothing";
}

TEST_F(DeviceOpsTest, ADeviceThatDeclinesGetsReadAndWrite) {
  dev_->decline = true;
  std::vector<uint8_t> out(2 * kBs, 0);
  out[3] = 9;  // miscompares at byte 3
  Task bad = Caw(30, 1, out);
  Run(bad);
  ExpectSense(bad, SenseKey::kMiscompare, Asc::kMiscompareDuringVerify);
  EXPECT_EQ(bad.sense.information, 3u);
  out[3] = 0;
  std::fill(out.begin() + kBs, out.end(), 0xef);
  Task good = Caw(30, 1, out);
  Run(good);
  ASSERT_EQ(good.status, Status::kGood);
  EXPECT_EQ(dev_->Asked(block::IoOp::kCompareAndWrite), 2u);
  EXPECT_EQ(dev_->Asked(block::IoOp::kRead), 2u);
  EXPECT_EQ(dev_->Asked(block::IoOp::kWrite), 1u);
  EXPECT_EQ(dev_->at(30)[100], 0xef);
}

TEST_F(DeviceOpsTest, WriteSameIsHandedToTheDeviceOrWrittenHere) {
  for (const bool decline : {false, true}) {
    dev_->decline = decline;
    std::vector<uint8_t> block(kBs);
    for (uint32_t i = 0; i < kBs; ++i) block[i] = static_cast<uint8_t>(i * 7 + decline);
    Task t = Make(Cdb16(kWriteSame16, 0, 100, 300), block);
    Run(t);
    ASSERT_EQ(t.status, Status::kGood) << "decline " << decline;
    for (uint64_t lba : {100u, 250u, 399u}) {
      EXPECT_TRUE(std::equal(block.begin(), block.end(), dev_->at(lba))) << lba;
    }
    EXPECT_EQ(dev_->at(400)[0], 0) << "past the range";
  }
  EXPECT_EQ(dev_->Asked(block::IoOp::kWriteSame), 2u);
  EXPECT_GE(dev_->Asked(block::IoOp::kWrite), 1u) << "declined: the LU wrote the pattern";
}

}  // namespace
}  // namespace ferry::scsi
