// Native copy by reflink on an XFS file system the test creates on a loop device.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <fstream>

#include "backends/file/file_device.h"
#include "backends/file/testing/file_test_util.h"
#include "backends/file/testing/xfs_loop_fixture.h"

namespace ferry::backends {
namespace {

using testing::Bytes;

// True when every extent of the first `len` bytes of `path` is shared (FIEMAP).
bool AllShared(const std::string& path, uint64_t len) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return false;
  std::vector<char> buf(sizeof(fiemap) + 64 * sizeof(fiemap_extent));
  auto* fm = reinterpret_cast<fiemap*>(buf.data());
  fm->fm_start = 0;
  fm->fm_length = len;
  fm->fm_flags = FIEMAP_FLAG_SYNC;
  fm->fm_extent_count = 64;
  bool ok = ioctl(fd, FS_IOC_FIEMAP, fm) == 0 && fm->fm_mapped_extents > 0;
  for (uint32_t i = 0; ok && i < fm->fm_mapped_extents; ++i) {
    ok = (fm->fm_extents[i].fe_flags & FIEMAP_EXTENT_SHARED) != 0;
  }
  close(fd);
  return ok;
}

class ReflinkTest : public testing::FileTestBase {
 protected:
  void SetUp() override {
    FileTestBase::SetUp();
    xfs_ = std::make_unique<testing::LoopFileSystem>("xfs", 512ull << 20);
    if (!xfs_->ok()) GTEST_SKIP() << xfs_->skip_reason;
  }
  void TearDown() override {
    xfs_.reset();
    FileTestBase::TearDown();
  }
  Bytes WriteFile(const std::string& p, size_t n) {
    Bytes b = Random(n);
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    return b;
  }
  Bytes ReadFile(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }
  std::unique_ptr<testing::LoopFileSystem> xfs_;
};

TEST_F(ReflinkTest, AlignedLegsReflink) {
  const uint64_t n = 64 << 20;
  Bytes a = WriteFile(xfs_->Path("a"), n);
  auto src = Open({.path = xfs_->Path("a")});
  auto dst = Open({.path = xfs_->Path("b"), .create = true, .size_bytes = n});
  ASSERT_TRUE(dst->CanCopyFrom(*src, nullptr));
  block::CopyMechanism m{};
  ASSERT_EQ(Copy(*dst, *src, {{0, 0, n}}, &m), IoStatus::kOk);
  EXPECT_EQ(m, block::CopyMechanism::kReflink);
  EXPECT_EQ(ReadFile(xfs_->Path("b")), a);
  EXPECT_TRUE(AllShared(xfs_->Path("b"), n)) << "the destination's extents are not shared";
}

TEST_F(ReflinkTest, UnalignedLegsFallBackToCopyFileRange) {
  const uint64_t n = 1 << 20;
  Bytes a = WriteFile(xfs_->Path("a"), n + 4321);
  auto src = Open({.path = xfs_->Path("a"), .block_size = 1});
  auto dst = Open({.path = xfs_->Path("b"), .create = true, .size_bytes = n, .block_size = 1});
  block::CopyMechanism m{};
  ASSERT_EQ(Copy(*dst, *src, {{4321, 7, n - 7}}, &m), IoStatus::kOk);
  EXPECT_EQ(m, block::CopyMechanism::kCopyFileRange);
  Bytes b = ReadFile(xfs_->Path("b"));
  EXPECT_TRUE(std::equal(a.begin() + 4321, a.begin() + 4321 + (n - 7), b.begin() + 7));
  // Same misalignment on both sides: the aligned middle is cloned, the ends copied, and the
  // leg says how much was cloned (4 KiB XFS blocks: [4096, n - 4096)).
  uint64_t reflinked = 0;
  ASSERT_EQ(Copy(*dst, *src, {{100, 100, n - 200}}, &m, &reflinked), IoStatus::kOk);
  EXPECT_EQ(m, block::CopyMechanism::kCopyFileRange);
  EXPECT_EQ(reflinked, n - 2 * 4096);
  b = ReadFile(xfs_->Path("b"));
  EXPECT_TRUE(std::equal(a.begin() + 100, a.begin() + (n - 100), b.begin() + 100));
}

TEST_F(ReflinkTest, OtherFileSystemsAreNotNative) {
  WriteFile(xfs_->Path("a"), 1 << 20);
  auto src = Open({.path = xfs_->Path("a")});
  auto dst = Open({.path = Path("elsewhere"), .create = true, .size_bytes = 1 << 20});
  std::string why;
  EXPECT_FALSE(dst->CanCopyFrom(*src, &why));
  EXPECT_NE(why.find("different file systems"), std::string::npos) << why;
}

// ext4 cannot clone: FICLONERANGE fails with EOPNOTSUPP and the whole leg, aligned or not,
// goes through copy_file_range.
class NoReflinkTest : public testing::FileTestBase {};

TEST_F(NoReflinkTest, Ext4FallsBackToCopyFileRange) {
  testing::LoopFileSystem ext4("ext4", 128ull << 20);
  if (!ext4.ok()) GTEST_SKIP() << ext4.skip_reason;
  const uint64_t n = 8 << 20;
  Bytes a = Random(n);
  {
    std::ofstream f(ext4.Path("a"), std::ios::binary);
    f.write(reinterpret_cast<const char*>(a.data()), static_cast<std::streamsize>(n));
  }
  auto src = Open({.path = ext4.Path("a")});
  auto dst = Open({.path = ext4.Path("b"), .create = true, .size_bytes = n});
  ASSERT_TRUE(dst->CanCopyFrom(*src, nullptr));
  block::CopyMechanism m{};
  ASSERT_EQ(Copy(*dst, *src, {{0, 0, n / 2}, {n / 2, n / 2, n / 2}}, &m), IoStatus::kOk);
  EXPECT_EQ(m, block::CopyMechanism::kCopyFileRange);
  std::ifstream f(ext4.Path("b"), std::ios::binary);
  Bytes b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(b, a);
  src.reset();
  dst.reset();
}

}  // namespace
}  // namespace ferry::backends
