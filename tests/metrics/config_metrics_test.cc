// ferryd's "metrics" and "log" configuration sections (src/daemon/config.h): defaults,
// the listen address, and errors with their JSON paths.
#include <gtest/gtest.h>

#include <string>

#include "daemon/config.h"

namespace ferry::daemon {
namespace {

std::string With(const std::string& sections) {
  return R"({)" + sections + R"(, "backstores": {"r": {"type": "ram", "size": "1M"}},
    "targets": {"iqn.2026-11.org.ferry:t": {"luns": [{"lun": 0, "backstore": "r"}],
      "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:3260"]}]}}})";
}

TEST(ConfigMetrics, OffByDefault) {
  auto c = ParseConfig(With(R"("nop_interval_s": 30)"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->metrics_listen, "");
  EXPECT_EQ(c->log_format, "");
  EXPECT_EQ(c->log_file, "");
}

TEST(ConfigMetrics, ListenAddress) {
  auto c = ParseConfig(With(R"("metrics": {"listen": "127.0.0.1:9100"})"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9100");
  c = ParseConfig(With(R"("metrics": {"listen": "127.0.0.1"})"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9560");
  c = ParseConfig(With(R"("metrics": {"listen": "[::1]:0"})"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->metrics_listen, "[::1]:0");
}

TEST(ConfigMetrics, ErrorsNameTheirPath) {
  auto c = ParseConfig(With(R"("metrics": {"listen": "localhost:9560"})"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message().substr(0, 17), "$.metrics.listen:");
  c = ParseConfig(With(R"("metrics": {"port": 9560})"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message().substr(0, 15), "$.metrics.port:");
  c = ParseConfig(With(R"("metrics": {})"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "$.metrics.listen: required");
  c = ParseConfig(With(R"("log": {"format": "xml"})"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message().substr(0, 13), "$.log.format:");
  c = ParseConfig(With(R"("log": {"file": ""})"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message().substr(0, 11), "$.log.file:");
  c = ParseConfig(With(R"("log": {"level": "info"})"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message().substr(0, 12), "$.log.level:");
}

TEST(ConfigMetrics, LogSection) {
  auto c = ParseConfig(With(R"("log": {"format": "json", "file": "/var/log/ferry/ferryd.log"})"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->log_format, "json");
  EXPECT_EQ(c->log_file, "/var/log/ferry/ferryd.log");
}

}  // namespace
}  // namespace ferry::daemon
