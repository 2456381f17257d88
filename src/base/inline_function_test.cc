#include "base/inline_function.h"

#include <gtest/gtest.h>

#include <memory>

namespace ferry {
namespace {

TEST(InlineFunctionTest, CallsAndMoves) {
  int hits = 0;
  InlineFunction<void(int)> f = [&hits](int n) { hits += n; };
  ASSERT_TRUE(f);
  f(2);
  InlineFunction<void(int)> g = std::move(f);
  EXPECT_FALSE(f);  // NOLINT: testing moved-from state
  g(3);
  EXPECT_EQ(hits, 5);
  g = nullptr;
  EXPECT_FALSE(g);
}

TEST(InlineFunctionTest, DestroysCapturesExactlyOnce) {
  auto counter = std::make_shared<int>(0);
  {
    InlineFunction<int()> f = [counter] { return ++*counter; };
    EXPECT_EQ(counter.use_count(), 2);
    InlineFunction<int()> g = std::move(f);
    EXPECT_EQ(counter.use_count(), 2);
    EXPECT_EQ(g(), 1);
  }
  EXPECT_EQ(counter.use_count(), 1);
}

TEST(InlineFunctionTest, HoldsMoveOnlyCaptures) {
  auto p = std::make_unique<int>(7);
  InlineFunction<int()> f = [p = std::move(p)] { return *p; };
  EXPECT_EQ(f(), 7);
}

}  // namespace
}  // namespace ferry
