// Helpers for the C API tests: a temporary directory, files of random bytes, a context
// per test, and a blocking wait for one completion.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "ferry/ferry.h"

namespace ferry::api::apitest {

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry_api_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(ferry_ctx_new(nullptr, &ctx_), 0) << ferry_errmsg();
  }
  void TearDown() override {
    ferry_ctx_free(ctx_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // A file of `len` random bytes (seeded: reproducible).
  std::vector<uint8_t> WriteRandom(const std::string& path, size_t len, uint32_t seed) {
    std::vector<uint8_t> data(len);
    std::mt19937 rng(seed);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    WriteFile(path, data);
    return data;
  }
  static void WriteFile(const std::string& path, const std::vector<uint8_t>& data) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  }
  static std::vector<uint8_t> ReadFile(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
  }

  ferry_dev* Open(const std::string& uri, uint32_t flags = 0) {
    ferry_dev* dev = nullptr;
    EXPECT_EQ(ferry_dev_open(ctx_, uri.c_str(), flags, &dev), 0) << uri << ": " << ferry_errmsg();
    return dev;
  }

  uint64_t Submit(ferry_dev* src, ferry_dev* dst, const std::vector<ferry_range>& ranges,
                  uint32_t flags = 0, void* user_data = nullptr) {
    uint64_t cookie = 0;
    EXPECT_EQ(
        ferry_copy_submit(ctx_, src, dst, ranges.data(), ranges.size(), flags, user_data, &cookie),
        0)
        << ferry_errmsg();
    return cookie;
  }

  // Waits (bounded) for the next completion.
  ferry_completion ReapOne() {
    ferry_completion c{};
    c.size = sizeof(c);
    EXPECT_EQ(ferry_reap(ctx_, &c, 1, 1, 60000), 1);
    return c;
  }

  // Copies `ranges` and expects success.
  ferry_completion CopySync(ferry_dev* src, ferry_dev* dst, const std::vector<ferry_range>& ranges,
                            uint32_t flags = 0) {
    uint64_t cookie = Submit(src, dst, ranges, flags);
    ferry_completion c = ReapOne();
    EXPECT_EQ(c.cookie, cookie);
    EXPECT_EQ(c.result, 0);
    return c;
  }

  std::string dir_;
  ferry_ctx* ctx_ = nullptr;
};

}  // namespace ferry::api::apitest
