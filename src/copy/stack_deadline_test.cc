// Copies that outlive a suspend deadline (pins.cc): the copy releases its pins, finishes
// through the new table after resume, and never writes through the old one. Also the
// layout-change stress test.
#include <gtest/gtest.h>

#include <cstring>

#include "copy/testing/stack_test_util.h"

namespace ferry::copy {
namespace {

using testing::All;
using testing::Bytes;
using testing::kEmulated;
using testing::kRam;
using testing::SameBytes;

class StackDeadlineTest : public testing::StackTest {
 public:
  // Submits `d`; `*out` and `*done` are set by the completion.
  std::shared_ptr<CopyJob> Start(CopyEngine& e, CopyDescriptor d, CopyResult* out, bool* done) {
    *done = false;
    auto job = e.Submit(std::move(d), [out, done](CopyResult r) {
      *out = std::move(r);
      *done = true;
    });
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    return job.ok() ? *job : nullptr;
  }
};

bool HasNote(const CopyResult& r, const std::string& part) {
  for (const std::string& n : r.offload_notes) {
    if (n.find(part) != std::string::npos) return true;
  }
  return false;
}

// A throttled copy between two linear volumes; both are suspended with a short deadline
// mid-copy, their data moved to other leaves by the test and the tables reloaded. The
// copy gives its pins back, finishes through the new tables, and the old leaves are
// neither read (they are scribbled over) nor written after the swap.
TEST_F(StackDeadlineTest, DeadlineReleasesPinsAndTheCopyFollowsTheNewTable) {
  auto arena = std::make_shared<backends::RamArena>();
  auto a = Leaf("a", 2 << 20, arena);
  auto b = Leaf("b", 2 << 20, arena);
  auto a2 = Leaf("a2", 2 << 20, arena);
  auto b2 = Leaf("b2", 2 << 20, arena);
  auto src = Vol("src", "0 4096 linear a 0\n");
  auto dst = Vol("dst", "0 4096 linear b 0\n");
  const Bytes data = Fill(*a);
  Fill(*b);
  auto engine = Engine({.chunk_bytes = 64 << 10, .throttle_bytes_per_sec = 4 << 20});
  CopyResult r;
  bool done = false;
  auto job =
      Start(*engine, {.src = src.get(), .src_extents = All(*src), .dsts = {{dst.get(), All(*dst)}}},
            &r, &done);
  reactor_->RunUntil([&] { return job->progress().done_bytes > 0; });
  bool src_suspended = false;
  bool dst_suspended = false;
  StartSuspend(*src, std::chrono::milliseconds(5), &src_suspended);
  StartSuspend(*dst, std::chrono::milliseconds(5), &dst_suspended);
  reactor_->RunUntil([&] { return src_suspended && dst_suspended; });
  ASSERT_FALSE(done) << "the copy finished before the deadline; slow the throttle down";
  EXPECT_EQ(src->in_flight(), 0u);
  // Migrate: the same logical data on new leaves; the old leaves are scribbled (a) and
  // remembered (b).
  Write(*a2, Contents(*a));
  Write(*b2, Contents(*b));
  Fill(*a);
  const Bytes b_at_swap = Contents(*b);
  ASSERT_TRUE(src->Load(Parse("0 4096 linear a2 0\n")).ok());
  ASSERT_TRUE(dst->Load(Parse("0 4096 linear b2 0\n")).ok());
  ASSERT_TRUE(src->Resume().ok());
  ASSERT_TRUE(dst->Resume().ok());
  reactor_->RunUntil([&] { return done; });
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.counters.done_bytes, 2u << 20);
  EXPECT_EQ(r.counters.by_mechanism[kRam] + r.counters.by_mechanism[kEmulated], 2u << 20);
  EXPECT_GT(r.counters.by_mechanism[kRam], 0u);       // before the deadline: at the leaves
  EXPECT_GT(r.counters.by_mechanism[kEmulated], 0u);  // after: through the volumes
  EXPECT_TRUE(HasNote(r, "suspended past its deadline"));
  EXPECT_TRUE(SameBytes(Contents(*dst), data));
  EXPECT_TRUE(SameBytes(Contents(*b), b_at_swap)) << "written through the old table";
  EXPECT_EQ(engine->active_jobs(), 0u);
}

// A suspend whose deadline has not passed simply waits for the copy (pins drain like I/O).
TEST_F(StackDeadlineTest, SuspendWaitsForTheCopyBeforeItsDeadline) {
  auto arena = std::make_shared<backends::RamArena>();
  auto a = Leaf("a", 1 << 20, arena);
  Leaf("b", 1 << 20, arena);
  auto dst = Vol("dst", "0 2048 linear b 0\n");
  const Bytes data = Fill(*a);
  auto engine = Engine({.chunk_bytes = 64 << 10, .throttle_bytes_per_sec = 8 << 20});
  CopyResult r;
  bool done = false;
  auto job =
      Start(*engine, {.src = a.get(), .src_extents = All(*a), .dsts = {{dst.get(), All(*dst)}}}, &r,
            &done);
  reactor_->RunUntil([&] { return job->progress().done_bytes > 0; });
  bool suspended = false;
  StartSuspend(*dst, std::chrono::seconds(60), &suspended);
  reactor_->RunUntil([&] { return suspended; });
  EXPECT_TRUE(done);  // the pin held the suspend until the copy completed
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.by_mechanism[kRam], 1u << 20);
  ASSERT_TRUE(dst->Resume().ok());
  EXPECT_TRUE(SameBytes(Contents(*dst), data));
}

// Holds reads until Open(); forwards everything else.
class GateDevice : public block::BlockDevice {
 public:
  GateDevice(std::shared_ptr<block::BlockDevice> inner, std::string name)
      : inner_(std::move(inner)), name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "gate"; }
  const block::Geometry& geometry() const override { return inner_->geometry(); }
  const block::QueueLimits& limits() const override { return inner_->limits(); }
  void Submit(block::IoRequest& req) override {
    if (closed && req.op == block::IoOp::kRead) return held.push_back(&req);
    inner_->Submit(req);
  }
  void Open() {
    closed = false;
    for (block::IoRequest* r : held) inner_->Submit(*r);
    held.clear();
  }
  bool closed = true;
  std::vector<block::IoRequest*> held;

 private:
  std::shared_ptr<block::BlockDevice> inner_;
  std::string name_;
};

// A chunk reads its source through a walked volume and writes to a destination's zero
// line; the destination is suspended while the read is held. The part is ordinary I/O
// (translate.h), so the write queues without holding the pins: the suspend completes at its
// deadline and the copy after resume (no deadlock).
TEST_F(StackDeadlineTest, MixedStackSuspendedMidCopyCompletes) {
  auto a = Leaf("a", 1 << 20);
  auto gate = std::make_shared<GateDevice>(a, "gate");
  ASSERT_TRUE(registry_.Add(gate).ok());
  auto src = Vol("src", "0 2048 linear gate 0\n");
  auto dst = Vol("dst", "0 2048 zero\n");
  auto engine = Engine({.chunk_bytes = 64 << 10});
  CopyResult r;
  bool done = false;
  Start(*engine, {.src = src.get(), .src_extents = All(*src), .dsts = {{dst.get(), All(*dst)}}}, &r,
        &done);
  reactor_->RunUntil([&] { return !gate->held.empty(); });
  bool suspended = false;
  StartSuspend(*dst, std::chrono::milliseconds(2), &suspended);
  gate->Open();
  reactor_->RunUntil([&] { return suspended; });
  EXPECT_FALSE(done);
  ASSERT_TRUE(dst->Resume().ok());
  reactor_->RunUntil([&] { return done; });
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.done_bytes, 1u << 20);
}

// ---- The layout-change stress test ----
//
// A middle volume `mid` (1 MiB) is reloaded 3,000 times between "linear over x" and
// "striped over y0 and y1", the test migrating its data each time while `mid` is suspended.
// Two volumes stacked on it, `ts` (first half) and `td` (second half), carry throttled
// copies from ts to td and writes to the last quarter of ts, all running across the
// reloads (suspend deadline 1 ms, so copies give their pins back). A model of mid's bytes
// is checked after every 50 reloads and at the end: zero mismatches, every copy completes.
class LayoutStressTest : public StackDeadlineTest {
 public:
  static constexpr uint64_t kMid = 1 << 20;
  static constexpr uint64_t kChunk = 4096;  // striped chunk, 8 sectors
  // mid's logical bytes, read from the leaves of the current layout (mid suspended).
  Bytes Logical(bool striped) {
    if (!striped) return Contents(*x_);
    Bytes y0 = Contents(*y0_), y1 = Contents(*y1_), out(kMid);
    for (uint64_t c = 0; c < kMid / kChunk; ++c) {
      const Bytes& y = c % 2 == 0 ? y0 : y1;
      std::memcpy(out.data() + c * kChunk, y.data() + c / 2 * kChunk, kChunk);
    }
    return out;
  }
  void Place(bool striped, const Bytes& logical) {
    if (!striped) return Write(*x_, logical);
    Bytes y0(kMid / 2), y1(kMid / 2);
    for (uint64_t c = 0; c < kMid / kChunk; ++c) {
      Bytes& y = c % 2 == 0 ? y0 : y1;
      std::memcpy(y.data() + c / 2 * kChunk, logical.data() + c * kChunk, kChunk);
    }
    Write(*y0_, y0);
    Write(*y1_, y1);
  }
  static std::string Table(bool striped) {
    return striped ? "0 2048 striped 2 8 y0 0 y1 0\n" : "0 2048 linear x 0\n";
  }

  std::shared_ptr<backends::RamDevice> x_, y0_, y1_;
};

TEST_F(LayoutStressTest, ReloadsBetweenLinearAndStripedWhileCopiesAndWritesRun) {
  auto arena = std::make_shared<backends::RamArena>();
  x_ = Leaf("x", kMid, arena);
  y0_ = Leaf("y0", kMid / 2, arena);
  y1_ = Leaf("y1", kMid / 2, arena);
  auto mid = Vol("mid", Table(false));
  auto ts = Vol("ts", "0 1024 linear mid 0\n");
  auto td = Vol("td", "0 1024 linear mid 1024\n");
  Bytes model = Fill(*x_);
  auto engine = Engine({.chunk_bytes = 16 << 10, .throttle_bytes_per_sec = 64 << 20});
  bool striped = false;
  int fallbacks = 0;
  const int kReloads = 3000;
  for (int i = 0; i < kReloads; ++i) {
    // A copy from ts's first 3/4 into td, random extents of 4 KiB units.
    const uint64_t len = (rng_() % 32 + 1) * 4096;
    const uint64_t s_at = rng_() % ((kMid * 3 / 8 - len) / 4096 + 1) * 4096;
    const uint64_t d_at = rng_() % ((kMid / 2 - len) / 4096 + 1) * 4096;
    CopyDescriptor d{.src = ts.get(),
                     .src_extents = {{Lba(s_at / 512), BlockCount(len / 512)}},
                     .dsts = {{td.get(), {{Lba(d_at / 512), BlockCount(len / 512)}}}}};
    CopyResult r;
    bool copied = false;
    auto job = Start(*engine, d, &r, &copied);
    // A write into ts's last quarter, which copies never read.
    const uint64_t w_at = kMid * 3 / 8 + rng_() % (kMid / 8 / 4096) * 4096;
    Bytes w(4096, static_cast<uint8_t>(i));
    iovec iov{w.data(), w.size()};
    bool written = false;
    block::IoRequest wr{.op = block::IoOp::kWrite,
                        .lba = Lba(w_at / 512),
                        .blocks = BlockCount(8),
                        .iov = &iov,
                        .iovcnt = 1};
    wr.done = [&](IoStatus st) {
      EXPECT_EQ(st, IoStatus::kOk);
      written = true;
    };
    ts->Submit(wr);
    // Every third reload suspends at once with no grace: the copy holds its pins and is
    // asked for them before it issues anything. The others let it run a little first.
    const bool at_once = i % 3 == 0;
    for (uint32_t n = at_once ? 0 : rng_() % 8; n > 0; --n) reactor_->RunOnce(false);
    // Reload mid into the other layout, migrating its data.
    bool suspended = false;
    StartSuspend(*mid, at_once ? std::chrono::milliseconds(0) : std::chrono::milliseconds(1),
                 &suspended);
    reactor_->RunUntil([&] { return suspended; });
    const Bytes logical = Logical(striped);
    striped = !striped;
    Place(striped, logical);
    ASSERT_TRUE(mid->Load(Parse(Table(striped))).ok());
    ASSERT_TRUE(mid->Resume().ok());
    reactor_->RunUntil([&] { return copied && written; });
    ASSERT_EQ(r.status, IoStatus::kOk) << "reload " << i;
    ASSERT_EQ(r.counters.done_bytes, len);
    fallbacks += HasNote(r, "suspended past its deadline");
    std::memmove(model.data() + kMid / 2 + d_at, model.data() + s_at, len);
    std::memcpy(model.data() + w_at, w.data(), w.size());
    if (i % 50 == 49 || i == kReloads - 1) {
      Bytes got = Contents(*ts);
      const Bytes second = Contents(*td);
      got.insert(got.end(), second.begin(), second.end());
      ASSERT_TRUE(SameBytes(got, model)) << "after reload " << i;
    }
  }
  EXPECT_GT(fallbacks, 0);  // some copies did outlive a deadline
  EXPECT_EQ(engine->active_jobs(), 0u);
  EXPECT_EQ(mid->in_flight(), 0u);
}

}  // namespace
}  // namespace ferry::copy
