#include "base/size_parse.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

uint64_t Ok(std::string_view s) {
  auto r = ParseSize(s);
  EXPECT_TRUE(r.ok()) << s << ": " << r.status().ToString();
  return r.ok() ? *r : 0;
}

TEST(ParseSize, Bytes) {
  EXPECT_EQ(Ok("0"), 0u);
  EXPECT_EQ(Ok("512"), 512u);
  EXPECT_EQ(Ok("512B"), 512u);
  EXPECT_EQ(Ok("18446744073709551615"), UINT64_MAX);
}

TEST(ParseSize, BinarySuffixes) {
  EXPECT_EQ(Ok("4K"), 4096u);
  EXPECT_EQ(Ok("4k"), 4096u);
  EXPECT_EQ(Ok("4KiB"), 4096u);
  EXPECT_EQ(Ok("1M"), 1u << 20);
  EXPECT_EQ(Ok("1MiB"), 1u << 20);
  EXPECT_EQ(Ok("1G"), 1ull << 30);
  EXPECT_EQ(Ok("4GiB"), 4ull << 30);
  EXPECT_EQ(Ok("2T"), 2ull << 40);
  EXPECT_EQ(Ok("1P"), 1ull << 50);
  EXPECT_EQ(Ok("15E"), 15ull << 60);
}

TEST(ParseSize, DecimalSuffixes) {
  EXPECT_EQ(Ok("100kB"), 100'000u);
  EXPECT_EQ(Ok("1MB"), 1'000'000u);
  EXPECT_EQ(Ok("2GB"), 2'000'000'000u);
  EXPECT_EQ(Ok("1TB"), 1'000'000'000'000u);
}

TEST(ParseSize, Fractions) {
  EXPECT_EQ(Ok("1.5K"), 1536u);
  EXPECT_EQ(Ok("0.5MiB"), 512u * 1024);
  EXPECT_EQ(Ok("1.25GB"), 1'250'000'000u);
}

TEST(ParseSize, Errors) {
  for (std::string_view s :
       {"", "K", "-1", "+1", " 1", "1 ", "1.", ".5K", "1.5", "0.1K", "1X", "1KB2", "1Ki", "1iB",
        "1.5.5K", "18446744073709551616", "16E", "99999999999999999999999", "1KIB"}) {
    auto r = ParseSize(s);
    EXPECT_FALSE(r.ok()) << "'" << s << "' parsed as " << (r.ok() ? *r : 0);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(r.status().message().find("invalid size '" + std::string(s) + "'"),
                std::string_view::npos)
          << r.status().message();
    }
  }
}

TEST(FormatSize, Units) {
  EXPECT_EQ(FormatSize(0), "0 B");
  EXPECT_EQ(FormatSize(1023), "1023 B");
  EXPECT_EQ(FormatSize(1024), "1 KiB");
  EXPECT_EQ(FormatSize(1536), "1.50 KiB");
  EXPECT_EQ(FormatSize(4ull << 30), "4 GiB");
  EXPECT_EQ(FormatSize(UINT64_MAX), "16.00 EiB");
}

TEST(FormatSize, RoundTripsWholeUnits) {
  for (uint64_t v : {1ull, 4096ull, 1ull << 20, 3ull << 30, 7ull << 40}) {
    std::string s = FormatSize(v);
    s.erase(s.find(' '), 1);
    EXPECT_EQ(Ok(s), v) << s;
  }
}

}  // namespace
}  // namespace ferry
