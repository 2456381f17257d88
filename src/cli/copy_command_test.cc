// End-to-end tests of `ferryctl copy` in process: real files, the real file backend and copy
// engine. The XFS reflink case and ext4 live in tests/integration/ferryctl_copy_test.sh.
#include "cli/copy_command.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace ferry::cli {
namespace {

namespace fs = std::filesystem;

class CopyCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/var/tmp/ferryctl-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::vector<char> Random(size_t n, uint32_t seed = 1) {
    std::mt19937 rng(seed);
    std::vector<char> v(n);
    for (auto& c : v) c = static_cast<char>(rng());
    return v;
  }
  void Write(const std::string& name, const std::vector<char>& data) {
    std::ofstream f(Path(name), std::ios::binary | std::ios::trunc);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  std::vector<char> Read(const std::string& name) {
    std::ifstream f(Path(name), std::ios::binary);
    return std::vector<char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }

  int Run(CopyArgs args) {
    out_.str("");
    err_.str("");
    Console c{out_, err_};
    return RunCopy(args, c);
  }
  CopyArgs Args(const std::string& src, const std::string& dst) {
    CopyArgs a;
    a.src = src.empty() || src[0] == '/' ? src : Path(src);
    a.dst = dst.empty() || dst[0] == '/' ? dst : Path(dst);
    return a;
  }
  nlohmann::json Json() { return nlohmann::json::parse(out_.str()); }

  std::string dir_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(CopyCommandTest, CopiesAFileOfOddLength) {
  auto data = Random(3 * 1024 * 1024 + 123);
  Write("a", data);
  ASSERT_EQ(Run(Args("a", "b")), kExitOk) << err_.str();
  EXPECT_EQ(Read("b"), data);
  EXPECT_EQ(out_.str().rfind("copied 3.00 MiB", 0), 0u) << out_.str();
}

TEST_F(CopyCommandTest, NoOffloadEmulatesEverything) {
  auto data = Random(2 << 20);
  Write("a", data);
  CopyArgs a = Args("a", "b");
  a.no_offload = true;
  a.json = true;
  a.chunk_size = "64K";
  ASSERT_EQ(Run(a), kExitOk) << err_.str();
  EXPECT_EQ(Read("b"), data);
  auto j = Json();
  EXPECT_EQ(j["emulated_bytes"], data.size());
  EXPECT_EQ(j["offloaded_bytes"], 0);
  EXPECT_EQ(j["status"], "ok");
}

TEST_F(CopyCommandTest, OffloadsInsideOneFileSystem) {
  auto data = Random(1 << 20);
  Write("a", data);
  CopyArgs a = Args("a", "b");
  a.json = true;
  ASSERT_EQ(Run(a), kExitOk) << err_.str();
  EXPECT_EQ(Read("b"), data);
  EXPECT_EQ(Json()["offloaded_bytes"], data.size()) << out_.str();
}

TEST_F(CopyCommandTest, RangesKeepTheRestOfTheDestination) {
  auto src = Random(1 << 20, 1);
  auto dst = Random(1 << 20, 2);
  Write("a", src);
  Write("b", dst);
  CopyArgs a = Args("a", "b");
  a.src_offset = "4K";
  a.dst_offset = "100000";
  a.length = "64KiB";
  ASSERT_EQ(Run(a), kExitOk) << err_.str();
  std::copy(src.begin() + 4096, src.begin() + 4096 + 65536, dst.begin() + 100000);
  EXPECT_EQ(Read("b"), dst);
}

TEST_F(CopyCommandTest, GrowsAShortRegularDestination) {
  auto src = Random(100000);
  Write("a", src);
  Write("b", Random(10, 3));
  CopyArgs a = Args("a", "b");
  a.dst_offset = "1M";
  ASSERT_EQ(Run(a), kExitOk) << err_.str();
  auto got = Read("b");
  ASSERT_EQ(got.size(), (1u << 20) + src.size());
  EXPECT_TRUE(std::equal(src.begin(), src.end(), got.begin() + (1 << 20)));
}

TEST_F(CopyCommandTest, TruncatesLikeCpWithoutRanges) {
  Write("a", Random(5000, 1));
  Write("b", Random(50000, 2));
  ASSERT_EQ(Run(Args("a", "b")), kExitOk) << err_.str();
  EXPECT_EQ(Read("b"), Read("a"));
}

TEST_F(CopyCommandTest, IntoADirectoryUsesTheSourceName) {
  Write("a", Random(4096));
  fs::create_directory(Path("d"));
  ASSERT_EQ(Run(Args("a", "d")), kExitOk) << err_.str();
  EXPECT_EQ(Read("d/a"), Read("a"));
}

TEST_F(CopyCommandTest, EmptySourceMakesAnEmptyDestination) {
  Write("a", {});
  Write("b", Random(100));
  ASSERT_EQ(Run(Args("a", "b")), kExitOk) << err_.str();
  EXPECT_TRUE(Read("b").empty());
}

TEST_F(CopyCommandTest, MovesARangeInsideOneFileLikeMemmove) {
  auto data = Random(1 << 20);
  Write("a", data);
  CopyArgs a = Args("a", "a");
  a.src_offset = "0";
  a.dst_offset = "1000";
  a.length = "500000";
  ASSERT_EQ(Run(a), kExitOk) << err_.str();
  std::memmove(data.data() + 1000, data.data(), 500000);
  EXPECT_EQ(Read("a"), data);
}

TEST_F(CopyCommandTest, SparseSkipsHoles) {
  const size_t mib = 1 << 20;
  {
    int fd = open(Path("a").c_str(), O_CREAT | O_RDWR, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, 16 * mib), 0);
    auto chunk = Random(mib);
    ASSERT_EQ(pwrite(fd, chunk.data(), mib, 4 * mib), static_cast<ssize_t>(mib));
    close(fd);
  }
  Write("b", Random(16 * mib, 9));  // old data where the holes go: must become zeroes
  CopyArgs a = Args("a", "b");
  a.sparse = true;
  a.json = true;
  a.length = "16M";  // keep b's allocation: holes are zeroed, not truncated away
  ASSERT_EQ(Run(a), kExitOk) << err_.str();
  EXPECT_EQ(Read("b"), Read("a"));
  auto j = Json();
  if (j["skipped_hole_bytes"] == 0) GTEST_SKIP() << "/var/tmp does not report holes";
  EXPECT_GE(j["skipped_hole_bytes"].get<uint64_t>(), 14 * mib);
  // A fresh destination keeps the holes.
  CopyArgs fresh = Args("a", "c");
  fresh.sparse = true;
  ASSERT_EQ(Run(fresh), kExitOk) << err_.str();
  EXPECT_EQ(Read("c"), Read("a"));
  struct stat st {};
  ASSERT_EQ(stat(Path("c").c_str(), &st), 0);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 8 * mib);
}

TEST_F(CopyCommandTest, ErrorsSayWhatToFix) {
  struct Case {
    CopyArgs args;
    std::string message;
  };
  Write("a", Random(8192));
  fs::create_directory(Path("d"));
  std::vector<Case> cases;
  cases.push_back({Args("missing", "b"), "source '" + Path("missing") + "' does not exist"});
  cases.push_back({Args("d", "b"), "is a directory"});
  cases.push_back({Args("a", "nodir/b"), "destination: cannot create '" + Path("nodir/b") +
                                             "': its directory does not exist"});
  cases.push_back({Args("a", "a"), "are the same file"});
  CopyArgs past = Args("a", "b");
  past.src_offset = "1M";
  cases.push_back({past, "--src-offset 1048576 is past the end of source"});
  CopyArgs too_long = Args("a", "b");
  too_long.length = "10000";
  cases.push_back({too_long, "reach past its end"});
  CopyArgs bad_size = Args("a", "b");
  bad_size.length = "12Q";
  cases.push_back({bad_size, "--length: invalid size '12Q'"});
  CopyArgs bad_chunk = Args("a", "b");
  bad_chunk.chunk_size = "1K";
  cases.push_back({bad_chunk, "--chunk-size must be between"});
  for (auto& c : cases) {
    EXPECT_EQ(Run(c.args), kExitUsage) << c.message;
    EXPECT_NE(err_.str().find(c.message), std::string::npos)
        << "expected '" << c.message << "' in: " << err_.str();
    EXPECT_EQ(err_.str().rfind("ferryctl copy: ", 0), 0u) << err_.str();
  }
  EXPECT_FALSE(fs::exists(Path("b"))) << "a refused copy must not create the destination";
}

TEST_F(CopyCommandTest, UnwritableDestinationIsAPermissionError) {
  Write("a", Random(4096));
  Write("b", Random(4096));
  // Root ignores file modes; an immutable file refuses root too.
  if (std::system(("chattr +i " + Path("b") + " 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "chattr +i is not supported on /var/tmp's file system";
  }
  CopyArgs a = Args("a", "b");
  a.length = "4K";  // no truncation: the open itself must fail
  int rc = Run(a);
  EXPECT_EQ(std::system(("chattr -i " + Path("b")).c_str()), 0);
  EXPECT_EQ(rc, kExitUsage);
  EXPECT_NE(err_.str().find("destination: cannot open '" + Path("b") + "' for writing: "),
            std::string::npos)
      << err_.str();
}

TEST_F(CopyCommandTest, DirectNeedsBlockMultiples) {
  Write("a", Random(1 << 20));
  CopyArgs a = Args("a", "b");
  a.direct = true;
  a.length = "1000";
  int rc = Run(a);
  if (err_.str().find("O_DIRECT") != std::string::npos) GTEST_SKIP() << err_.str();
  EXPECT_EQ(rc, kExitUsage);
  EXPECT_NE(err_.str().find("block size"), std::string::npos) << err_.str();
  a.length = "";
  ASSERT_EQ(Run(a), kExitOk) << err_.str();
  EXPECT_EQ(Read("b"), Read("a"));
}

TEST_F(CopyCommandTest, VerboseExplainsWhyNotOffloaded) {
  Write("a", Random(1 << 20));
  CopyArgs a = Args("a", "b");
  a.no_offload = true;
  a.verbose = true;
  ASSERT_EQ(Run(a), kExitOk) << err_.str();
  EXPECT_NE(err_.str().find("not offloaded: "), std::string::npos) << err_.str();
  EXPECT_NE(err_.str().find("emulated: 1048576 bytes"), std::string::npos) << err_.str();
}

}  // namespace
}  // namespace ferry::cli
