#include "cli/sparse_map.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "backends/builtin.h"

namespace ferry::cli {
namespace {

class SparseMapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/var/tmp/ferry-sparse-XXXXXX";
    fd_ = mkstemp(tmpl);
    ASSERT_GE(fd_, 0);
    path_ = tmpl;
  }
  void TearDown() override {
    close(fd_);
    unlink(path_.c_str());
  }
  // The file's data ranges as `ferryctl copy --sparse` sees them: through the file backend's
  // provisioning (SEEK_DATA / SEEK_HOLE).
  std::vector<ByteRange> Data(uint64_t offset, uint64_t len, uint64_t align) {
    auto dev = backends::OpenDeviceUri(path_);
    EXPECT_TRUE(dev.ok()) << dev.status().ToString();
    if (!dev.ok()) return {};
    return DeviceDataRanges(**dev, offset, len, align);
  }
  void WriteAt(uint64_t off, size_t len) {
    std::vector<char> buf(len, 'x');
    ASSERT_EQ(pwrite(fd_, buf.data(), len, static_cast<off_t>(off)), static_cast<ssize_t>(len));
  }
  // True when this file system reports holes (tmpfs, ext4, xfs do).
  bool HasHoles() {
    off_t h = lseek(fd_, 0, SEEK_HOLE);
    struct stat st {};
    fstat(fd_, &st);
    return h >= 0 && h < st.st_size;
  }
  int fd_ = -1;
  std::string path_;
};

TEST_F(SparseMapTest, FindsDataBetweenHoles) {
  const uint64_t mib = 1 << 20;
  ASSERT_EQ(ftruncate(fd_, 16 * mib), 0);
  WriteAt(2 * mib, mib);
  WriteAt(8 * mib, 2 * mib);
  if (!HasHoles()) GTEST_SKIP() << "the file system of /var/tmp does not report holes";
  const auto d = Data(0, 16 * mib, 4096);
  const auto* r = &d;
  // File systems may allocate a little more than written, never less.
  ASSERT_EQ(r->size(), 2u);
  EXPECT_LE((*r)[0].offset, 2 * mib);
  EXPECT_GE((*r)[0].offset + (*r)[0].len, 3 * mib);
  EXPECT_LE((*r)[1].offset, 8 * mib);
  EXPECT_GE((*r)[1].offset + (*r)[1].len, 10 * mib);
  auto holes = HoleRanges(*r, 0, 16 * mib);
  uint64_t covered = 0;
  for (auto& d : *r) covered += d.len;
  for (auto& h : holes) covered += h.len;
  EXPECT_EQ(covered, 16 * mib);
}

TEST_F(SparseMapTest, ClipsToTheRequestedRange) {
  const uint64_t mib = 1 << 20;
  ASSERT_EQ(ftruncate(fd_, 4 * mib), 0);
  WriteAt(0, 4 * mib);
  const auto r = Data(512, 5120, 1);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], (ByteRange{512, 5120}));
}

TEST_F(SparseMapTest, AllHoleAndEmptyRange) {
  ASSERT_EQ(ftruncate(fd_, 1 << 20), 0);
  if (!HasHoles()) GTEST_SKIP() << "the file system of /var/tmp does not report holes";
  EXPECT_TRUE(Data(0, 1 << 20, 512).empty());
  EXPECT_TRUE(Data(0, 0, 512).empty());
}

TEST(HoleRanges, Complement) {
  std::vector<ByteRange> data = {{10, 5}, {20, 10}};
  auto holes = HoleRanges(data, 0, 40);
  ASSERT_EQ(holes.size(), 3u);
  EXPECT_EQ(holes[0], (ByteRange{0, 10}));
  EXPECT_EQ(holes[1], (ByteRange{15, 5}));
  EXPECT_EQ(holes[2], (ByteRange{30, 10}));
  EXPECT_TRUE(HoleRanges({{0, 40}}, 0, 40).empty());
  EXPECT_EQ(HoleRanges({}, 5, 10).size(), 1u);
}

}  // namespace
}  // namespace ferry::cli
