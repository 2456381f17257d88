#include "backends/ram/ram_device.h"

#include <gtest/gtest.h>

#include <vector>

#include "io/reactor.h"

namespace ferry::backends {
namespace {

class RamDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override { reactor_ = std::move(io::Reactor::Create()).value(); }

  std::shared_ptr<RamDevice> Make(std::string name, uint64_t size,
                                  std::shared_ptr<RamArena> arena = nullptr) {
    auto d = RamDevice::Create({.name = name, .size_bytes = size, .arena = arena});
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return *d;
  }

  IoStatus Io(block::BlockDevice& dev, block::IoOp op, uint64_t lba, std::vector<uint8_t>& buf) {
    iovec iov{buf.data(), buf.size()};
    block::IoRequest req;
    req.op = op;
    req.lba = Lba(lba);
    req.blocks = BlockCount(buf.size() / dev.geometry().block_size);
    req.iov = &iov;
    req.iovcnt = 1;
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

  IoStatus Copy(RamDevice& dst, RamDevice& src, std::vector<block::CopySegment> segs) {
    block::CopyLegRequest req;
    req.src = &src;
    req.segments = segs;
    bool done = false;
    IoStatus st = IoStatus::kIoError;
    req.done = [&](IoStatus s) {
      st = s;
      done = true;
    };
    dst.SubmitCopy(req);
    EXPECT_FALSE(done);
    reactor_->RunUntil([&] { return done; });
    if (st == IoStatus::kOk) {
      EXPECT_EQ(req.mechanism, block::CopyMechanism::kRamNative);
    }
    return st;
  }

  std::unique_ptr<io::Reactor> reactor_;
};

TEST_F(RamDeviceTest, CreateRejectsBadGeometry) {
  EXPECT_FALSE(RamDevice::Create({.name = "x", .size_bytes = 1000}).ok());
  EXPECT_FALSE(RamDevice::Create({.name = "x", .size_bytes = 4096, .block_size = 3000}).ok());
  EXPECT_FALSE(RamDevice::Create({.name = "", .size_bytes = 4096}).ok());
}

TEST_F(RamDeviceTest, SparseUntilWrittenAndDiscardFreesMemory) {
  auto dev = Make("r", 1 << 20);
  EXPECT_EQ(dev->allocated_bytes(), 0u);
  std::vector<uint8_t> buf(RamDevice::kChunkBytes, 0xab);
  ASSERT_EQ(Io(*dev, block::IoOp::kWrite, 0, buf), IoStatus::kOk);
  EXPECT_EQ(dev->allocated_bytes(), RamDevice::kChunkBytes);
  std::vector<uint8_t> out(RamDevice::kChunkBytes);
  ASSERT_EQ(Io(*dev, block::IoOp::kRead, 0, out), IoStatus::kOk);
  EXPECT_EQ(out, buf);
  std::vector<uint8_t> none;
  block::IoRequest req;
  req.op = block::IoOp::kDiscard;
  req.lba = Lba(0);
  req.blocks = BlockCount(RamDevice::kChunkBytes / 512);
  bool done = false;
  req.done = [&](IoStatus s) {
    EXPECT_EQ(s, IoStatus::kOk);
    done = true;
  };
  dev->Submit(req);
  reactor_->RunUntil([&] { return done; });
  EXPECT_EQ(dev->allocated_bytes(), 0u);
  ASSERT_EQ(Io(*dev, block::IoOp::kRead, 0, out), IoStatus::kOk);
  EXPECT_EQ(out, std::vector<uint8_t>(out.size(), 0));
}

TEST_F(RamDeviceTest, ProvisioningIsChunkAllocation) {
  auto dev = Make("p", 1 << 20);  // 16 chunks of 128 blocks
  const BlockCount all(2048);
  EXPECT_FALSE(dev->Provisioning(Lba(0), all).mapped);
  EXPECT_EQ(dev->Provisioning(Lba(0), all).blocks.value(), 2048u);
  std::vector<uint8_t> buf(512, 1);
  ASSERT_EQ(Io(*dev, block::IoOp::kWrite, 3 * 128 + 1, buf), IoStatus::kOk);
  block::ProvisioningExtent before = dev->Provisioning(Lba(10), all);
  EXPECT_FALSE(before.mapped);
  EXPECT_EQ(before.blocks.value(), 3u * 128 - 10);
  block::ProvisioningExtent chunk = dev->Provisioning(Lba(384), all);
  EXPECT_TRUE(chunk.mapped);  // the whole chunk, though one block was written
  EXPECT_EQ(chunk.blocks.value(), 128u);
  EXPECT_EQ(dev->Provisioning(Lba(2047), all).blocks.value(), 1u);  // ends at the device end
  EXPECT_TRUE(dev->limits().discard_zeroes_data);
  EXPECT_EQ(dev->limits().discard_granularity_bytes, RamDevice::kChunkBytes);
}

TEST_F(RamDeviceTest, ArenaCapGivesNoSpace) {
  auto arena = std::make_shared<RamArena>(RamDevice::kChunkBytes);
  auto dev = Make("r", 1 << 20, arena);
  std::vector<uint8_t> buf(512, 1);
  EXPECT_EQ(Io(*dev, block::IoOp::kWrite, 0, buf), IoStatus::kOk);
  EXPECT_EQ(Io(*dev, block::IoOp::kWrite, RamDevice::kChunkBytes / 512, buf), IoStatus::kNoSpace);
}

TEST_F(RamDeviceTest, NativeCopyOnlyInsideOneArena) {
  auto arena = std::make_shared<RamArena>();
  auto a = Make("a", 1 << 20, arena);
  auto b = Make("b", 1 << 20, arena);
  auto c = Make("c", 1 << 20);
  std::string why;
  EXPECT_TRUE(b->CanCopyFrom(*a, &why));
  EXPECT_FALSE(c->CanCopyFrom(*a, &why));
  EXPECT_NE(why.find("different arenas"), std::string::npos);
  EXPECT_EQ(Copy(*c, *a, {{0, 0, 4096}}), IoStatus::kNotSupported);

  std::vector<uint8_t> buf(200 * 1024);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = uint8_t(i * 7 + 3);
  ASSERT_EQ(Io(*a, block::IoOp::kWrite, 8, buf), IoStatus::kOk);
  // Unaligned to chunks on both sides, and a hole in the source copies as zeroes.
  ASSERT_EQ(Copy(*b, *a, {{4096, 1536, buf.size()}, {900 * 1024, 0, 1024}}), IoStatus::kOk);
  std::vector<uint8_t> out(buf.size());
  ASSERT_EQ(Io(*b, block::IoOp::kRead, 3, out), IoStatus::kOk);
  EXPECT_EQ(out, buf);
  std::vector<uint8_t> head(1024, 0xff);
  ASSERT_EQ(Io(*b, block::IoOp::kRead, 0, head), IoStatus::kOk);
  EXPECT_EQ(head, std::vector<uint8_t>(1024, 0));
  EXPECT_EQ(Copy(*b, *a, {{0, 0, 1000}}), IoStatus::kInvalid);       // not block aligned
  EXPECT_EQ(Copy(*b, *a, {{1 << 20, 0, 512}}), IoStatus::kInvalid);  // past the end
}

TEST_F(RamDeviceTest, OverlappingCopyBehavesLikeMemmove) {
  auto a = Make("a", 1 << 20);
  std::vector<uint8_t> buf(300 * 1024);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = uint8_t(i % 251);
  for (int64_t shift : {512 * 3, -512 * 5, 70 * 1024}) {
    ASSERT_EQ(Io(*a, block::IoOp::kWrite, 200, buf), IoStatus::kOk);
    uint64_t src = 200 * 512;
    uint64_t dst = src + shift;
    ASSERT_EQ(Copy(*a, *a, {{src, dst, buf.size()}}), IoStatus::kOk);
    std::vector<uint8_t> out(buf.size());
    ASSERT_EQ(Io(*a, block::IoOp::kRead, dst / 512, out), IoStatus::kOk);
    EXPECT_EQ(out, buf) << "shift " << shift;
  }
}

}  // namespace
}  // namespace ferry::backends
