// Crash consistency of thin-pool metadata: a random workload of thin-device operations
// with commits on a CrashDevice; at every commit, a power cut is simulated after each
// write and flush the commit issued (and, with random survivors of unflushed writes, a
// few times more per point). Every recovered pool must pass Check() and hold exactly the
// state before or after the commit (after, once the commit's last flush was issued), and
// every mapping must read data its (device, vblock) held since the previous commit:
// never another device's, never a reused block's.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "io/reactor.h"
#include "volume/thin/pool_metadata.h"
#include "volume/thin/testing/crash_device.h"
#include "volume/thin/testing/pool_sync.h"

namespace ferry::volume::thin {
namespace {

using testing::CommitSync;
using testing::CrashDevice;
using testing::FormatSync;
using testing::OpenSync;

constexpr uint64_t kDataBlocks = 96;
constexpr uint64_t kDeviceBlocks = 48;
using Key = std::pair<uint32_t, uint64_t>;  // (device, vblock)

// The workload and its model: what the data device holds and what each thin block reads.
class Workload {
 public:
  Workload(PoolMetadata& pool, uint64_t seed) : pool_(pool), rng_(seed), data_(kDataBlocks, 0) {}

  void Step() {
    switch (rng_() % 10) {
      case 0: CreateThin(); break;
      case 1: Snapshot(); break;
      case 2: Delete(); break;
      case 3: Discard(); break;
      case 4: Share(); break;
      default: Write(); break;
    }
  }
  // What each mapped (device, vblock) may read after a crash: every value it held since the
  // last commit (0 = unmapped).
  void Committed() {
    allowed_.clear();
    for (const auto& [key, tag] : logical_) allowed_[key].insert(tag);
  }
  bool Allowed(const Key& key, uint64_t tag) const {
    auto it = allowed_.find(key);
    return it != allowed_.end() && it->second.contains(tag);
  }
  bool HeldSinceCommit(const Key& key) const { return allowed_.contains(key); }
  uint64_t data(uint64_t dblock) const { return data_[dblock]; }
  const std::map<Key, uint64_t>& logical() const { return logical_; }

 private:
  void Set(const Key& key, std::optional<uint64_t> tag) {
    if (tag) {
      logical_[key] = *tag;
    } else {
      logical_.erase(key);
    }
    allowed_[key].insert(tag.value_or(0));
  }
  std::optional<uint32_t> AnyDevice() {
    if (devices_.empty()) return std::nullopt;
    auto it = devices_.begin();
    std::advance(it, rng_() % devices_.size());
    return *it;
  }
  void CreateThin() {
    if (devices_.size() >= 5) return;
    ASSERT_TRUE(pool_.CreateThin(next_id_, kDeviceBlocks).ok());
    devices_.insert(next_id_++);
  }
  void Snapshot() {
    auto origin = AnyDevice();
    if (!origin || devices_.size() >= 5) return;
    ASSERT_TRUE(pool_.CreateSnapshot(*origin, next_id_).ok());
    for (uint64_t v = 0; v < kDeviceBlocks; ++v) {
      auto it = logical_.find({*origin, v});
      if (it != logical_.end()) Set({next_id_, v}, it->second);
    }
    devices_.insert(next_id_++);
  }
  void Delete() {
    auto dev = AnyDevice();
    if (!dev || devices_.size() < 2) return;
    ASSERT_TRUE(pool_.DeleteThin(*dev).ok());
    for (uint64_t v = 0; v < kDeviceBlocks; ++v) {
      if (logical_.contains({*dev, v})) Set({*dev, v}, std::nullopt);
    }
    devices_.erase(*dev);
  }
  void Write() {
    auto dev = AnyDevice();
    if (!dev) return;
    const uint64_t v = rng_() % kDeviceBlocks;
    auto plan = pool_.PrepareWrite(*dev, v);
    if (!plan.ok()) {
      ASSERT_EQ(plan.status().code(), StatusCode::kResourceExhausted);
      return;
    }
    if (plan->action == WriteAction::kCopyOnWrite) data_[plan->data_block] = data_[plan->copy_from];
    data_[plan->data_block] = ++next_tag_;  // the whole block is written
    Set({*dev, v}, next_tag_);
  }
  void Discard() {
    auto dev = AnyDevice();
    if (!dev) return;
    const uint64_t v = rng_() % kDeviceBlocks;
    const uint64_t n = std::min<uint64_t>(1 + rng_() % 8, kDeviceBlocks - v);
    ASSERT_TRUE(pool_.Discard(*dev, v, n).ok());
    for (uint64_t i = 0; i < n; ++i) {
      if (logical_.contains({*dev, v + i})) Set({*dev, v + i}, std::nullopt);
    }
  }
  void Share() {
    auto src = AnyDevice();
    auto dst = AnyDevice();
    if (!src) return;
    const uint64_t n = 1 + rng_() % 8;
    const uint64_t sv = rng_() % (kDeviceBlocks - n);
    const uint64_t dv = rng_() % (kDeviceBlocks - n);
    ASSERT_TRUE(pool_.ShareRange(*src, sv, *dst, dv, n).ok());
    std::vector<std::optional<uint64_t>> moved;
    for (uint64_t i = 0; i < n; ++i) {
      auto it = logical_.find({*src, sv + i});
      moved.push_back(it == logical_.end() ? std::nullopt : std::optional(it->second));
    }
    for (uint64_t i = 0; i < n; ++i) Set({*dst, dv + i}, moved[i]);
  }

  PoolMetadata& pool_;
  std::mt19937_64 rng_;
  std::vector<uint64_t> data_;  // the data device: the tag of the last write to each block
  std::map<Key, uint64_t> logical_;
  std::map<Key, std::set<uint64_t>> allowed_;
  std::set<uint32_t> devices_;
  uint32_t next_id_ = 1;
  uint64_t next_tag_ = 0;
};

class ThinCrashTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override { reactor_ = std::move(io::Reactor::Create()).value(); }

  // Opens the image a crash left and checks it against the states around the commit.
  void CheckRecovery(CrashDevice& image, const Workload& w, const PoolState& before,
                     const PoolState& after, bool must_be_after, const std::string& where) {
    auto pool = OpenSync(*reactor_, image);
    ASSERT_TRUE(pool.ok()) << where << ": " << pool.status().ToString();
    Status check = (*pool)->Check();
    ASSERT_TRUE(check.ok()) << where << ": " << check.ToString();
    const PoolState& got = (*pool)->state();
    const bool is_before = got == before;
    const bool is_after = got == after;
    ASSERT_TRUE(is_after || (is_before && !must_be_after))
        << where << ": recovered neither the committed nor the new state (before " << is_before
        << ", txn " << (*pool)->txn() << ")";
    ++(is_after ? recovered_after_ : recovered_before_);
    for (const auto& [dev, d] : got.devices) {
      for (const auto& [vblock, dblock] : d.map) {
        ASSERT_TRUE(w.Allowed({dev, vblock}, w.data(dblock)))
            << where << ": device " << dev << " vblock " << vblock << " reads tag "
            << w.data(dblock) << " from data block " << dblock << ", which it never held";
      }
    }
  }

  std::unique_ptr<io::Reactor> reactor_;
  uint64_t recovered_before_ = 0;
  uint64_t recovered_after_ = 0;
};

TEST_P(ThinCrashTest, EveryCrashPointOfEveryCommitRecoversOldOrNewState) {
  auto dev = *CrashDevice::Create({.size_bytes = 512 << 10, .block_size = GetParam()});
  auto formatted = FormatSync(*reactor_, *dev, {.data_blocks = kDataBlocks});
  ASSERT_TRUE(formatted.ok()) << formatted.status().ToString();
  std::unique_ptr<PoolMetadata> pool = std::move(*formatted);
  Workload w(*pool, 0x7417 + GetParam());
  w.Committed();
  std::mt19937_64 rng(99);
  uint64_t crash_points = 0;
  for (int commit = 0; commit < 60; ++commit) {
    const int steps = 1 + static_cast<int>(rng() % 12);
    for (int s = 0; s < steps; ++s) {
      w.Step();
      if (HasFatalFailure()) return;
    }
    const PoolState before = OpenSync(*reactor_, *dev->Crash()).value()->state();
    const PoolState after = pool->state();
    const bool dirty = pool->dirty();
    dev->Mark();
    ASSERT_TRUE(CommitSync(*reactor_, *pool).ok());
    const uint64_t events = dev->events_since_mark();
    ASSERT_GE(events, dirty ? 4u : 0u);  // record writes, flush, superblock, flush
    for (uint64_t n = 0; n <= events; ++n) {
      const std::string where = "commit " + std::to_string(commit) + " crash after " +
                                std::to_string(n) + "/" + std::to_string(events);
      CheckRecovery(*dev->CrashAfter(n, nullptr), w, before, after, n == events, where);
      for (int r = 0; r < 3; ++r) {
        CheckRecovery(*dev->CrashAfter(n, &rng), w, before, after, n == events,
                      where + " (random survivors)");
      }
      if (HasFatalFailure()) return;
      crash_points += 4;
    }
    w.Committed();
  }
  EXPECT_GT(recovered_before_, 0u);
  EXPECT_GT(recovered_after_, 0u);
  EXPECT_GT(crash_points, 500u);
}

// A pool recovered from a crash keeps working: commit on it and reopen.
TEST_P(ThinCrashTest, RecoveredPoolAcceptsNewCommits) {
  auto dev = *CrashDevice::Create({.size_bytes = 512 << 10, .block_size = GetParam()});
  auto pool = std::move(FormatSync(*reactor_, *dev, {.data_blocks = kDataBlocks})).value();
  Workload w(*pool, 5);
  std::mt19937_64 rng(3);
  for (int round = 0; round < 10; ++round) {
    for (int s = 0; s < 10; ++s) w.Step();
    ASSERT_TRUE(CommitSync(*reactor_, *pool).ok());
    for (int s = 0; s < 10; ++s) w.Step();
    dev->Mark();
    ASSERT_TRUE(CommitSync(*reactor_, *pool).ok());
    auto crashed = dev->CrashAfter(rng() % (dev->events_since_mark() + 1), &rng);
    auto recovered = std::move(OpenSync(*reactor_, *crashed)).value();
    ASSERT_TRUE(recovered->CreateThin(1000 + round, 8).ok());
    ASSERT_TRUE(recovered->PrepareWrite(1000 + round, 1).ok());
    ASSERT_TRUE(CommitSync(*reactor_, *recovered).ok());
    auto reopened = std::move(OpenSync(*reactor_, *crashed->Crash())).value();
    EXPECT_EQ(reopened->state(), recovered->state());
    EXPECT_TRUE(reopened->Check().ok());
  }
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, ThinCrashTest, ::testing::Values(512u, 4096u));

}  // namespace
}  // namespace ferry::volume::thin
