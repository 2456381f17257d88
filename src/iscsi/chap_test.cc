#include "iscsi/chap.h"

#include <gtest/gtest.h>

namespace ferry::iscsi {
namespace {

// A deterministic random source: 0x11, 0x12, ...
RandomFill Counter() {
  auto next = std::make_shared<uint8_t>(0x11);
  return [next](std::span<uint8_t> out) {
    for (uint8_t& b : out) b = (*next)++;
    return true;
  };
}

ChapCredentials Creds() {
  return {.user = "esx",
          .secret = "initiator-secret",
          .mutual_user = "array",
          .mutual_secret = "target-secret-2"};
}

// The initiator's half: what a correct initiator answers to the target's challenge.
std::vector<KeyValue> Answer(const std::vector<KeyValue>& challenge, ChapAlgorithm alg,
                             std::string_view user, std::string_view secret) {
  std::vector<uint8_t> c;
  EXPECT_TRUE(DecodeBinaryValue(TextKeyValue(challenge, "CHAP_C"), 1024, &c));
  const int id = std::stoi(TextKeyValue(challenge, "CHAP_I"));
  return {{"CHAP_N", std::string(user)},
          {"CHAP_R", EncodeHex(ChapResponse(alg, static_cast<uint8_t>(id), secret, c))}};
}

TEST(Chap, Md5KnownAnswer) {
  // RFC 1994 response = MD5(id || secret || challenge); checked against `md5sum` of the
  // bytes 01 'secret' 02 03.
  const uint8_t c[] = {2, 3};
  EXPECT_EQ(EncodeHex(ChapResponse(ChapAlgorithm::kMd5, 1, "secret", c)),
            "0xf506c24f35d1c70e450edb8fdf933478");
}

TEST(Chap, OneWayMd5AndSha256) {
  for (ChapAlgorithm alg :
       {ChapAlgorithm::kMd5, ChapAlgorithm::kSha256, ChapAlgorithm::kSha3_256}) {
    ChapAuthenticator a(Creds(), {alg}, Counter());
    std::vector<KeyValue> reply;
    ASSERT_TRUE(a.OnAlgorithms("5,7,8", &reply).ok());
    EXPECT_EQ(TextKeyValue(reply, "CHAP_A"), std::to_string(static_cast<int>(alg)));
    EXPECT_GE(TextKeyValue(reply, "CHAP_C").size(), 2u + 32u);  // at least 16 bytes
    std::vector<KeyValue> out;
    ASSERT_TRUE(a.OnResponse(Answer(reply, alg, "esx", "initiator-secret"), &out).ok());
    EXPECT_TRUE(a.authenticated());
    EXPECT_TRUE(out.empty());  // one-way: nothing to prove back
  }
}

TEST(Chap, TargetPreferenceWins) {
  ChapAuthenticator a(Creds(), {ChapAlgorithm::kSha256, ChapAlgorithm::kMd5}, Counter());
  std::vector<KeyValue> reply;
  ASSERT_TRUE(a.OnAlgorithms("5,7", &reply).ok());
  EXPECT_EQ(TextKeyValue(reply, "CHAP_A"), "7");
  ChapAuthenticator b(Creds(), {ChapAlgorithm::kSha256}, Counter());
  reply.clear();
  EXPECT_FALSE(b.OnAlgorithms("5", &reply).ok());  // MD5 disabled by configuration
  EXPECT_EQ(TextKeyValue(reply, "CHAP_A"), "Reject");
}

TEST(Chap, WrongSecretOrUserFails) {
  for (auto [user, secret] : {std::pair{"esx", "not-the-secret"}, {"other", "initiator-secret"}}) {
    ChapAuthenticator a(Creds(), {ChapAlgorithm::kMd5}, Counter());
    std::vector<KeyValue> reply, out;
    ASSERT_TRUE(a.OnAlgorithms("5", &reply).ok());
    Status st = a.OnResponse(Answer(reply, ChapAlgorithm::kMd5, user, secret), &out);
    EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
    EXPECT_FALSE(a.authenticated());
  }
}

TEST(Chap, MutualAnswersWithTheMutualSecret) {
  ChapAuthenticator a(Creds(), {ChapAlgorithm::kSha256}, Counter());
  std::vector<KeyValue> reply, out;
  ASSERT_TRUE(a.OnAlgorithms("7", &reply).ok());
  auto keys = Answer(reply, ChapAlgorithm::kSha256, "esx", "initiator-secret");
  const std::vector<uint8_t> mine = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};
  keys.push_back({"CHAP_I", "77"});
  keys.push_back({"CHAP_C", EncodeHex(mine)});
  ASSERT_TRUE(a.OnResponse(keys, &out).ok());
  EXPECT_EQ(TextKeyValue(out, "CHAP_N"), "array");
  EXPECT_EQ(TextKeyValue(out, "CHAP_R"),
            EncodeHex(ChapResponse(ChapAlgorithm::kSha256, 77, "target-secret-2", mine)));
}

TEST(Chap, ReflectedChallengeRefused) {
  ChapAuthenticator a(Creds(), {ChapAlgorithm::kMd5}, Counter());
  std::vector<KeyValue> reply, out;
  ASSERT_TRUE(a.OnAlgorithms("5", &reply).ok());
  auto keys = Answer(reply, ChapAlgorithm::kMd5, "esx", "initiator-secret");
  keys.push_back({"CHAP_I", TextKeyValue(reply, "CHAP_I")});
  keys.push_back({"CHAP_C", TextKeyValue(reply, "CHAP_C")});  // our own challenge, sent back
  Status st = a.OnResponse(keys, &out);
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(st.message().find("reflects"), std::string_view::npos);
  EXPECT_TRUE(out.empty());  // nothing computed with the mutual secret
}

TEST(Chap, MutualWithoutMutualCredentialsRefused) {
  ChapCredentials c = Creds();
  c.mutual_user.clear();
  ChapAuthenticator a(c, {ChapAlgorithm::kMd5}, Counter());
  std::vector<KeyValue> reply, out;
  ASSERT_TRUE(a.OnAlgorithms("5", &reply).ok());
  auto keys = Answer(reply, ChapAlgorithm::kMd5, "esx", "initiator-secret");
  keys.push_back({"CHAP_I", "1"});
  keys.push_back({"CHAP_C", "0x0102030405060708"});
  EXPECT_EQ(a.OnResponse(keys, &out).code(), StatusCode::kPermissionDenied);
}

TEST(Chap, ProtocolErrors) {
  ChapAuthenticator a(Creds(), {ChapAlgorithm::kMd5}, Counter());
  std::vector<KeyValue> reply, out;
  EXPECT_FALSE(a.OnResponse({{"CHAP_N", "esx"}, {"CHAP_R", "0x00"}}, &out).ok());  // no CHAP_A
  ASSERT_TRUE(a.OnAlgorithms("5", &reply).ok());
  EXPECT_FALSE(a.OnAlgorithms("5", &reply).ok());              // twice
  EXPECT_FALSE(a.OnResponse({{"CHAP_N", "esx"}}, &out).ok());  // no CHAP_R
  EXPECT_FALSE(a.OnResponse({{"CHAP_N", "esx"}, {"CHAP_R", "0xzz"}}, &out).ok());
  auto keys = Answer(reply, ChapAlgorithm::kMd5, "esx", "initiator-secret");
  keys.push_back({"CHAP_I", "256"});
  keys.push_back({"CHAP_C", "0x01"});
  EXPECT_EQ(a.OnResponse(keys, &out).code(), StatusCode::kInvalidArgument);
}

TEST(Chap, BinaryValues) {
  std::vector<uint8_t> v;
  ASSERT_TRUE(DecodeBinaryValue("0x0aFF", 16, &v));
  EXPECT_EQ(v, (std::vector<uint8_t>{0x0a, 0xff}));
  ASSERT_TRUE(DecodeBinaryValue("0xabc", 16, &v));  // odd digit count
  EXPECT_EQ(v, (std::vector<uint8_t>{0x0a, 0xbc}));
  ASSERT_TRUE(DecodeBinaryValue("0bAQID", 16, &v));  // base64 of 01 02 03
  EXPECT_EQ(v, (std::vector<uint8_t>{1, 2, 3}));
  ASSERT_TRUE(DecodeBinaryValue("0bAQI=", 16, &v));
  EXPECT_EQ(v, (std::vector<uint8_t>{1, 2}));
  for (const char* bad : {"", "0x", "12", "0x1g", "0bA", "0b!!!!", "0y12"}) {
    EXPECT_FALSE(DecodeBinaryValue(bad, 16, &v)) << bad;
  }
  EXPECT_FALSE(DecodeBinaryValue("0x" + std::string(66, 'a'), 32, &v));  // too long
}

}  // namespace
}  // namespace ferry::iscsi
