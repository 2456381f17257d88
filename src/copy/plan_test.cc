#include "copy/plan.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "backends/ram/ram_device.h"
#include "copy/translate.h"

namespace ferry::copy {
namespace {

std::shared_ptr<backends::RamDevice> Ram(uint64_t bytes, uint32_t bs, bool ro = false) {
  return *backends::RamDevice::Create(
      {.name = "ram", .size_bytes = bytes, .block_size = bs, .read_only = ro});
}

// Random extents of `total_blocks` blocks, lengths and starts multiples of `unit` blocks.
std::vector<Extent> RandomExtents(std::mt19937& rng, uint64_t total_blocks, uint64_t dev_blocks,
                                  uint64_t unit) {
  std::vector<Extent> out;
  for (uint64_t left = total_blocks; left > 0;) {
    const uint64_t n = std::min<uint64_t>(left, (rng() % 8 + 1) * unit);
    uint64_t lba = (rng() % ((dev_blocks - n) / unit + 1)) * unit;
    // Often continue the previous extent, so that merging is exercised.
    if (!out.empty() && rng() % 3 == 0) {
      const Extent& prev = out.back();
      if (prev.lba.value() + prev.blocks.value() + n <= dev_blocks) {
        lba = prev.lba.value() + prev.blocks.value();
      }
    }
    out.push_back({Lba(lba), BlockCount(n)});
    left -= n;
  }
  return out;
}

// Device byte of stream byte `s` through an extent list (the model).
uint64_t Model(const std::vector<Extent>& ex, uint32_t bs, uint64_t s) {
  for (const Extent& e : ex) {
    const uint64_t len = e.blocks.value() * bs;
    if (s < len) return e.lba.value() * bs + s;
    s -= len;
  }
  ADD_FAILURE() << "stream byte past the end";
  return 0;
}

// Stream offsets where a list jumps (the next byte is not the next byte on the device).
std::set<uint64_t> Jumps(const std::vector<Extent>& ex, uint32_t bs) {
  std::set<uint64_t> out;
  uint64_t stream = 0;
  for (size_t i = 0; i + 1 < ex.size(); ++i) {
    stream += ex[i].blocks.value() * bs;
    if (ex[i].lba.value() + ex[i].blocks.value() != ex[i + 1].lba.value()) out.insert(stream);
  }
  return out;
}

TEST(Plan, PiecesFollowEveryListAndBreakOnlyWhereOneJumps) {
  std::mt19937 rng(7);
  auto src = Ram(8 << 20, 512);
  auto d1 = Ram(8 << 20, 4096);
  auto d2 = Ram(8 << 20, 512);
  for (int iter = 0; iter < 300; ++iter) {
    const uint64_t total = (rng() % 64 + 1) * 4096;
    CopyDescriptor d;
    d.src = src.get();
    d.src_extents = RandomExtents(rng, total / 512, src->geometry().num_blocks.value(), 8);
    d.dsts.push_back({d1.get(), RandomExtents(rng, total / 4096, 2048, 1)});
    d.dsts.push_back({d2.get(), RandomExtents(rng, total / 512, 16384, 8)});
    ASSERT_TRUE(ValidateDescriptor(d).ok()) << ValidateDescriptor(d).ToString();
    std::set<uint64_t> jumps = Jumps(d.src_extents, 512);
    for (uint64_t j : Jumps(d.dsts[0].extents, 4096)) jumps.insert(j);
    for (uint64_t j : Jumps(d.dsts[1].extents, 512)) jumps.insert(j);
    const std::vector<Piece> pieces = MakePieces(d);
    uint64_t stream = 0;
    std::set<uint64_t> cuts;
    for (const Piece& p : pieces) {
      ASSERT_EQ(p.stream_offset, stream);
      ASSERT_GT(p.len, 0u);
      ASSERT_EQ(p.len % 4096, 0u);
      EXPECT_EQ(p.src.dev, src.get());
      EXPECT_EQ(p.dst[0].dev, d1.get());
      EXPECT_EQ(p.dst[1].dev, d2.get());
      for (uint64_t probe : {uint64_t{0}, p.len / 2 / 512 * 512, p.len - 512}) {
        EXPECT_EQ(p.src.byte + probe, Model(d.src_extents, 512, stream + probe));
        EXPECT_EQ(p.dst[0].byte + probe, Model(d.dsts[0].extents, 4096, stream + probe));
        EXPECT_EQ(p.dst[1].byte + probe, Model(d.dsts[1].extents, 512, stream + probe));
      }
      if (stream > 0) cuts.insert(stream);
      stream += p.len;
    }
    EXPECT_EQ(stream, total);
    EXPECT_EQ(cuts, jumps) << "iter " << iter;
    // Backends are leaves: translation keeps the pieces and pins nothing (translate.h).
    auto leaves = Translate(pieces, 2, 4096, nullptr);
    ASSERT_TRUE(leaves.ok());
    EXPECT_EQ(leaves->pieces.size(), pieces.size());
    EXPECT_TRUE(leaves->pins->empty());
  }
}

TEST(Plan, SubPieceShiftsEveryPlace) {
  auto a = Ram(1 << 20, 512);
  Piece p{.stream_offset = 100, .len = 50, .src = {a.get(), 1000}};
  p.dst[0] = {a.get(), 2000};
  p.dst[1] = {a.get(), 3000};
  Piece s = SubPiece(p, 10, 20);
  EXPECT_EQ(s.stream_offset, 110u);
  EXPECT_EQ(s.len, 20u);
  EXPECT_EQ(s.src.byte, 1010u);
  EXPECT_EQ(s.dst[0].byte, 2010u);
  EXPECT_EQ(s.dst[1].byte, 3010u);
  EXPECT_EQ(s.dst[1].dev, a.get());
}

// FindHazards against the quadratic definition, on two devices with random ranges.
TEST(Plan, HazardsMatchAllPairsOverlap) {
  std::mt19937 rng(11);
  auto a = Ram(1 << 20, 512);
  auto b = Ram(1 << 20, 512);
  block::BlockDevice* devs[] = {a.get(), b.get()};
  auto overlap = [](const Place& x, const Place& y, uint64_t xl, uint64_t yl) {
    return x.dev == y.dev && x.byte < y.byte + yl && y.byte < x.byte + xl;
  };
  for (int iter = 0; iter < 500; ++iter) {
    const size_t nd = rng() % 3 + 1;
    std::vector<Piece> pieces(rng() % 12 + 1);
    uint64_t stream = 0;
    for (Piece& p : pieces) {
      p.stream_offset = stream;
      p.len = (rng() % 8 + 1) * 512;
      stream += p.len;
      p.src = {devs[rng() % 2], (rng() % 64) * 512};
      for (size_t k = 0; k < nd; ++k) p.dst[k] = {devs[rng() % 2], (rng() % 64) * 512};
    }
    const std::vector<bool> got = FindHazards(pieces, nd);
    for (size_t i = 0; i < pieces.size(); ++i) {
      bool want = false;
      const Piece& p = pieces[i];
      for (size_t j = 0; j < pieces.size(); ++j) {
        const Piece& q = pieces[j];
        for (size_t k = 0; k < nd; ++k) {
          // My write against anyone's read, anyone's write against my read.
          want |= overlap(p.dst[k], q.src, p.len, q.len) || overlap(q.dst[k], p.src, q.len, p.len);
          for (size_t m = 0; m < nd; ++m) {
            if (i == j && k == m) continue;  // a write does not clash with itself
            want |= overlap(p.dst[k], q.dst[m], p.len, q.len);
          }
        }
      }
      ASSERT_EQ(got[i], want) << "iter " << iter << " piece " << i;
    }
  }
}

TEST(Plan, CopyBackwardOnlyWhenTheDestinationIsAboveAnOverlappingSource) {
  auto a = Ram(1 << 20, 512);
  auto b = Ram(1 << 20, 512);
  Piece p{.len = 8192, .src = {a.get(), 4096}};
  p.dst[0] = {a.get(), 8192};
  EXPECT_TRUE(CopyBackward(p, 1));
  p.dst[0] = {a.get(), 0};
  EXPECT_FALSE(CopyBackward(p, 1));
  p.dst[0] = {a.get(), 4096 + 8192};  // adjacent, no overlap
  EXPECT_FALSE(CopyBackward(p, 1));
  p.dst[0] = {b.get(), 8192};
  EXPECT_FALSE(CopyBackward(p, 1));
  p.dst[1] = {a.get(), 4608};
  EXPECT_TRUE(CopyBackward(p, 2));
}

// SplitForOffload: the span is aligned on both sides, whole units from the piece start, and
// the longest such span (checked by brute force over small numbers).
TEST(Plan, SplitForOffloadFindsTheLongestAlignedMiddle) {
  std::mt19937 rng(3);
  for (int iter = 0; iter < 2000; ++iter) {
    const uint64_t unit = 512u << (rng() % 2);
    const uint64_t align = unit << (rng() % 4);
    Piece p{.len = (rng() % 40 + 1) * unit, .src = {nullptr, (rng() % 64) * 512}};
    p.dst[0] = {nullptr, (rng() % 64) * 512};
    const OffloadSpan s = SplitForOffload(p, 0, align, unit);
    uint64_t best = 0;
    for (uint64_t head = 0; head < p.len; head += unit) {
      if ((p.src.byte + head) % align || (p.dst[0].byte + head) % align) continue;
      best = std::max(best, (p.len - head) / align * align);
      break;  // the first aligned head gives the longest middle
    }
    ASSERT_EQ(s.middle, best) << "iter " << iter;
    if (s.middle == 0) continue;
    EXPECT_EQ(s.head % unit, 0u);
    EXPECT_EQ((p.src.byte + s.head) % align, 0u);
    EXPECT_EQ((p.dst[0].byte + s.head) % align, 0u);
    EXPECT_EQ(s.middle % align, 0u);
    EXPECT_LE(s.head + s.middle, p.len);
  }
}

TEST(Plan, ValidationSaysWhatIsWrong) {
  auto src = Ram(1 << 20, 512);
  auto dst = Ram(1 << 20, 4096);
  auto ro = Ram(1 << 20, 512, true);
  auto expect = [](const CopyDescriptor& d, StatusCode code, std::string_view text) {
    Status st = ValidateDescriptor(d);
    EXPECT_EQ(st.code(), code) << text;
    EXPECT_NE(st.message().find(text), std::string_view::npos) << st.ToString();
  };
  const auto kInvalid = StatusCode::kInvalidArgument;
  CopyDescriptor ok{src.get(), {{Lba(0), BlockCount(8)}}, {{dst.get(), {{Lba(0), BlockCount(1)}}}}};
  EXPECT_TRUE(ValidateDescriptor(ok).ok());
  CopyDescriptor d = ok;
  d.src = nullptr;
  expect(d, kInvalid, "no source");
  d = ok;
  d.dsts.clear();
  expect(d, kInvalid, "1 to 8 destinations");
  d = ok;
  d.dsts.assign(9, ok.dsts[0]);
  expect(d, kInvalid, "not 9");
  d = ok;
  d.dsts[0].dev = nullptr;
  expect(d, kInvalid, "destination 0 has no device");
  d = ok;
  d.dsts[0] = {ro.get(), {{Lba(0), BlockCount(8)}}};
  expect(d, StatusCode::kFailedPrecondition, "is read-only");
  d = ok;
  d.src_extents = {{Lba(2047), BlockCount(2)}};
  expect(d, kInvalid, "source 'ram' extent 0 (lba 2047, 2 blocks) lies past the end (2048 blocks)");
  d = ok;
  d.src_extents = {};
  expect(d, kInvalid, "source 'ram' has no extents");
  d = ok;
  d.src_extents = {{Lba(0), BlockCount(8)}, {Lba(0), BlockCount(0)}};
  expect(d, kInvalid, "extent 1 is empty");
  d = ok;
  d.src_extents = {{Lba(0), BlockCount(16)}};
  expect(d, kInvalid, "extents hold 4096 bytes but the source extents hold 8192");
  d = ok;
  d.src_extents = {{Lba(0), BlockCount(4)}, {Lba(10), BlockCount(4)}};
  expect(d, kInvalid, "not a multiple of 4096 bytes");
  d = ok;
  d.dsts.push_back({src.get(), {{Lba(2047), BlockCount(8)}}});
  expect(d, kInvalid, "destination 1 'ram' extent 0");
}

TEST(Plan, AlignDown) {
  EXPECT_EQ(AlignDown(1 << 20, 4096), 1u << 20);
  EXPECT_EQ(AlignDown(5000, 4096), 4096u);
  EXPECT_EQ(AlignDown(100, 4096), 0u);
  EXPECT_EQ(AlignDown(1000, 1), 1000u);
}

}  // namespace
}  // namespace ferry::copy
