#include "iscsi/acl.h"

#include <gtest/gtest.h>

namespace ferry::iscsi {
namespace {

IpAddress Ip(const char* s) {
  IpAddress a;
  EXPECT_TRUE(ParseIpAddress(s, &a)) << s;
  return a;
}

TEST(Acl, Networks) {
  auto n = ParseNetwork("10.1.0.0/16");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_TRUE(n->Contains(Ip("10.1.255.3")));
  EXPECT_FALSE(n->Contains(Ip("10.2.0.1")));
  EXPECT_TRUE(n->Contains(Ip("::ffff:10.1.0.9")));  // the same host, IPv4-mapped
  auto one = ParseNetwork("127.0.0.1");
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(one->Contains(Ip("127.0.0.1")));
  EXPECT_FALSE(one->Contains(Ip("127.0.0.2")));
  auto v6 = ParseNetwork("2001:db8::/32");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(v6->Contains(Ip("2001:db8:1::5")));
  EXPECT_FALSE(v6->Contains(Ip("2001:db9::5")));
  EXPECT_FALSE(v6->Contains(Ip("10.1.0.1")));
  auto all = ParseNetwork("0.0.0.0/0");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->Contains(Ip("192.0.2.1")));
  EXPECT_FALSE(all->Contains(Ip("::1")));  // /0 of IPv4 is every IPv4 address only
  for (const char* bad :
       {"10.0.0.0/33", "10.1.2.3/8", "nonsense", "10.0.0.0/", "::/129", "10.0.0.0/8x", ""}) {
    EXPECT_FALSE(ParseNetwork(bad).ok()) << bad;
  }
}

TEST(Acl, PeerAddresses) {
  IpAddress a;
  ASSERT_TRUE(ParsePeerAddress("127.0.0.1:3260", &a));
  EXPECT_EQ(a, Ip("127.0.0.1"));
  ASSERT_TRUE(ParsePeerAddress("[::1]:3260", &a));
  EXPECT_EQ(a, Ip("::1"));
  EXPECT_FALSE(ParsePeerAddress("[::1:3260", &a));
  EXPECT_FALSE(ParsePeerAddress("host:1", &a));
}

TEST(Acl, MatchesNameAndNetwork) {
  Acl acl;
  acl.initiators = {"iqn.1998-01.com.vmware:esx01"};
  EXPECT_TRUE(acl.Matches("iqn.1998-01.com.vmware:esx01", Ip("192.0.2.1")));
  EXPECT_FALSE(acl.Matches("iqn.1998-01.com.vmware:esx02", Ip("192.0.2.1")));
  acl.networks = {*ParseNetwork("127.0.0.0/8")};
  EXPECT_FALSE(acl.Matches("iqn.1998-01.com.vmware:esx01", Ip("192.0.2.1")));  // both must hold
  EXPECT_TRUE(acl.Matches("iqn.1998-01.com.vmware:esx01", Ip("127.0.0.9")));
  acl.initiators = {"*"};
  EXPECT_TRUE(acl.Matches("iqn.2000-01.com.other:x", Ip("127.0.0.9")));
}

TEST(Acl, IscsiNames) {
  EXPECT_EQ(CheckIscsiName("iqn.2026-11.org.ferry:demo"), "");
  EXPECT_EQ(CheckIscsiName("eui.02004567a425678d"), "");
  EXPECT_EQ(CheckIscsiName("naa.52004567ba64678d"), "");
  EXPECT_NE(CheckIscsiName("iqn.2026-11.org.Ferry:demo"), "");  // upper case
  EXPECT_NE(CheckIscsiName("iqn.26-11.org"), "");
  EXPECT_NE(CheckIscsiName("target1"), "");
  EXPECT_NE(CheckIscsiName("iqn.2026-11.org.ferry:a b"), "");
  EXPECT_NE(CheckIscsiName("iqn.2026-11.org.ferry:" + std::string(220, 'a')), "");
  EXPECT_NE(CheckIscsiName(""), "");
}

}  // namespace
}  // namespace ferry::iscsi
