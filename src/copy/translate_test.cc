// The translate and pin steps (translate.h): mapping arithmetic down volume stacks, where
// pieces are cut, what stays on a volume, and pins.
#include "copy/translate.h"

#include <gtest/gtest.h>

#include "copy/testing/stack_test_util.h"

namespace ferry::copy {
namespace {

using testing::All;
using testing::Bytes;

class TranslateTest : public testing::StackTest {
 public:
  Translation Run(const CopyDescriptor& d) {
    auto t = Translate(MakePieces(d), d.dsts.size(), MaxBlockSize(d), reactor_.get());
    EXPECT_TRUE(t.ok());
    return std::move(t).value();
  }
  // Bytes [byte, byte + len) of `dev`.
  Bytes At(block::BlockDevice& dev, uint64_t byte, uint64_t len) {
    Bytes b(len);
    EXPECT_EQ(Io(dev, block::IoOp::kRead, byte, &b), IoStatus::kOk);
    return b;
  }
  // Every piece covers the stream in order, and its leaf places hold what the descriptor's
  // places hold (the devices carry random data, so a wrong mapping shows).
  void CheckAgainstTop(const CopyDescriptor& d, const std::vector<Piece>& pieces) {
    uint64_t stream = 0;
    const uint32_t sbs = d.src->geometry().block_size;
    for (const Piece& p : pieces) {
      ASSERT_EQ(p.stream_offset, stream);
      stream += p.len;
      const uint64_t top_src = DeviceByte(d.src_extents, sbs, p.stream_offset);
      EXPECT_TRUE(
          testing::SameBytes(At(*p.src.dev, p.src.byte, p.len), At(*d.src, top_src, p.len)));
      for (size_t k = 0; k < d.dsts.size(); ++k) {
        const uint64_t top =
            DeviceByte(d.dsts[k].extents, d.dsts[k].dev->geometry().block_size, p.stream_offset);
        EXPECT_TRUE(testing::SameBytes(At(*p.dst[k].dev, p.dst[k].byte, p.len),
                                       At(*d.dsts[k].dev, top, p.len)));
      }
    }
    EXPECT_EQ(stream, StreamBytes(d));
  }
  bool IsVolume(const block::BlockDevice* d) { return d->stack() != nullptr; }
};

// linear over striped over linear, on the source and (with another chunk size) on the
// destination: three levels each.
TEST_F(TranslateTest, ThreeLevelsBothSidesCutAtStripeAndLineBoundaries) {
  for (int i = 0; i < 4; ++i) Leaf("s" + std::to_string(i), 1 << 20);
  for (int i = 0; i < 3; ++i) Leaf("d" + std::to_string(i), 2 << 20);
  // Bottom: linear volumes with offsets; the first splits over two leaves.
  Vol("sl0", "0 512 linear s0 16\n512 512 linear s1 8\n");
  Vol("sl1", "0 1024 linear s2 40\n");
  Vol("sl2", "0 1024 linear s3 0\n");
  // Middle: striped, 4 KiB chunks, over the three.
  Vol("smid", "0 3072 striped 3 8 sl0 0 sl1 0 sl2 0\n");
  auto src = Vol("stop", "0 1000 linear smid 24\n1000 1000 linear smid 1048\n");
  Vol("dl0", "0 2048 linear d0 8\n");
  Vol("dl1", "0 2048 linear d1 0\n");
  Vol("dmid", "0 4096 striped 2 16 dl0 0 dl1 0\n");
  auto dst = Vol("dtop", "0 2000 linear dmid 8\n");
  for (int i = 0; i < 4; ++i) Fill(*registry_.Find("s" + std::to_string(i)));
  for (int i = 0; i < 3; ++i) Fill(*registry_.Find("d" + std::to_string(i)));

  CopyDescriptor d{.src = src.get(),
                   .src_extents = {{Lba(3), BlockCount(1200)}, {Lba(1500), BlockCount(100)}},
                   .dsts = {{dst.get(), {{Lba(7), BlockCount(1300)}}}}};
  Translation t = Run(d);
  // Every volume of both stacks was walked and pinned once.
  EXPECT_EQ(t.pins->size(), 9u);
  EXPECT_TRUE(t.pins->Valid());
  ASSERT_GT(t.pieces.size(), 100u);  // cut at every 4 KiB and 8 KiB chunk at least
  for (const Piece& p : t.pieces) {
    EXPECT_TRUE(p.translated);
    EXPECT_FALSE(IsVolume(p.src.dev));
    EXPECT_FALSE(IsVolume(p.dst[0].dev));
    // No piece crosses a stripe chunk of either middle volume: smid's chunks are 4 KiB and
    // start 12 KiB (24 sectors) into it for the first line.
    const uint64_t dmid_off = (7 * 512 + (p.stream_offset)) + 8 * 512;
    EXPECT_LE(dmid_off % 8192 + p.len, 8192u) << p.stream_offset;
    EXPECT_LE(p.len, 4096u);
  }
  CheckAgainstTop(d, t.pieces);
  EXPECT_EQ(src->in_flight(), 1u);  // the pin
  t.pins->ReleaseAll();
  EXPECT_EQ(src->in_flight(), 0u);
}

// Exact numbers: linear over striped over linear, one stripe boundary inside the piece.
TEST_F(TranslateTest, MappingArithmeticAtBoundaries) {
  Leaf("a", 1 << 20);
  Leaf("b", 1 << 20);
  auto out = Leaf("out", 1 << 20);
  Vol("la", "0 1024 linear a 100\n");
  Vol("lb", "0 1024 linear b 200\n");
  Vol("st", "0 2048 striped 2 8 la 0 lb 0\n");
  auto top = Vol("top", "0 64 linear st 4\n");
  // Top sectors [0, 16) -> st sectors [4, 20): chunk 0 (la) sectors 4..7, chunk 1 (lb)
  // 0..7, chunk 2 (la, second chunk) 0..3.
  CopyDescriptor d{.src = top.get(),
                   .src_extents = {{Lba(0), BlockCount(16)}},
                   .dsts = {{out.get(), {{Lba(1000), BlockCount(16)}}}}};
  Translation t = Run(d);
  ASSERT_EQ(t.pieces.size(), 3u);
  auto a = registry_.Find("a").get();
  auto b = registry_.Find("b").get();
  EXPECT_EQ(t.pieces[0].src.dev, a);
  EXPECT_EQ(t.pieces[0].src.byte, (100 + 4) * 512u);
  EXPECT_EQ(t.pieces[0].len, 4 * 512u);
  EXPECT_EQ(t.pieces[1].src.dev, b);
  EXPECT_EQ(t.pieces[1].src.byte, 200 * 512u);
  EXPECT_EQ(t.pieces[1].len, 8 * 512u);
  EXPECT_EQ(t.pieces[2].src.dev, a);
  EXPECT_EQ(t.pieces[2].src.byte, (100 + 8) * 512u);
  EXPECT_EQ(t.pieces[2].len, 4 * 512u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(t.pieces[i].dst[0].dev, out.get());  // a leaf: untouched
    EXPECT_EQ(t.pieces[i].dst[0].byte, 1000 * 512u + t.pieces[i].stream_offset);
  }
  EXPECT_EQ(t.pins->size(), 4u);
}

// Zero, error and flakey lines are not transparent: their ranges stay on the volume (the
// top-level one, so untranslated); linear lines next to them are walked.
TEST_F(TranslateTest, NonTransparentLinesStayOnTheVolume) {
  auto a = Leaf("a", 1 << 20);
  auto out = Leaf("out", 1 << 20);
  auto v = Vol("v",
               "0 8 linear a 0\n8 8 zero\n16 8 error\n24 8 flakey a 64 1 0\n"
               "32 8 linear a 8\n");
  CopyDescriptor d{
      .src = v.get(), .src_extents = All(*v), .dsts = {{out.get(), {{Lba(0), BlockCount(40)}}}}};
  Translation t = Run(d);
  ASSERT_EQ(t.pieces.size(), 3u);
  EXPECT_EQ(t.pieces[0].src.dev, a.get());
  EXPECT_EQ(t.pieces[0].len, 8 * 512u);
  EXPECT_TRUE(t.pieces[0].translated);
  EXPECT_EQ(t.pieces[1].src.dev, v.get());  // zero, error, flakey: one run on the volume
  EXPECT_EQ(t.pieces[1].src.byte, 8 * 512u);
  EXPECT_EQ(t.pieces[1].len, 24 * 512u);
  EXPECT_FALSE(t.pieces[1].translated);
  EXPECT_EQ(t.pieces[2].src.dev, a.get());
  EXPECT_EQ(t.pieces[2].src.byte, 8 * 512u);
}

// Under a walked volume, a range on a non-transparent line goes back to the descriptor's
// device as ordinary I/O (untranslated): only leaves are translated.
TEST_F(TranslateTest, NonTransparentBelowAWalkedVolumeStaysOnTop) {
  Leaf("a", 1 << 20);
  auto out = Leaf("out", 1 << 20);
  auto low = Vol("low", "0 8 linear a 0\n8 8 zero\n");
  auto top = Vol("top", "0 16 linear low 0\n");
  CopyDescriptor d{.src = top.get(),
                   .src_extents = All(*top),
                   .dsts = {{out.get(), {{Lba(0), BlockCount(16)}}}}};
  Translation t = Run(d);
  ASSERT_EQ(t.pieces.size(), 2u);
  EXPECT_EQ(t.pieces[0].src.dev, registry_.Find("a").get());
  EXPECT_TRUE(t.pieces[0].translated);
  EXPECT_EQ(t.pieces[1].src.dev, top.get());
  EXPECT_EQ(t.pieces[1].src.byte, 8 * 512u);
  EXPECT_FALSE(t.pieces[1].translated);
  EXPECT_EQ(t.pins->size(), 2u);
}

// A part that reaches a leaf on one side but stays on a volume on the other is copied on
// the descriptor's devices: nothing translated may wait at a volume the copy pins.
TEST_F(TranslateTest, MixedPartStaysOnTheDescriptorsDevices) {
  auto a = Leaf("a", 1 << 20);
  auto b = Leaf("b", 1 << 20);
  auto src = Vol("src", "0 64 linear a 0\n");
  auto dst = Vol("dst", "0 32 linear b 0\n32 32 zero\n");
  CopyDescriptor d{.src = src.get(), .src_extents = All(*src), .dsts = {{dst.get(), All(*dst)}}};
  Translation t = Run(d);
  ASSERT_EQ(t.pieces.size(), 2u);
  EXPECT_EQ(t.pieces[0].src.dev, a.get());
  EXPECT_EQ(t.pieces[0].dst[0].dev, b.get());
  EXPECT_TRUE(t.pieces[0].translated);
  EXPECT_EQ(t.pieces[1].src.dev, src.get());
  EXPECT_EQ(t.pieces[1].src.byte, 32 * 512u);
  EXPECT_EQ(t.pieces[1].dst[0].dev, dst.get());
  EXPECT_EQ(t.pieces[1].dst[0].byte, 32 * 512u);
  EXPECT_FALSE(t.pieces[1].translated);
}

// A suspended volume refuses the pin and is not walked: the range is ordinary I/O on the
// descriptor's device (it queues at the suspended volume).
TEST_F(TranslateTest, SuspendedVolumeIsNotWalked) {
  Leaf("a", 1 << 20);
  auto out = Leaf("out", 1 << 20);
  auto low = Vol("low", "0 64 linear a 0\n");
  auto top = Vol("top", "0 64 linear low 0\n");
  Suspend(*low);
  CopyDescriptor d{.src = top.get(),
                   .src_extents = All(*top),
                   .dsts = {{out.get(), {{Lba(0), BlockCount(64)}}}}};
  Translation t = Run(d);
  ASSERT_EQ(t.pieces.size(), 1u);
  EXPECT_EQ(t.pieces[0].src.dev, top.get());
  EXPECT_FALSE(t.pieces[0].translated);
  EXPECT_EQ(t.pins->size(), 1u);  // top
  EXPECT_EQ(low->in_flight(), 0u);
  ASSERT_TRUE(low->Resume().ok());
}

// A copy within one device keeps its memmove order: not translated.
TEST_F(TranslateTest, SourceEqualsDestinationStaysOnTheDevice) {
  Leaf("a", 1 << 20);
  auto v = Vol("v", "0 64 linear a 0\n");
  CopyDescriptor d{.src = v.get(),
                   .src_extents = {{Lba(0), BlockCount(16)}},
                   .dsts = {{v.get(), {{Lba(8), BlockCount(16)}}}}};
  Translation t = Run(d);
  ASSERT_EQ(t.pieces.size(), 1u);
  EXPECT_EQ(t.pieces[0].src.dev, v.get());
  EXPECT_FALSE(t.pieces[0].translated);
}

// A suspend deadline asks the pins back: Valid() turns false and the release callback runs
// on the engine's reactor; the suspend completes once the pins are dropped, and a reload
// bumps the generation.
TEST_F(TranslateTest, DeadlineAsksPinsBackAndGenerationMoves) {
  Leaf("a", 1 << 20);
  Leaf("b", 1 << 20);
  auto out = Leaf("out", 1 << 20);
  auto v = Vol("v", "0 64 linear a 0\n");
  CopyDescriptor d{
      .src = v.get(), .src_extents = All(*v), .dsts = {{out.get(), {{Lba(0), BlockCount(64)}}}}};
  Translation t = Run(d);
  int released = 0;
  t.pins->on_release = [&] { ++released; };
  bool suspended = false;
  StartSuspend(*v, std::chrono::milliseconds(1), &suspended);
  reactor_->RunUntil([&] { return released > 0; });
  EXPECT_FALSE(suspended);
  EXPECT_FALSE(t.pins->Valid());
  EXPECT_FALSE(v->Resume().ok());  // still pinned
  t.pins->ReleaseAll();
  reactor_->RunUntil([&] { return suspended; });
  const uint64_t gen = v->generation();
  ASSERT_TRUE(v->Load(Parse("0 64 linear b 0\n")).ok());
  ASSERT_TRUE(v->Resume().ok());
  EXPECT_EQ(v->generation(), gen + 1);
  EXPECT_EQ(released, 1);
  // A new translation pins the new generation and maps to b.
  Translation t2 = Run(d);
  EXPECT_TRUE(t2.pins->Valid());
  EXPECT_EQ(t2.pieces[0].src.dev, registry_.Find("b").get());
}

}  // namespace
}  // namespace ferry::copy
