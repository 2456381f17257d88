// rbd backend behaviour beyond the shared contract, against the cluster tests/rbd/run.sh
// starts: errors that name the image and the cause, the exclusive lock, the URI form.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "backends/builtin.h"
#include "backends/rbd/testing/rbd_test_images.h"
#include "io/reactor.h"

namespace ferry::backends::rbd {
namespace {

using ::testing::HasSubstr;
using testing::TestImages;
using testing::TestOptions;

class RbdDeviceTest : public ::testing::Test {
 protected:
  void TearDown() override { TestImages::Cleanup(); }
};

TEST_F(RbdDeviceTest, MissingImagePoolAndSnapshotAreNotFound) {
  auto dev = RbdDevice::Open(TestOptions("no-such-image"));
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(std::string(dev.status().message()),
              HasSubstr("rbd:rbd/no-such-image: no such image"));

  RbdOptions o = TestOptions("x");
  o.pool = "no-such-pool";
  dev = RbdDevice::Open(o);
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(std::string(dev.status().message()), HasSubstr("no pool 'no-such-pool'"));

  o = TestOptions(TestImages::Create(1 << 20));
  o.snap = "missing";
  o.read_only = true;
  dev = RbdDevice::Open(o);
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(std::string(dev.status().message()), HasSubstr("snapshot 'missing'"));
}

// A second writer is refused at once, naming the holder; a reader is not.
TEST_F(RbdDeviceTest, ExclusiveLockHeldIsAClearError) {
  const std::string image = TestImages::Create(1 << 20);
  auto first = RbdDevice::Open(TestOptions(image));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = RbdDevice::Open(TestOptions(image));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("exclusive lock is held by"));
  RbdOptions ro = TestOptions(image);
  ro.read_only = true;
  auto reader = RbdDevice::Open(ro);
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  first->reset();
  auto third = RbdDevice::Open(TestOptions(image));
  EXPECT_TRUE(third.ok()) << third.status().ToString();
}

// The URI form through the registry, with a FUA write and a read back, completed on the
// submitting reactor.
TEST_F(RbdDeviceTest, UriOpensAndServesIo) {
  auto reactor = io::Reactor::Create();
  ASSERT_TRUE(reactor.ok());
  const std::string image = TestImages::Create(1 << 20);
  const std::string uri =
      "rbd:rbd/" + image + "?ceph_conf=" + testing::CephConf() + "&client=client.admin";
  auto dev = OpenDeviceUri(uri, "", {}, {});
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  EXPECT_EQ((*dev)->type(), "rbd");
  EXPECT_EQ((*dev)->geometry().num_blocks.value(), (1u << 20) / 512);

  std::vector<uint8_t> out(4096, 0xab), in(4096, 0);
  iovec wiov{out.data(), out.size()}, riov{in.data(), in.size()};
  IoStatus st = IoStatus::kIoError;
  io::Reactor* on = nullptr;
  bool done = false;
  block::IoRequest w{.op = block::IoOp::kWrite,
                     .flags = block::kIoFua,
                     .lba = Lba(8),
                     .blocks = BlockCount(8),
                     .iov = &wiov,
                     .iovcnt = 1};
  w.done = [&](IoStatus s) { st = s, on = io::Reactor::Current(), done = true; };
  (*dev)->Submit(w);
  EXPECT_FALSE(done);
  (*reactor)->RunUntil([&] { return done; });
  EXPECT_EQ(st, IoStatus::kOk);
  EXPECT_EQ(on, reactor->get());
  done = false;
  block::IoRequest r{
      .op = block::IoOp::kRead, .lba = Lba(8), .blocks = BlockCount(8), .iov = &riov, .iovcnt = 1};
  r.done = [&](IoStatus s) { st = s, done = true; };
  (*dev)->Submit(r);
  (*reactor)->RunUntil([&] { return done; });
  EXPECT_EQ(st, IoStatus::kOk);
  EXPECT_EQ(in, out);
}

// Synchronous I/O on a reactor of the test thread (its only one).
class SyncIo {
 public:
  io::Reactor* reactor() const { return reactor_.get(); }
  explicit SyncIo(block::BlockDevice* dev) : dev_(dev) {
    auto reactor = io::Reactor::Create();
    if (reactor.ok()) reactor_ = std::move(*reactor);
  }
  IoStatus Run(block::IoOp op, uint64_t offset, std::vector<uint8_t>* data, uint64_t len = 0) {
    const uint32_t bs = dev_->geometry().block_size;
    iovec iov{data == nullptr ? nullptr : data->data(), data == nullptr ? 0 : data->size()};
    if (data != nullptr) len = data->size();
    IoStatus st = IoStatus::kIoError;
    bool done = false;
    block::IoRequest req{.op = op,
                         .lba = Lba(offset / bs),
                         .blocks = BlockCount(len / bs),
                         .iov = data == nullptr ? nullptr : &iov,
                         .iovcnt = data ? 1u : 0u};
    req.done = [&](IoStatus s) { st = s, done = true; };
    dev_->Submit(req);
    reactor_->RunUntil([&] { return done; });
    return st;
  }

 private:
  block::BlockDevice* dev_;
  std::unique_ptr<io::Reactor> reactor_;
};

// Waits (bounded, 15 s) until `dev` shows `blocks` blocks. The update watch's callback runs
// on a librbd thread some time after the resize returned and wakes no reactor, so the test
// looks again at every tick of a 10 ms timer of `reactor`.
bool WaitForBlocks(io::Reactor* reactor, const block::BlockDevice& dev, uint64_t blocks) {
  for (int tick = 0; tick < 1500; ++tick) {
    if (dev.geometry().num_blocks.value() == blocks) return true;
    bool fired = false;
    reactor->RunAfter(std::chrono::milliseconds(10), [&fired] { fired = true; });
    reactor->RunUntil([&fired] { return fired; });
  }
  return dev.geometry().num_blocks.value() == blocks;
}

// Another client resizes the image while the device holds its exclusive lock: the device
// takes the new size (grow, then shrink), serves the new blocks, and refuses the lost ones.
TEST_F(RbdDeviceTest, ResizeByAnotherClientIsNoticed) {
  const std::string image = TestImages::Create(8 << 20);
  auto dev = RbdDevice::Open(TestOptions(image));
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  block::BlockDevice& d = **dev;
  ASSERT_EQ(d.geometry().num_blocks.value(), (8u << 20) / 512);
  SyncIo io(&d);

  ASSERT_EQ(TestImages::Resize(image, 12 << 20), 0);
  ASSERT_TRUE(WaitForBlocks(io.reactor(), d, (12u << 20) / 512)) << d.geometry().num_blocks.value();
  EXPECT_EQ(d.geometry().block_size, 512u);
  std::vector<uint8_t> data(64 << 10, 0x5a), back(data.size());
  const uint64_t beyond_old = (12u << 20) - data.size();
  ASSERT_EQ(io.Run(block::IoOp::kWrite, beyond_old, &data), IoStatus::kOk);
  ASSERT_EQ(io.Run(block::IoOp::kRead, beyond_old, &back), IoStatus::kOk);
  EXPECT_TRUE(back == data);

  ASSERT_EQ(TestImages::Resize(image, 6 << 20), 0);
  ASSERT_TRUE(WaitForBlocks(io.reactor(), d, (6u << 20) / 512)) << d.geometry().num_blocks.value();
  EXPECT_EQ(io.Run(block::IoOp::kRead, (6u << 20) - 512, &data), IoStatus::kInvalid);
  std::vector<uint8_t> last(512);
  EXPECT_EQ(io.Run(block::IoOp::kRead, (6u << 20) - 512, &last), IoStatus::kOk);
}

// rbd_skip_partial_discard is off (rbd_cluster.cc): discards smaller than the discard
// granularity and not aligned to it still read back as zeroes, so the LU can be thin.
TEST_F(RbdDeviceTest, DiscardReadsZeroesAtAnyAlignment) {
  auto dev = RbdDevice::Open(TestOptions(TestImages::Create(8 << 20)));
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  EXPECT_TRUE((*dev)->limits().discard_zeroes_data);
  SyncIo io(dev->get());
  std::vector<uint8_t> pattern(512 << 10);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i * 7 + 1);
  const uint64_t base = (4 << 20) - (256 << 10);  // crosses the first object boundary
  ASSERT_EQ(io.Run(block::IoOp::kWrite, base, &pattern), IoStatus::kOk);
  struct Range {
    uint64_t off, len;
  };
  for (Range r : {Range{512, 512}, Range{70 << 10, 3 << 10}, Range{250 << 10, 12 << 10}}) {
    ASSERT_EQ(io.Run(block::IoOp::kDiscard, base + r.off, nullptr, r.len), IoStatus::kOk);
    std::fill(pattern.begin() + r.off, pattern.begin() + r.off + r.len, 0);
  }
  std::vector<uint8_t> back(pattern.size());
  ASSERT_EQ(io.Run(block::IoOp::kRead, base, &back), IoStatus::kOk);
  EXPECT_TRUE(back == pattern);
}

// GET LBA STATUS: written blocks are mapped; an object never written is not. (What lies
// between is the object store's business: librbd reports a written object from its start
// to its last written byte, so the answer is exact only at object granularity.) The answer
// comes on the asking reactor.
TEST_F(RbdDeviceTest, QueryProvisioningSeesWrittenRanges) {
  auto dev = RbdDevice::Open(TestOptions(TestImages::Create(8 << 20)));
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  SyncIo io(dev->get());
  ASSERT_NE(io.reactor(), nullptr);
  std::vector<uint8_t> data(64 << 10, 0x11);
  ASSERT_EQ(io.Run(block::IoOp::kWrite, 1 << 20, &data), IoStatus::kOk);
  bool done = false;
  IoStatus st = IoStatus::kIoError;
  std::vector<block::ProvisioningExtent> runs;
  io::Reactor* on = nullptr;
  const uint64_t blocks = (8u << 20) / 512;
  (*dev)->QueryProvisioning(Lba(0), BlockCount(blocks), 16,
                            [&](IoStatus s, std::vector<block::ProvisioningExtent> r) {
                              st = s, runs = std::move(r), on = io::Reactor::Current();
                              done = true;
                            });
  EXPECT_FALSE(done);
  io.reactor()->RunUntil([&] { return done; });
  ASSERT_EQ(st, IoStatus::kOk);
  EXPECT_EQ(on, io.reactor());
  std::vector<bool> mapped;
  for (const auto& run : runs) mapped.insert(mapped.end(), run.blocks.value(), run.mapped);
  ASSERT_EQ(mapped.size(), blocks);
  for (uint64_t b = (1u << 20) / 512; b < ((1u << 20) + data.size()) / 512; ++b) {
    ASSERT_TRUE(mapped[b]) << "written block " << b;
  }
  for (uint64_t b = (4u << 20) / 512; b < blocks; ++b) {
    ASSERT_FALSE(mapped[b]) << "block " << b << " of an object never written";
  }
}

}  // namespace
}  // namespace ferry::backends::rbd
