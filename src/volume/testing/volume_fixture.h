// Test fixture for volume tests: a reactor, a registry of RAM devices, a driven clock, and
// helpers that submit requests and drive the reactor until they complete.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "backends/ram/ram_device.h"
#include "block/registry.h"
#include "io/reactor.h"
#include "volume/table.h"
#include "volume/volume.h"

namespace ferry::volume::testing {

// A request kept alive by the test while it is in flight.
struct Pending {
  block::IoRequest req;
  iovec iov{};
  std::vector<uint8_t> buf;
  int calls = 0;
  IoStatus status = IoStatus::kIoError;
  bool done() const { return calls > 0; }
};

class VolumeFixture : public ::testing::Test {
 protected:
  void SetUp() override { reactor_ = std::move(io::Reactor::Create()).value(); }

  std::shared_ptr<backends::RamDevice> AddRam(const std::string& name, uint64_t size_bytes,
                                              uint32_t block_size = 512) {
    auto dev = std::move(backends::RamDevice::Create(
                             {.name = name, .size_bytes = size_bytes, .block_size = block_size}))
                   .value();
    EXPECT_TRUE(registry_.Add(dev).ok());
    return dev;
  }

  TableOptions Options() {
    return {.lookup = LookupIn(registry_), .clock = [this] { return now_; }};
  }
  std::shared_ptr<Table> MustParse(const std::string& text) {
    auto t = Table::Parse(text, Options());
    EXPECT_TRUE(t.ok()) << t.status().ToString() << "\n" << text;
    return t.ok() ? *t : nullptr;
  }
  std::string ParseError(const std::string& text) {
    auto t = Table::Parse(text, Options());
    EXPECT_FALSE(t.ok()) << text;
    return t.ok() ? std::string() : std::string(t.status().message());
  }
  std::shared_ptr<Volume> MakeVolume(const std::string& name, const std::string& text) {
    auto v = Volume::Create(name, MustParse(text));
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : nullptr;
  }

  // Starts a request; `bytes` > 0 allocates a payload (filled with `fill` for writes).
  std::unique_ptr<Pending> Start(block::BlockDevice& dev, block::IoOp op, uint64_t lba,
                                 uint64_t blocks, uint8_t fill = 0, uint8_t flags = 0,
                                 const std::vector<uint8_t>* data = nullptr) {
    auto p = std::make_unique<Pending>();
    p->req.op = op;
    p->req.flags = flags;
    p->req.lba = Lba(lba);
    p->req.blocks = BlockCount(blocks);
    if (op == block::IoOp::kRead || op == block::IoOp::kWrite) {
      p->buf.assign(blocks * dev.geometry().block_size, fill);
      if (data != nullptr) p->buf = *data;
      p->iov = {p->buf.data(), p->buf.size()};
      p->req.iov = &p->iov;
      p->req.iovcnt = 1;
    }
    Pending* raw = p.get();
    p->req.done = [raw](IoStatus s) {
      raw->status = s;
      ++raw->calls;
    };
    dev.Submit(p->req);
    EXPECT_EQ(p->calls, 0) << "completed inside Submit";
    return p;
  }
  // Submits and drives the reactor until completion; checks it completed once.
  IoStatus Wait(Pending& p) {
    reactor_->RunUntil([&] { return p.done(); });
    Drain();
    EXPECT_EQ(p.calls, 1);
    return p.status;
  }
  IoStatus Io(block::BlockDevice& dev, block::IoOp op, uint64_t lba, uint64_t blocks,
              uint8_t fill = 0, std::vector<uint8_t>* out = nullptr, uint8_t flags = 0) {
    auto p = Start(dev, op, lba, blocks, fill, flags);
    IoStatus st = Wait(*p);
    if (out != nullptr) *out = p->buf;
    return st;
  }
  std::vector<uint8_t> Read(block::BlockDevice& dev, uint64_t lba, uint64_t blocks) {
    std::vector<uint8_t> out;
    EXPECT_EQ(Io(dev, block::IoOp::kRead, lba, blocks, 0, &out), IoStatus::kOk);
    return out;
  }
  // Runs whatever is ready without blocking.
  void Drain() {
    while (reactor_->RunOnce(false) > 0) {
    }
  }

  std::unique_ptr<io::Reactor> reactor_;
  block::DeviceRegistry registry_;
  std::chrono::steady_clock::time_point now_{};
};

}  // namespace ferry::volume::testing
