#include "metrics/histogram.h"

#include <algorithm>

namespace ferry::metrics {

uint64_t HistogramSnapshot::count() const {
  uint64_t n = 0;
  for (uint64_t c : counts) n += c;
  return n;
}

void HistogramSnapshot::Merge(const HistogramSnapshot& other) {
  if (counts.empty()) {
    *this = other;
    return;
  }
  for (size_t i = 0; i < counts.size() && i < other.counts.size(); ++i)
    counts[i] += other.counts[i];
  sum += other.sum;
}

size_t LatencyHistogram::BucketOf(uint64_t ns) {
  // Prometheus buckets are "less than or equal": a value on a bound counts in that bucket.
  return static_cast<size_t>(
      std::lower_bound(kLatencyBoundsNs.begin(), kLatencyBoundsNs.end(), ns) -
      kLatencyBoundsNs.begin());
}

void LatencyHistogram::AddTo(HistogramSnapshot* out) const {
  if (out->counts.empty()) {
    out->counts.assign(kLatencyBuckets, 0);
    out->upper_bounds.clear();
    for (uint64_t b : kLatencyBoundsNs) out->upper_bounds.push_back(static_cast<double>(b) / 1e9);
  }
  for (size_t i = 0; i < kLatencyBuckets; ++i) out->counts[i] += Load(buckets_[i]);
  out->sum += static_cast<double>(Load(sum_ns_)) / 1e9;
}

size_t ThisShard() {
  static std::atomic<size_t> next{0};
  thread_local const size_t mine = next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return mine;
}

}  // namespace ferry::metrics
