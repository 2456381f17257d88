// Copies through volume stacks (translate.h, pins.cc): offload at the leaves, emulation
// through non-transparent targets, suspended volumes, and pins released at a suspend
// deadline with the rest of the copy following the new table.
#include <gtest/gtest.h>

#include "copy/testing/stack_test_util.h"

namespace ferry::copy {
namespace {

using testing::All;
using testing::Bytes;
using testing::kEmulated;
using testing::kRam;
using testing::SameBytes;

class StackCopyTest : public testing::StackTest {};

// Two linear volumes over RAM devices of one arena: the copy is offloaded natively at the
// leaves.
TEST_F(StackCopyTest, LinearVolumesOffloadAtTheLeaves) {
  auto arena = std::make_shared<backends::RamArena>();
  auto a = Leaf("a", 4 << 20, arena);
  auto b = Leaf("b", 4 << 20, arena);
  auto src = Vol("src", "0 4096 linear a 1024\n");
  auto dst = Vol("dst", "0 4096 linear b 2048\n");
  const Bytes data = Fill(*src);
  auto engine = Engine();
  CopyResult r =
      Run(*engine, {.src = src.get(), .src_extents = All(*src), .dsts = {{dst.get(), All(*dst)}}});
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.by_mechanism[kRam], 2u << 20);
  EXPECT_EQ(r.counters.offloaded_bytes, 2u << 20);
  EXPECT_EQ(r.counters.emulated_bytes, 0u);
  EXPECT_TRUE(SameBytes(Contents(*dst), data));
  EXPECT_EQ(src->in_flight(), 0u);  // pins dropped at completion
  EXPECT_EQ(dst->in_flight(), 0u);
}

// Three levels on both sides (linear over striped over linear), two destinations: native
// at the leaves, every byte right.
TEST_F(StackCopyTest, ThreeDeepStacksOffloadNatively) {
  auto arena = std::make_shared<backends::RamArena>();
  for (const char* n : {"a0", "a1", "b0", "b1", "c0"}) Leaf(n, 4 << 20, arena);
  Vol("la0", "0 4096 linear a0 8\n");
  Vol("la1", "0 4096 linear a1 0\n");
  Vol("sa", "0 8192 striped 2 16 la0 0 la1 0\n");
  auto src = Vol("src", "0 4000 linear sa 64\n4000 2000 linear sa 5000\n");
  Vol("lb0", "0 4096 linear b0 0\n");
  Vol("lb1", "0 4096 linear b1 16\n");
  Vol("sb", "0 8192 striped 2 32 lb0 0 lb1 0\n");
  auto dst = Vol("dst", "0 6000 linear sb 8\n");
  Vol("lc", "0 8192 linear c0 0\n");
  auto dst2 = Vol("dst2", "0 6000 linear lc 100\n");
  const Bytes data = Fill(*src);
  Bytes want = Contents(*dst);
  Bytes want2 = Contents(*dst2);
  auto engine = Engine();
  CopyDescriptor d{.src = src.get(),
                   .src_extents = {{Lba(10), BlockCount(3000)}, {Lba(3990), BlockCount(1500)}},
                   .dsts = {{dst.get(), {{Lba(100), BlockCount(4500)}}},
                            {dst2.get(), {{Lba(0), BlockCount(4500)}}}}};
  std::copy(data.begin() + 10 * 512, data.begin() + 3010 * 512, want.begin() + 100 * 512);
  std::copy(data.begin() + 3990 * 512, data.begin() + 5490 * 512, want.begin() + 3100 * 512);
  std::copy(want.begin() + 100 * 512, want.begin() + 4600 * 512, want2.begin());
  CopyResult r = Run(*engine, d);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.by_mechanism[kRam], 2 * 4500 * 512u);
  EXPECT_EQ(r.counters.emulated_bytes, 0u);
  EXPECT_TRUE(SameBytes(Contents(*dst), want));
  EXPECT_TRUE(SameBytes(Contents(*dst2), want2));
}

// A zero line in the source emulates through the volume (zeroes arrive); the linear parts
// around it are offloaded.
TEST_F(StackCopyTest, ZeroLineEmulatesThroughTheVolume) {
  auto arena = std::make_shared<backends::RamArena>();
  auto a = Leaf("a", 1 << 20, arena);
  auto b = Leaf("b", 1 << 20, arena);
  auto src = Vol("src", "0 64 linear a 0\n64 64 zero\n128 64 linear a 64\n");
  const Bytes leaf = Fill(*a);
  Fill(*b);
  auto engine = Engine();
  CopyResult r = Run(*engine, {.src = src.get(),
                               .src_extents = All(*src),
                               .dsts = {{b.get(), {{Lba(0), BlockCount(192)}}}}});
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.by_mechanism[kRam], 128 * 512u);
  EXPECT_EQ(r.counters.by_mechanism[kEmulated], 64 * 512u);
  Bytes got = Contents(*b);
  got.resize(192 * 512);
  Bytes want(leaf.begin(), leaf.begin() + 64 * 512);
  want.resize(128 * 512, 0);
  want.insert(want.end(), leaf.begin() + 64 * 512, leaf.begin() + 128 * 512);
  EXPECT_TRUE(SameBytes(got, want));
}

// An error line fails the read through the volume; the error names the stream offset.
TEST_F(StackCopyTest, ErrorLineFailsWithTheStreamOffset) {
  Leaf("a", 1 << 20);
  auto b = Leaf("b", 1 << 20);
  auto src = Vol("src", "0 64 linear a 0\n64 16 error\n80 48 linear a 64\n");
  auto engine = Engine();
  CopyResult r = Run(*engine, {.src = src.get(),
                               .src_extents = {{Lba(32), BlockCount(96)}},
                               .dsts = {{b.get(), {{Lba(0), BlockCount(96)}}}}});
  EXPECT_EQ(r.status, IoStatus::kIoError);
  ASSERT_FALSE(r.errors.empty());
  EXPECT_TRUE(r.errors[0].on_source);
  EXPECT_EQ(r.errors[0].dev, src.get());
  EXPECT_EQ(r.errors[0].stream_offset_bytes, 32 * 512u);
  EXPECT_EQ(r.errors[0].len_bytes, 16 * 512u);
}

// A flakey destination line that drops writes: the copy goes through the volume, so the
// leaf under it is not written (a walk to the leaf would have written it).
TEST_F(StackCopyTest, FlakeyLineAppliesItsBehaviour) {
  auto arena = std::make_shared<backends::RamArena>();
  auto a = Leaf("a", 1 << 20, arena);
  auto b = Leaf("b", 1 << 20, arena);
  auto dst = Vol("dst", "0 64 linear b 0\n64 64 flakey b 64 0 1 1 drop_writes\n");
  const Bytes src_data = Fill(*a);
  const Bytes before = Fill(*b);
  auto engine = Engine();
  CopyResult r = Run(*engine, {.src = a.get(),
                               .src_extents = {{Lba(0), BlockCount(128)}},
                               .dsts = {{dst.get(), All(*dst)}}});
  ASSERT_EQ(r.status, IoStatus::kOk);
  Bytes want = before;
  std::copy(src_data.begin(), src_data.begin() + 64 * 512, want.begin());
  EXPECT_TRUE(SameBytes(Contents(*b), want));
  EXPECT_EQ(r.counters.by_mechanism[kRam], 64 * 512u);
  EXPECT_EQ(r.counters.by_mechanism[kEmulated], 64 * 512u);
}

// A zero line under a walked volume: the range goes back to the top volume as ordinary
// I/O (zeroes arrive), the linear part is offloaded at the leaf.
TEST_F(StackCopyTest, ZeroLineBelowAWalkedVolume) {
  auto arena = std::make_shared<backends::RamArena>();
  auto a = Leaf("a", 1 << 20, arena);
  auto b = Leaf("b", 1 << 20, arena);
  Vol("low", "0 64 linear a 0\n64 64 zero\n");
  auto top = Vol("top", "0 128 linear low 0\n");
  const Bytes leaf = Fill(*a);
  Fill(*b);
  auto engine = Engine();
  CopyResult r = Run(*engine, {.src = top.get(),
                               .src_extents = All(*top),
                               .dsts = {{b.get(), {{Lba(0), BlockCount(128)}}}}});
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.by_mechanism[kRam], 64 * 512u);
  EXPECT_EQ(r.counters.by_mechanism[kEmulated], 64 * 512u);
  Bytes got = Contents(*b);
  got.resize(128 * 512);
  Bytes want(leaf.begin(), leaf.begin() + 64 * 512);
  want.resize(128 * 512, 0);
  EXPECT_TRUE(SameBytes(got, want));
}

// A suspended volume in the middle of a stack: the copy's writes go to the top volume and
// queue at the suspended one; the copy completes after resume.
TEST_F(StackCopyTest, SuspendedLowerVolumeGetsOrdinaryIo) {
  auto arena = std::make_shared<backends::RamArena>();
  auto a = Leaf("a", 1 << 20, arena);
  auto b = Leaf("b", 1 << 20, arena);
  auto low = Vol("low", "0 2048 linear b 0\n");
  auto top = Vol("top", "0 2048 linear low 0\n");
  const Bytes data = Fill(*a);
  Suspend(*low);
  auto engine = Engine({.chunk_bytes = 64 << 10});
  bool done = false;
  CopyResult r;
  auto job =
      engine->Submit({.src = a.get(), .src_extents = All(*a), .dsts = {{top.get(), All(*top)}}},
                     [&](CopyResult res) {
                       r = std::move(res);
                       done = true;
                     });
  ASSERT_TRUE(job.ok());
  reactor_->RunUntil([&] { return low->queued() > 0; });
  EXPECT_FALSE(done);
  ASSERT_TRUE(low->Resume().ok());
  reactor_->RunUntil([&] { return done; });
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.by_mechanism[kEmulated], 1u << 20);
  EXPECT_TRUE(SameBytes(Contents(*b), data));
}

// A suspended destination is not walked: the copy's writes queue on it and complete after
// resume.
TEST_F(StackCopyTest, SuspendedVolumeGetsOrdinaryIo) {
  auto arena = std::make_shared<backends::RamArena>();
  auto a = Leaf("a", 1 << 20, arena);
  auto b = Leaf("b", 1 << 20, arena);
  auto dst = Vol("dst", "0 2048 linear b 0\n");
  const Bytes data = Fill(*a);
  Suspend(*dst);
  auto engine = Engine({.chunk_bytes = 64 << 10});
  bool done = false;
  CopyResult r;
  auto job =
      engine->Submit({.src = a.get(), .src_extents = All(*a), .dsts = {{dst.get(), All(*dst)}}},
                     [&](CopyResult res) {
                       r = std::move(res);
                       done = true;
                     });
  ASSERT_TRUE(job.ok());
  reactor_->RunUntil([&] { return dst->queued() > 0; });
  for (int i = 0; i < 50; ++i) reactor_->RunOnce(false);
  EXPECT_FALSE(done);
  ASSERT_TRUE(dst->Resume().ok());
  reactor_->RunUntil([&] { return done; });
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.by_mechanism[kEmulated], 1u << 20);
  EXPECT_TRUE(SameBytes(Contents(*b), data));
}

}  // namespace
}  // namespace ferry::copy
