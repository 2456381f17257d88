#include "copy/throttle.h"

#include <algorithm>

namespace ferry::copy {

TokenBucket::TokenBucket(uint64_t bytes_per_sec, uint64_t burst_bytes)
    : rate_(bytes_per_sec),
      burst_(static_cast<double>(std::max<uint64_t>(burst_bytes, 1))),
      tokens_(burst_),
      last_(Clock::now()) {}

std::chrono::nanoseconds TokenBucket::Take(uint64_t bytes, Clock::time_point now) {
  if (rate_ == 0) return std::chrono::nanoseconds(0);
  double elapsed = std::chrono::duration<double>(now - last_).count();
  if (elapsed > 0) {
    tokens_ = std::min(burst_, tokens_ + elapsed * static_cast<double>(rate_));
    last_ = now;
  }
  const double need = std::min(static_cast<double>(bytes), burst_);
  if (tokens_ >= need) {
    tokens_ -= static_cast<double>(bytes);
    return std::chrono::nanoseconds(0);
  }
  double wait_s = (need - tokens_) / static_cast<double>(rate_);
  return std::chrono::nanoseconds(static_cast<int64_t>(wait_s * 1e9) + 1);
}

}  // namespace ferry::copy
