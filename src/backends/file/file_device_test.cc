#include "backends/file/file_device.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "backends/file/testing/file_test_util.h"
#include "backends/ram/ram_device.h"

namespace ferry::backends {
namespace {

using testing::Bytes;

class FileDeviceTest : public testing::FileTestBase {
 protected:
  Bytes ReadFile(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }
  void WriteFile(const std::string& p, const Bytes& b) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }
  std::string Error(FileOptions o) {
    auto d = FileDevice::Open(std::move(o));
    EXPECT_FALSE(d.ok());
    return d.ok() ? "" : std::string(d.status().message());
  }
};

TEST_F(FileDeviceTest, OpenErrorsSayWhatToFix) {
  WriteFile(Path("odd"), Random(1000));
  WriteFile(Path("empty"), {});
  EXPECT_NE(Error({.path = Path("nope")}).find("does not exist (create=true creates it)"),
            std::string::npos);
  EXPECT_NE(Error({.path = Path("nope"), .create = true}).find("needs size="), std::string::npos);
  EXPECT_NE(Error({.path = dir_}).find("is a directory"), std::string::npos);
  EXPECT_NE(Error({.path = Path("odd")}).find("not a multiple of the block size 512"),
            std::string::npos);
  EXPECT_NE(Error({.path = Path("empty")}).find("is empty"), std::string::npos);
  EXPECT_NE(Error({.path = Path("odd"), .block_size = 1000}).find("power of two"),
            std::string::npos);
  EXPECT_NE(Error({.path = Path("odd"), .direct = true, .block_size = 1}).find("byte addressing"),
            std::string::npos);
  EXPECT_NE(Error({.path = Path("odd"), .read_only = true, .size_bytes = 4096})
                .find("read_only=true cannot grow it"),
            std::string::npos);
  EXPECT_NE(Error({.path = "/dev/null"}).find("not a regular file or block device"),
            std::string::npos);
  EXPECT_NE(Error({.path = ""}).find("path is empty"), std::string::npos);
}

TEST_F(FileDeviceTest, CreatesAndGrows) {
  auto dev = Open({.path = Path("new"), .create = true, .size_bytes = 1 << 20});
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ(dev->geometry().size_bytes(), 1u << 20);
  EXPECT_EQ(dev->geometry().block_size, 512u);
  EXPECT_EQ(dev->name(), Path("new"));
  auto grown = Open({.name = "g", .path = Path("new"), .size_bytes = 2 << 20});
  ASSERT_NE(grown, nullptr);
  EXPECT_EQ(std::filesystem::file_size(Path("new")), 2u << 20);
  EXPECT_EQ(grown->name(), "g");
  // A smaller size uses the front of the file and leaves the file alone.
  auto front = Open({.path = Path("new"), .size_bytes = 4096});
  EXPECT_EQ(front->geometry().size_bytes(), 4096u);
  EXPECT_EQ(std::filesystem::file_size(Path("new")), 2u << 20);
}

TEST_F(FileDeviceTest, ByteAddressedRoundTrip) {
  Bytes data = Random(12345);
  WriteFile(Path("b"), data);
  auto dev = Open({.path = Path("b"), .block_size = 1});
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ(dev->geometry().block_size, 1u);
  EXPECT_EQ(dev->geometry().num_blocks.value(), 12345u);
  Bytes part(777);
  ASSERT_EQ(Io(*dev, block::IoOp::kRead, 1001, 777, &part), IoStatus::kOk);
  EXPECT_TRUE(std::equal(part.begin(), part.end(), data.begin() + 1001));
  Bytes w = Random(333);
  ASSERT_EQ(Io(*dev, block::IoOp::kWrite, 12000, 333, &w, block::kIoFua), IoStatus::kOk);
  std::copy(w.begin(), w.end(), data.begin() + 12000);
  EXPECT_EQ(ReadFile(Path("b")), data);
  EXPECT_EQ(Io(*dev, block::IoOp::kWrite, 12300, 333, &w), IoStatus::kInvalid);
}

TEST_F(FileDeviceTest, FlushAndFua) {
  auto dev = Open({.path = Path("f"), .create = true, .size_bytes = 1 << 20});
  Bytes w = Random(4096);
  EXPECT_EQ(Io(*dev, block::IoOp::kWrite, 0, 4096, &w, block::kIoFua), IoStatus::kOk);
  EXPECT_EQ(Io(*dev, block::IoOp::kFlush, 0, 0), IoStatus::kOk);
}

TEST_F(FileDeviceTest, DiscardPunchesHolesAndWriteZeroesZeroes) {
  auto dev = Open({.path = Path("h"), .create = true, .size_bytes = 8 << 20});
  Bytes w = Random(8 << 20);
  Bytes half1(w.begin(), w.begin() + (4 << 20)), half2(w.begin() + (4 << 20), w.end());
  ASSERT_EQ(Io(*dev, block::IoOp::kWrite, 0, 4 << 20, &half1), IoStatus::kOk);
  ASSERT_EQ(Io(*dev, block::IoOp::kWrite, 4 << 20, 4 << 20, &half2), IoStatus::kOk);
  ASSERT_EQ(Io(*dev, block::IoOp::kFlush, 0, 0), IoStatus::kOk);
  struct stat before {
  }, after{};
  ASSERT_EQ(stat(Path("h").c_str(), &before), 0);
  ASSERT_EQ(Io(*dev, block::IoOp::kDiscard, 1 << 20, 4 << 20), IoStatus::kOk);
  ASSERT_EQ(stat(Path("h").c_str(), &after), 0);
  EXPECT_LE(after.st_blocks * 512 + (4 << 20), before.st_blocks * 512 + 65536);
  ASSERT_EQ(Io(*dev, block::IoOp::kWriteZeroes, 6 << 20, 1 << 20), IoStatus::kOk);
  Bytes r(4 << 20), r2(4 << 20);
  ASSERT_EQ(Io(*dev, block::IoOp::kRead, 0, 4 << 20, &r), IoStatus::kOk);
  ASSERT_EQ(Io(*dev, block::IoOp::kRead, 4 << 20, 4 << 20, &r2), IoStatus::kOk);
  r.insert(r.end(), r2.begin(), r2.end());
  std::fill(w.begin() + (1 << 20), w.begin() + (5 << 20), 0);  // punched holes read zeroes
  std::fill(w.begin() + (6 << 20), w.begin() + (7 << 20), 0);
  EXPECT_EQ(r, w);
}

TEST_F(FileDeviceTest, NativeCopyInsideAndBetweenFiles) {
  Bytes a = Random(4 << 20);
  WriteFile(Path("a"), a);
  auto src = Open({.path = Path("a")});
  auto dst = Open({.path = Path("c"), .create = true, .size_bytes = 4 << 20});
  ASSERT_TRUE(dst->CanCopyFrom(*src, nullptr));
  block::CopyMechanism m{};
  ASSERT_EQ(Copy(*dst, *src, {{0, 1 << 20, 1 << 20}, {2 << 20, 0, 512}}, &m), IoStatus::kOk);
  EXPECT_TRUE(m == block::CopyMechanism::kReflink || m == block::CopyMechanism::kCopyFileRange);
  Bytes c = ReadFile(Path("c"));
  EXPECT_TRUE(std::equal(a.begin(), a.begin() + (1 << 20), c.begin() + (1 << 20)));
  EXPECT_TRUE(std::equal(a.begin() + (2 << 20), a.begin() + (2 << 20) + 512, c.begin()));
  // Inside one file, not overlapping.
  ASSERT_EQ(Copy(*src, *src, {{0, 3 << 20, 1 << 20}}), IoStatus::kOk);
  Bytes a2 = ReadFile(Path("a"));
  EXPECT_TRUE(std::equal(a.begin(), a.begin() + (1 << 20), a2.begin() + (3 << 20)));
  // Overlapping inside one file: emulate.
  EXPECT_EQ(Copy(*src, *src, {{0, 4096, 1 << 20}}), IoStatus::kNotSupported);
  // Out of range, misaligned, empty.
  EXPECT_EQ(Copy(*dst, *src, {{4 << 20, 0, 512}}), IoStatus::kInvalid);
  EXPECT_EQ(Copy(*dst, *src, {{1, 0, 512}}), IoStatus::kInvalid);
  EXPECT_EQ(Copy(*dst, *src, {}), IoStatus::kInvalid);
}

TEST_F(FileDeviceTest, ReadOnlyDestinationRefusesCopies) {
  WriteFile(Path("a"), Random(1 << 20));
  auto src = Open({.path = Path("a"), .read_only = true});
  EXPECT_EQ(src->limits().max_copy_bytes, 0u);
  EXPECT_EQ(Copy(*src, *src, {{0, 4096, 512}}), IoStatus::kReadOnly);
  Bytes w(512);
  EXPECT_EQ(Io(*src, block::IoOp::kWrite, 0, 512, &w), IoStatus::kReadOnly);
}

TEST_F(FileDeviceTest, NoNativeCopyFromOtherDevices) {
  auto ram = *RamDevice::Create({.name = "r", .size_bytes = 1 << 20});
  auto dst = Open({.path = Path("c"), .create = true, .size_bytes = 1 << 20});
  std::string why;
  EXPECT_FALSE(dst->CanCopyFrom(*ram, &why));
  EXPECT_NE(why.find("'r' is a ram device"), std::string::npos) << why;
  EXPECT_EQ(Copy(*dst, *ram, {{0, 0, 512}}), IoStatus::kNotSupported);
}

TEST_F(FileDeviceTest, DifferentFileSystemsAreNotNative) {
  WriteFile(Path("a"), Random(1 << 20));
  auto src = Open({.path = Path("a")});
  char tmpl[] = "/dev/shm/ferry-file-test-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) GTEST_SKIP() << "no /dev/shm to put a file on another file system";
  close(fd);
  auto dst = Open({.path = tmpl, .size_bytes = 1 << 20});
  std::string why;
  bool native = dst->CanCopyFrom(*src, &why);
  unlink(tmpl);
  if (dst->st_dev() == src->st_dev()) GTEST_SKIP() << "/dev/shm is on the same file system";
  EXPECT_FALSE(native);
  EXPECT_NE(why.find("different file systems"), std::string::npos) << why;
}

TEST_F(FileDeviceTest, BlockDeviceThroughALoopDevice) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to attach a loop device";
  if (access("/dev/loop-control", F_OK) != 0) GTEST_SKIP() << "no /dev/loop-control";
  std::string img = Path("loop.img");
  std::ofstream(img).close();
  std::filesystem::resize_file(img, 8 << 20);
  std::string cmd = "losetup --find --show " + img + " > " + Path("loopdev");
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "losetup failed: no free loop device";
  std::string loop;
  std::ifstream(Path("loopdev")) >> loop;
  {
    auto dev = Open({.path = loop});
    ASSERT_NE(dev, nullptr);
    EXPECT_TRUE(dev->is_block_device());
    EXPECT_EQ(dev->geometry().size_bytes(), 8u << 20);
    EXPECT_EQ(dev->limits().max_copy_bytes, 0u);
    Bytes w = Random(1 << 20);
    EXPECT_EQ(Io(*dev, block::IoOp::kWrite, 1 << 20, 1 << 20, &w), IoStatus::kOk);
    Bytes r(1 << 20);
    EXPECT_EQ(Io(*dev, block::IoOp::kRead, 1 << 20, 1 << 20, &r), IoStatus::kOk);
    EXPECT_EQ(r, w);
    EXPECT_EQ(Io(*dev, block::IoOp::kWriteZeroes, 1 << 20, 4096), IoStatus::kOk);
    EXPECT_EQ(Io(*dev, block::IoOp::kRead, 1 << 20, 1 << 20, &r), IoStatus::kOk);
    EXPECT_EQ(std::count(r.begin(), r.begin() + 4096, 0), 4096);
    EXPECT_EQ(Io(*dev, block::IoOp::kFlush, 0, 0), IoStatus::kOk);
    std::string why;
    EXPECT_FALSE(dev->CanCopyFrom(*dev, &why));
    EXPECT_NE(why.find("block devices"), std::string::npos);
    auto big = FileDevice::Open({.path = loop, .size_bytes = 16 << 20});
    EXPECT_FALSE(big.ok());
  }
  EXPECT_EQ(std::system(("losetup -d " + loop).c_str()), 0);
}

}  // namespace
}  // namespace ferry::backends
