#include "iscsi/text_keys.h"

#include <gtest/gtest.h>

#include "iscsi/negotiation.h"

namespace ferry::iscsi {
namespace {

// A string literal with its embedded NULs.
template <size_t N>
std::string Lit(const char (&s)[N]) {
  return std::string(s, N - 1);
}

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(TextKeys, ParsesPairs) {
  std::string t = Lit("InitiatorName=iqn.2026-11.org.x:a\0SessionType=Normal\0");
  auto r = ParseTextKeys(Bytes(t));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0], (KeyValue{"InitiatorName", "iqn.2026-11.org.x:a"}));
  EXPECT_EQ((*r)[1], (KeyValue{"SessionType", "Normal"}));
  EXPECT_EQ(EncodeTextKeys(*r), t);
  // Empty values and a stray NUL are fine.
  auto e = ParseTextKeys(Bytes(std::string("A=\0\0", 4)));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)[0].value, "");
  EXPECT_TRUE(ParseTextKeys({}).ok());
}

TEST(TextKeys, Errors) {
  auto err = [](const std::string& t) {
    auto r = ParseTextKeys(Bytes(t));
    EXPECT_FALSE(r.ok()) << t;
    return r.ok() ? std::string() : std::string(r.status().message());
  };
  EXPECT_NE(err(std::string("A=1", 3)).find("does not end with a NUL"), std::string::npos);
  EXPECT_NE(err(std::string("A1\0", 3)).find("has no '='"), std::string::npos);
  EXPECT_NE(err(std::string("=1\0", 3)).find("empty"), std::string::npos);
  EXPECT_NE(err(std::string(64, 'K') + std::string("=1\0", 3)).find("longer than 63"),
            std::string::npos);
  EXPECT_NE(err(std::string("A B=1\0", 6)).find("bad byte"), std::string::npos);
  EXPECT_NE(err(std::string("A=1\0A=2\0", 8)).find("sent twice"), std::string::npos);
  EXPECT_NE(err("A=" + std::string(8193, 'v') + std::string("\0", 1)).find("too long"),
            std::string::npos);
}

TEST(TextKeys, Numbers) {
  EXPECT_EQ(ParseNumber("262144"), 262144u);
  EXPECT_EQ(ParseNumber("0x100"), 256u);
  EXPECT_EQ(ParseNumber("0XfF"), 255u);
  EXPECT_EQ(ParseNumber("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(ParseNumber("18446744073709551616"));
  EXPECT_FALSE(ParseNumber(""));
  EXPECT_FALSE(ParseNumber("0x"));
  EXPECT_FALSE(ParseNumber("12a"));
  EXPECT_FALSE(ParseNumber("-1"));
}

std::string Find(const std::vector<KeyValue>& r, const std::string& key) {
  for (const auto& kv : r) {
    if (kv.key == key) return kv.value;
  }
  return "<absent>";
}

TEST(Negotiation, WhatLibiscsiOffers) {
  // libiscsi 1.19's operational offer (ecosystem.md b.2).
  Negotiator n(TargetPolicy{});
  std::vector<KeyValue> reply;
  ASSERT_TRUE(n.Process({{"InitiatorName", "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test"},
                         {"TargetName", "iqn.2026-11.org.ferry:demo"},
                         {"SessionType", "Normal"},
                         {"HeaderDigest", "None,CRC32C"},
                         {"DataDigest", "None"},
                         {"DefaultTime2Wait", "2"},
                         {"DefaultTime2Retain", "0"},
                         {"IFMarker", "No"},
                         {"OFMarker", "No"},
                         {"ErrorRecoveryLevel", "0"},
                         {"InitialR2T", "No"},
                         {"ImmediateData", "Yes"},
                         {"MaxBurstLength", "262144"},
                         {"FirstBurstLength", "262144"},
                         {"MaxOutstandingR2T", "1"},
                         {"MaxConnections", "1"},
                         {"DataPDUInOrder", "Yes"},
                         {"DataSequenceInOrder", "Yes"},
                         {"MaxRecvDataSegmentLength", "262144"}},
                        &reply)
                  .ok());
  n.Finish(&reply);
  const SessionParams& p = n.params();
  EXPECT_EQ(Find(reply, "HeaderDigest"), "None");
  EXPECT_EQ(Find(reply, "InitialR2T"), "No");
  EXPECT_EQ(Find(reply, "ImmediateData"), "Yes");
  EXPECT_EQ(Find(reply, "IFMarker"), "No");
  EXPECT_EQ(Find(reply, "DefaultTime2Retain"), "0");
  EXPECT_EQ(Find(reply, "MaxRecvDataSegmentLength"), "262144");
  EXPECT_EQ(Find(reply, "InitiatorName"), "<absent>");
  EXPECT_FALSE(p.initial_r2t);
  EXPECT_TRUE(p.immediate_data);
  EXPECT_EQ(p.first_burst_length, 262144u);
  EXPECT_EQ(p.max_burst_length, 262144u);
  EXPECT_EQ(p.max_send_data_segment_length, 262144u);
  EXPECT_EQ(p.target_name, "iqn.2026-11.org.ferry:demo");
  EXPECT_EQ(p.session_type, SessionType::kNormal);
}

TEST(Negotiation, ResultFunctionsAndRanges) {
  Negotiator n(TargetPolicy{.max_burst_length = 65536, .first_burst_length = 131072});
  std::vector<KeyValue> r;
  ASSERT_TRUE(n.Process({{"HeaderDigest", "CRC32C,None"},
                         {"DataDigest", "Foo"},
                         {"InitialR2T", "Yes"},
                         {"ImmediateData", "No"},
                         {"MaxBurstLength", "16776192"},
                         {"FirstBurstLength", "262144"},
                         {"DefaultTime2Wait", "0"},
                         {"ErrorRecoveryLevel", "2"},
                         {"MaxOutstandingR2T", "0"},
                         {"DataPDUInOrder", "Maybe"},
                         {"X-com.example.Foo", "1"},
                         {"TargetAlias", "x"}},
                        &r)
                  .ok());
  EXPECT_EQ(Find(r, "HeaderDigest"), "CRC32C");
  EXPECT_EQ(Find(r, "DataDigest"), "Reject");
  EXPECT_EQ(Find(r, "InitialR2T"), "Yes");
  EXPECT_EQ(Find(r, "ImmediateData"), "No");
  EXPECT_EQ(Find(r, "MaxBurstLength"), "65536");
  EXPECT_EQ(Find(r, "DefaultTime2Wait"), "2");
  EXPECT_EQ(Find(r, "ErrorRecoveryLevel"), "0");
  EXPECT_EQ(Find(r, "MaxOutstandingR2T"), "Reject");
  EXPECT_EQ(Find(r, "DataPDUInOrder"), "Reject");
  EXPECT_EQ(Find(r, "X-com.example.Foo"), "NotUnderstood");
  EXPECT_EQ(Find(r, "TargetAlias"), "Reject");
  EXPECT_TRUE(n.params().header_digest);
  // FirstBurstLength is capped by the negotiated MaxBurstLength.
  EXPECT_EQ(n.params().first_burst_length, 65536u);
  std::vector<KeyValue> again;
  EXPECT_FALSE(n.Process({{"HeaderDigest", "None"}}, &again).ok());
}

TEST(Negotiation, DiscoverySessionsIgnoreDataKeys) {
  Negotiator n(TargetPolicy{});
  std::vector<KeyValue> r;
  ASSERT_TRUE(n.Process({{"SessionType", "Discovery"},
                         {"MaxBurstLength", "4096"},
                         {"HeaderDigest", "None"},
                         {"MaxRecvDataSegmentLength", "32768"}},
                        &r)
                  .ok());
  EXPECT_EQ(n.params().session_type, SessionType::kDiscovery);
  EXPECT_EQ(Find(r, "MaxBurstLength"), "Irrelevant");
  EXPECT_EQ(Find(r, "HeaderDigest"), "None");
  EXPECT_EQ(n.params().max_send_data_segment_length, 32768u);
  std::vector<KeyValue> bad;
  Negotiator m(TargetPolicy{});
  ASSERT_TRUE(m.Process({{"SessionType", "Other"}}, &bad).ok());
  EXPECT_EQ(Find(bad, "SessionType"), "Reject");
}

TEST(Negotiation, FinishDeclaresTargetValuesOnce) {
  Negotiator n(TargetPolicy{.max_recv_data_segment_length = 65536, .target_alias = "ferry"});
  std::vector<KeyValue> r;
  n.Finish(&r);
  EXPECT_EQ(Find(r, "MaxRecvDataSegmentLength"), "65536");
  EXPECT_EQ(Find(r, "TargetAlias"), "ferry");
  std::vector<KeyValue> r2;
  n.Finish(&r2);
  EXPECT_TRUE(r2.empty());
}

}  // namespace
}  // namespace ferry::iscsi
