// mirror: resync through the copy engine, its throttle, writes racing a region copy, the
// disk log across crashes, and suspend / resume with I/O and resync in flight.
#include <gtest/gtest.h>

#include <random>

#include "backends/faulty/faulty_device.h"
#include "volume/mirror/log_format.h"
#include "volume/mirror/testing/mirror_fixture.h"
#include "volume/thin/testing/crash_device.h"

namespace ferry::volume::mirror {
namespace {

using block::IoOp;
using Bytes = std::vector<uint8_t>;
using thin::testing::CrashDevice;
using namespace std::chrono_literals;

constexpr uint64_t kDevBytes = 1 << 20;
constexpr uint64_t kRegionBytes = 64 * 1024;
constexpr uint64_t kRegionSectors = kRegionBytes / 512;

class MirrorResyncTest : public testing::MirrorFixture {
 protected:
  void SetUp() override {
    MirrorFixture::SetUp();
    a_ = AddRam("a", kDevBytes);
    b_ = AddRam("b", kDevBytes);
  }
  Bytes Pattern(size_t len, uint32_t seed) {
    Bytes out(len);
    std::mt19937 rng(seed);
    for (auto& x : out) x = static_cast<uint8_t>(rng());
    return out;
  }
  IoStatus Write(block::BlockDevice& d, uint64_t lba, const Bytes& data) {
    auto p = Start(d, IoOp::kWrite, lba, data.size() / 512, 0, 0, &data);
    return Wait(*p);
  }
  std::shared_ptr<CrashDevice> AddCrashLog(const std::string& name) {
    auto log = std::move(CrashDevice::Create({.name = name, .size_bytes = 64 * 1024})).value();
    EXPECT_TRUE(registry_.Add(log).ok());
    return log;
  }
  // The crashed log `dev` left, registered as `name`.
  void AddCrashed(const std::string& name, const CrashDevice& crashed) {
    auto dev = std::move(CrashDevice::FromImage({.name = name, .size_bytes = 64 * 1024},
                                                crashed.DurableImage()))
                   .value();
    EXPECT_TRUE(registry_.Add(dev).ok());
  }
  LogImage DurableLog(const CrashDevice& log) {
    Bytes img = log.DurableImage();
    img.resize(LogBytes(kDevBytes / kRegionBytes), 0);
    auto d = DecodeLog(img);
    EXPECT_TRUE(d.ok() && d->kind == LogKind::kLog);
    return d.ok() ? d->image : LogImage{};
  }
  std::shared_ptr<backends::RamDevice> a_, b_;
};

TEST_F(MirrorResyncTest, InitialSyncCopiesEveryRegionFromTheFirstLeg) {
  const Bytes data = Pattern(kDevBytes, 1);
  ASSERT_EQ(Write(*a_, 0, data), IoStatus::kOk);
  auto v = Mirror("0 2048 mirror core 1 128 2 a 0 b 0");
  EXPECT_NE(SyncField(*v), "16/16");
  WaitInSync(*v);
  EXPECT_EQ(v->StatusText(), "0 2048 mirror 2 a b 16/16 1 AA 1 core\n");
  EXPECT_EQ(Read(*b_, 0, 2048), data);
  EXPECT_EQ(Stat(*v, "resync_regions"), 16u);
  EXPECT_EQ(Stat(*v, "resync_bytes"), kDevBytes);
}

TEST_F(MirrorResyncTest, ReadsOfOutOfSyncRegionsGoToTheSource) {
  ASSERT_EQ(Write(*a_, 0, Bytes(kDevBytes, 0xaa)), IoStatus::kOk);
  ASSERT_EQ(Write(*b_, 0, Bytes(kDevBytes, 0xbb)), IoStatus::kOk);
  // 1 byte/s: the first region copies at once, the next one not within the test.
  auto v = Mirror("0 2048 mirror core 1 128 2 a 0 b 0 2 resync_rate 1");
  reactor_->RunUntil([&] { return Stat(*v, "resync_regions") == 1; });
  for (int i = 0; i < 6; ++i) EXPECT_EQ(Read(*v, 5 * kRegionSectors, 8), Bytes(4096, 0xaa));
  EXPECT_EQ(Stats(*v)["reads"], "6,0");
  for (int i = 0; i < 6; ++i) EXPECT_EQ(Read(*v, 0, 8), Bytes(4096, 0xaa));  // in sync
  EXPECT_EQ(Stats(*v)["reads"], "9,3");
  EXPECT_EQ(SyncField(*v), "1/16");
}

TEST_F(MirrorResyncTest, ThrottleBoundsTheResyncRate) {
  constexpr uint64_t kRate = 4 << 20;  // bytes/s: 1 MiB resyncs in about 250 ms
  const auto start = std::chrono::steady_clock::now();
  auto v = Mirror("0 2048 mirror core 1 128 2 a 0 b 0 2 resync_rate " + std::to_string(kRate));
  // At every point, bytes copied <= rate * elapsed + one region.
  reactor_->RunUntil([&] {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_LE(static_cast<double>(Stat(*v, "resync_bytes")),
              static_cast<double>(kRate) * elapsed + kRegionBytes);
    return InSync(*v);
  });
  const uint64_t bytes = Stat(*v, "resync_bytes");
  const uint64_t ns = Stat(*v, "resync_ns");
  EXPECT_EQ(bytes, kDevBytes);
  // The mirror's own clock: region k starts no earlier than k regions' worth of time.
  EXPECT_GE(static_cast<double>(ns) * 1e-9 * kRate, static_cast<double>(bytes - kRegionBytes));
  std::printf("resync: %llu bytes in %.1f ms at a %llu bytes/s throttle (%.2f MiB/s)\n",
              static_cast<unsigned long long>(bytes), ns / 1e6,
              static_cast<unsigned long long>(kRate), bytes / (ns / 1e9) / (1 << 20));
}

TEST_F(MirrorResyncTest, UnthrottledResyncThroughTheCopyEngine) {
  auto big_a = AddRam("ba", 64 << 20);
  auto big_b = AddRam("bb", 64 << 20);
  const auto start = std::chrono::steady_clock::now();
  auto v = Mirror("0 131072 mirror core 1 2048 2 ba 0 bb 0");
  WaitInSync(*v);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(Stat(*v, "resync_bytes"), 64u << 20);
  std::printf("unthrottled resync: 64 MiB in %.1f ms (%.0f MiB/s)\n", s * 1e3, 64 / s);
}

TEST_F(MirrorResyncTest, WritesToARegionUnderCopyWaitForTheCopy) {
  // Reads of a (the copy's source) are slow: a write that did not wait would reach b
  // before the copy and be overwritten by the older data the copy read.
  auto fa = std::make_shared<backends::FaultyDevice>(a_, "fa");
  ASSERT_TRUE(registry_.Add(fa).ok());
  fa->SetDelay(30ms);
  auto v = Mirror("0 2048 mirror core 1 128 2 fa 0 b 0");
  reactor_->RunUntil([&] { return fa->requests(IoOp::kRead) > 0; });  // region 0 copying
  const Bytes d = Pattern(8 * 512, 2);
  auto p = Start(*v, IoOp::kWrite, 0, 8, 0, 0, &d);
  reactor_->RunUntil([&] { return p->done(); });
  EXPECT_EQ(p->status, IoStatus::kOk);
  EXPECT_GE(Stat(*v, "resync_regions"), 1u);  // completed after the copy of its region
  fa->SetDelay(0ms);
  WaitInSync(*v);
  EXPECT_EQ(Read(*a_, 0, 8), d);
  EXPECT_EQ(Read(*b_, 0, 8), d);
}

TEST_F(MirrorResyncTest, TheDirtyMarkIsDurableBeforeTheLegsSeeTheWrite) {
  auto log = AddCrashLog("clog");
  auto fb = std::make_shared<backends::FaultyDevice>(b_, "fb");
  ASSERT_TRUE(registry_.Add(fb).ok());
  auto v = Mirror("0 2048 mirror disk 3 clog 128 nosync 2 a 0 fb 0");
  EXPECT_FALSE(TestBit(DurableLog(*log).dirty, 3));
  auto p = Start(*v, IoOp::kWrite, 3 * kRegionSectors, 8, 0x33);
  reactor_->RunUntil([&] { return fb->requests(IoOp::kWrite) > 0; });
  EXPECT_TRUE(TestBit(DurableLog(*log).dirty, 3));  // before the leg write was submitted
  EXPECT_EQ(Wait(*p), IoStatus::kOk);
  const uint64_t commits = Stat(*v, "log_commits");
  reactor_->RunUntil([&] { return Stat(*v, "log_commits") > commits; });  // lazy clean
  EXPECT_FALSE(TestBit(DurableLog(*log).dirty, 3));
  EXPECT_EQ(v->StatusText(), "0 2048 mirror 2 a fb 16/16 1 AA 3 disk clog A\n");
}

TEST_F(MirrorResyncTest, AfterACrashOnlyDirtyRegionsResync) {
  auto log = AddCrashLog("clog");
  auto v = Mirror("0 2048 mirror disk 3 clog 128 nosync 2 a 0 b 0");
  const Bytes d1 = Pattern(kRegionBytes, 1);
  ASSERT_EQ(Write(*v, 1 * kRegionSectors, d1), IoStatus::kOk);
  const uint64_t commits = Stat(*v, "log_commits");
  reactor_->RunUntil([&] { return Stat(*v, "log_commits") > commits; });  // region 1 clean
  const Bytes d5 = Pattern(4096, 5), d7 = Pattern(4096, 7);
  ASSERT_EQ(Write(*v, 5 * kRegionSectors, d5), IoStatus::kOk);
  ASSERT_EQ(Write(*v, 7 * kRegionSectors + 8, d7), IoStatus::kOk);
  auto crashed = log->Crash();  // power cut now: regions 5 and 7 are dirty
  // The cut lost b's copy of region 5 (allowed: the region is dirty).
  ASSERT_EQ(Write(*b_, 5 * kRegionSectors, Pattern(4096, 99)), IoStatus::kOk);
  v.reset();
  AddCrashed("clog2", *crashed);
  auto v2 = Mirror("0 2048 mirror disk 2 clog2 128 2 a 0 b 0");
  WaitInSync(*v2);
  EXPECT_EQ(Stat(*v2, "resync_regions"), 2u);
  EXPECT_EQ(Stat(*v2, "resync_bytes"), 2 * kRegionBytes);
  EXPECT_EQ(Read(*a_, 0, 2048), Read(*b_, 0, 2048));
  EXPECT_EQ(Read(*v2, 5 * kRegionSectors, 8), d5);
  EXPECT_EQ(Read(*v2, 7 * kRegionSectors + 8, 8), d7);
  EXPECT_EQ(Read(*v2, kRegionSectors, kRegionSectors), d1);
}

TEST_F(MirrorResyncTest, ACrashAtAnyPointOfACommitReopens) {
  auto log = AddCrashLog("clog");
  auto v = Mirror("0 2048 mirror disk 3 clog 128 nosync 2 a 0 b 0 1 handle_errors");
  log->Mark();
  ASSERT_EQ(Io(*v, IoOp::kWrite, 2 * kRegionSectors, 8, 0x22), IoStatus::kOk);
  ASSERT_EQ(Io(*v, IoOp::kWrite, 9 * kRegionSectors, 8, 0x99), IoStatus::kOk);
  std::mt19937_64 rng(3);
  for (uint64_t n = 0; n <= log->events_since_mark(); ++n) {
    for (std::mt19937_64* r : {static_cast<std::mt19937_64*>(nullptr), &rng}) {
      auto crashed = log->CrashAfter(n, r);
      const std::string name = "c" + std::to_string(n) + (r ? "r" : "");
      AddCrashed(name, *crashed);
      auto t = Build("0 2048 mirror disk 2 " + name + " 128 2 a 0 b 0");
      ASSERT_TRUE(t.ok()) << "crash after " << n << ": " << t.status().ToString();
      auto v2 = std::move(Volume::Create(name, *t)).value();
      WaitInSync(*v2);
      EXPECT_LE(Stat(*v2, "resync_regions"), r ? 16u : 2u) << "crash after " << n;
      EXPECT_EQ(Read(*v2, 2 * kRegionSectors, 1)[0], 0x22);
    }
  }
}

TEST_F(MirrorResyncTest, AFailedLegStaysFailedAcrossARestartAndReaddResyncsWhatItMissed) {
  auto log = AddCrashLog("clog");
  auto fb = std::make_shared<backends::FaultyDevice>(b_, "fb");
  ASSERT_TRUE(registry_.Add(fb).ok());
  auto v = Mirror("0 2048 mirror disk 3 clog 128 nosync 2 a 0 fb 0 1 handle_errors");
  fb->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(2048)});
  const Bytes d = Pattern(4096, 4);
  ASSERT_EQ(Write(*v, 4 * kRegionSectors, d), IoStatus::kOk);
  EXPECT_EQ(DurableLog(*log).failed_mask, 0b10u);  // durable before the write completed
  auto crashed = log->Crash();
  v.reset();
  fb->ClearFaults();
  AddCrashed("clog2", *crashed);
  auto v2 = Mirror("0 2048 mirror disk 2 clog2 128 2 a 0 fb 0 1 handle_errors");
  Drain();
  EXPECT_EQ(v2->StatusText(), "0 2048 mirror 2 a fb 15/16 1 AD 3 disk clog2 A\n");
  EXPECT_EQ(Read(*v2, 4 * kRegionSectors, 8), d);
  ASSERT_TRUE(Msg(*v2, {"readd", "1"}).ok());
  WaitInSync(*v2);
  EXPECT_EQ(Stat(*v2, "resync_regions"), 1u);
  EXPECT_EQ(Read(*a_, 0, 2048), Read(*b_, 0, 2048));
}

// A model check over the disk log: random writes while leg b fails and comes back, then a
// power cut of the log (torn at random) and a restart; the reopened mirror reads the model
// and, once b is readded and resynced, every leg holds it.
TEST_F(MirrorResyncTest, RandomWritesFailuresAndACrashMatchTheModel) {
  auto log = AddCrashLog("clog");
  auto fb = std::make_shared<backends::FaultyDevice>(b_, "fb");
  ASSERT_TRUE(registry_.Add(fb).ok());
  auto c = AddRam("c", kDevBytes);
  const std::string legs = " 3 a 0 fb 0 c 0 1 handle_errors";
  auto v = Mirror("0 2048 mirror disk 3 clog 128 nosync" + legs);
  Bytes model(kDevBytes, 0);
  std::mt19937 rng(11);
  for (int step = 0; step < 200; ++step) {
    const uint64_t lba = rng() % 2000;
    const uint64_t n = 1 + rng() % std::min<uint64_t>(40, 2048 - lba);
    if (rng() % 12 == 0) {
      fb->AddErrorRange({.lba = Lba(rng() % 2048), .blocks = BlockCount(32)});
    } else if (rng() % 12 == 0) {
      fb->ClearFaults();
      (void)Msg(*v, {"readd", "fb"});
    }
    const Bytes d = Pattern(n * 512, static_cast<uint32_t>(step));
    ASSERT_EQ(Write(*v, lba, d), IoStatus::kOk);
    std::copy(d.begin(), d.end(), model.begin() + lba * 512);
  }
  std::mt19937_64 cut(5);
  auto crashed = log->Crash(&cut);
  v.reset();
  fb->ClearFaults();
  AddCrashed("clog2", *crashed);
  auto v2 = Mirror("0 2048 mirror disk 2 clog2 128" + legs);
  EXPECT_EQ(Read(*v2, 0, 2048), model);
  (void)Msg(*v2, {"readd", "fb"});
  WaitInSync(*v2);
  EXPECT_EQ(Read(*a_, 0, 2048), model);
  EXPECT_EQ(Read(*b_, 0, 2048), model);
  EXPECT_EQ(Read(*c, 0, 2048), model);
}

TEST_F(MirrorResyncTest, SuspendResumeWithIoAndResyncInFlight) {
  const Bytes base = Pattern(kDevBytes, 8);
  ASSERT_EQ(Write(*a_, 0, base), IoStatus::kOk);
  auto v = Mirror("0 2048 mirror core 1 128 2 a 0 b 0 2 resync_rate 2097152");
  Bytes model = base;
  std::vector<std::unique_ptr<volume::testing::Pending>> writes;
  std::vector<Bytes> datas;
  std::mt19937 rng(9);
  auto start_write = [&](int i) {
    const uint64_t lba = rng() % 2040;
    datas.push_back(Pattern(8 * 512, 100 + i));
    std::copy(datas.back().begin(), datas.back().end(), model.begin() + lba * 512);
    writes.push_back(Start(*v, IoOp::kWrite, lba, 8, 0, 0, &datas.back()));
  };
  datas.reserve(64);
  reactor_->RunUntil([&] { return Stat(*v, "resync_regions") >= 2; });
  for (int i = 0; i < 16; ++i) start_write(i);
  bool suspended = false;
  v->Suspend(1s, [&](Status st) {
    EXPECT_TRUE(st.ok());
    suspended = true;
  });
  for (int i = 16; i < 24; ++i) start_write(i);  // queued by the suspended volume
  reactor_->RunUntil([&] { return suspended; });
  for (int i = 0; i < 16; ++i) EXPECT_TRUE(writes[i]->done());
  for (int i = 16; i < 24; ++i) EXPECT_FALSE(writes[i]->done());
  const uint64_t copied = Stat(*v, "resync_regions");
  Drain();
  EXPECT_EQ(Stat(*v, "resync_regions"), copied);  // no new region copy while suspended
  ASSERT_TRUE(v->Resume().ok());
  reactor_->RunUntil([&] {
    for (auto& w : writes) {
      if (!w->done()) return false;
    }
    return true;
  });
  for (auto& w : writes) EXPECT_EQ(w->status, IoStatus::kOk);
  WaitInSync(*v);
  EXPECT_EQ(Read(*a_, 0, 2048), model);
  EXPECT_EQ(Read(*b_, 0, 2048), model);
  EXPECT_EQ(Read(*v, 0, 2048), model);
}

}  // namespace
}  // namespace ferry::volume::mirror
