#include "backends/faulty/faulty_device.h"

#include <gtest/gtest.h>

#include <vector>

#include "backends/ram/ram_device.h"
#include "io/reactor.h"

namespace ferry::backends {
namespace {

using block::IoOp;
using namespace std::chrono_literals;

// A RAM device without the copy capability.
class NoCopyDevice : public block::BlockDevice {
 public:
  explicit NoCopyDevice(std::shared_ptr<RamDevice> ram) : ram_(std::move(ram)) {}
  std::string_view name() const override { return "nocopy"; }
  std::string_view type() const override { return "nocopy"; }
  const block::Geometry& geometry() const override { return ram_->geometry(); }
  const block::QueueLimits& limits() const override { return ram_->limits(); }
  void Submit(block::IoRequest& req) override { ram_->Submit(req); }

 private:
  std::shared_ptr<RamDevice> ram_;
};

class FaultyDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reactor_ = std::move(io::Reactor::Create()).value();
    arena_ = std::make_shared<RamArena>();
    ram_ = MakeRam("ram");
    dev_ = std::make_shared<FaultyDevice>(ram_);
  }

  std::shared_ptr<RamDevice> MakeRam(std::string name, std::shared_ptr<RamArena> arena = nullptr) {
    return *RamDevice::Create(
        {.name = std::move(name), .size_bytes = 1 << 20, .arena = arena ? arena : arena_});
  }

  // Submits and waits; checks that the completion was not inline and came once.
  IoStatus Io(block::BlockDevice& dev, IoOp op, uint64_t lba, std::vector<uint8_t>* buf,
              uint64_t blocks = 0) {
    iovec iov{};
    block::IoRequest req;
    req.op = op;
    req.lba = Lba(lba);
    req.blocks = BlockCount(blocks);
    if (buf != nullptr) {
      iov = {buf->data(), buf->size()};
      req.iov = &iov;
      req.iovcnt = 1;
      req.blocks = BlockCount(buf->size() / 512);
    }
    int calls = 0;
    IoStatus st = IoStatus::kIoError;
    req.done = [&](IoStatus s) {
      st = s;
      ++calls;
    };
    dev.Submit(req);
    EXPECT_EQ(calls, 0) << "completed inline";
    reactor_->RunUntil([&] { return calls > 0; });
    while (reactor_->RunOnce(false) > 0) {
    }
    EXPECT_EQ(calls, 1);
    return st;
  }

  IoStatus Copy(block::BlockDevice& dst, block::BlockDevice& src,
                std::vector<block::CopySegment> segs, block::CopyMechanism* mech = nullptr) {
    block::CopyLegRequest leg;
    leg.src = &src;
    leg.segments = segs;
    int calls = 0;
    IoStatus st = IoStatus::kIoError;
    leg.done = [&](IoStatus s) {
      st = s;
      ++calls;
    };
    dst.copy_offload()->SubmitCopy(leg);
    EXPECT_EQ(calls, 0) << "copy completed inline";
    reactor_->RunUntil([&] { return calls > 0; });
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(leg.src, &src) << "the caller's leg was re-addressed";
    if (mech != nullptr) *mech = leg.mechanism;
    return st;
  }

  std::vector<uint8_t> Fill(uint8_t v, size_t blocks) {
    return std::vector<uint8_t>(blocks * 512, v);
  }

  std::unique_ptr<io::Reactor> reactor_;
  std::shared_ptr<RamArena> arena_;
  std::shared_ptr<RamDevice> ram_;
  std::shared_ptr<FaultyDevice> dev_;
};

TEST_F(FaultyDeviceTest, ForwardsAndCounts) {
  EXPECT_EQ(dev_->name(), "ram-faulty");
  EXPECT_EQ(FaultyDevice(ram_, "x").name(), "x");
  EXPECT_EQ(&dev_->inner(), ram_.get());
  auto data = Fill(7, 4);
  ASSERT_EQ(Io(*dev_, IoOp::kWrite, 10, &data), IoStatus::kOk);
  auto out = Fill(0, 4);
  ASSERT_EQ(Io(*ram_, IoOp::kRead, 10, &out), IoStatus::kOk);
  EXPECT_EQ(out, data);
  ASSERT_EQ(Io(*dev_, IoOp::kRead, 10, &out), IoStatus::kOk);
  EXPECT_EQ(Io(*dev_, IoOp::kFlush, 0, nullptr), IoStatus::kOk);
  EXPECT_EQ(Io(*dev_, IoOp::kRead, 1 << 20, &out), IoStatus::kInvalid);
  EXPECT_EQ(dev_->requests(IoOp::kWrite), 1u);
  EXPECT_EQ(dev_->requests(IoOp::kRead), 2u);
  EXPECT_EQ(dev_->requests(IoOp::kFlush), 1u);
  EXPECT_EQ(dev_->requests(IoOp::kDiscard), 0u);
}

TEST_F(FaultyDeviceTest, ErrorRangesFailAndChangeNothing) {
  auto before = Fill(1, 8);
  ASSERT_EQ(Io(*dev_, IoOp::kWrite, 0, &before), IoStatus::kOk);
  dev_->AddErrorRange({.lba = Lba(4), .blocks = BlockCount(2), .status = IoStatus::kMiscompare});
  dev_->AddErrorRange({.lba = Lba(100), .blocks = BlockCount(1), .on_read = false});
  auto data = Fill(2, 8);
  EXPECT_EQ(Io(*dev_, IoOp::kWrite, 0, &data), IoStatus::kMiscompare);
  EXPECT_EQ(Io(*dev_, IoOp::kWriteZeroes, 5, nullptr, 1), IoStatus::kMiscompare);
  EXPECT_EQ(Io(*dev_, IoOp::kDiscard, 3, nullptr, 2), IoStatus::kMiscompare);
  auto out = Fill(0, 8);
  EXPECT_EQ(Io(*dev_, IoOp::kRead, 0, &out), IoStatus::kMiscompare);
  ASSERT_EQ(Io(*ram_, IoOp::kRead, 0, &out), IoStatus::kOk);
  EXPECT_EQ(out, before) << "a failed request changed data";
  // Touching neither range, or only a write-only range with a read.
  auto four = Fill(0, 4);
  EXPECT_EQ(Io(*dev_, IoOp::kRead, 0, &four), IoStatus::kOk);
  EXPECT_EQ(Io(*dev_, IoOp::kRead, 6, &four), IoStatus::kOk);
  EXPECT_EQ(Io(*dev_, IoOp::kRead, 98, &four), IoStatus::kOk);
  EXPECT_EQ(Io(*dev_, IoOp::kWrite, 98, &four), IoStatus::kIoError);
  // Flush ignores ranges; invalid requests stay invalid.
  EXPECT_EQ(Io(*dev_, IoOp::kFlush, 0, nullptr), IoStatus::kOk);
  EXPECT_EQ(Io(*dev_, IoOp::kWriteZeroes, 4, nullptr, 0), IoStatus::kInvalid);
  dev_->ClearFaults();
  EXPECT_EQ(Io(*dev_, IoOp::kWrite, 0, &data), IoStatus::kOk);
}

TEST_F(FaultyDeviceTest, DroppedWritesCompleteOkButAreLost) {
  auto base = Fill(1, 4);
  ASSERT_EQ(Io(*dev_, IoOp::kWrite, 20, &base), IoStatus::kOk);
  dev_->AddDroppedWrites(Lba(22), BlockCount(1));
  auto data = Fill(9, 4);
  EXPECT_EQ(Io(*dev_, IoOp::kWrite, 20, &data), IoStatus::kOk);
  EXPECT_EQ(Io(*dev_, IoOp::kWriteZeroes, 21, nullptr, 4), IoStatus::kOk);
  auto out = Fill(0, 4);
  ASSERT_EQ(Io(*dev_, IoOp::kRead, 20, &out), IoStatus::kOk);
  EXPECT_EQ(out, base) << "a dropped write reached the device";
  EXPECT_EQ(Io(*dev_, IoOp::kWrite, 24, &data), IoStatus::kOk);  // next to the range
  ASSERT_EQ(Io(*ram_, IoOp::kRead, 24, &out), IoStatus::kOk);
  EXPECT_EQ(out, data);
  dev_->ClearFaults();
  EXPECT_EQ(Io(*dev_, IoOp::kWrite, 20, &data), IoStatus::kOk);
  ASSERT_EQ(Io(*ram_, IoOp::kRead, 20, &out), IoStatus::kOk);
  EXPECT_EQ(out, data);
}

TEST_F(FaultyDeviceTest, DelayHoldsEveryCompletion) {
  dev_->SetDelay(3ms);
  auto data = Fill(3, 2);
  for (IoOp op : {IoOp::kWrite, IoOp::kRead, IoOp::kFlush}) {
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(Io(*dev_, op, 0, op == IoOp::kFlush ? nullptr : &data), IoStatus::kOk);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 3ms) << block::IoOpName(op);
  }
  dev_->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(1)});
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Io(*dev_, IoOp::kRead, 0, &data), IoStatus::kIoError);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 3ms) << "failed request";
  start = std::chrono::steady_clock::now();
  EXPECT_EQ(Copy(*dev_, *dev_, {{16 * 512, 32 * 512, 1024}}), IoStatus::kOk);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 3ms) << "copy leg";
}

TEST_F(FaultyDeviceTest, CopyStatusFailsEveryLeg) {
  ASSERT_NE(dev_->copy_offload(), nullptr);
  dev_->SetCopyStatus(IoStatus::kNotSupported);
  EXPECT_TRUE(dev_->CanCopyFrom(*ram_, nullptr));
  EXPECT_EQ(Copy(*dev_, *ram_, {{0, 4096, 512}}), IoStatus::kNotSupported);
  dev_->SetCopyStatus(IoStatus::kIoError);
  EXPECT_EQ(Copy(*dev_, *ram_, {{0, 4096, 512}}), IoStatus::kIoError);
  EXPECT_EQ(dev_->copy_legs(), 2u);
  dev_->SetCopyStatus(std::nullopt);
  block::CopyMechanism mech;
  EXPECT_EQ(Copy(*dev_, *ram_, {{0, 4096, 512}}, &mech), IoStatus::kOk);
  EXPECT_EQ(mech, block::CopyMechanism::kRamNative);
  EXPECT_EQ(dev_->copy_legs(), 3u);
}

TEST_F(FaultyDeviceTest, FaultySourceIsUnwrappedForNativeCopy) {
  auto other = std::make_shared<FaultyDevice>(MakeRam("other"));
  auto foreign = std::make_shared<FaultyDevice>(MakeRam("foreign", std::make_shared<RamArena>()));
  std::string why;
  EXPECT_TRUE(dev_->CanCopyFrom(*other, &why)) << why;
  EXPECT_FALSE(dev_->CanCopyFrom(*foreign, &why));
  EXPECT_NE(why.find("different arenas"), std::string::npos) << why;
  auto data = Fill(5, 8);
  ASSERT_EQ(Io(*other, IoOp::kWrite, 8, &data), IoStatus::kOk);
  block::CopyMechanism mech = block::CopyMechanism::kNone;
  ASSERT_EQ(Copy(*dev_, *other, {{8 * 512, 64 * 512, 8 * 512}}, &mech), IoStatus::kOk);
  EXPECT_EQ(mech, block::CopyMechanism::kRamNative);
  auto out = Fill(0, 8);
  ASSERT_EQ(Io(*ram_, IoOp::kRead, 64, &out), IoStatus::kOk);
  EXPECT_EQ(out, data);
  EXPECT_EQ(Copy(*dev_, *foreign, {{0, 0, 512}}), IoStatus::kNotSupported);
}

TEST_F(FaultyDeviceTest, ErrorRangesApplyToCopyLegs) {
  auto src = std::make_shared<FaultyDevice>(MakeRam("src"));
  src->AddErrorRange({.lba = Lba(10), .blocks = BlockCount(1), .on_write = false});
  dev_->AddErrorRange(
      {.lba = Lba(50), .blocks = BlockCount(1), .on_read = false, .status = IoStatus::kNoSpace});
  EXPECT_EQ(Copy(*dev_, *src, {{0, 0, 4096}, {8 * 512, 100 * 512, 4 * 512}}), IoStatus::kIoError);
  EXPECT_EQ(Copy(*dev_, *src, {{0, 49 * 512, 1024}}), IoStatus::kNoSpace);
  EXPECT_EQ(Copy(*dev_, *src, {{0, 0, 4096}, {20 * 512, 100 * 512, 4 * 512}}), IoStatus::kOk);
}

TEST_F(FaultyDeviceTest, NoCopyOffloadWithoutInnerCapability) {
  FaultyDevice plain(std::make_shared<NoCopyDevice>(MakeRam("plain")));
  EXPECT_EQ(plain.copy_offload(), nullptr);
  std::string why;
  EXPECT_FALSE(plain.CanCopyFrom(*ram_, &why));
  EXPECT_NE(why.find("cannot copy natively"), std::string::npos);
  plain.SetCopyStatus(IoStatus::kNotSupported);
  ASSERT_NE(plain.copy_offload(), nullptr);
  EXPECT_EQ(Copy(plain, *ram_, {{0, 0, 512}}), IoStatus::kNotSupported);
}

TEST_F(FaultyDeviceTest, RulesSurviveSubmissionsFromAnotherReactor) {
  // Rules are read under a lock at submission: a reactor thread sees the test's changes.
  dev_->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(1)});
  io::ReactorThread t;
  auto data = Fill(1, 1);
  iovec iov{data.data(), data.size()};
  block::IoRequest req;
  req.op = IoOp::kRead;
  req.lba = Lba(0);
  req.blocks = BlockCount(1);
  req.iov = &iov;
  req.iovcnt = 1;
  IoStatus st = IoStatus::kOk;
  bool done = false;
  io::Reactor* main = reactor_.get();
  req.done = [&st, &done, main](IoStatus s) {
    main->Post([&st, &done, s] {
      st = s;
      done = true;
    });
  };
  block::BlockDevice* dev = dev_.get();
  block::IoRequest* r = &req;
  t.reactor()->Post([dev, r] { dev->Submit(*r); });
  reactor_->RunUntil([&] { return done; });
  EXPECT_EQ(st, IoStatus::kIoError);
}

}  // namespace
}  // namespace ferry::backends
