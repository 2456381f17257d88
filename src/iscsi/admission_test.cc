#include "iscsi/admission.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::iscsi {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(Admission, TakesConnectionsWithinTheBudgets) {
  Admission a({.max_sessions = 2, .max_prelogin = 4, .max_prelogin_per_address = 2});
  EXPECT_THAT(a.Accept(1, "10.0.0.1"), IsEmpty());
  EXPECT_THAT(a.Accept(2, "10.0.0.1"), IsEmpty());
  EXPECT_THAT(a.Accept(3, "10.0.0.2"), IsEmpty());
  EXPECT_EQ(a.prelogin(), 3u);
  EXPECT_EQ(a.prelogin_from("10.0.0.1"), 2u);
  EXPECT_EQ(a.prelogin_from("10.0.0.9"), 0u);
}

TEST(Admission, AFullAddressDropsItsOldestNotTheNewcomer) {
  Admission a({.max_sessions = 8, .max_prelogin = 100, .max_prelogin_per_address = 3});
  for (uint64_t id = 1; id <= 3; ++id) EXPECT_THAT(a.Accept(id, "10.0.0.1"), IsEmpty());
  EXPECT_THAT(a.Accept(10, "10.0.0.2"), IsEmpty());  // another address is not touched
  EXPECT_THAT(a.Accept(4, "10.0.0.1"), ElementsAre(1u));
  EXPECT_THAT(a.Accept(5, "10.0.0.1"), ElementsAre(2u));
  EXPECT_EQ(a.prelogin_from("10.0.0.1"), 3u);
  EXPECT_EQ(a.prelogin_from("10.0.0.2"), 1u);
}

TEST(Admission, AFullOverallBudgetDropsTheOldestOfAnyAddress) {
  Admission a({.max_sessions = 8, .max_prelogin = 3, .max_prelogin_per_address = 3});
  EXPECT_THAT(a.Accept(1, "10.0.0.1"), IsEmpty());
  EXPECT_THAT(a.Accept(2, "10.0.0.2"), IsEmpty());
  EXPECT_THAT(a.Accept(3, "10.0.0.3"), IsEmpty());
  EXPECT_THAT(a.Accept(4, "10.0.0.4"), ElementsAre(1u));
  EXPECT_EQ(a.prelogin(), 3u);
  EXPECT_EQ(a.prelogin_from("10.0.0.1"), 0u);
}

TEST(Admission, ConnectionsThatSentALoginPduGoLast) {
  Admission a({.max_sessions = 8, .max_prelogin = 3, .max_prelogin_per_address = 3});
  a.Accept(1, "10.0.0.1");
  a.Accept(2, "10.0.0.1");
  a.Accept(3, "10.0.0.1");
  a.LoginStarted(1);  // the oldest, but logging in: the idle ones go first
  EXPECT_THAT(a.Accept(4, "10.0.0.1"), ElementsAre(2u));
  EXPECT_THAT(a.Accept(5, "10.0.0.1"), ElementsAre(3u));
  EXPECT_THAT(a.Accept(6, "10.0.0.1"), ElementsAre(4u));
  a.LoginStarted(5);
  a.LoginStarted(6);
  EXPECT_THAT(a.Accept(7, "10.0.0.1"), ElementsAre(1u));  // all logging in: the oldest
}

TEST(Admission, PreloginConnectionsNeverKeepASessionOut) {
  Admission a({.max_sessions = 2, .max_prelogin = 4, .max_prelogin_per_address = 4});
  a.Accept(1, "10.0.0.1");
  for (uint64_t id = 2; id <= 100; ++id) a.Accept(id, "10.0.0.66");  // a flood
  a.LoginStarted(1);
  // The real initiator's connection was the oldest of the overall budget: it went. A new
  // one is the newest and logs in.
  EXPECT_FALSE(a.StartSession(1));
  EXPECT_THAT(a.Accept(101, "10.0.0.1"), ElementsAre(97u));
  a.LoginStarted(101);
  EXPECT_TRUE(a.StartSession(101));
  EXPECT_EQ(a.sessions(), 1u);
  EXPECT_EQ(a.prelogin(), 3u);
  // The session left the pre-login budget: one more fits.
  EXPECT_THAT(a.Accept(102, "10.0.0.2"), IsEmpty());
  EXPECT_EQ(a.prelogin(), 4u);
}

TEST(Admission, SessionsAreCappedAndFreedOnClose) {
  Admission a({.max_sessions = 1, .max_prelogin = 4, .max_prelogin_per_address = 4});
  a.Accept(1, "10.0.0.1");
  a.Accept(2, "10.0.0.1");
  EXPECT_TRUE(a.StartSession(1));
  EXPECT_TRUE(a.StartSession(1));  // already one: no second count
  EXPECT_FALSE(a.StartSession(2));
  EXPECT_EQ(a.prelogin(), 1u);  // a refused login stays pre-login until it closes
  a.Closed(1);
  EXPECT_EQ(a.sessions(), 0u);
  EXPECT_TRUE(a.StartSession(2));
  a.Closed(2);
  EXPECT_EQ(a.sessions(), 0u);
  EXPECT_EQ(a.prelogin(), 0u);
}

TEST(Admission, DroppedConnectionsAreForgotten) {
  Admission a({.max_sessions = 4, .max_prelogin = 1, .max_prelogin_per_address = 1});
  a.Accept(1, "10.0.0.1");
  EXPECT_THAT(a.Accept(2, "10.0.0.1"), ElementsAre(1u));
  a.LoginStarted(1);  // the dropped one's Login PDU crossed the eviction: ignored
  EXPECT_FALSE(a.StartSession(1));
  a.Closed(1);
  EXPECT_EQ(a.prelogin(), 1u);
  EXPECT_EQ(a.prelogin_from("10.0.0.1"), 1u);
  a.Closed(2);
  EXPECT_EQ(a.prelogin(), 0u);
  EXPECT_EQ(a.prelogin_from("10.0.0.1"), 0u);
}

TEST(Admission, StaysBoundedUnderAFlood) {
  Admission a({.max_sessions = 16, .max_prelogin = 64, .max_prelogin_per_address = 8});
  size_t dropped = 0;
  for (uint64_t id = 1; id <= 100000; ++id) {
    const std::string addr = "10.0." + std::to_string(id % 37) + ".1";
    dropped += a.Accept(id, addr).size();
    if (id % 3 == 0) a.LoginStarted(id);
    EXPECT_LE(a.prelogin_from(addr), 8u);
  }
  EXPECT_EQ(a.prelogin(), 64u);
  EXPECT_EQ(dropped, 100000u - 64u);
}

TEST(DropLog, LogsTheFirstAtOnceThenOneLinePerInterval) {
  using namespace std::chrono_literals;
  DropLog log(10s);
  const DropLog::Clock::time_point t0{};
  EXPECT_EQ(log.Add(t0 + 100s, PreloginDrop::kEvicted)[PreloginDrop::kEvicted], 1u);
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ(log.Add(t0 + 101s, PreloginDrop::kEvicted).total(), 0u);
  }
  EXPECT_EQ(log.Add(t0 + 105s, PreloginDrop::kNoLoginPdu).total(), 0u);
  const DropLog::Counts c = log.Add(t0 + 110s, PreloginDrop::kLoginTimeout);
  EXPECT_EQ(c[PreloginDrop::kEvicted], 500u);
  EXPECT_EQ(c[PreloginDrop::kNoLoginPdu], 1u);
  EXPECT_EQ(c[PreloginDrop::kLoginTimeout], 1u);
  EXPECT_EQ(c.total(), 502u);
  EXPECT_EQ(log.Add(t0 + 111s, PreloginDrop::kSessionsFull).total(), 0u);
  EXPECT_EQ(log.TakePending()[PreloginDrop::kSessionsFull], 1u);
  EXPECT_EQ(log.TakePending().total(), 0u);
}

TEST(DropLog, LinesOfTheirOwnHaveAQuotaPerInterval) {
  using namespace std::chrono_literals;
  DropLog log(10s, 3);
  const DropLog::Clock::time_point t0{};
  EXPECT_TRUE(log.MayLogDetail(t0 + 1s));
  EXPECT_TRUE(log.MayLogDetail(t0 + 2s));
  EXPECT_TRUE(log.MayLogDetail(t0 + 3s));
  EXPECT_FALSE(log.MayLogDetail(t0 + 4s));
  EXPECT_FALSE(log.MayLogDetail(t0 + 10s));
  EXPECT_TRUE(log.MayLogDetail(t0 + 11s));  // a new interval
}

TEST(PeerAddress, DropsThePort) {
  EXPECT_EQ(PeerAddressOf("10.1.2.3:3260"), "10.1.2.3");
  EXPECT_EQ(PeerAddressOf("[fe80::1]:51000"), "fe80::1");
  EXPECT_EQ(PeerAddressOf("?"), "?");
}

}  // namespace
}  // namespace ferry::iscsi
