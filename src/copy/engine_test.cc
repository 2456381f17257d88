// Copy-engine data tests on RAM devices: native copy inside one arena, emulation across
// arenas; every copy is checked byte by byte against a model.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "backends/faulty/faulty_device.h"
#include "backends/ram/ram_device.h"
#include "copy/testing/copy_test_util.h"
#include "ferry/copy.h"

namespace ferry::copy {
namespace {

using backends::RamArena;
using testing::Bytes;
using testing::kEmulated;
using testing::kRam;
using testing::SameBytes;

class EngineTest : public testing::CopyTest {};

bool HasNote(const CopyResult& r, std::string_view text) {
  for (const std::string& n : r.offload_notes) {
    if (n.find(text) != std::string::npos) return true;
  }
  return false;
}

void ExpectCountersAddUp(const CopyResult& r, uint64_t total) {
  const CopyCounters& c = r.counters;
  EXPECT_EQ(c.total_bytes, total);
  EXPECT_EQ(c.done_bytes, total);
  EXPECT_EQ(c.offloaded_bytes + c.emulated_bytes, total);
  EXPECT_EQ(c.by_mechanism[kEmulated], c.emulated_bytes);
  uint64_t sum = 0;
  for (uint64_t b : c.by_mechanism) sum += b;
  EXPECT_EQ(sum, total);
}

// Random source and destination lists (sources start on any source block and may overlap
// each other; destinations are disjoint), every block-size pair, three ways: native copy,
// the same devices with offload disabled, and a destination in another arena. All three
// must leave the model's bytes.
TEST_F(EngineTest, RandomRangeListsOffloadedAndEmulatedLeaveTheSameBytes) {
  auto engine = Engine({.chunk_bytes = 64 << 10, .queue_depth = 4, .max_buffers = 8});
  const uint32_t sizes[][2] = {{512, 512}, {512, 4096}, {4096, 512}, {4096, 4096}};
  for (int iter = 0; iter < 32; ++iter) {
    const uint32_t sbs = sizes[iter % 4][0], dbs = sizes[iter % 4][1];
    const uint64_t unit = std::max(sbs, dbs);
    auto arena = std::make_shared<RamArena>();
    auto src = Ram(2 << 20, sbs, arena);
    auto same = Ram(2 << 20, dbs, arena);
    auto other = Ram(2 << 20, dbs);
    const Bytes src_img = Fill(*src);
    const Bytes dst_img = Fill(*same);
    Write(*other, dst_img);
    const uint64_t total = (rng_() % 128 + 1) * unit;
    auto sx = RandomExtents(total, *src, unit, sbs);
    std::vector<bool> used((2 << 20) / dbs);
    auto dx = RandomExtents(total, *same, unit, dbs, &used);
    Bytes results[3];
    for (int mode = 0; mode < 3; ++mode) {
      SCOPED_TRACE("iter " + std::to_string(iter) + " mode " + std::to_string(mode));
      block::BlockDevice* dst = mode == 2 ? other.get() : same.get();
      Write(*dst, dst_img);
      CopyDescriptor d{src.get(), sx, {{dst, dx}}, /*allow_offload=*/mode != 1};
      Images images{{src.get(), src_img}, {dst, dst_img}};
      Model(d, &images);
      CopyResult r = Run(*engine, d);
      ASSERT_EQ(r.status, IoStatus::kOk);
      EXPECT_TRUE(r.errors.empty());
      results[mode] = Contents(*dst);
      EXPECT_TRUE(SameBytes(results[mode], images[dst]));
      ExpectCountersAddUp(r, total);
      if (mode == 0) {
        EXPECT_EQ(r.counters.by_mechanism[kRam], r.counters.offloaded_bytes);
        if (sbs == dbs) {  // every piece aligned
          EXPECT_EQ(r.counters.offloaded_bytes, total);
        }
        if (r.counters.emulated_bytes > 0) {
          EXPECT_TRUE(HasNote(r, "not aligned"));
        }
      } else {
        EXPECT_EQ(r.counters.emulated_bytes, total);
        EXPECT_TRUE(HasNote(r, mode == 1 ? "offload disabled (--no-offload)" : "arenas"));
      }
    }
    EXPECT_TRUE(SameBytes(results[0], results[1]));
    EXPECT_TRUE(SameBytes(results[1], results[2]));
  }
}

// Destination extents that overlap each other: list order decides (the later write wins),
// so those pieces run in order.
TEST_F(EngineTest, OverlappingDestinationExtentsFollowListOrder) {
  auto engine = Engine({.chunk_bytes = 16 << 10});
  for (bool offload : {true, false}) {
    auto arena = std::make_shared<RamArena>();
    auto src = Ram(1 << 20, 512, arena);
    auto dst = Ram(1 << 20, 512, arena);
    Images images{{src.get(), Fill(*src)}, {dst.get(), Fill(*dst)}};
    CopyDescriptor d{src.get(),
                     {{Lba(0), BlockCount(256)}, {Lba(512), BlockCount(256)}},
                     {{dst.get(), {{Lba(100), BlockCount(256)}, {Lba(200), BlockCount(256)}}}},
                     offload};
    Model(d, &images);
    CopyResult r = Run(*engine, d);
    ASSERT_EQ(r.status, IoStatus::kOk);
    EXPECT_TRUE(SameBytes(Contents(*dst), images[dst.get()])) << "offload " << offload;
  }
}

// A device with small copy limits: legs stay within max_copy_bytes, max_copy_segments and
// the granularity (LimitedCopyDevice checks each), parts off the granularity are emulated.
TEST_F(EngineTest, LegsRespectDestinationLimits) {
  auto engine = Engine({.chunk_bytes = 32 << 10});
  for (int iter = 0; iter < 16; ++iter) {
    auto arena = std::make_shared<RamArena>();
    auto src = Ram(4 << 20, 512, arena);
    auto inner = Ram(4 << 20, 512, arena);
    testing::LimitedCopyDevice dst(inner, 64 << 10, 3, 16 << 10);
    Images images{{src.get(), Fill(*src)}, {&dst, Fill(dst)}};
    const uint64_t total = (rng_() % 256 + 1) * 4096;
    std::vector<bool> used((4 << 20) / 4096);
    CopyDescriptor d{src.get(),
                     RandomExtents(total, *src, 4096, 4096),
                     {{&dst, RandomExtents(total, dst, 4096, 4096, &used)}}};
    Model(d, &images);
    CopyResult r = Run(*engine, d);
    ASSERT_EQ(r.status, IoStatus::kOk);
    EXPECT_TRUE(SameBytes(Contents(dst), images[&dst])) << "iter " << iter;
    ExpectCountersAddUp(r, total);
    EXPECT_EQ(r.counters.offloaded_bytes % (16 << 10), 0u);
    if (r.counters.emulated_bytes > 0) {
      EXPECT_TRUE(HasNote(r, "limited: "));
    }
  }
  // One piece 4 KiB past a granule: the aligned middle is offloaded, head and tail are not.
  auto arena = std::make_shared<RamArena>();
  auto src = Ram(1 << 20, 512, arena);
  testing::LimitedCopyDevice dst(Ram(1 << 20, 512, arena), 64 << 10, 3, 16 << 10);
  Images images{{src.get(), Fill(*src)}, {&dst, Fill(dst)}};
  // Stream bytes [12K, 12K+192K) are aligned on both sides: 192 KiB in 3 legs of 64 KiB.
  CopyDescriptor d{src.get(), {{Lba(8), BlockCount(416)}}, {{&dst, {{Lba(136), BlockCount(416)}}}}};
  Model(d, &images);
  CopyResult r = Run(*engine, d);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_TRUE(SameBytes(Contents(dst), images[&dst]));
  EXPECT_EQ(r.counters.offloaded_bytes, 192u << 10);
  EXPECT_EQ(r.counters.emulated_bytes, 416u * 512 - (192 << 10));
  EXPECT_EQ(dst.legs, 3);
  EXPECT_TRUE(HasNote(r, "not aligned to the native copy granularity"));
}

TEST_F(EngineTest, MultipleDestinationsReadOnceWriteEach) {
  auto engine = Engine();
  auto arena = std::make_shared<RamArena>();
  auto src_ram = Ram(8 << 20, 512, arena);
  auto native = Ram(8 << 20, 512, arena);
  auto e1 = Ram(8 << 20, 4096);
  auto e2 = Ram(8 << 20, 512);
  Images images{{src_ram.get(), Fill(*src_ram)},
                {native.get(), Fill(*native)},
                {e1.get(), Fill(*e1)},
                {e2.get(), Fill(*e2)}};
  const uint64_t total = 6 << 20;
  CopyDescriptor d{src_ram.get(),
                   {{Lba(1024), BlockCount(total / 512)}},
                   {{native.get(), {{Lba(0), BlockCount(total / 512)}}},
                    {e1.get(), {{Lba(256), BlockCount(total / 4096)}}},
                    {e2.get(), {{Lba(8), BlockCount(total / 512)}}}}};
  Model(d, &images);
  CopyResult r = Run(*engine, d);
  ASSERT_EQ(r.status, IoStatus::kOk);
  for (auto* dev : {native.get(), e1.get(), e2.get()}) {
    EXPECT_TRUE(SameBytes(Contents(*dev), images[dev])) << dev->name();
  }
  EXPECT_EQ(r.counters.total_bytes, 3 * total);
  EXPECT_EQ(r.counters.done_bytes, 3 * total);
  EXPECT_EQ(r.counters.offloaded_bytes, total);
  EXPECT_EQ(r.counters.by_mechanism[kRam], total);
  EXPECT_EQ(r.counters.emulated_bytes, 2 * total);
  EXPECT_EQ(r.counters.by_mechanism[kEmulated], 2 * total);

  // The same copy from an observed source (not a RAM device, so nothing is native): each
  // chunk is read once for all three destinations.
  testing::ObservingDevice observed(src_ram, "observed");
  d.src = &observed;
  r = Run(*engine, d);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.emulated_bytes, 3 * total);
  // One read per 1 MiB chunk serves all three destinations.
  EXPECT_EQ(observed.reads, total / EngineOptions{}.chunk_bytes);
  EXPECT_EQ(observed.read_bytes, total);
}

// A single overlapping extent pair on one device behaves like memmove, forwards and
// backwards, offload allowed or not, for shifts below, at and above the chunk size.
TEST_F(EngineTest, OverlapOnOneDeviceIsMemmove) {
  auto engine = Engine({.chunk_bytes = 64 << 10, .queue_depth = 4});
  for (bool offload : {true, false}) {
    for (int64_t shift : {int64_t{512}, int64_t{4096 * 3}, int64_t{-4096 * 5}, int64_t{64 << 10},
                          int64_t{-(100 << 10)}, int64_t{300 << 10}}) {
      SCOPED_TRACE("shift " + std::to_string(shift) + " offload " + std::to_string(offload));
      auto dev = Ram(4 << 20, 512);
      Bytes img = Fill(*dev);
      const uint64_t src_byte = 1 << 20, len = 1 << 20;
      const uint64_t dst_byte = src_byte + shift;
      CopyDescriptor d{dev.get(),
                       {{Lba(src_byte / 512), BlockCount(len / 512)}},
                       {{dev.get(), {{Lba(dst_byte / 512), BlockCount(len / 512)}}}},
                       offload};
      std::memmove(img.data() + dst_byte, img.data() + src_byte, len);
      CopyResult r = Run(*engine, d);
      ASSERT_EQ(r.status, IoStatus::kOk);
      EXPECT_TRUE(SameBytes(Contents(*dev), img));
      ExpectCountersAddUp(r, len);
      EXPECT_EQ(r.counters.emulated_bytes, len);
      if (offload) {
        EXPECT_TRUE(HasNote(r, "overlap"));
      }
    }
  }
}

// Pieces that overlap nothing are still offloaded next to an overlapping pair; pieces that
// feed each other (A -> B, then B -> C) run in list order.
TEST_F(EngineTest, OverlapOnlySerialisesThePiecesInvolved) {
  auto engine = Engine({.chunk_bytes = 32 << 10});
  auto dev = Ram(8 << 20, 512);
  Bytes img = Fill(*dev);
  const uint64_t kB = 1024;
  // Piece 0: [0, 256K) -> [64K, 320K) overlaps itself (memmove backwards).
  // Piece 1: [1M, 1M+128K) -> [2M, 2M+128K) touches nothing else: offloaded.
  // Piece 2: [4M, 4M+128K) -> [5M, 5M+128K), then piece 3: [5M, 5M+128K) -> [6M, ...): list
  // order, so piece 3 copies what piece 2 wrote.
  struct Pair {
    uint64_t src, dst, len;
  };
  const Pair pairs[] = {{0, 64 * kB, 256 * kB},
                        {1024 * kB, 2048 * kB, 128 * kB},
                        {4096 * kB, 5120 * kB, 128 * kB},
                        {5120 * kB, 6144 * kB, 128 * kB}};
  CopyDescriptor d{dev.get(), {}, {{dev.get(), {}}}};
  for (const Pair& p : pairs) {
    d.src_extents.push_back({Lba(p.src / 512), BlockCount(p.len / 512)});
    d.dsts[0].extents.push_back({Lba(p.dst / 512), BlockCount(p.len / 512)});
    std::memmove(img.data() + p.dst, img.data() + p.src, p.len);
  }
  CopyResult r = Run(*engine, d);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_TRUE(SameBytes(Contents(*dev), img));
  EXPECT_EQ(r.counters.offloaded_bytes, 128 * kB);
  EXPECT_EQ(r.counters.emulated_bytes, (256 + 128 + 128) * kB);
  EXPECT_TRUE(HasNote(r, "overlap"));
}

TEST_F(EngineTest, ProgressIsMonotonicAndComplete) {
  auto engine = Engine({.chunk_bytes = 64 << 10, .queue_depth = 2});
  auto src = Ram(8 << 20, 512);
  auto dst = Ram(8 << 20, 512);
  CopyDescriptor d{
      src.get(), {{Lba(0), BlockCount(16384)}}, {{dst.get(), {{Lba(0), BlockCount(16384)}}}}};
  bool done = false;
  CopyResult result;
  auto job = engine->Submit(d, [&](CopyResult r) {
    result = std::move(r);
    done = true;
  });
  ASSERT_TRUE(job.ok());
  uint64_t last = 0;
  int samples = 0;
  while (!done) {
    reactor_->RunOnce(true);
    CopyCounters c = (*job)->progress();
    EXPECT_GE(c.done_bytes, last);
    EXPECT_EQ(c.total_bytes, 8u << 20);
    EXPECT_EQ(c.done_bytes, c.offloaded_bytes + c.emulated_bytes);
    last = c.done_bytes;
    ++samples;
  }
  EXPECT_GT(samples, 10);
  EXPECT_EQ(result.counters.done_bytes, 8u << 20);
  EXPECT_EQ((*job)->progress().done_bytes, 8u << 20);
}

// max_buffers 2 and queue_depth 16: a 64 MiB copy completes through two bounce buffers, and
// never has more than two chunks in flight; two jobs share the same two buffers.
TEST_F(EngineTest, MemoryIsBoundedByTheBufferPool) {
  auto engine = Engine({.chunk_bytes = 256 << 10, .queue_depth = 16, .max_buffers = 2});
  auto src_ram = Ram(64 << 20, 512);
  const Bytes s = Fill(*src_ram);
  testing::ObservingDevice src(src_ram, "observed-src");
  auto dst_ram = Ram(64 << 20, 4096);
  testing::ObservingDevice dst(dst_ram, "observed-dst");
  CopyDescriptor d{&src, {{Lba(0), BlockCount(131072)}}, {{&dst, {{Lba(0), BlockCount(16384)}}}}};
  CopyResult r = Run(*engine, d);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_TRUE(SameBytes(Contents(*dst_ram), s));
  EXPECT_LE(src.max_in_flight, 2);
  EXPECT_LE(src.max_in_flight + dst.max_in_flight, 4);
  EXPECT_EQ(src.buffers.size(), 2u);  // only the pool's buffers carry payload
  EXPECT_EQ(dst.buffers, src.buffers);

  auto dst2 = Ram(64 << 20, 512);
  int done = 0;
  for (block::BlockDevice* to :
       {static_cast<block::BlockDevice*>(&dst), static_cast<block::BlockDevice*>(dst2.get())}) {
    const uint64_t blocks = 32768 * 512 / to->geometry().block_size;
    CopyDescriptor half{
        &src, {{Lba(0), BlockCount(32768)}}, {{to, {{Lba(0), BlockCount(blocks)}}}}};
    ASSERT_TRUE(engine
                    ->Submit(half,
                             [&](CopyResult res) {
                               EXPECT_EQ(res.status, IoStatus::kOk);
                               ++done;
                             })
                    .ok());
  }
  reactor_->RunUntil([&] { return done == 2; });
  EXPECT_LE(src.max_in_flight, 2);
  EXPECT_EQ(src.buffers.size(), 2u);
}

// Jobs waiting for the pool take turns: with one buffer, a second job progresses while the
// first still runs instead of waiting for it to finish.
TEST_F(EngineTest, JobsTakeTurnsWithTheBufferPool) {
  auto engine = Engine({.chunk_bytes = 64 << 10, .queue_depth = 4, .max_buffers = 1});
  auto src = std::make_shared<backends::FaultyDevice>(Ram(4 << 20, 512));
  src->SetDelay(std::chrono::microseconds(100));
  auto dst1 = Ram(4 << 20, 512);
  auto dst2 = Ram(4 << 20, 512);
  std::shared_ptr<CopyJob> jobs[2];
  uint64_t other_done_at_finish[2] = {};
  int done = 0;
  block::BlockDevice* dsts[2] = {dst1.get(), dst2.get()};
  for (int i = 0; i < 2; ++i) {
    CopyDescriptor d{
        src.get(), {{Lba(0), BlockCount(4096)}}, {{dsts[i], {{Lba(0), BlockCount(4096)}}}}};
    jobs[i] = engine
                  ->Submit(d,
                           [&, i](CopyResult r) {
                             EXPECT_EQ(r.status, IoStatus::kOk);
                             other_done_at_finish[i] = jobs[1 - i]->progress().done_bytes;
                             ++done;
                           })
                  .value();
  }
  reactor_->RunUntil([&] { return done == 2; });
  EXPECT_GE(other_done_at_finish[0], 512u << 10);  // job 1 had its turns before job 0 ended
  EXPECT_EQ(other_done_at_finish[1], 2u << 20);
}

TEST_F(EngineTest, ThrottleHoldsTheRateForEmulatedAndOffloadedCopies) {
  // 4 MiB at 16 MiB/s: the burst (1.6 MiB) passes at once, the rest takes >= 150 ms.
  for (bool offload : {false, true}) {
    auto engine = Engine({.chunk_bytes = 256 << 10, .throttle_bytes_per_sec = 16 << 20});
    auto arena = std::make_shared<RamArena>();
    auto src = Ram(4 << 20, 512, arena);
    auto dst = Ram(4 << 20, 512, arena);
    CopyDescriptor d{src.get(),
                     {{Lba(0), BlockCount(8192)}},
                     {{dst.get(), {{Lba(0), BlockCount(8192)}}}},
                     offload};
    const auto start = std::chrono::steady_clock::now();
    CopyResult r = Run(*engine, d);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_EQ(r.status, IoStatus::kOk);
    EXPECT_EQ(offload ? r.counters.offloaded_bytes : r.counters.emulated_bytes, 4u << 20);
    EXPECT_GE(elapsed, std::chrono::milliseconds(140)) << "offload " << offload;
  }
}

TEST_F(EngineTest, ManyJobsAtOnce) {
  auto engine = Engine({.chunk_bytes = 64 << 10, .max_buffers = 4});
  auto src = Ram(8 << 20, 512);
  const Bytes s = Fill(*src);
  std::vector<std::shared_ptr<backends::RamDevice>> dsts;
  int done = 0;
  for (int i = 0; i < 8; ++i) {
    dsts.push_back(Ram(1 << 20, 512));
    CopyDescriptor d{src.get(),
                     {{Lba(i * 2048), BlockCount(2048)}},
                     {{dsts.back().get(), {{Lba(0), BlockCount(2048)}}}}};
    ASSERT_TRUE(engine
                    ->Submit(d,
                             [&](CopyResult r) {
                               EXPECT_EQ(r.status, IoStatus::kOk);
                               ++done;
                             })
                    .ok());
  }
  EXPECT_EQ(engine->active_jobs(), 8u);
  reactor_->RunUntil([&] { return done == 8; });
  EXPECT_EQ(engine->active_jobs(), 0u);
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(SameBytes(Contents(*dsts[i]),
                          Bytes(s.begin() + i * (1 << 20), s.begin() + (i + 1) * (1 << 20))));
  }
}

// Not a timing assertion: prints what a 256 MiB RAM copy costs each way, for the log. The
// destination is written first, so that page faults of fresh memory are not what is timed.
TEST_F(EngineTest, TimingOf256MiBRamCopyForTheLog) {
  constexpr uint64_t kBytes = 256ull << 20;
  auto engine = Engine();
  auto arena = std::make_shared<RamArena>();
  auto write_pattern = [&](block::BlockDevice& dev, uint8_t seed) {
    Bytes pattern(8 << 20);
    for (uint64_t off = 0; off < kBytes; off += pattern.size()) {
      for (size_t i = 0; i < pattern.size(); i += 512)
        pattern[i] = static_cast<uint8_t>(off + i + seed);
      ASSERT_EQ(Io(dev, block::IoOp::kWrite, off, &pattern), IoStatus::kOk);
    }
  };
  auto src = Ram(kBytes, 4096, arena);
  write_pattern(*src, 1);
  for (bool native : {true, false}) {
    auto dst = native ? Ram(kBytes, 4096, arena) : Ram(kBytes, 4096);
    write_pattern(*dst, 2);
    CopyDescriptor d{src.get(),
                     {{Lba(0), BlockCount(kBytes / 4096)}},
                     {{dst.get(), {{Lba(0), BlockCount(kBytes / 4096)}}}}};
    const auto start = std::chrono::steady_clock::now();
    CopyResult r = Run(*engine, d);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_EQ(r.status, IoStatus::kOk);
    EXPECT_EQ(native ? r.counters.offloaded_bytes : r.counters.emulated_bytes, kBytes);
    std::printf("[ timing   ] 256 MiB RAM -> RAM %s: %.1f ms (%.0f MiB/s)\n",
                native ? "offloaded" : "emulated ", s * 1e3, 256 / s);
    EXPECT_TRUE(SameBytes(Contents(*dst), Contents(*src)));
  }
}

}  // namespace
}  // namespace ferry::copy
