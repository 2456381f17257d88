// Copies between thin volumes of one pool through the real copy engine: blocks are shared
// in the metadata and no data moves.
#include <gtest/gtest.h>

#include <atomic>
#include <random>

#include "volume/thin/testing/thin_fixture.h"

namespace ferry::volume::thin {
namespace {

using block::IoOp;

// Forwards to a RAM device and counts the bytes read from it.
class CountingDevice : public block::BlockDevice {
 public:
  explicit CountingDevice(std::shared_ptr<block::BlockDevice> dev) : dev_(std::move(dev)) {}
  std::string_view name() const override { return "data"; }
  std::string_view type() const override { return "counting"; }
  const block::Geometry& geometry() const override { return dev_->geometry(); }
  const block::QueueLimits& limits() const override { return dev_->limits(); }
  void Submit(block::IoRequest& req) override {
    if (req.op == IoOp::kRead) read_bytes += req.blocks.value() * geometry().block_size;
    dev_->Submit(req);
  }
  std::atomic<uint64_t> read_bytes{0};

 private:
  std::shared_ptr<block::BlockDevice> dev_;
};

class ThinCopyTest : public testing::ThinFixture {
 protected:
  static constexpr uint64_t kThinBytes = 16 * kBlock;

  void SetUp() override {
    ThinFixture::SetUp();
    AddRam("meta", 1 << 20);
    data_ = std::move(backends::RamDevice::Create(
                          {.name = "ram-data", .size_bytes = 64 * kBlock, .block_size = 512}))
                .value();
    counting_ = std::make_shared<CountingDevice>(data_);
    ASSERT_TRUE(registry_.Add(counting_).ok());
    pool_ = MakePool(64, "", false);
    a_ = MakeThin("a", 1, kThinBytes);
    b_ = MakeThin("b", 2, kThinBytes);
    // Blocks 0-5 and 9-11 of a hold data; the rest is unmapped.
    content_.assign(kThinBytes, 0);
    std::mt19937 rng(3);
    for (uint64_t blk : {0, 1, 2, 3, 4, 5, 9, 10, 11}) {
      for (uint64_t i = 0; i < kBlock; ++i) {
        content_[blk * kBlock + i] = static_cast<uint8_t>(rng());
      }
      Write(*a_, blk * kBlock / 512,
            std::vector<uint8_t>(content_.begin() + static_cast<ptrdiff_t>(blk * kBlock),
                                 content_.begin() + static_cast<ptrdiff_t>((blk + 1) * kBlock)));
    }
    Write(*b_, 0, std::vector<uint8_t>(kThinBytes, 0x99));  // overwritten by the copy
    ASSERT_EQ(Flush(*a_), IoStatus::kOk);
  }

  copy::CopyResult Copy(block::BlockDevice& src, uint64_t src_lba, block::BlockDevice& dst,
                        uint64_t dst_lba, uint64_t blocks, bool offload = true) {
    copy::CopyDescriptor d;
    d.src = &src;
    d.src_extents = {{Lba(src_lba), BlockCount(blocks)}};
    d.dsts = {{&dst, {{Lba(dst_lba), BlockCount(blocks)}}}};
    d.allow_offload = offload;
    std::optional<copy::CopyResult> out;
    auto job = engine_->Submit(std::move(d), [&](copy::CopyResult r) { out.emplace(r); });
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    reactor_->RunUntil([&] { return out.has_value(); });
    Drain();
    return *out;
  }

  std::shared_ptr<CountingDevice> counting_;
  std::shared_ptr<Volume> pool_, a_, b_;
  std::vector<uint8_t> content_;
};

constexpr size_t kShare = static_cast<size_t>(block::CopyMechanism::kThinShare);

TEST_F(ThinCopyTest, WholeThinCopySharesBlocks) {
  counting_->read_bytes = 0;
  copy::CopyResult r = Copy(*a_, 0, *b_, 0, kThinBytes / 512);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.offloaded_bytes, kThinBytes);
  EXPECT_EQ(r.counters.emulated_bytes, 0u);
  EXPECT_EQ(r.counters.by_mechanism[kShare], kThinBytes);
  EXPECT_EQ(counting_->read_bytes, 0u);  // no data moved
  EXPECT_EQ(Read(*b_, 0, kThinBytes / 512), content_);
  // b maps exactly a's blocks, each now referenced twice.
  const ThinDevice* a = Meta().FindDevice(1);
  const ThinDevice* b = Meta().FindDevice(2);
  EXPECT_EQ(a->map, b->map);
  for (const auto& [v, d] : a->map) EXPECT_EQ(Meta().state().refcount[d], 2u) << v;
  EXPECT_TRUE(Meta().Check().ok());
  EXPECT_FALSE(Meta().dirty());  // committed before the copy completed
  // Writing either side afterwards copies on write and leaves the other alone.
  Write(*b_, 8, std::vector<uint8_t>(512, 0x42));
  EXPECT_EQ(Read(*a_, 0, kThinBytes / 512), content_);
  EXPECT_EQ(Read(*b_, 8, 1), std::vector<uint8_t>(512, 0x42));
}

TEST_F(ThinCopyTest, UnalignedEdgesAreEmulated) {
  // Sectors 64..447 of a into sectors 64..447 of b: the first and last half blocks are
  // emulated, the two whole blocks in between are shared.
  copy::CopyResult r = Copy(*a_, 64, *b_, 64, 384);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.by_mechanism[kShare], 2 * kBlock);
  EXPECT_EQ(r.counters.emulated_bytes, kBlock);
  std::vector<uint8_t> want(kThinBytes, 0x99);
  std::copy(content_.begin() + 64 * 512, content_.begin() + 448 * 512, want.begin() + 64 * 512);
  EXPECT_EQ(Read(*b_, 0, kThinBytes / 512), want);
  EXPECT_TRUE(Meta().Check().ok());
}

TEST_F(ThinCopyTest, EmulatedCopyLeavesTheSameBytes) {
  copy::CopyResult r = Copy(*a_, 0, *b_, 0, kThinBytes / 512, /*offload=*/false);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.offloaded_bytes, 0u);
  EXPECT_EQ(Read(*b_, 0, kThinBytes / 512), content_);
}

TEST_F(ThinCopyTest, CopiesToOtherVolumesAreEmulated) {
  AddRam("plain", kThinBytes);
  auto lin = Vol("lin", "0 " + std::to_string(kThinBytes / 512) + " linear plain 0");
  copy::CopyResult r = Copy(*a_, 0, *lin, 0, kThinBytes / 512);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.offloaded_bytes, 0u);
  EXPECT_EQ(r.counters.emulated_bytes, kThinBytes);
  EXPECT_EQ(Read(*lin, 0, kThinBytes / 512), content_);
  // And from the linear volume into a thin: emulated too (no sharing across pools).
  r = Copy(*lin, 0, *b_, 0, kThinBytes / 512);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.by_mechanism[kShare], 0u);
  EXPECT_EQ(Read(*b_, 0, kThinBytes / 512), content_);
}

TEST_F(ThinCopyTest, SuspendWaitsForTheCopy) {
  copy::CopyDescriptor d;
  d.src = a_.get();
  d.src_extents = {{Lba(0), BlockCount(kThinBytes / 512)}};
  d.dsts = {{b_.get(), {{Lba(0), BlockCount(kThinBytes / 512)}}}};
  std::optional<copy::CopyResult> out;
  auto job = engine_->Submit(std::move(d), [&](copy::CopyResult r) { out.emplace(r); });
  ASSERT_TRUE(job.ok());
  // Suspend b while the copy holds it: the suspend completes only once the copy released
  // its pin (at the deadline) and no leg of it is in flight on b.
  reactor_->RunUntil([&] { return out.has_value() || b_->in_flight() > 0; });
  std::optional<Status> suspended;
  b_->Suspend(std::chrono::milliseconds(50), [&](Status s) { suspended.emplace(std::move(s)); });
  reactor_->RunUntil([&] { return suspended.has_value(); });
  EXPECT_TRUE(suspended->ok());
  EXPECT_EQ(b_->in_flight(), 0u);
  ASSERT_TRUE(b_->Resume().ok());
  reactor_->RunUntil([&] { return out.has_value(); });
  EXPECT_EQ(out->status, IoStatus::kOk);
  EXPECT_EQ(Read(*b_, 0, kThinBytes / 512), content_);
}

}  // namespace
}  // namespace ferry::volume::thin
