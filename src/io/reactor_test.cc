#include "io/reactor.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

namespace ferry::io {
namespace {

std::unique_ptr<Reactor> MakeReactor() {
  auto r = Reactor::Create();
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

TEST(ReactorTest, CurrentIsOwnerAndOnePerThread) {
  auto r = MakeReactor();
  EXPECT_EQ(Reactor::Current(), r.get());
  EXPECT_TRUE(r->InOwnerThread());
  EXPECT_FALSE(Reactor::Create().ok());
  r.reset();
  EXPECT_EQ(Reactor::Current(), nullptr);
}

TEST(ReactorTest, PostNeverRunsInlineAndKeepsOrder) {
  auto r = MakeReactor();
  std::vector<int> order;
  r->Post([&] { order.push_back(1); });
  r->Post([&] { order.push_back(2); });
  EXPECT_TRUE(order.empty());
  r->RunUntil([&] { return order.size() == 2; });
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(ReactorTest, CrossThreadPostWakesBlockedLoop) {
  auto r = MakeReactor();
  std::atomic<int> ran{0};
  std::thread poster([&] {
    for (int i = 0; i < 1000; ++i) r->Post([&] { ran.fetch_add(1); });
  });
  r->RunUntil([&] { return ran.load() == 1000; });
  poster.join();
  EXPECT_EQ(ran.load(), 1000);
}

TEST(ReactorTest, TimersFireInDeadlineOrderAndCancel) {
  auto r = MakeReactor();
  std::vector<int> order;
  r->RunAfter(std::chrono::milliseconds(20), [&] { order.push_back(2); });
  r->RunAfter(std::chrono::milliseconds(5), [&] { order.push_back(1); });
  auto id = r->RunAfter(std::chrono::milliseconds(10), [&] { order.push_back(99); });
  EXPECT_TRUE(r->CancelTimer(id));
  EXPECT_FALSE(r->CancelTimer(id));
  r->RunUntil([&] { return order.size() == 2; });
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(ReactorTest, UringOperationCompletesOnReactor) {
  auto r = MakeReactor();
  int fd = eventfd(5, EFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  uint64_t value = 0;
  int32_t result = -1;
  UringOp op;
  op.done = [&](int32_t res) { result = res; };
  io_uring_prep_read(r->GetSqe(&op), fd, &value, sizeof(value), 0);
  EXPECT_EQ(r->uring_in_flight(), 1u);
  r->RunUntil([&] { return result != -1; });
  EXPECT_EQ(result, 8);
  EXPECT_EQ(value, 5u);
  EXPECT_EQ(r->uring_in_flight(), 0u);
  close(fd);
}

TEST(ReactorThreadTest, RunsTasksOnItsThread) {
  ReactorThread t;
  std::thread::id seen;
  t.RunSync([&] { seen = std::this_thread::get_id(); });
  EXPECT_NE(seen, std::this_thread::get_id());
  EXPECT_NE(t.reactor(), nullptr);
}

TEST(ReactorGroupTest, OneReactorPerThreadRoundRobin) {
  ReactorGroup group(3, /*pin=*/true);
  ASSERT_EQ(group.size(), 3u);
  std::set<std::thread::id> threads;
  for (size_t i = 0; i < group.size(); ++i) {
    Reactor* r = group.Next();
    EXPECT_EQ(r, group.at(i));
    std::atomic<bool> ran{false};
    std::thread::id id;
    r->Post([&] {
      id = std::this_thread::get_id();
      EXPECT_EQ(Reactor::Current(), r);
      ran.store(true);
    });
    while (!ran.load()) std::this_thread::yield();
    threads.insert(id);
  }
  EXPECT_EQ(threads.size(), 3u);
  EXPECT_EQ(group.Next(), group.at(0));
}

TEST(ReactorTest, PollFdIsOneShotAndCancelPollDropsIt) {
  auto r = MakeReactor();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  int calls = 0;
  int32_t got = 0;
  UringOp op;
  op.done = [&](int32_t res) {
    ++calls;
    got = res;
  };
  r->PollFd(&op, fds[0], POLLIN);
  EXPECT_EQ(r->uring_in_flight(), 0u) << "polls are not I/O in flight";
  EXPECT_EQ(r->RunOnce(false), 0u);
  char c = 'x';
  ASSERT_EQ(write(fds[1], &c, 1), 1);
  r->RunUntil([&] { return calls > 0; });
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(got > 0 && (got & POLLIN)) << got;
  // One-shot: still readable, but nothing fires until re-armed.
  for (int i = 0; i < 3; ++i) r->RunOnce(false);
  EXPECT_EQ(calls, 1);
  // Cancelled while readable: the completion is dropped.
  Reactor::PollId id = r->PollFd(&op, fds[0], POLLIN);
  EXPECT_TRUE(r->CancelPoll(id));
  EXPECT_FALSE(r->CancelPoll(id));
  bool later = false;
  r->RunAfter(std::chrono::milliseconds(20), [&] { later = true; });
  r->RunUntil([&] { return later; });
  EXPECT_EQ(calls, 1);
  // Re-armed: fires again.
  r->PollFd(&op, fds[0], POLLIN);
  r->RunUntil([&] { return calls > 1; });
  EXPECT_EQ(calls, 2);
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace ferry::io
