#include "io/reactor_threads.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>

namespace ferry::io {
namespace {

TEST(ReactorThreads, EachReactorRunsOnItsOwnThread) {
  auto main = Reactor::Create();
  ASSERT_TRUE(main.ok());
  auto pool = ReactorThreads::Start(3, "t");
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  ASSERT_EQ((*pool)->size(), 3u);
  std::atomic<int> done{0};
  std::mutex mu;
  std::set<std::thread::id> threads;
  for (size_t i = 0; i < 3; ++i) {
    Reactor* r = (*pool)->at(i);
    r->Post([&, r] {
      EXPECT_EQ(Reactor::Current(), r);  // posted work runs on the reactor's own thread
      {
        std::lock_guard<std::mutex> l(mu);
        threads.insert(std::this_thread::get_id());
      }
      // ... and can answer back to another reactor.
      (*main)->Post([&] { done++; });
    });
  }
  (*main)->RunUntil([&] { return done == 3; });
  EXPECT_EQ(threads.size(), 3u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
  pool->reset();  // stops and joins
}

TEST(ReactorThreads, ZeroIsAllowed) {
  auto pool = ReactorThreads::Start(0, "none");
  ASSERT_TRUE(pool.ok());
  EXPECT_EQ((*pool)->size(), 0u);
}

}  // namespace
}  // namespace ferry::io
