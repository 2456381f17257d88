#include "copy/throttle.h"

#include <gtest/gtest.h>

namespace ferry::copy {
namespace {

using std::chrono::milliseconds;

TEST(TokenBucket, UnlimitedNeverWaits) {
  TokenBucket b(0, 0);
  EXPECT_TRUE(b.unlimited());
  EXPECT_EQ(b.Take(1ull << 40).count(), 0);
}

TEST(TokenBucket, HoldsTheAverageRate) {
  TokenBucket b(1'000'000, 100'000);  // 1 MB/s, 100 kB burst
  auto t = TokenBucket::Clock::now();
  uint64_t passed = 0;
  // Simulated clock: ask every millisecond for 10 kB during one second.
  for (int ms = 0; ms <= 1000; ++ms) {
    if (b.Take(10'000, t + milliseconds(ms)).count() == 0) passed += 10'000;
  }
  EXPECT_GE(passed, 1'000'000u);
  EXPECT_LE(passed, 1'100'000u + 10'000);
}

TEST(TokenBucket, LargeRequestsPassOnceFullAndLeaveDebt) {
  TokenBucket b(1'000'000, 100'000);
  auto t = TokenBucket::Clock::now() + milliseconds(1);
  EXPECT_EQ(b.Take(1'000'000, t).count(), 0);  // full bucket: passes, 900 kB in debt
  auto wait = b.Take(10'000, t);
  EXPECT_GE(wait, milliseconds(900));
  EXPECT_EQ(b.Take(10'000, t + milliseconds(911)).count(), 0);
}

}  // namespace
}  // namespace ferry::copy
