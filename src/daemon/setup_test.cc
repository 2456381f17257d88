#include "daemon/setup.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "base/secret_file.h"

namespace ferry::daemon {
namespace {

class SetupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ferry-setup-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text, mode_t mode = 0600) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p) << text;
    chmod(p.c_str(), mode);
    return p;
  }
  std::filesystem::path dir_;
};

TEST_F(SetupTest, ReadsSecrets) {
  auto s = ReadSecretFile(Write("ok", "a-good-secret-1\n"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(*s, "a-good-secret-1");
  auto open = ReadSecretFile(Write("open", "a-good-secret-1\n", 0644));
  EXPECT_EQ(open.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(open.status().message().find("chmod 600"), std::string_view::npos);
  EXPECT_FALSE(ReadSecretFile(Write("short", "eleven-char")).ok());
  EXPECT_FALSE(ReadSecretFile(Write("space", "has a space in it")).ok());
  EXPECT_FALSE(ReadSecretFile(Write("hash", "has#hash-inside")).ok());
  EXPECT_FALSE(ReadSecretFile((dir_ / "missing").string()).ok());
}

TEST_F(SetupTest, MutualSecretMustDiffer) {
  AuthGroupConfig a{.name = "g",
                    .user = "u",
                    .secret_file = Write("s1", "same-secret-123"),
                    .mutual_user = "m",
                    .mutual_secret_file = Write("s2", "same-secret-123")};
  EXPECT_FALSE(LoadAuthGroup(a).ok());
  a.mutual_secret_file = Write("s3", "other-secret-456");
  auto c = LoadAuthGroup(a);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->mutual_secret, "other-secret-456");
}

TEST_F(SetupTest, DemoConfigOpensWithStableIdentity) {
  auto portal = ParsePortal("127.0.0.1:0");
  ASSERT_TRUE(portal.ok());
  Config c = DemoConfig(*portal, 8 << 20);
  auto s = Prepare(c, dir_.string());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(std::filesystem::exists(dir_ / "demo-file.img"));
  const std::string serial = s->backstores.at("demo-file").lu->identity().serial;
  auto again = Prepare(c, dir_.string());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->backstores.at("demo-file").lu->identity().serial, serial);
  auto targets = MakeTargets(c, *s, {{"127.0.0.1:0#0", "127.0.0.1:4000"}});
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0]->config().portal_groups[0].portals[0], "127.0.0.1:4000");
  EXPECT_NE(targets[0]->GroupFor("127.0.0.1:4000"), nullptr);
  EXPECT_EQ(targets[0]->GroupFor("127.0.0.1:4001"), nullptr);
}

TEST_F(SetupTest, AclLunMapsAndWriteProtect) {
  auto c = ParseConfig(R"({
    "backstores": {"a": {"type": "ram", "size": "1M"}, "b": {"type": "ram", "size": "1M"}},
    "targets": {"iqn.2026-11.org.ferry:t": {
      "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
      "luns": [{"lun": 0, "backstore": "a"}, {"lun": 7, "backstore": "b", "write_protect": true}],
      "acls": [{"initiators": ["iqn.2026-11.org.ferry:one"], "luns": [{"lun": 7, "as": 0}]},
               {"networks": ["127.0.0.0/8"], "write_protect": true}]}}})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto s = Prepare(*c, dir_.string());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto t = MakeTargets(*c, *s, {{"127.0.0.1:0#0", "127.0.0.1:4000"}})[0];
  iscsi::IpAddress lo, other;
  ASSERT_TRUE(iscsi::ParseIpAddress("127.0.0.1", &lo));
  ASSERT_TRUE(iscsi::ParseIpAddress("192.0.2.1", &other));
  const iscsi::Acl* one = t->Authorize("iqn.2026-11.org.ferry:one", other);
  ASSERT_NE(one, nullptr);
  iscsi::LunView v = t->ViewFor(*one);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v.at(0).target_lun, 7u);   // LUN 7 shown as 0
  EXPECT_TRUE(v.at(0).write_protect);  // the target's LUN is write-protected for all
  const iscsi::Acl* local = t->Authorize("iqn.2026-11.org.ferry:two", lo);
  ASSERT_NE(local, nullptr);
  v = t->ViewFor(*local);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_TRUE(v.at(0).write_protect);  // the entry write-protects everything
  EXPECT_EQ(t->Authorize("iqn.2026-11.org.ferry:two", other), nullptr);
}

TEST(PortalKeyTest, PortZeroGetsAListenerPerPortalGroupOfATarget) {
  auto any = ParsePortal("127.0.0.1:0");
  auto fixed = ParsePortal("127.0.0.1:3260");
  ASSERT_TRUE(any.ok() && fixed.ok());
  EXPECT_NE(PortalKey(0, *any), PortalKey(1, *any));
  EXPECT_EQ(PortalKey(0, *fixed), PortalKey(1, *fixed));  // one address, one listener
  EXPECT_EQ(PortalKey(0, *fixed), "127.0.0.1:3260");
}

}  // namespace
}  // namespace ferry::daemon
