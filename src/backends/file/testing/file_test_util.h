// Helpers for the file backend's tests: a reactor, synchronous I/O and copy legs, temp
// directories.
#pragma once

#include <gtest/gtest.h>
#include <sys/uio.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/file/file_device.h"
#include "io/reactor.h"

namespace ferry::backends::testing {

using Bytes = std::vector<uint8_t>;

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

  IoStatus Io(block::BlockDevice& dev, block::IoOp op, uint64_t byte, uint64_t len,
              Bytes* buf = nullptr, uint8_t flags = 0) {
    const uint32_t bs = dev.geometry().block_size;
    iovec iov{buf ? buf->data() : nullptr, buf ? buf->size() : 0};
    block::IoRequest req{.op = op,
                         .flags = flags,
                         .lba = Lba(byte / bs),
                         .blocks = BlockCount(len / bs),
                         .iov = buf ? &iov : nullptr,
                         .iovcnt = buf ? 1u : 0u};
    bool done = false;
    IoStatus st = IoStatus::kIoError;
    req.done = [&](IoStatus s) {
      st = s;
      done = true;
    };
    dev.Submit(req);
    reactor_->RunUntil([&] { return done; });
    return st;
  }

  IoStatus Copy(FileDevice& dst, block::BlockDevice& src, std::vector<block::CopySegment> segs,
                block::CopyMechanism* mech = nullptr) {
    block::CopyLegRequest leg;
    leg.src = &src;
    leg.segments = segs;
    bool done = false;
    IoStatus st = IoStatus::kIoError;
    leg.done = [&](IoStatus s) {
      st = s;
      done = true;
    };
    dst.SubmitCopy(leg);
    reactor_->RunUntil([&] { return done; });
    if (mech) *mech = leg.mechanism;
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
