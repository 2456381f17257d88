// A token bucket shared by the copy jobs of one engine (bytes per second). Reactor thread.
#pragma once

#include <chrono>
#include <cstdint>

namespace ferry::copy {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  // rate 0: unlimited. Burst: what may pass at once after an idle period.
  TokenBucket(uint64_t bytes_per_sec, uint64_t burst_bytes);

  // Takes `bytes` and returns zero when they may go now; otherwise takes nothing and
  // returns how long to wait before asking again. A request larger than the burst passes
  // once the bucket is full and leaves it in debt, so the average rate still holds.
  std::chrono::nanoseconds Take(uint64_t bytes, Clock::time_point now = Clock::now());

  bool unlimited() const { return rate_ == 0; }
  uint64_t burst_bytes() const { return static_cast<uint64_t>(burst_); }

 private:
  const uint64_t rate_;
  const double burst_;
  double tokens_;
  Clock::time_point last_;
};

}  // namespace ferry::copy
