// The pure mapping (Table::Map) at every boundary, and the limits and geometry it implies.
#include <gtest/gtest.h>

#include "volume/table.h"
#include "volume/testing/volume_fixture.h"

namespace ferry::volume {
namespace {

using block::IoOp;

class MappingTest : public testing::VolumeFixture {
 protected:
  void SetUp() override {
    VolumeFixture::SetUp();
    a_ = AddRam("a", 1 << 20).get();
    b_ = AddRam("b", 1 << 20).get();
  }
  std::vector<MappedPiece> Map(const Table& t, IoOp op, uint64_t sector, uint64_t sectors) {
    std::vector<MappedPiece> out;
    EXPECT_TRUE(t.Map(op, sector * 512, sectors * 512, &out).ok());
    return out;
  }
  // Checks one piece, in sectors.
  static void Expect(const MappedPiece& p, uint64_t vol_sector, uint64_t sectors,
                     block::BlockDevice* dev, uint64_t dev_sector, uint32_t target) {
    EXPECT_EQ(p.volume_offset_bytes, vol_sector * 512);
    EXPECT_EQ(p.len_bytes, sectors * 512);
    EXPECT_EQ(p.kind, PieceKind::kDevice);
    EXPECT_EQ(p.dev, dev);
    EXPECT_EQ(p.dev_offset_bytes, dev_sector * 512);
    EXPECT_EQ(p.target_index, target);
  }
  block::BlockDevice* a_ = nullptr;
  block::BlockDevice* b_ = nullptr;
};

TEST_F(MappingTest, LinearSplitsAtTargetEdges) {
  auto t = MustParse("0 16 linear a 100\n16 16 linear b 0\n32 8 linear a 0");
  auto p = Map(*t, IoOp::kRead, 8, 32);
  ASSERT_EQ(p.size(), 3u);
  Expect(p[0], 8, 8, a_, 108, 0);
  Expect(p[1], 16, 16, b_, 0, 1);
  Expect(p[2], 32, 8, a_, 0, 2);
  // Exactly one target, ending at its last sector.
  p = Map(*t, IoOp::kWrite, 15, 1);
  ASSERT_EQ(p.size(), 1u);
  Expect(p[0], 15, 1, a_, 115, 0);
  // The last sector of the volume.
  p = Map(*t, IoOp::kRead, 39, 1);
  ASSERT_EQ(p.size(), 1u);
  Expect(p[0], 39, 1, a_, 7, 2);
}

TEST_F(MappingTest, StripedSplitsAtChunkEdges) {
  // 2 stripes of 8-sector chunks; stripe 1 starts at sector 16 of b.
  auto t = MustParse("0 64 striped 2 8 a 0 b 16");
  auto p = Map(*t, IoOp::kRead, 0, 64);
  ASSERT_EQ(p.size(), 8u);
  for (uint32_t i = 0; i < 8; ++i) {
    Expect(p[i], i * 8, 8, i % 2 == 0 ? a_ : b_, (i % 2 == 0 ? 0 : 16) + (i / 2) * 8, 0);
    EXPECT_EQ(p[i].stripe, i % 2);
  }
  // Two sectors across the first chunk edge.
  p = Map(*t, IoOp::kWrite, 7, 2);
  ASSERT_EQ(p.size(), 2u);
  Expect(p[0], 7, 1, a_, 7, 0);
  Expect(p[1], 8, 1, b_, 16, 0);
  // Chunk 3 is on stripe 1, row 1.
  p = Map(*t, IoOp::kRead, 24, 8);
  ASSERT_EQ(p.size(), 1u);
  Expect(p[0], 24, 8, b_, 24, 0);
  // The last sector: chunk 7, stripe 1, row 3, last sector of the chunk.
  p = Map(*t, IoOp::kRead, 63, 1);
  ASSERT_EQ(p.size(), 1u);
  Expect(p[0], 63, 1, b_, 16 + 24 + 7, 0);
}

TEST_F(MappingTest, StripedThenLinearAcrossTheTargetEdge) {
  auto t = MustParse("0 48 striped 3 16 a 0 b 0 a 1000\n48 8 linear b 500");
  auto p = Map(*t, IoOp::kRead, 40, 12);
  ASSERT_EQ(p.size(), 2u);
  Expect(p[0], 40, 8, a_, 1000 + 8, 0);  // chunk 2 is stripe 2, row 0
  Expect(p[1], 48, 4, b_, 500, 1);
}

TEST_F(MappingTest, ZeroErrorAndRangeChecks) {
  auto t = MustParse("0 8 zero\n8 8 error\n16 8 linear a 0");
  auto p = Map(*t, IoOp::kRead, 4, 16);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].kind, PieceKind::kZero);
  EXPECT_EQ(p[0].len_bytes, 4u * 512);
  EXPECT_EQ(p[1].kind, PieceKind::kError);
  EXPECT_EQ(p[1].volume_offset_bytes, 8u * 512);
  Expect(p[2], 16, 4, a_, 0, 2);
  std::vector<MappedPiece> out;
  EXPECT_EQ(t->Map(IoOp::kRead, 20 * 512, 5 * 512, &out).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(t->Map(IoOp::kRead, UINT64_MAX, 2, &out).code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(t->Map(IoOp::kRead, 24 * 512, 0, &out).ok());
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(t->FindTarget(7), 0u);
  EXPECT_EQ(t->FindTarget(8), 1u);
  EXPECT_EQ(t->FindTarget(23), 2u);
  EXPECT_EQ(t->FindTarget(24), 3u);
}

TEST_F(MappingTest, FlushReachesEveryDeviceOfEveryLine) {
  auto t = MustParse("0 16 striped 2 8 a 0 b 0\n16 8 zero\n24 8 error\n32 8 linear a 64");
  auto p = Map(*t, IoOp::kFlush, 0, 0);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].dev, a_);
  EXPECT_EQ(p[1].dev, b_);
  EXPECT_EQ(p[2].dev, a_);
  EXPECT_EQ(p[2].target_index, 3u);
  for (const auto& piece : p) EXPECT_EQ(piece.len_bytes, 0u);
}

TEST_F(MappingTest, DelayAndFlakeyMapByOperation) {
  auto t = MustParse("0 8 delay a 0 0 b 16 0 a 32 0\n8 8 delay a 0 0 b 8 0\n16 8 flakey b 8 1 0");
  auto p = Map(*t, IoOp::kRead, 0, 24);
  ASSERT_EQ(p.size(), 3u);
  Expect(p[0], 0, 8, a_, 0, 0);
  Expect(p[1], 8, 8, a_, 0, 1);
  Expect(p[2], 16, 8, b_, 8, 2);
  p = Map(*t, IoOp::kWrite, 0, 16);
  Expect(p[0], 0, 8, b_, 16, 0);
  Expect(p[1], 8, 8, b_, 8, 1);
  p = Map(*t, IoOp::kDiscard, 0, 8);
  Expect(p[0], 0, 8, b_, 16, 0);
  p = Map(*t, IoOp::kFlush, 0, 0);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].dev, a_);  // the flush triple
  EXPECT_EQ(p[0].dev_offset_bytes, 32u * 512);
  EXPECT_EQ(p[1].dev, b_);  // six arguments: flushes follow writes
  EXPECT_EQ(p[2].dev, b_);
}

TEST_F(MappingTest, LimitsAndGeometry) {
  auto ram = MustParse("0 16 linear a 0\n16 16 zero");
  EXPECT_EQ(ram->limits().max_copy_bytes, 0u);
  EXPECT_GT(ram->limits().max_discard_bytes, 0u);
  EXPECT_TRUE(ram->limits().discard_zeroes_data);
  EXPECT_EQ(ram->block_size(), 512u);
  auto v = Volume::Create("v", ram);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)->geometry().num_blocks, BlockCount(32));
  EXPECT_EQ((*v)->geometry().block_size, 512u);
  EXPECT_EQ((*v)->copy_offload(), nullptr);

  AddRam("k4", 1 << 20, 4096);
  auto mixed = Volume::Create("m", MustParse("0 16 linear a 0\n16 16 linear k4 0"));
  ASSERT_TRUE(mixed.ok());
  EXPECT_EQ((*mixed)->geometry().block_size, 4096u);
  EXPECT_EQ((*mixed)->geometry().num_blocks, BlockCount(4));
}

// A device without discard makes the whole volume refuse discards.
class NoDiscard : public block::BlockDevice {
 public:
  explicit NoDiscard(std::shared_ptr<block::BlockDevice> d) : d_(std::move(d)) {
    limits_ = d_->limits();
    limits_.max_discard_bytes = 0;
  }
  std::string_view name() const override { return "nodiscard"; }
  std::string_view type() const override { return "test"; }
  const block::Geometry& geometry() const override { return d_->geometry(); }
  const block::QueueLimits& limits() const override { return limits_; }
  void Submit(block::IoRequest& req) override { d_->Submit(req); }

 private:
  std::shared_ptr<block::BlockDevice> d_;
  block::QueueLimits limits_;
};

TEST_F(MappingTest, DiscardOnlyWhenEveryLeafDiscards) {
  ASSERT_TRUE(registry_.Add(std::make_shared<NoDiscard>(registry_.Find("a"))).ok());
  auto t = MustParse("0 8 linear b 0\n8 8 linear nodiscard 0");
  EXPECT_EQ(t->limits().max_discard_bytes, 0u);
  auto v = std::move(Volume::Create("v", t)).value();
  EXPECT_EQ(Io(*v, IoOp::kDiscard, 0, 8), IoStatus::kNotSupported);
}

}  // namespace
}  // namespace ferry::volume
