// Copy-engine tests on RAM devices (offload = native copy inside one arena) with the
// faulty device for failures and delays. Every copy is checked byte by byte against a model.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "backends/faulty/faulty_device.h"
#include "backends/ram/ram_device.h"
#include "block/splitter.h"
#include "ferry/copy.h"
#include "io/reactor.h"

namespace ferry::copy {
namespace {

using backends::FaultyDevice;
using backends::RamArena;
using backends::RamDevice;
using Bytes = std::vector<uint8_t>;

constexpr size_t kEmulated = static_cast<size_t>(block::CopyMechanism::kEmulated);
constexpr size_t kRam = static_cast<size_t>(block::CopyMechanism::kRamNative);

// Counts requests in flight on the wrapped device (for the memory bound).
class CountingDevice : public block::BlockDevice {
 public:
  explicit CountingDevice(std::shared_ptr<block::BlockDevice> inner) : inner_(std::move(inner)) {}
  std::string_view name() const override { return "counting"; }
  std::string_view type() const override { return "counting"; }
  const block::Geometry& geometry() const override { return inner_->geometry(); }
  const block::QueueLimits& limits() const override { return inner_->limits(); }
  void Submit(block::IoRequest& req) override {
    auto* child = new block::IoRequest{req.op, req.flags, req.lba, req.blocks, req.iov, req.iovcnt};
    child->done = [this, child, &req](IoStatus s) {
      --in_flight;
      block::IoRequest& parent = req;
      delete child;
      parent.done(s);
    };
    max_in_flight = std::max(max_in_flight, ++in_flight);
    inner_->Submit(*child);
  }
  int in_flight = 0;
  int max_in_flight = 0;

 private:
  std::shared_ptr<block::BlockDevice> inner_;
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { reactor_ = io::Reactor::Create().value(); }

  std::unique_ptr<CopyEngine> Engine(EngineOptions o = {}) {
    auto e = CopyEngine::Create(reactor_.get(), o);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return std::move(e).value();
  }
  std::shared_ptr<RamDevice> Ram(uint64_t bytes, uint32_t bs,
                                 std::shared_ptr<RamArena> arena = nullptr) {
    auto d = RamDevice::Create({.name = "ram" + std::to_string(++n_),
                                .size_bytes = bytes,
                                .block_size = bs,
                                .arena = std::move(arena)});
    EXPECT_TRUE(d.ok());
    return *d;
  }
  IoStatus Io(block::BlockDevice& dev, block::IoOp op, uint64_t byte, Bytes* buf) {
    iovec iov{buf->data(), buf->size()};
    const uint32_t bs = dev.geometry().block_size;
    block::IoRequest req{.op = op,
                         .lba = Lba(byte / bs),
                         .blocks = BlockCount(buf->size() / bs),
                         .iov = &iov,
                         .iovcnt = 1};
    bool done = false;
    IoStatus st = IoStatus::kIoError;
    req.done = [&](IoStatus s) {
      st = s;
      done = true;
    };
    block::SubmitSplit(dev, req);
    reactor_->RunUntil([&] { return done; });
    return st;
  }
  Bytes Fill(block::BlockDevice& dev) {
    Bytes b(dev.geometry().size_bytes());
    for (auto& x : b) x = static_cast<uint8_t>(rng_());
    EXPECT_EQ(Io(dev, block::IoOp::kWrite, 0, &b), IoStatus::kOk);
    return b;
  }
  Bytes Contents(block::BlockDevice& dev) {
    Bytes b(dev.geometry().size_bytes());
    EXPECT_EQ(Io(dev, block::IoOp::kRead, 0, &b), IoStatus::kOk);
    return b;
  }
  // Runs a copy to completion, checking exactly-once and never-inside-Submit.
  CopyResult Run(CopyEngine& e, CopyDescriptor d, std::shared_ptr<CopyJob>* job_out = nullptr) {
    int calls = 0;
    bool in_submit = true;
    CopyResult result;
    auto job = e.Submit(std::move(d), [&](CopyResult r) {
      EXPECT_FALSE(in_submit) << "completion inside Submit";
      ++calls;
      result = std::move(r);
    });
    in_submit = false;
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    if (!job.ok()) return result;
    if (job_out) *job_out = *job;
    reactor_->RunUntil([&] { return calls > 0; });
    for (int i = 0; i < 20; ++i) reactor_->RunOnce(false);  // a second call would show here
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(e.active_jobs(), 0u);
    return result;
  }
  // Applies a copy to the model images (source image -> destination image).
  static void Model(const CopyDescriptor& d, const Bytes& src, Bytes* dst, size_t k) {
    Bytes stream;
    const uint32_t sbs = d.src->geometry().block_size;
    for (const Extent& e : d.src_extents) {
      stream.insert(stream.end(), src.begin() + e.lba.value() * sbs,
                    src.begin() + (e.lba.value() + e.blocks.value()) * sbs);
    }
    const uint32_t dbs = d.dsts[k].dev->geometry().block_size;
    uint64_t pos = 0;
    for (const Extent& e : d.dsts[k].extents) {
      uint64_t len = e.blocks.value() * dbs;
      std::memcpy(dst->data() + e.lba.value() * dbs, stream.data() + pos, len);
      pos += len;
    }
  }
  std::vector<Extent> RandomExtents(uint64_t total_bytes, const block::BlockDevice& dev,
                                    uint64_t unit_bytes, bool disjoint) {
    const uint32_t bs = dev.geometry().block_size;
    const uint64_t units = dev.geometry().size_bytes() / unit_bytes;
    std::vector<Extent> out;
    std::vector<bool> used(units, false);
    uint64_t left = total_bytes / unit_bytes;
    while (left > 0) {
      uint64_t n = std::min<uint64_t>(left, rng_() % 16 + 1);
      uint64_t at = rng_() % (units - n + 1);
      if (disjoint) {
        bool clash = false;
        for (uint64_t u = at; u < at + n; ++u) clash = clash || used[u];
        if (clash) continue;
        for (uint64_t u = at; u < at + n; ++u) used[u] = true;
      }
      out.push_back({Lba(at * unit_bytes / bs), BlockCount(n * unit_bytes / bs)});
      left -= n;
    }
    return out;
  }

  std::unique_ptr<io::Reactor> reactor_;
  std::mt19937 rng_{42};
  int n_ = 0;
};

TEST_F(EngineTest, RandomRangeListsOffloadedAndEmulatedLeaveTheSameBytes) {
  auto engine = Engine({.chunk_bytes = 64 << 10, .queue_depth = 4, .max_buffers = 8});
  const uint32_t sizes[][2] = {{512, 512}, {512, 4096}, {4096, 512}, {4096, 4096}};
  for (int iter = 0; iter < 24; ++iter) {
    const uint32_t sbs = sizes[iter % 4][0], dbs = sizes[iter % 4][1];
    auto arena = std::make_shared<RamArena>();
    auto src = Ram(4 << 20, sbs, arena);
    auto same = Ram(4 << 20, dbs, arena);  // native copy possible
    auto other = Ram(4 << 20, dbs);        // another arena: emulated
    Bytes src_img = Fill(*src);
    Bytes same_img = Fill(*same);
    Bytes other_img = same_img;
    ASSERT_EQ(Io(*other, block::IoOp::kWrite, 0, &other_img), IoStatus::kOk);
    const uint64_t total = (rng_() % 256 + 1) * 4096;
    auto sx = RandomExtents(total, *src, 4096, true);
    auto dx = RandomExtents(total, *same, 4096, true);
    for (int mode = 0; mode < 3; ++mode) {
      block::BlockDevice* dst = mode == 2 ? other.get() : same.get();
      CopyDescriptor d{src.get(), sx, {{dst, dx}}, /*allow_offload=*/mode != 1};
      Bytes model = mode == 2 ? other_img : same_img;
      Model(d, src_img, &model, 0);
      CopyResult r = Run(*engine, d);
      ASSERT_EQ(r.status, IoStatus::kOk) << "iter " << iter << " mode " << mode;
      EXPECT_EQ(Contents(*dst), model) << "iter " << iter << " mode " << mode;
      EXPECT_EQ(r.counters.total_bytes, total);
      EXPECT_EQ(r.counters.done_bytes, total);
      if (mode == 0) {
        EXPECT_EQ(r.counters.offloaded_bytes, total);
        EXPECT_EQ(r.counters.by_mechanism[kRam], total);
        EXPECT_TRUE(r.offload_notes.empty());
      } else {
        EXPECT_EQ(r.counters.emulated_bytes, total);
        EXPECT_EQ(r.counters.by_mechanism[kEmulated], total);
        EXPECT_FALSE(r.offload_notes.empty());
      }
      // Restore the destination for the next mode.
      Bytes restore = mode == 2 ? other_img : same_img;
      ASSERT_EQ(Io(*dst, block::IoOp::kWrite, 0, &restore), IoStatus::kOk);
    }
  }
}

TEST_F(EngineTest, MultipleDestinationsReadOnceWriteEach) {
  auto engine = Engine();
  auto arena = std::make_shared<RamArena>();
  auto src = Ram(8 << 20, 512, arena);
  auto native = Ram(8 << 20, 512, arena);
  auto e1 = Ram(8 << 20, 4096);
  auto e2 = Ram(8 << 20, 512);
  Bytes s = Fill(*src);
  // Faulty wrappers count requests; faulty -> faulty(ram) in one arena still copies natively.
  auto faulty_src = std::make_shared<FaultyDevice>(src);
  auto faulty_native = std::make_shared<FaultyDevice>(native);
  const uint64_t total = 6 << 20;
  CopyDescriptor d{faulty_src.get(),
                   {{Lba(1024), BlockCount(total / 512)}},
                   {{faulty_native.get(), {{Lba(0), BlockCount(total / 512)}}},
                    {e1.get(), {{Lba(256), BlockCount(total / 4096)}}},
                    {e2.get(), {{Lba(8), BlockCount(total / 512)}}}}};
  std::vector<Bytes> models = {Contents(*native), Contents(*e1), Contents(*e2)};
  for (size_t k = 0; k < 3; ++k) Model(d, s, &models[k], k);
  const uint64_t reads_before = faulty_src->requests(block::IoOp::kRead);
  CopyResult r = Run(*engine, d);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(Contents(*native), models[0]);
  EXPECT_EQ(Contents(*e1), models[1]);
  EXPECT_EQ(Contents(*e2), models[2]);
  EXPECT_EQ(r.counters.total_bytes, 3 * total);
  EXPECT_EQ(r.counters.done_bytes, 3 * total);
  EXPECT_EQ(r.counters.offloaded_bytes, total);
  EXPECT_EQ(r.counters.emulated_bytes, 2 * total);
  // One read per chunk serves both emulated destinations.
  EXPECT_LE(faulty_src->requests(block::IoOp::kRead) - reads_before, total / (1 << 20) * 2);
}

TEST_F(EngineTest, OverlapOnOneDeviceIsMemmove) {
  auto engine = Engine({.chunk_bytes = 64 << 10});
  for (bool offload : {true, false}) {
    for (int64_t shift : {int64_t{4096 * 3}, int64_t{-4096 * 5}, int64_t{512}}) {
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
      EXPECT_EQ(Contents(*dev), img) << "shift " << shift << " offload " << offload;
      EXPECT_EQ(r.counters.done_bytes, len);
    }
  }
}

TEST_F(EngineTest, ReadFailureReportsTheSourceRange) {
  auto engine = Engine({.chunk_bytes = 64 << 10, .queue_depth = 2});
  auto src = Ram(4 << 20, 512);
  auto dst = Ram(4 << 20, 512);
  Fill(*src);
  auto faulty = std::make_shared<FaultyDevice>(src);
  faulty->AddErrorRange({.lba = Lba(3000), .blocks = BlockCount(1), .on_write = false});
  CopyDescriptor d{
      faulty.get(), {{Lba(0), BlockCount(8192)}}, {{dst.get(), {{Lba(0), BlockCount(8192)}}}}};
  CopyResult r = Run(*engine, d);
  EXPECT_EQ(r.status, IoStatus::kIoError);
  ASSERT_EQ(r.errors.size(), 1u);
  const RangeError& e = r.errors[0];
  EXPECT_TRUE(e.on_source);
  EXPECT_EQ(e.dev, faulty.get());
  EXPECT_LE(e.lba.value(), 3000u);
  EXPECT_GT(e.lba.value() + e.len_bytes / 512, 3000u);
  EXPECT_EQ(e.stream_offset_bytes, e.lba.value() * 512);
  EXPECT_LT(r.counters.done_bytes, r.counters.total_bytes);
}

TEST_F(EngineTest, WriteFailureReportsTheDestination) {
  auto engine = Engine({.chunk_bytes = 128 << 10});
  auto src = Ram(4 << 20, 512);
  auto good = Ram(4 << 20, 512);
  auto bad_inner = Ram(4 << 20, 4096);
  Fill(*src);
  auto bad = std::make_shared<FaultyDevice>(bad_inner);
  bad->AddErrorRange(
      {.lba = Lba(100), .blocks = BlockCount(1), .on_read = false, .status = IoStatus::kNoSpace});
  // Source extent at 1 MiB; destination 1 (bad) at block 64 (256 KiB): block 100 is stream
  // byte (100-64)*4096 = 147456.
  CopyDescriptor d{
      src.get(),
      {{Lba(2048), BlockCount(4096)}},
      {{good.get(), {{Lba(0), BlockCount(4096)}}}, {bad.get(), {{Lba(64), BlockCount(512)}}}}};
  CopyResult r = Run(*engine, d);
  EXPECT_EQ(r.status, IoStatus::kNoSpace);
  ASSERT_FALSE(r.errors.empty());
  const RangeError& e = r.errors[0];
  EXPECT_FALSE(e.on_source);
  EXPECT_EQ(e.dst_index, 1u);
  EXPECT_EQ(e.dev, bad.get());
  EXPECT_LE(e.stream_offset_bytes, 147456u);
  EXPECT_GT(e.stream_offset_bytes + e.len_bytes, 147456u);
  EXPECT_EQ(e.lba.value() * 4096, e.stream_offset_bytes + 64 * 4096);
}

TEST_F(EngineTest, RefusedNativeCopyFallsBackToEmulation) {
  auto engine = Engine();
  auto arena = std::make_shared<RamArena>();
  auto src = Ram(4 << 20, 512, arena);
  auto dst_inner = Ram(4 << 20, 512, arena);
  Bytes s = Fill(*src);
  auto dst = std::make_shared<FaultyDevice>(dst_inner);
  dst->SetCopyStatus(IoStatus::kNotSupported);
  CopyDescriptor d{
      src.get(), {{Lba(0), BlockCount(8192)}}, {{dst.get(), {{Lba(0), BlockCount(8192)}}}}};
  CopyResult r = Run(*engine, d);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(Contents(*dst_inner), s);
  EXPECT_GT(dst->copy_legs(), 0u);
  EXPECT_EQ(r.counters.emulated_bytes, 4u << 20);
  EXPECT_EQ(r.counters.offloaded_bytes, 0u);
  ASSERT_FALSE(r.offload_notes.empty());
  EXPECT_NE(r.offload_notes[0].find("refused native copy"), std::string::npos);
}

TEST_F(EngineTest, FailedNativeCopyIsReported) {
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
  EXPECT_EQ(r.errors[0].lba.value(), 32u);
  EXPECT_EQ(r.errors[0].len_bytes, 64u * 512);
}

TEST_F(EngineTest, CancelStopsInFlightCopies) {
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
  reactor_->RunUntil([&] { return calls > 0; });
  EXPECT_EQ(result.status, IoStatus::kAborted);
  EXPECT_LT(result.counters.done_bytes, result.counters.total_bytes);
  EXPECT_GE(result.counters.done_bytes, 1u << 20);
  (*job)->Cancel();  // after completion: no effect
  for (int i = 0; i < 10; ++i) reactor_->RunOnce(false);
  EXPECT_EQ(calls, 1);
}

TEST_F(EngineTest, CancelFromAnotherThread) {
  auto engine = Engine({.chunk_bytes = 64 << 10, .queue_depth = 1});
  auto src = std::make_shared<FaultyDevice>(Ram(16 << 20, 512));
  auto dst = Ram(16 << 20, 512);
  src->SetDelay(std::chrono::microseconds(200));
  CopyDescriptor d{
      src.get(), {{Lba(0), BlockCount(32768)}}, {{dst.get(), {{Lba(0), BlockCount(32768)}}}}};
  bool done = false;
  CopyResult result;
  auto job = engine->Submit(d, [&](CopyResult r) {
    result = std::move(r);
    done = true;
  });
  ASSERT_TRUE(job.ok());
  std::thread t([j = *job] { j->Cancel(); });
  reactor_->RunUntil([&] { return done; });
  t.join();
  EXPECT_EQ(result.status, IoStatus::kAborted);
}

TEST_F(EngineTest, ProgressIsMonotonicAndComplete) {
  auto engine = Engine({.chunk_bytes = 64 << 10, .queue_depth = 2});
  auto src = std::make_shared<FaultyDevice>(Ram(8 << 20, 512));
  auto dst = Ram(8 << 20, 512);
  src->SetDelay(std::chrono::microseconds(100));
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

TEST_F(EngineTest, MemoryIsBoundedByTheBufferPool) {
  auto engine = Engine({.chunk_bytes = 256 << 10, .queue_depth = 16, .max_buffers = 2});
  auto src_ram = Ram(64 << 20, 512);
  Bytes s = Fill(*src_ram);
  auto src = std::make_shared<CountingDevice>(src_ram);
  auto dst = Ram(64 << 20, 512);
  CopyDescriptor d{
      src.get(), {{Lba(0), BlockCount(131072)}}, {{dst.get(), {{Lba(0), BlockCount(131072)}}}}};
  CopyResult r = Run(*engine, d);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(Contents(*dst), s);
  EXPECT_LE(src->max_in_flight, 2);
  EXPECT_GE(src->max_in_flight, 1);
}

TEST_F(EngineTest, ThrottleHoldsTheRate) {
  // 4 MiB at 16 MiB/s: the burst (1.6 MiB) passes at once, the rest takes >= 140 ms.
  auto engine = Engine({.chunk_bytes = 256 << 10, .throttle_bytes_per_sec = 16 << 20});
  auto src = Ram(4 << 20, 512);
  auto dst = Ram(4 << 20, 512);
  CopyDescriptor d{
      src.get(), {{Lba(0), BlockCount(8192)}}, {{dst.get(), {{Lba(0), BlockCount(8192)}}}}, false};
  auto start = std::chrono::steady_clock::now();
  CopyResult r = Run(*engine, d);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_GE(elapsed, std::chrono::milliseconds(140));
}

TEST_F(EngineTest, InvalidDescriptorsAreRefusedWithoutCompletion) {
  auto engine = Engine();
  auto a = Ram(1 << 20, 512);
  auto ro = *RamDevice::Create({.name = "ro", .size_bytes = 1 << 20, .read_only = true});
  bool called = false;
  auto bad = [&](CopyDescriptor d) {
    auto r = engine->Submit(std::move(d), [&](CopyResult) { called = true; });
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string() : std::string(r.status().message());
  };
  EXPECT_NE(bad({a.get(), {{Lba(0), BlockCount(8)}}, {{ro.get(), {{Lba(0), BlockCount(8)}}}}})
                .find("read-only"),
            std::string::npos);
  EXPECT_NE(bad({a.get(), {{Lba(0), BlockCount(8)}}, {}}).find("destinations"), std::string::npos);
  EXPECT_NE(bad({a.get(), {{Lba(2040), BlockCount(16)}}, {{a.get(), {{Lba(0), BlockCount(16)}}}}})
                .find("past the end"),
            std::string::npos);
  for (int i = 0; i < 10; ++i) reactor_->RunOnce(false);
  EXPECT_FALSE(called);
  EXPECT_EQ(engine->active_jobs(), 0u);
  EXPECT_FALSE(CopyEngine::Create(reactor_.get(), {.queue_depth = 0}).ok());
  EXPECT_FALSE(CopyEngine::Create(nullptr, {}).ok());
}

TEST_F(EngineTest, ManyJobsAtOnce) {
  auto engine = Engine({.chunk_bytes = 64 << 10, .max_buffers = 4});
  auto src = Ram(8 << 20, 512);
  Bytes s = Fill(*src);
  std::vector<std::shared_ptr<RamDevice>> dsts;
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
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(Contents(*dsts[i]),
              Bytes(s.begin() + i * (1 << 20), s.begin() + (i + 1) * (1 << 20)));
  }
}

}  // namespace
}  // namespace ferry::copy
