// Logging options (src/base/log.h): JSON lines, a log file, and ReopenLogs() after
// logrotate moved the file away.
#include "base/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace ferry {
namespace {

std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class LogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("ferry-log-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    ASSERT_TRUE(ConfigureLogging(LogFormat::kText, "").ok());
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
};

TEST(LogFormat, Parse) {
  LogFormat f = LogFormat::kJson;
  EXPECT_TRUE(ParseLogFormat("text", &f));
  EXPECT_EQ(f, LogFormat::kText);
  EXPECT_TRUE(ParseLogFormat("json", &f));
  EXPECT_EQ(f, LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("xml", &f));
}

TEST_F(LogFileTest, JsonLinesEscaped) {
  const auto file = dir_ / "ferryd.log";
  ASSERT_TRUE(ConfigureLogging(LogFormat::kJson, file.string()).ok());
  FERRY_LOG_WARN("quote \" backslash \\ newline \n tab \t bell \x07 end");
  const std::string text = Slurp(file);
  EXPECT_EQ(text.find("{\"ts\":\""), 0u) << text;
  EXPECT_NE(text.find("\"level\":\"warning\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"src\":\"log_test.cc:"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("msg":"quote \" backslash \\ newline \n tab \t bell \u0007 end"})"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\n'), text.size() - 1);  // one line
}

TEST_F(LogFileTest, ReopenAfterRotation) {
  const auto file = dir_ / "ferryd.log";
  ASSERT_TRUE(ConfigureLogging(LogFormat::kText, file.string()).ok());
  FERRY_LOG_INFO("before rotation");
  std::filesystem::rename(file, dir_ / "ferryd.log.1");  // logrotate's move
  FERRY_LOG_INFO("still the old file");
  ReopenLogs();
  FERRY_LOG_INFO("after rotation");
  const std::string old_text = Slurp(dir_ / "ferryd.log.1");
  const std::string new_text = Slurp(file);
  EXPECT_NE(old_text.find("before rotation"), std::string::npos);
  EXPECT_NE(old_text.find("still the old file"), std::string::npos);
  EXPECT_EQ(old_text.find("after rotation"), std::string::npos);
  EXPECT_NE(new_text.find("after rotation"), std::string::npos);
  EXPECT_EQ(new_text.find("before rotation"), std::string::npos);
  EXPECT_EQ(std::filesystem::status(file).permissions() & std::filesystem::perms::others_all,
            std::filesystem::perms::none);
}

TEST_F(LogFileTest, UnwritableFileIsAnError) {
  EXPECT_FALSE(ConfigureLogging(LogFormat::kText, (dir_ / "no/such/dir/x.log").string()).ok());
}

}  // namespace
}  // namespace ferry
