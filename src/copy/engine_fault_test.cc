// Copy-engine failure paths: read and write errors, refused and failed native copies,
// cancel, invalid descriptors. Faults come from the faulty device (faulty_device.h).
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "backends/faulty/faulty_device.h"
#include "backends/ram/ram_device.h"
#include "copy/testing/copy_test_util.h"
#include "ferry/copy.h"

namespace ferry::copy {
namespace {

using backends::FaultyDevice;
using backends::RamArena;
using testing::Bytes;
using testing::SameBytes;

class EngineFaultTest : public testing::CopyTest {};

// The failed range names the faulty block, and its device, LBA and stream offset agree with
// the extent list it lies in.
void ExpectRangeHolds(const RangeError& e, const std::vector<Extent>& extents, uint64_t bad_lba) {
  const uint32_t bs = e.dev->geometry().block_size;
  EXPECT_LE(e.lba.value(), bad_lba);
  EXPECT_GT(e.lba.value() * bs + e.len_bytes, bad_lba * bs);
  EXPECT_EQ(testing::CopyTest::DeviceByte(extents, bs, e.stream_offset_bytes), e.lba.value() * bs);
}

TEST_F(EngineFaultTest, ReadFailureReportsTheSourceRange) {
  auto engine = Engine({.chunk_bytes = 64 << 10, .queue_depth = 2});
  auto src = std::make_shared<FaultyDevice>(Ram(4 << 20, 512));
  auto dst = Ram(4 << 20, 512);
  src->AddErrorRange({.lba = Lba(3000), .blocks = BlockCount(1), .on_write = false});
  const std::vector<Extent> sx = {{Lba(4096), BlockCount(2048)}, {Lba(0), BlockCount(6144)}};
  CopyDescriptor d{src.get(), sx, {{dst.get(), {{Lba(0), BlockCount(8192)}}}}};
  CopyResult r = Run(*engine, d);
  EXPECT_EQ(r.status, IoStatus::kIoError);
  ASSERT_EQ(r.errors.size(), 1u);
  const RangeError& e = r.errors[0];
  EXPECT_TRUE(e.on_source);
  EXPECT_EQ(e.dev, src.get());
  EXPECT_EQ(e.status, IoStatus::kIoError);
  ExpectRangeHolds(e, sx, 3000);
  EXPECT_EQ(e.len_bytes, 64u << 10);  // one chunk
  EXPECT_LT(r.counters.done_bytes, r.counters.total_bytes);
}

TEST_F(EngineFaultTest, WriteFailureReportsTheDestination) {
  auto engine = Engine({.chunk_bytes = 128 << 10});
  auto src = Ram(4 << 20, 512);
  auto good = Ram(4 << 20, 512);
  auto bad = std::make_shared<FaultyDevice>(Ram(4 << 20, 4096));
  bad->AddErrorRange(
      {.lba = Lba(100), .blocks = BlockCount(1), .on_read = false, .status = IoStatus::kNoSpace});
  const std::vector<Extent> bad_x = {{Lba(600), BlockCount(256)}, {Lba(64), BlockCount(256)}};
  CopyDescriptor d{src.get(),
                   {{Lba(2048), BlockCount(4096)}},
                   {{good.get(), {{Lba(0), BlockCount(4096)}}}, {bad.get(), bad_x}}};
  CopyResult r = Run(*engine, d);
  EXPECT_EQ(r.status, IoStatus::kNoSpace);
  ASSERT_EQ(r.errors.size(), 1u);
  const RangeError& e = r.errors[0];
  EXPECT_FALSE(e.on_source);
  EXPECT_EQ(e.dst_index, 1u);
  EXPECT_EQ(e.dev, bad.get());
  EXPECT_EQ(e.status, IoStatus::kNoSpace);
  ExpectRangeHolds(e, bad_x, 100);
}

// A failed leg reports each of its segments on the destination; the faulty block is in one.
TEST_F(EngineFaultTest, FailedNativeLegReportsItsRanges) {
  auto engine = Engine();
  auto arena = std::make_shared<RamArena>();
  auto src = Ram(4 << 20, 512, arena);
  auto dst = std::make_shared<FaultyDevice>(Ram(4 << 20, 512, arena));
  dst->AddErrorRange({.lba = Lba(700), .blocks = BlockCount(1), .on_read = false});
  const std::vector<Extent> dx = {{Lba(512), BlockCount(256)}, {Lba(0), BlockCount(256)}};
  CopyDescriptor d{src.get(), {{Lba(16), BlockCount(512)}}, {{dst.get(), dx}}};
  CopyResult r = Run(*engine, d);
  EXPECT_EQ(r.status, IoStatus::kIoError);
  ASSERT_EQ(r.errors.size(), 2u);  // one leg of two segments
  uint64_t stream = 0;
  for (const RangeError& e : r.errors) {
    EXPECT_FALSE(e.on_source);
    EXPECT_EQ(e.dev, dst.get());
    EXPECT_EQ(e.stream_offset_bytes, stream);
    EXPECT_EQ(e.lba.value() * 512, DeviceByte(dx, 512, e.stream_offset_bytes));
    stream += e.len_bytes;
  }
  EXPECT_EQ(r.errors[0].lba.value(), 512u);
  EXPECT_EQ(r.errors[1].lba.value(), 0u);
}

TEST_F(EngineFaultTest, RefusedNativeCopyFallsBackToEmulation) {
  auto engine = Engine({.chunk_bytes = 256 << 10});
  auto arena = std::make_shared<RamArena>();
  auto src = Ram(4 << 20, 512, arena);
  auto dst_inner = Ram(4 << 20, 512, arena);
  const Bytes s = Fill(*src);
  Fill(*dst_inner);
  auto dst = std::make_shared<FaultyDevice>(dst_inner);
  dst->SetCopyStatus(IoStatus::kNotSupported);
  CopyDescriptor d{src.get(),
                   {{Lba(4096), BlockCount(4096)}, {Lba(0), BlockCount(4096)}},
                   {{dst.get(), {{Lba(0), BlockCount(8192)}}}}};
  CopyResult r = Run(*engine, d);
  ASSERT_EQ(r.status, IoStatus::kOk);
  Bytes want(s.begin() + (2 << 20), s.end());
  want.insert(want.end(), s.begin(), s.begin() + (2 << 20));
  EXPECT_TRUE(SameBytes(Contents(*dst_inner), want));
  EXPECT_GT(dst->copy_legs(), 0u);
  EXPECT_EQ(r.counters.emulated_bytes, 4u << 20);
  EXPECT_EQ(r.counters.offloaded_bytes, 0u);
  EXPECT_EQ(r.counters.done_bytes, 4u << 20);
  ASSERT_EQ(r.offload_notes.size(), 1u);
  EXPECT_EQ(r.offload_notes[0],
            std::string(dst->name()) + ": native copy refused for some ranges; emulated");
}

TEST_F(EngineFaultTest, FailedNativeCopyIsReported) {
  auto engine = Engine();
  auto arena = std::make_shared<RamArena>();
  auto src = Ram(4 << 20, 512, arena);
  auto dst = std::make_shared<FaultyDevice>(Ram(4 << 20, 512, arena));
  dst->SetCopyStatus(IoStatus::kIoError);
  CopyDescriptor d{
      src.get(), {{Lba(16), BlockCount(64)}}, {{dst.get(), {{Lba(32), BlockCount(64)}}}}};
  CopyResult r = Run(*engine, d);
  EXPECT_EQ(r.status, IoStatus::kIoError);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_FALSE(r.errors[0].on_source);
  EXPECT_EQ(r.errors[0].dst_index, 0u);
  EXPECT_EQ(r.errors[0].lba.value(), 32u);
  EXPECT_EQ(r.errors[0].stream_offset_bytes, 0u);
  EXPECT_EQ(r.errors[0].len_bytes, 64u * 512);
  EXPECT_EQ(r.counters.done_bytes, 0u);
}

TEST_F(EngineFaultTest, CancelStopsInFlightCopies) {
  auto engine = Engine({.chunk_bytes = 64 << 10, .queue_depth = 2});
  auto src = std::make_shared<FaultyDevice>(Ram(64 << 20, 512));
  auto dst = Ram(64 << 20, 512);
  src->SetDelay(std::chrono::microseconds(500));
  CopyDescriptor d{
      src.get(), {{Lba(0), BlockCount(131072)}}, {{dst.get(), {{Lba(0), BlockCount(131072)}}}}};
  int calls = 0;
  CopyResult result;
  auto job = engine->Submit(d, [&](CopyResult r) {
    ++calls;
    result = std::move(r);
  });
  ASSERT_TRUE(job.ok());
  reactor_->RunUntil([&] { return (*job)->progress().done_bytes >= (1u << 20); });
  (*job)->Cancel();
  (*job)->Cancel();  // idempotent
  EXPECT_EQ(calls, 0);
  reactor_->RunUntil([&] { return calls > 0; });
  EXPECT_EQ(result.status, IoStatus::kAborted);
  EXPECT_TRUE(result.errors.empty());
  EXPECT_LT(result.counters.done_bytes, result.counters.total_bytes);
  EXPECT_GE(result.counters.done_bytes, 1u << 20);
  EXPECT_EQ((*job)->progress().done_bytes, result.counters.done_bytes);
  (*job)->Cancel();  // after completion: no effect
  for (int i = 0; i < 10; ++i) reactor_->RunOnce(false);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(engine->active_jobs(), 0u);
}

TEST_F(EngineFaultTest, CancelFromAnotherThread) {
  auto engine = Engine({.chunk_bytes = 64 << 10, .queue_depth = 1});
  auto src = std::make_shared<FaultyDevice>(Ram(16 << 20, 512));
  auto dst = Ram(16 << 20, 512);
  src->SetDelay(std::chrono::microseconds(200));
  CopyDescriptor d{
      src.get(), {{Lba(0), BlockCount(32768)}}, {{dst.get(), {{Lba(0), BlockCount(32768)}}}}};
  int calls = 0;
  CopyResult result;
  auto job = engine->Submit(d, [&](CopyResult r) {
    result = std::move(r);
    ++calls;
  });
  ASSERT_TRUE(job.ok());
  std::thread t([j = *job] {
    (void)j->progress();
    j->Cancel();
  });
  reactor_->RunUntil([&] { return calls > 0; });
  t.join();
  for (int i = 0; i < 10; ++i) reactor_->RunOnce(false);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(result.status, IoStatus::kAborted);
}

// A cancelled job that was waiting for a bounce buffer passes the pool's wakeup on: the
// other job, waiting behind it, still finishes.
TEST_F(EngineFaultTest, CancelWhileWaitingForBuffersDoesNotStallOthers) {
  auto engine = Engine({.chunk_bytes = 64 << 10, .queue_depth = 4, .max_buffers = 1});
  auto src = std::make_shared<FaultyDevice>(Ram(8 << 20, 512));
  src->SetDelay(std::chrono::microseconds(300));
  auto dst1 = Ram(8 << 20, 512);
  auto dst2 = Ram(8 << 20, 512);
  CopyResult results[2];
  int done = 0;
  std::shared_ptr<CopyJob> jobs[2];
  block::BlockDevice* dsts[2] = {dst1.get(), dst2.get()};
  for (int i = 0; i < 2; ++i) {
    CopyDescriptor d{
        src.get(), {{Lba(0), BlockCount(4096)}}, {{dsts[i], {{Lba(0), BlockCount(4096)}}}}};
    jobs[i] = engine
                  ->Submit(d,
                           [&, i](CopyResult r) {
                             results[i] = std::move(r);
                             ++done;
                           })
                  .value();
  }
  reactor_->RunUntil([&] { return jobs[0]->progress().done_bytes > 0; });
  jobs[0]->Cancel();
  reactor_->RunUntil([&] { return done == 2; });
  EXPECT_EQ(results[0].status, IoStatus::kAborted);
  EXPECT_EQ(results[1].status, IoStatus::kOk);
  EXPECT_EQ(results[1].counters.done_bytes, 2u << 20);
}

// Cancel while the throttle holds the job back: no new work, completion with kAborted.
TEST_F(EngineFaultTest, CancelWhileThrottled) {
  auto engine = Engine({.chunk_bytes = 64 << 10, .throttle_bytes_per_sec = 1 << 20});
  auto src = Ram(64 << 20, 512);
  auto dst = Ram(64 << 20, 512);
  CopyDescriptor d{src.get(),
                   {{Lba(0), BlockCount(131072)}},
                   {{dst.get(), {{Lba(0), BlockCount(131072)}}}},
                   false};
  int calls = 0;
  CopyResult result;
  auto job = engine->Submit(d, [&](CopyResult r) {
    result = std::move(r);
    ++calls;
  });
  ASSERT_TRUE(job.ok());
  reactor_->RunUntil([&] { return (*job)->progress().done_bytes > 0; });
  (*job)->Cancel();
  reactor_->RunUntil([&] { return calls > 0; });
  EXPECT_EQ(result.status, IoStatus::kAborted);
  EXPECT_LT(result.counters.done_bytes, 64u << 20);
}

TEST_F(EngineFaultTest, InvalidDescriptorsAreRefusedWithoutCompletion) {
  auto engine = Engine({.chunk_bytes = 4096});
  auto a = Ram(1 << 20, 512);
  auto b = Ram(1 << 20, 4096);
  auto big = Ram(1 << 20, 8192);
  auto ro =
      *backends::RamDevice::Create({.name = "ro-disk", .size_bytes = 1 << 20, .read_only = true});
  bool called = false;
  auto refuse = [&](CopyDescriptor d, StatusCode code, std::string_view text) {
    auto r = engine->Submit(std::move(d), [&](CopyResult) { called = true; });
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(text), std::string_view::npos) << r.status().ToString();
  };
  const CopyDescriptor ok{
      a.get(), {{Lba(0), BlockCount(8)}}, {{b.get(), {{Lba(0), BlockCount(1)}}}}};
  const auto kInvalid = StatusCode::kInvalidArgument;
  CopyDescriptor d = ok;
  d.src = nullptr;
  refuse(d, kInvalid, "no source device");
  d = ok;
  d.dsts.clear();
  refuse(d, kInvalid, "1 to 8 destinations, not 0");
  d = ok;
  d.dsts.assign(9, ok.dsts[0]);
  refuse(d, kInvalid, "not 9");
  d = ok;
  d.dsts.push_back({nullptr, {}});
  refuse(d, kInvalid, "destination 1 has no device");
  d = ok;
  d.dsts[0] = {ro.get(), {{Lba(0), BlockCount(8)}}};
  refuse(d, StatusCode::kFailedPrecondition, "'ro-disk' is read-only");
  d = ok;
  d.src_extents.clear();
  refuse(d, kInvalid, "has no extents");
  d = ok;
  d.dsts[0].extents = {{Lba(0), BlockCount(0)}};
  refuse(d, kInvalid, "extent 0 is empty");
  d = ok;
  d.src_extents = {{Lba(2040), BlockCount(16)}};
  refuse(d, kInvalid, "past the end");
  d = ok;
  d.src_extents = {{Lba(0), BlockCount(4)}, {Lba(8), BlockCount(4)}};
  refuse(d, kInvalid, "not a multiple of 4096 bytes");
  d = ok;
  d.src_extents = {{Lba(0), BlockCount(16)}};
  refuse(d, kInvalid, "the lengths must match");
  d = {a.get(), {{Lba(0), BlockCount(16)}}, {{big.get(), {{Lba(0), BlockCount(1)}}}}};
  refuse(d, kInvalid, "raise EngineOptions::chunk_bytes");
  for (int i = 0; i < 10; ++i) reactor_->RunOnce(false);
  EXPECT_FALSE(called);
  EXPECT_EQ(engine->active_jobs(), 0u);

  EXPECT_FALSE(CopyEngine::Create(reactor_.get(), {.queue_depth = 0}).ok());
  EXPECT_FALSE(CopyEngine::Create(reactor_.get(), {.max_buffers = 0}).ok());
  EXPECT_FALSE(CopyEngine::Create(reactor_.get(), {.chunk_bytes = 100}).ok());
  EXPECT_FALSE(CopyEngine::Create(nullptr, {}).ok());
}

TEST_F(EngineFaultTest, SubmitOffTheReactorThreadIsRefused) {
  auto engine = Engine();
  auto a = Ram(1 << 20, 512);
  auto b = Ram(1 << 20, 512);
  Status st;
  std::thread t([&] {
    CopyDescriptor d{a.get(), {{Lba(0), BlockCount(8)}}, {{b.get(), {{Lba(0), BlockCount(8)}}}}};
    st = engine->Submit(d, [](CopyResult) { ADD_FAILURE() << "completed"; }).status();
  });
  t.join();
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  for (int i = 0; i < 10; ++i) reactor_->RunOnce(false);
}

// Even a copy that fails at once (every leg refused with an error, no delay) completes
// through the reactor, once.
TEST_F(EngineFaultTest, ImmediateFailureStillCompletesLaterAndOnce) {
  auto engine = Engine();
  auto arena = std::make_shared<RamArena>();
  auto src = Ram(1 << 20, 512, arena);
  auto dst = std::make_shared<FaultyDevice>(Ram(1 << 20, 512, arena));
  dst->SetCopyStatus(IoStatus::kIoError);
  dst->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(2048)});
  for (bool offload : {true, false}) {
    CopyDescriptor d{
        src.get(), {{Lba(0), BlockCount(64)}}, {{dst.get(), {{Lba(0), BlockCount(64)}}}}, offload};
    CopyResult r = Run(*engine, d);  // checks exactly once, never inside Submit
    EXPECT_EQ(r.status, IoStatus::kIoError);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_FALSE(r.errors[0].on_source);
  }
}

}  // namespace
}  // namespace ferry::copy
