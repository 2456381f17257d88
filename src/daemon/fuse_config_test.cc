// The configuration's "fuse" section (config.h FuseConfig).
#include <gtest/gtest.h>

#include <string>

#include "daemon/config.h"

namespace ferry::daemon {
namespace {

// A valid configuration with backstore "a", volume "v" and `fuse` as its fuse section.
std::string WithFuse(const std::string& fuse) {
  return R"({"backstores": {"a": {"type": "ram", "size": "1M"}},
             "volumes": [{"name": "v", "table": "0 2048 linear a 0"}],
             "targets": {"iqn.2026-11.org.ferry:t": {
               "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
               "luns": [{"lun": 0, "backstore": "a"}]}})" +
         (fuse.empty() ? std::string() : ", \"fuse\": " + fuse) + "}";
}

std::string Error(const std::string& fuse) {
  auto c = ParseConfig(WithFuse(fuse));
  return c.ok() ? "ok" : std::string(c.status().message());
}

TEST(FuseConfig, AbsentMeansNoMount) {
  auto c = ParseConfig(WithFuse(""));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_FALSE(c->fuse.has_value());
}

TEST(FuseConfig, Decodes) {
  auto c = ParseConfig(
      WithFuse(R"({"mount_point": "/mnt/ferry", "devices": ["a", "v"], "allow_other": true})"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_TRUE(c->fuse.has_value());
  EXPECT_EQ(c->fuse->mount_point, "/mnt/ferry");
  EXPECT_EQ(c->fuse->devices, (std::vector<std::string>{"a", "v"}));
  EXPECT_TRUE(c->fuse->allow_other);
  EXPECT_FALSE(c->fuse->read_only);
}

TEST(FuseConfig, ErrorsNameTheirPath) {
  EXPECT_EQ(Error(R"({"devices": []})"), "$.fuse.mount_point: required");
  EXPECT_EQ(Error(R"({"mount_point": "mnt"})"), "$.fuse.mount_point: must be an absolute path");
  EXPECT_EQ(Error(R"({"mount_point": "/m", "devices": ["a", "b"]})"),
            "$.fuse.devices[1]: no backstore or volume named 'b'");
  EXPECT_EQ(Error(R"({"mount_point": "/m", "devices": ["a", "a"]})"),
            "$.fuse.devices[1]: 'a' is listed twice");
  EXPECT_EQ(Error(R"({"mount_point": "/m", "devices": [1]})"),
            "$.fuse.devices[0]: expected a string");
  EXPECT_EQ(Error(R"({"mount_point": "/m", "read_only": "yes"})"),
            "$.fuse.read_only: expected true or false, got a string");
  EXPECT_EQ(Error(R"("/m")"), "$.fuse: expected an object, got a string");
  const std::string unknown = Error(R"({"mount_point": "/m", "mountpoint": "/m"})");
  EXPECT_EQ(unknown.rfind("$.fuse.mountpoint: unknown key", 0), 0u) << unknown;
}

}  // namespace
}  // namespace ferry::daemon
