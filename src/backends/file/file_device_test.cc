#include "backends/file/file_device.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

#include "backends/file/testing/file_test_util.h"
#include "backends/file/testing/xfs_loop_fixture.h"
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

TEST_F(FileDeviceTest, ProvisioningFollowsDataAndHoles) {
  auto dev = Open({.path = Path("p"), .create = true, .size_bytes = 8 << 20});
  const BlockCount all(16384);
  EXPECT_EQ(dev->Provisioning(Lba(0), all).mapped, false);  // a new sparse file
  EXPECT_EQ(dev->Provisioning(Lba(0), all).blocks.value(), 16384u);
  Bytes w = Random(1 << 20);
  ASSERT_EQ(Io(*dev, block::IoOp::kWrite, 2 << 20, 1 << 20, &w), IoStatus::kOk);
  ASSERT_EQ(Io(*dev, block::IoOp::kFlush, 0, 0), IoStatus::kOk);
  block::ProvisioningExtent hole = dev->Provisioning(Lba(0), all);
  EXPECT_FALSE(hole.mapped);
  EXPECT_EQ(hole.blocks.value(), 4096u);  // up to the data at 2 MiB
  block::ProvisioningExtent data = dev->Provisioning(Lba(4096), all);
  EXPECT_TRUE(data.mapped);
  EXPECT_EQ(data.blocks.value(), 2048u);
  EXPECT_EQ(dev->Provisioning(Lba(4100), BlockCount(10)).blocks.value(), 10u);  // capped
  // A punched hole is deallocated again, in whole file-system blocks.
  ASSERT_EQ(Io(*dev, block::IoOp::kDiscard, 2 << 20, 64 << 10), IoStatus::kOk);
  EXPECT_FALSE(dev->Provisioning(Lba(4096), all).mapped);
  EXPECT_TRUE(dev->limits().discard_zeroes_data);
  EXPECT_GE(dev->limits().physical_block_bytes, 512u);
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
  EXPECT_FALSE(src->CanCopyFrom(*src, nullptr));
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
  std::string img = Path("loop.img");
  std::ofstream(img).close();
  std::filesystem::resize_file(img, 8 << 20);
  testing::LoopDevice loop(img);
  if (!loop.ok()) GTEST_SKIP() << "needs root and a loop device: " << loop.skip_reason;
  auto dev = Open({.path = loop.path});
  ASSERT_NE(dev, nullptr);
  EXPECT_TRUE(dev->is_block_device());
  EXPECT_EQ(dev->geometry().size_bytes(), 8u << 20);
  EXPECT_EQ(dev->geometry().block_size, 512u);
  EXPECT_EQ(dev->limits().max_copy_bytes, 0u);
  EXPECT_GT(dev->limits().max_discard_bytes, 0u) << "loop devices discard by punching holes";
  Bytes w = Random(1 << 20);
  EXPECT_EQ(Io(*dev, block::IoOp::kWrite, 1 << 20, 1 << 20, &w, block::kIoFua), IoStatus::kOk);
  Bytes r(1 << 20);
  EXPECT_EQ(Io(*dev, block::IoOp::kRead, 1 << 20, 1 << 20, &r), IoStatus::kOk);
  EXPECT_EQ(r, w);
  EXPECT_EQ(Io(*dev, block::IoOp::kWriteZeroes, 1 << 20, 4096), IoStatus::kOk);
  EXPECT_EQ(Io(*dev, block::IoOp::kDiscard, (1 << 20) + 8192, 8192), IoStatus::kOk);
  EXPECT_EQ(Io(*dev, block::IoOp::kRead, 1 << 20, 1 << 20, &r), IoStatus::kOk);
  std::fill(w.begin(), w.begin() + 4096, 0);
  std::copy(r.begin() + 8192, r.begin() + 16384, w.begin() + 8192);  // discard: anything
  EXPECT_EQ(r, w);
  EXPECT_EQ(Io(*dev, block::IoOp::kFlush, 0, 0), IoStatus::kOk);
  std::string why;
  EXPECT_FALSE(dev->CanCopyFrom(*dev, &why));
  EXPECT_NE(why.find("block devices"), std::string::npos) << why;
  EXPECT_NE(Error({.path = loop.path, .size_bytes = 16 << 20}).find("larger than block device"),
            std::string::npos);
  EXPECT_NE(Error({.path = loop.path, .block_size = 1}).find("is a block device"),
            std::string::npos);
  auto part = Open({.path = loop.path, .size_bytes = 4 << 20});
  ASSERT_NE(part, nullptr);
  EXPECT_EQ(part->geometry().size_bytes(), 4u << 20);
}

TEST_F(FileDeviceTest, BlockDeviceLogicalBlockSize) {
  std::string img = Path("loop4k.img");
  std::ofstream(img).close();
  std::filesystem::resize_file(img, 4 << 20);
  testing::LoopDevice loop(img, 4096);
  if (!loop.ok()) GTEST_SKIP() << "needs root and a loop device: " << loop.skip_reason;
  auto dev = Open({.path = loop.path, .direct = true});
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ(dev->geometry().block_size, 4096u) << "BLKSSZGET picks the block size";
  EXPECT_EQ(dev->limits().buffer_alignment, 4096u);
  EXPECT_NE(Error({.path = loop.path, .direct = true, .block_size = 512})
                .find("smaller than the O_DIRECT alignment"),
            std::string::npos);
  testing::AlignedBytes w(8192, 4096), r(8192, 4096);
  for (size_t i = 0; i < w.size(); ++i) w.data()[i] = static_cast<uint8_t>(rng_());
  EXPECT_EQ(IoRaw(*dev, block::IoOp::kWrite, 4096, w), IoStatus::kOk);
  EXPECT_EQ(IoRaw(*dev, block::IoOp::kRead, 4096, r), IoStatus::kOk);
  EXPECT_EQ(std::memcmp(w.data(), r.data(), w.size()), 0);
}

TEST_F(FileDeviceTest, ShortReadAtEndOfFileReadsZeroes) {
  Bytes data = Random(64 << 10);
  WriteFile(Path("s"), data);
  auto dev = Open({.path = Path("s")});
  ASSERT_NE(dev, nullptr);
  // Someone truncates the file behind the device's back: the device keeps its size and the
  // bytes past the new end read as zeroes (the kernel returns a short read there).
  ASSERT_EQ(truncate(Path("s").c_str(), 40000), 0);
  Bytes r(32 << 10);
  ASSERT_EQ(Io(*dev, block::IoOp::kRead, 32 << 10, 32 << 10, &r), IoStatus::kOk);
  Bytes want(data.begin() + (32 << 10), data.begin() + 40000);
  want.resize(32 << 10, 0);
  EXPECT_EQ(r, want);
}

TEST_F(FileDeviceTest, FailedOpenRemovesTheFileItCreated) {
  EXPECT_NE(Error({.path = Path("new"), .create = true, .size_bytes = 1000})
                .find("not a multiple of the block size 512"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(Path("new")));
  // An existing file is never removed.
  WriteFile(Path("old"), Random(1000));
  Error({.path = Path("old"), .create = true, .size_bytes = 1000});
  EXPECT_TRUE(std::filesystem::exists(Path("old")));
  EXPECT_NE(Error({.path = Path("nope"), .read_only = true, .create = true, .size_bytes = 4096})
                .find("read_only=true never creates files"),
            std::string::npos);
  EXPECT_NE(Error({.path = Path("no/dir/x"), .create = true, .size_bytes = 4096})
                .find("its directory does not exist"),
            std::string::npos);
}

TEST_F(FileDeviceTest, PermissionErrorsNameThePath) {
  WriteFile(Path("locked"), Random(4096));
  // Root ignores file modes, but not the immutable attribute.
  testing::Immutable lock(Path("locked"));
  if (!lock.ok()) {
    if (geteuid() == 0) GTEST_SKIP() << "this file system has no immutable attribute";
    ASSERT_EQ(chmod(Path("locked").c_str(), 0400), 0);
  }
  std::string err = Error({.path = Path("locked")});
  EXPECT_NE(err.find("cannot open '" + Path("locked") + "' for writing: "), std::string::npos)
      << err;
  auto ro = Open({.path = Path("locked"), .read_only = true});
  ASSERT_NE(ro, nullptr);
  std::string why;
  EXPECT_FALSE(ro->CanCopyFrom(*ro, &why));
  EXPECT_NE(why.find("is open read-only"), std::string::npos) << why;
}

TEST_F(FileDeviceTest, WriteZeroesWithoutZeroRangePunchesHoles) {
  // tmpfs punches holes but has no FALLOC_FL_ZERO_RANGE.
  char tmpl[] = "/dev/shm/ferry-file-test-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) GTEST_SKIP() << "no /dev/shm (tmpfs) to test the fallback on";
  close(fd);
  struct Unlink {
    const char* p;
    ~Unlink() { unlink(p); }
  } unlink_tmp{tmpl};
  auto dev = Open({.path = tmpl, .size_bytes = 1 << 20});
  ASSERT_NE(dev, nullptr);
  EXPECT_GT(dev->limits().max_write_zeroes_bytes, 0u);
  for (int round = 0; round < 2; ++round) {  // the second round skips ZERO_RANGE
    Bytes w = Random(1 << 20);
    ASSERT_EQ(Io(*dev, block::IoOp::kWrite, 0, 1 << 20, &w), IoStatus::kOk);
    ASSERT_EQ(Io(*dev, block::IoOp::kWriteZeroes, 4096, 64 << 10), IoStatus::kOk);
    Bytes r(1 << 20);
    ASSERT_EQ(Io(*dev, block::IoOp::kRead, 0, 1 << 20, &r), IoStatus::kOk);
    std::fill(w.begin() + 4096, w.begin() + 4096 + (64 << 10), 0);
    EXPECT_EQ(r, w) << "round " << round;
  }
}

TEST_F(FileDeviceTest, DirectIoOnFiles) {
  auto dev = Open({.path = Path("d"), .direct = true, .create = true, .size_bytes = 1 << 20});
  ASSERT_NE(dev, nullptr);
  const uint32_t align = dev->limits().buffer_alignment;
  EXPECT_GE(align, 512u);
  EXPECT_GE(dev->geometry().block_size, align);
  testing::AlignedBytes w(64 << 10, align), r(64 << 10, align);
  for (size_t i = 0; i < w.size(); ++i) w.data()[i] = static_cast<uint8_t>(rng_());
  ASSERT_EQ(IoRaw(*dev, block::IoOp::kWrite, 64 << 10, w, block::kIoFua), IoStatus::kOk);
  ASSERT_EQ(IoRaw(*dev, block::IoOp::kRead, 64 << 10, r), IoStatus::kOk);
  EXPECT_EQ(std::memcmp(w.data(), r.data(), w.size()), 0);
  // A buffer off the alignment is refused before it reaches the kernel.
  iovec iov{w.data() + 1, dev->geometry().block_size};
  block::IoRequest req{
      .op = block::IoOp::kRead, .lba = Lba(0), .blocks = BlockCount(1), .iov = &iov, .iovcnt = 1};
  EXPECT_EQ(Submit(*dev, req), IoStatus::kInvalid);
}

}  // namespace
}  // namespace ferry::backends
