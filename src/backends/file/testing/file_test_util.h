// Helpers for the file backend's tests: a reactor, synchronous I/O and copy legs, temp
// directories.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/file/file_device.h"
#include "io/reactor.h"

namespace ferry::backends::testing {

using Bytes = std::vector<uint8_t>;

// A heap buffer with an aligned address, for O_DIRECT.
class AlignedBytes {
 public:
  AlignedBytes(size_t len, size_t align)
      : data_(static_cast<uint8_t*>(std::aligned_alloc(align, (len + align - 1) / align * align))),
        len_(len) {}
  ~AlignedBytes() { std::free(data_); }
  AlignedBytes(const AlignedBytes&) = delete;
  AlignedBytes& operator=(const AlignedBytes&) = delete;
  uint8_t* data() { return data_; }
  size_t size() const { return len_; }

 private:
  uint8_t* data_;
  size_t len_;
};

// Sets the immutable attribute on a file (which even root cannot open for writing) and
// clears it in the destructor. ok() is false when the file system has no such attribute.
class Immutable {
 public:
  explicit Immutable(const std::string& path) : fd_(open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    int flags = 0;
    ok_ = fd_ >= 0 && ioctl(fd_, FS_IOC_GETFLAGS, &flags) == 0 &&
          (flags |= FS_IMMUTABLE_FL, ioctl(fd_, FS_IOC_SETFLAGS, &flags) == 0);
  }
  ~Immutable() {
    int flags = 0;
    if (ok_ && ioctl(fd_, FS_IOC_GETFLAGS, &flags) == 0) {
      flags &= ~FS_IMMUTABLE_FL;
      ioctl(fd_, FS_IOC_SETFLAGS, &flags);
    }
    if (fd_ >= 0) close(fd_);
  }
  Immutable(const Immutable&) = delete;
  Immutable& operator=(const Immutable&) = delete;
  bool ok() const { return ok_; }

 private:
  int fd_;
  bool ok_ = false;
};

class FileTestBase : public ::testing::Test {
 protected:
  void SetUp() override {
    reactor_ = io::Reactor::Create().value();
    char tmpl[] = "/var/tmp/ferry-file-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  Bytes Random(size_t n) {
    Bytes b(n);
    for (auto& x : b) x = static_cast<uint8_t>(rng_());
    return b;
  }

  // Submits `req` and runs the reactor until it completes; fails the test when it completes
  // inside Submit, more than once, or on another reactor.
  IoStatus Submit(block::BlockDevice& dev, block::IoRequest& req) {
    int completions = 0;
    io::Reactor* on = nullptr;
    IoStatus st = IoStatus::kIoError;
    req.done = [&](IoStatus s) {
      st = s;
      on = io::Reactor::Current();
      ++completions;
    };
    dev.Submit(req);
    EXPECT_EQ(completions, 0) << "completed inside Submit";
    reactor_->RunUntil([&] { return completions > 0; });
    EXPECT_EQ(completions, 1);
    EXPECT_EQ(on, reactor_.get());
    return st;
  }

  IoStatus Io(block::BlockDevice& dev, block::IoOp op, uint64_t byte, uint64_t len,
              Bytes* buf = nullptr, uint8_t flags = 0) {
    return IoAt(dev, op, byte, len, buf ? buf->data() : nullptr, flags);
  }

  IoStatus IoRaw(block::BlockDevice& dev, block::IoOp op, uint64_t byte, AlignedBytes& buf,
                 uint8_t flags = 0) {
    return IoAt(dev, op, byte, buf.size(), buf.data(), flags);
  }

  IoStatus IoAt(block::BlockDevice& dev, block::IoOp op, uint64_t byte, uint64_t len, uint8_t* data,
                uint8_t flags) {
    const uint32_t bs = dev.geometry().block_size;
    iovec iov{data, data ? len : 0};
    block::IoRequest req{.op = op,
                         .flags = flags,
                         .lba = Lba(byte / bs),
                         .blocks = BlockCount(len / bs),
                         .iov = data ? &iov : nullptr,
                         .iovcnt = data ? 1u : 0u};
    return Submit(dev, req);
  }

  IoStatus Copy(FileDevice& dst, block::BlockDevice& src, std::vector<block::CopySegment> segs,
                block::CopyMechanism* mech = nullptr, uint64_t* reflinked = nullptr) {
    block::CopyLegRequest leg;
    leg.src = &src;
    leg.segments = segs;
    int completions = 0;
    io::Reactor* on = nullptr;
    IoStatus st = IoStatus::kIoError;
    leg.done = [&](IoStatus s) {
      st = s;
      on = io::Reactor::Current();
      ++completions;
    };
    dst.SubmitCopy(leg);
    EXPECT_EQ(completions, 0) << "copy leg completed inside SubmitCopy";
    reactor_->RunUntil([&] { return completions > 0; });
    EXPECT_EQ(completions, 1);
    EXPECT_EQ(on, reactor_.get());
    if (mech) *mech = leg.mechanism;
    if (reflinked) *reflinked = leg.reflinked_bytes;
    return st;
  }

  std::shared_ptr<FileDevice> Open(FileOptions o) {
    auto d = FileDevice::Open(std::move(o));
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? *d : nullptr;
  }

  std::unique_ptr<io::Reactor> reactor_;
  std::string dir_;
  std::mt19937 rng_{5};
};

}  // namespace ferry::backends::testing
