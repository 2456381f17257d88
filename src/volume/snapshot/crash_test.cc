// Crash consistency of snapshots: a random workload of writes to the origin (through
// snapshot-origin) and to the snapshot over crash devices (volatile until flushed); after
// every write, a power cut is simulated after each event (write or flush) the COW device
// saw, with unflushed writes lost or randomly kept. Every recovered pair of devices must
// open, pass the store's Check(), and read every block of the snapshot and of the origin
// as it was before or after the write: never anything else. A second test cuts power at
// every point of a merge and checks that the merge resumes and ends with the snapshot's
// content in the origin.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>

#include "volume/snapshot/testing/snapshot_fixture.h"
#include "volume/thin/testing/crash_device.h"

namespace ferry::volume::snapshot {
namespace {

using testing::Bytes;
using thin::testing::CrashDevice;

constexpr uint64_t kOriginBytes = 64 << 10;  // 16 chunks of 4 KiB
constexpr uint64_t kCowBytes = 128 << 10;    // header, area, 30 data chunks
constexpr uint64_t kSectors = kOriginBytes / 512;

class SnapshotCrashTest : public testing::SnapshotFixture,
                          public ::testing::WithParamInterface<uint32_t> {
 protected:
  void SetUp() override {
    SnapshotFixture::SetUp();
    bs_ = GetParam();
    origin_ = *CrashDevice::Create({.name = "o", .size_bytes = kOriginBytes, .block_size = bs_});
    cow_ = *CrashDevice::Create({.name = "cow", .size_bytes = kCowBytes, .block_size = bs_});
    ASSERT_TRUE(registry_.Add(origin_).ok());
    ASSERT_TRUE(registry_.Add(cow_).ok());
  }

  // Opens `type` over crashed images of both devices.
  Result<std::shared_ptr<Volume>> Open(std::shared_ptr<block::BlockDevice> o,
                                       std::shared_ptr<block::BlockDevice> c,
                                       const std::string& type) {
    TableOptions opts = Env();
    opts.lookup = [o, c](std::string_view name) -> std::shared_ptr<block::BlockDevice> {
      return name == "o" ? o : name == "cow" ? c : nullptr;
    };
    auto t = Table::Parse(Line(kSectors, type, "o cow P 8"), opts);
    if (!t.ok()) return t.status();
    std::optional<ferry::Status> st;
    PrepareTable(*t, [&](ferry::Status s) { st = std::move(s); });
    reactor_->RunUntil([&] { return st.has_value(); });
    if (!st->ok()) return *st;
    return Volume::Create(type, *t);
  }

  // Every block of `got` is the block of `before` or of `after`.
  void ExpectOldOrNew(const Bytes& got, const Bytes& before, const Bytes& after,
                      const std::string& what) {
    ASSERT_EQ(got.size(), before.size());
    for (size_t b = 0; b < got.size(); b += bs_) {
      const bool old_ok = std::equal(got.begin() + b, got.begin() + b + bs_, before.begin() + b);
      const bool new_ok = std::equal(got.begin() + b, got.begin() + b + bs_, after.begin() + b);
      ASSERT_TRUE(old_ok || new_ok) << what << ": block at byte " << b << " is neither";
    }
  }

  void CheckRecovered(std::shared_ptr<CrashDevice> o, std::shared_ptr<CrashDevice> c,
                      const Bytes (&model)[2][2], const std::string& where) {
    auto v = Open(o, c, "snapshot");
    ASSERT_TRUE(v.ok()) << where << ": " << v.status().ToString();
    ferry::Status check = CoreOf(**v).store().Check();
    ASSERT_TRUE(check.ok()) << where << ": " << check.ToString();
    ASSERT_EQ((*v)->StatusText().find("Invalid"), std::string::npos) << where;
    ExpectOldOrNew(Read(**v, 0, kOriginBytes / bs_), model[1][0], model[1][1],
                   where + ": snapshot");
    ExpectOldOrNew(Read(*o, 0, kOriginBytes / bs_), model[0][0], model[0][1], where + ": origin");
    ++recoveries_;
  }

  IoStatus Flush(block::BlockDevice& d) { return Io(d, block::IoOp::kFlush, 0, 0); }

  uint32_t bs_ = 512;
  std::shared_ptr<CrashDevice> origin_;
  std::shared_ptr<CrashDevice> cow_;
  uint64_t recoveries_ = 0;
};

TEST_P(SnapshotCrashTest, EveryCrashPointReadsOldOrNewData) {
  std::mt19937_64 rng(0x5a + bs_);
  Bytes model[2] = {Random(kOriginBytes, rng), {}};  // origin, snapshot
  ASSERT_EQ(WriteBytes(*origin_, 0, model[0]), IoStatus::kOk);
  ASSERT_EQ(Flush(*origin_), IoStatus::kOk);
  model[1] = model[0];
  auto ov = Vol("ov", Line(kSectors, "snapshot-origin", "o"));
  auto s = Vol("s", Line(kSectors, "snapshot", "o cow P 8"));
  uint64_t points = 0;
  for (int step = 0; step < 120; ++step) {
    const int which = static_cast<int>(rng() % 2);  // 0 origin, 1 snapshot
    const uint64_t blocks = 1 + rng() % (8192 / bs_);
    const uint64_t lba = rng() % (kOriginBytes / bs_ - blocks);
    Bytes data = Random(blocks * bs_, rng);
    Bytes before[2] = {model[0], model[1]};
    std::copy(data.begin(), data.end(), model[which].begin() + lba * bs_);
    const Bytes states[2][2] = {{before[0], model[0]}, {before[1], model[1]}};
    cow_->Mark();
    origin_->Mark();
    ASSERT_EQ(WriteBytes(which == 0 ? *ov : *s, lba, data), IoStatus::kOk);  // volume blocks
    const uint64_t cow_events = cow_->events_since_mark();
    const uint64_t origin_events = origin_->events_since_mark();
    // Origin writes wait for the COW device's last flush: before it, the origin is as it was.
    for (uint64_t n = 0; n <= cow_events; ++n) {
      const std::string where = "step " + std::to_string(step) + " crash after COW event " +
                                std::to_string(n) + "/" + std::to_string(cow_events);
      const uint64_t last_o = n == cow_events ? origin_events : 0;
      for (uint64_t k = 0; k <= last_o; ++k) {
        CheckRecovered(origin_->CrashAfter(k, nullptr), cow_->CrashAfter(n, nullptr), states,
                       where);
        CheckRecovered(origin_->CrashAfter(k, &rng), cow_->CrashAfter(n, &rng), states,
                       where + " (random survivors)");
        if (HasFatalFailure()) return;
        points += 2;
      }
    }
    ASSERT_EQ(Io(*s, block::IoOp::kFlush, 0, 0), IoStatus::kOk);  // both devices durable
  }
  EXPECT_GT(points, 200u);
  std::printf("crash points checked: %llu\n", static_cast<unsigned long long>(points));
  EXPECT_TRUE(CoreOf(*s).store().Check().ok());
  RecordProperty("crash_points", static_cast<int>(points));
}

// A merge cut at every point (between any two reactor iterations) resumes after restart and
// leaves the snapshot's content in the origin; reads of the merging volume always show it.
TEST_P(SnapshotCrashTest, MergeResumesAfterACrashAtEveryPoint) {
  std::mt19937_64 rng(0x77 + bs_);
  Bytes base = Random(kOriginBytes, rng);
  ASSERT_EQ(WriteBytes(*origin_, 0, base), IoStatus::kOk);
  Bytes snap = base;
  {
    auto ov = Vol("ov", Line(kSectors, "snapshot-origin", "o"));
    auto s = Vol("s", Line(kSectors, "snapshot", "o cow P 8"));
    for (int i = 0; i < 12; ++i) {
      const uint64_t lba = rng() % (kSectors - 8) / 8 * 8;
      Bytes data = Random(4096, rng);
      if (i % 2 == 0) std::copy(data.begin(), data.end(), snap.begin() + lba * 512);
      ASSERT_EQ(WriteBytes(i % 2 == 0 ? *s : *ov, lba * 512 / bs_, data), IoStatus::kOk);
    }
    ASSERT_EQ(Io(*s, block::IoOp::kFlush, 0, 0), IoStatus::kOk);
  }
  Drain();
  cow_->Mark();
  origin_->Mark();
  std::vector<std::pair<uint64_t, uint64_t>> instants;  // (cow events, origin events)
  auto m = Open(origin_, cow_, "snapshot-merge");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  SnapshotCore& core = CoreOf(**m);
  while (core.store().live_exceptions() > 0) {
    instants.emplace_back(cow_->events_since_mark(), origin_->events_since_mark());
    reactor_->RunOnce(true);
  }
  instants.emplace_back(cow_->events_since_mark(), origin_->events_since_mark());
  ASSERT_GT(instants.size(), 10u);
  for (size_t i = 0; i < 2 * instants.size(); ++i) {
    const auto [c, o] = instants[i / 2];
    std::mt19937_64* survivors = i % 2 == 1 ? &rng : nullptr;  // unflushed writes kept or not
    const std::string where = "crash after " + std::to_string(c) + " COW and " + std::to_string(o) +
                              " origin events" +
                              (survivors != nullptr ? " (random survivors)" : "");
    auto co = cow_->CrashAfter(c, survivors);
    auto oo = origin_->CrashAfter(o, survivors);
    auto again = Open(oo, co, "snapshot-merge");
    ASSERT_TRUE(again.ok()) << where << ": " << again.status().ToString();
    ASSERT_EQ(Read(**again, 0, kOriginBytes / bs_), snap) << where << ": merging volume";
    SnapshotCore& resumed = CoreOf(**again);
    reactor_->RunUntil([&] { return resumed.store().live_exceptions() == 0; });
    ASSERT_TRUE(resumed.store().Check().ok()) << where;
    ASSERT_EQ(Read(*oo, 0, kOriginBytes / bs_), snap) << where << ": origin after merge";
    ++recoveries_;
  }
  EXPECT_GT(recoveries_, 10u);
  std::printf("merge crash points checked: %llu\n", static_cast<unsigned long long>(recoveries_));
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, SnapshotCrashTest, ::testing::Values(512u, 4096u));

}  // namespace
}  // namespace ferry::volume::snapshot
