// Latency histograms and shards (src/metrics/histogram.h): bucket edges ("less than or
// equal"), sums in seconds, merging shards, and updates from many threads adding up.
#include "metrics/histogram.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

namespace ferry::metrics {
namespace {

TEST(LatencyHistogram, BucketEdgesAreLessOrEqual) {
  EXPECT_EQ(LatencyHistogram::BucketOf(0), 0u);
  EXPECT_EQ(LatencyHistogram::BucketOf(25'000), 0u);  // on the bound: that bucket
  EXPECT_EQ(LatencyHistogram::BucketOf(25'001), 1u);
  EXPECT_EQ(LatencyHistogram::BucketOf(10'000'000'000), kLatencyBoundsNs.size() - 1);
  EXPECT_EQ(LatencyHistogram::BucketOf(10'000'000'001), kLatencyBoundsNs.size());  // +Inf
}

TEST(LatencyHistogram, SnapshotInSeconds) {
  LatencyHistogram h;
  h.Observe(20'000);          // 20 us
  h.Observe(1'000'000);       // 1 ms: the 1 ms bucket
  h.Observe(20'000'000'000);  // 20 s: above every bound
  HistogramSnapshot s;
  h.AddTo(&s);
  ASSERT_EQ(s.upper_bounds.size(), kLatencyBoundsNs.size());
  ASSERT_EQ(s.counts.size(), kLatencyBuckets);
  EXPECT_DOUBLE_EQ(s.upper_bounds[0], 25e-6);
  EXPECT_DOUBLE_EQ(s.upper_bounds.back(), 10.0);
  EXPECT_EQ(s.counts[0], 1u);
  EXPECT_EQ(s.counts[5], 1u);  // le 0.001
  EXPECT_EQ(s.counts.back(), 1u);
  EXPECT_EQ(s.count(), 3u);
  EXPECT_NEAR(s.sum, 20.00102, 1e-9);
}

TEST(LatencyHistogram, MergeAddsCountsAndSums) {
  LatencyHistogram a, b;
  a.Observe(30'000);
  b.Observe(30'000);
  b.Observe(600'000);
  HistogramSnapshot sa, sb;
  a.AddTo(&sa);
  b.AddTo(&sb);
  HistogramSnapshot all;
  all.Merge(sa);
  all.Merge(sb);
  EXPECT_EQ(all.count(), 3u);
  EXPECT_EQ(all.counts[1], 2u);
  EXPECT_EQ(all.counts[5], 1u);
  EXPECT_NEAR(all.sum, 660e-6, 1e-12);
}

TEST(Sharded, ThreadsUseTheirShardAndTotalsAddUp) {
  struct Counts {
    std::atomic<uint64_t> ops{0};
    LatencyHistogram latency;
  };
  Sharded<Counts> sharded;
  constexpr int kThreads = 6, kPerThread = 20000;
  std::vector<std::thread> threads;
  std::vector<size_t> shard_of(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      shard_of[i] = ThisShard();
      EXPECT_EQ(ThisShard(), shard_of[i]);  // stable for a thread
      for (int k = 0; k < kPerThread; ++k) {
        Counts& c = sharded.Mine();
        Add(c.ops, 1);
        c.latency.Observe(100'000);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(std::set<size_t>(shard_of.begin(), shard_of.end()).size(), 1u);
  uint64_t ops = 0;
  HistogramSnapshot h;
  sharded.ForEach([&](const Counts& c) {
    ops += Load(c.ops);
    c.latency.AddTo(&h);
  });
  EXPECT_EQ(ops, uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(h.count(), uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(h.counts[2], uint64_t{kThreads} * kPerThread);  // le 100 us
}

}  // namespace
}  // namespace ferry::metrics
