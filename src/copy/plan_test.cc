#include "copy/plan.h"

#include <gtest/gtest.h>

#include <random>

#include "backends/ram/ram_device.h"

namespace ferry::copy {
namespace {

std::shared_ptr<backends::RamDevice> Ram(uint64_t bytes, uint32_t bs, bool ro = false) {
  return *backends::RamDevice::Create(
      {.name = "ram", .size_bytes = bytes, .block_size = bs, .read_only = ro});
}

std::vector<Extent> RandomExtents(std::mt19937& rng, uint64_t total_blocks, uint64_t dev_blocks,
                                  uint64_t unit) {
  std::vector<Extent> out;
  uint64_t left = total_blocks;
  while (left > 0) {
    uint64_t n = std::min<uint64_t>(left, (rng() % 8 + 1) * unit);
    uint64_t lba = (rng() % ((dev_blocks - n) / unit + 1)) * unit;
    out.push_back({Lba(lba), BlockCount(n)});
    left -= n;
  }
  return out;
}

// Byte position on a device of stream byte `s` through an extent list (the model).
uint64_t Model(const std::vector<Extent>& ex, uint32_t bs, uint64_t s) {
  for (const Extent& e : ex) {
    uint64_t len = e.blocks.value() * bs;
    if (s < len) return e.lba.value() * bs + s;
    s -= len;
  }
  ADD_FAILURE() << "stream byte past the end";
  return 0;
}

TEST(Plan, PiecesFollowEveryListExactly) {
  std::mt19937 rng(7);
  auto src = Ram(8 << 20, 512);
  auto d1 = Ram(8 << 20, 4096);
  auto d2 = Ram(8 << 20, 512);
  for (int iter = 0; iter < 200; ++iter) {
    const uint64_t total = (rng() % 64 + 1) * 4096;
    CopyDescriptor d;
    d.src = src.get();
    d.src_extents = RandomExtents(rng, total / 512, src->geometry().num_blocks.value(), 8);
    d.dsts.push_back({d1.get(), RandomExtents(rng, total / 4096, 2048, 1)});
    d.dsts.push_back({d2.get(), RandomExtents(rng, total / 512, 16384, 8)});
    ASSERT_TRUE(ValidateDescriptor(d).ok()) << ValidateDescriptor(d).ToString();
    auto pieces = MakePieces(d);
    uint64_t stream = 0;
    for (const Piece& p : pieces) {
      ASSERT_EQ(p.stream_offset, stream);
      ASSERT_GT(p.len, 0u);
      ASSERT_EQ(p.len % 4096, 0u);
      for (uint64_t probe : {uint64_t{0}, p.len - 1}) {
        EXPECT_EQ(p.src_byte + probe, Model(d.src_extents, 512, stream + probe));
        EXPECT_EQ(p.dst_byte[0] + probe, Model(d.dsts[0].extents, 4096, stream + probe));
        EXPECT_EQ(p.dst_byte[1] + probe, Model(d.dsts[1].extents, 512, stream + probe));
      }
      stream += p.len;
    }
    EXPECT_EQ(stream, total);
  }
}

TEST(Plan, ValidationSaysWhatIsWrong) {
  auto src = Ram(1 << 20, 512);
  auto dst = Ram(1 << 20, 4096);
  auto ro = Ram(1 << 20, 512, true);
  auto expect = [](const CopyDescriptor& d, std::string_view text) {
    Status st = ValidateDescriptor(d);
    EXPECT_FALSE(st.ok()) << text;
    EXPECT_NE(st.message().find(text), std::string_view::npos) << st.ToString();
  };
  CopyDescriptor ok{src.get(), {{Lba(0), BlockCount(8)}}, {{dst.get(), {{Lba(0), BlockCount(1)}}}}};
  EXPECT_TRUE(ValidateDescriptor(ok).ok());
  CopyDescriptor d = ok;
  d.src = nullptr;
  expect(d, "no source");
  d = ok;
  d.dsts.clear();
  expect(d, "1 to 8 destinations");
  d = ok;
  d.dsts.assign(9, ok.dsts[0]);
  expect(d, "not 9");
  d = ok;
  d.dsts[0].dev = nullptr;
  expect(d, "has no device");
  d = ok;
  d.dsts[0].dev = ro.get();
  d.dsts[0].extents = {{Lba(0), BlockCount(8)}};
  expect(d, "is read-only");
  d = ok;
  d.src_extents = {{Lba(2047), BlockCount(2)}};
  expect(d, "past the end");
  d = ok;
  d.src_extents = {};
  expect(d, "source has no extents");
  d = ok;
  d.src_extents = {{Lba(0), BlockCount(0)}};
  expect(d, "is empty");
  d = ok;
  d.src_extents = {{Lba(0), BlockCount(16)}};
  expect(d, "extents hold 4096 bytes but the source extents hold 8192");
  d = ok;
  d.src_extents = {{Lba(0), BlockCount(4)}, {Lba(10), BlockCount(4)}};
  expect(d, "not a multiple of 4096 bytes");
}

TEST(Plan, SelfOverlap) {
  auto a = Ram(1 << 20, 512);
  auto b = Ram(1 << 20, 512);
  CopyDescriptor d{a.get(), {{Lba(0), BlockCount(8)}}, {{a.get(), {{Lba(4), BlockCount(8)}}}}};
  EXPECT_TRUE(HasSelfOverlap(d, 0));
  d.dsts[0].extents = {{Lba(8), BlockCount(8)}};
  EXPECT_FALSE(HasSelfOverlap(d, 0));
  d.dsts[0] = {b.get(), {{Lba(0), BlockCount(8)}}};
  EXPECT_FALSE(HasSelfOverlap(d, 0));
}

TEST(Plan, AlignDown) {
  EXPECT_EQ(AlignDown(1 << 20, 4096), 1u << 20);
  EXPECT_EQ(AlignDown(5000, 4096), 4096u);
  EXPECT_EQ(AlignDown(100, 4096), 4096u);
  EXPECT_EQ(AlignDown(1000, 1), 1000u);
}

}  // namespace
}  // namespace ferry::copy
