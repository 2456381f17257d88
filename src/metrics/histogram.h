// Counters and latency histograms that reactor threads update and a scraper reads.
//
// Hot path: an update is one or two relaxed atomic adds on memory that only the calling
// thread writes in the common case (Sharded<T> gives each thread its own cache line), no
// lock and no allocation. Readers (the metrics HTTP thread) sum the shards; a read racing
// with updates sees each counter at some recent value, which is what Prometheus expects.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ferry::metrics {

// Upper bounds of the latency buckets, in nanoseconds (25 us to 10 s, roughly 1-2.5-5 per
// decade, as Prometheus' defaults but starting lower: a RAM LUN answers in tens of us).
inline constexpr std::array<uint64_t, 18> kLatencyBoundsNs = {
    25'000,      50'000,      100'000,    250'000,       500'000,       1'000'000,
    2'500'000,   5'000'000,   10'000'000, 25'000'000,    50'000'000,    100'000'000,
    250'000'000, 500'000'000, 1000000000, 2'500'000'000, 5'000'000'000, 10'000'000'000};
inline constexpr size_t kLatencyBuckets = kLatencyBoundsNs.size() + 1;  // the last is +Inf

// A histogram as exposed: upper bounds (seconds, ascending, without +Inf), the count in each
// bucket (not cumulative; one more than bounds: the last counts values above every bound)
// and the sum of the observed values in seconds.
struct HistogramSnapshot {
  std::vector<double> upper_bounds;
  std::vector<uint64_t> counts;
  double sum = 0;
  uint64_t count() const;
  // Adds another histogram of the same bounds (counts and sum).
  void Merge(const HistogramSnapshot& other);
};

// One writer's latency histogram over kLatencyBoundsNs (any thread may read).
class LatencyHistogram {
 public:
  void Observe(uint64_t ns) {
    buckets_[BucketOf(ns)].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(ns, std::memory_order_relaxed);
  }
  // Adds this histogram's counts to `out` (sized on first use).
  void AddTo(HistogramSnapshot* out) const;
  static size_t BucketOf(uint64_t ns);

 private:
  std::array<std::atomic<uint64_t>, kLatencyBuckets> buckets_{};
  std::atomic<uint64_t> sum_ns_{0};
};

// Shards of T, one cache line or more each: a thread updates the shard ThisShard() names.
inline constexpr size_t kShards = 8;
// This thread's shard: threads get 0, 1, 2... in the order they first ask, modulo kShards.
size_t ThisShard();

template <typename T>
class Sharded {
 public:
  T& Mine() { return shards_[ThisShard()].value; }
  // Calls fn(const T&) on every shard.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const Shard& s : shards_) fn(s.value);
  }

 private:
  struct alignas(64) Shard {
    T value;
  };
  std::array<Shard, kShards> shards_{};
};

inline uint64_t Load(const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); }
inline void Add(std::atomic<uint64_t>& a, uint64_t n) { a.fetch_add(n, std::memory_order_relaxed); }

}  // namespace ferry::metrics
