#include "backends/iscsi/iscsi_url.h"

#include <gtest/gtest.h>

namespace ferry::backends::iscsi {
namespace {

TEST(ParseIscsiUrlTest, GoodUrls) {
  auto u = ParseIscsiUrl("iscsi://array.example:3261/iqn.2026-01.example:disk1/7");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->host, "array.example");
  EXPECT_EQ(u->port, 3261);
  EXPECT_EQ(u->target_iqn, "iqn.2026-01.example:disk1");
  EXPECT_EQ(u->lun, 7u);
  EXPECT_EQ(u->portal(), "array.example:3261");

  u = ParseIscsiUrl("iscsi://10.0.0.1/iqn.a:b/0");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, kDefaultIscsiPort);
  EXPECT_EQ(u->portal(), "10.0.0.1:3260");

  u = ParseIscsiUrl("iscsi://[fe80::1]:3262/iqn.a:b/16383");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->host, "fe80::1");
  EXPECT_EQ(u->port, 3262);
  EXPECT_EQ(u->lun, 16383u);
  EXPECT_EQ(u->portal(), "[fe80::1]:3262");

  u = ParseIscsiUrl("iscsi://[::1]/iqn.a:b/1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->portal(), "[::1]:3260");
}

TEST(ParseIscsiUrlTest, BadUrlsNameTheUrlAndTheProblem) {
  struct Case {
    const char* url;
    const char* why;
  };
  const Case cases[] = {
      {"http://h/iqn.a:b/0", "does not start with iscsi://"},
      {"iscsi://", "no target IQN"},
      {"iscsi:///iqn.a:b/0", "no host"},
      {"iscsi://h", "no target IQN"},
      {"iscsi://h/iqn.a:b", "no LUN"},
      {"iscsi://h/iqn.a:b/", "empty LUN"},
      {"iscsi://h//0", "empty target IQN"},
      {"iscsi://h/iqn.a:b/x", "LUN 'x' is not a number"},
      {"iscsi://h/iqn.a:b/16384", "LUN '16384' is not a number in 0..16383"},
      {"iscsi://h/iqn.a:b/-1", "LUN '-1'"},
      {"iscsi://h/iqn.a:b/1/2", "junk after the LUN"},
      {"iscsi://h:0/iqn.a:b/1", "port '0'"},
      {"iscsi://h:65536/iqn.a:b/1", "port '65536'"},
      {"iscsi://h:/iqn.a:b/1", "empty port"},
      {"iscsi://h:x1/iqn.a:b/1", "port 'x1'"},
      {"iscsi://fe80::1/iqn.a:b/1", "IPv6 addresses must be in brackets"},
      {"iscsi://[fe80::1/iqn.a:b/1", "without ']'"},
      {"iscsi://[host]/iqn.a:b/1", "is not an IPv6 address"},
      {"iscsi://[::1]x/iqn.a:b/1", "junk after the IPv6 address"},
      {"iscsi://user%secret@h/iqn.a:b/1", "credentials in the URL"},
      {"iscsi://h/iqn.a:b/1?x=1", "query strings"},
      {"iscsi://h/iqn a/1", "white space"},
  };
  for (const Case& c : cases) {
    auto u = ParseIscsiUrl(c.url);
    ASSERT_FALSE(u.ok()) << c.url;
    std::string msg(u.status().message());
    EXPECT_NE(msg.find(c.url), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.why), std::string::npos) << c.url << ": " << msg;
  }
}

}  // namespace
}  // namespace ferry::backends::iscsi
