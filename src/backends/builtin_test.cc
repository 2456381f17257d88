#include "backends/builtin.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

namespace ferry::backends {
namespace {

TEST(BuiltinTest, ListsRamAndFile) {
  std::vector<std::string> names;
  for (const auto& b : BuiltinBackends()) names.emplace_back(b.name);
  EXPECT_EQ(names, (std::vector<std::string>{"ram", "file"}));
}

TEST(BuiltinTest, CreatesRamWithSizeSuffix) {
  auto d = CreateBackend("ram", "r0", {{"size", "1M"}, {"block_size", "4096"}});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->name(), "r0");
  EXPECT_EQ((*d)->geometry().block_size, 4096u);
  EXPECT_EQ((*d)->geometry().size_bytes(), 1u << 20);
}

TEST(BuiltinTest, ErrorsNameTheProblem) {
  auto unknown = CreateBackend("tape", "t", {});
  EXPECT_NE(unknown.status().message().find("unknown backend type 'tape' (known: ram, file)"),
            std::string::npos);
  auto missing = CreateBackend("ram", "r", {});
  EXPECT_NE(missing.status().message().find("parameter 'size' is required"), std::string::npos);
  auto extra = CreateBackend("ram", "r", {{"size", "1M"}, {"colour", "red"}});
  EXPECT_NE(extra.status().message().find("unknown parameter 'colour'"), std::string::npos);
  auto bad = CreateBackend("file", "f", {{"path", "/nonexistent/x"}, {"direct", "maybe"}});
  EXPECT_NE(bad.status().message().find("'maybe' is not a boolean"), std::string::npos);
}

TEST(BuiltinTest, CreatesFile) {
  char tmpl[] = "/tmp/ferry-builtin-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  auto d = CreateBackend("file", "f0", {{"path", tmpl}, {"size", "64k"}});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->type(), "file");
  EXPECT_EQ((*d)->geometry().size_bytes(), 64u * 1024);
  unlink(tmpl);
}

}  // namespace
}  // namespace ferry::backends
