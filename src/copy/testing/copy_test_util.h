// Test helpers for the copy engine: a fixture with a reactor on the test thread, RAM
// devices, a byte-level model of copies, and wrapper devices that observe what the engine
// submits.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "backends/ram/ram_device.h"
#include "block/splitter.h"
#include "ferry/copy.h"
#include "io/reactor.h"

namespace ferry::copy::testing {

using Bytes = std::vector<uint8_t>;

inline constexpr size_t kNone = static_cast<size_t>(block::CopyMechanism::kNone);
inline constexpr size_t kEmulated = static_cast<size_t>(block::CopyMechanism::kEmulated);
inline constexpr size_t kRam = static_cast<size_t>(block::CopyMechanism::kRamNative);

// Forwards reads and writes to `inner` and records what passes: requests in flight (the
// most ever), and the distinct payload buffer addresses (the engine's bounce buffers).
class ObservingDevice : public block::BlockDevice {
 public:
  ObservingDevice(std::shared_ptr<block::BlockDevice> inner, std::string name)
      : inner_(std::move(inner)), name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "observing"; }
  const block::Geometry& geometry() const override { return inner_->geometry(); }
  const block::QueueLimits& limits() const override { return inner_->limits(); }
  void Submit(block::IoRequest& req) override {
    for (uint32_t i = 0; i < req.iovcnt; ++i) buffers.insert(req.iov[i].iov_base);
    if (req.op == block::IoOp::kRead) {
      ++reads;
      read_bytes += req.blocks.value() * geometry().block_size;
    }
    auto* child = new block::IoRequest{req.op, req.flags, req.lba, req.blocks, req.iov, req.iovcnt};
    child->done = [this, child, &req](IoStatus s) {
      // Deleting the child destroys this lambda: copy what is needed first.
      block::IoRequest& parent = req;
      --in_flight;
      delete child;
      parent.done(s);
    };
    max_in_flight = std::max(max_in_flight, ++in_flight);
    inner_->Submit(*child);
  }

  int in_flight = 0;
  int max_in_flight = 0;
  uint64_t reads = 0;
  uint64_t read_bytes = 0;
  std::set<const void*> buffers;

 private:
  std::shared_ptr<block::BlockDevice> inner_;
  std::string name_;
};

// A RAM device with tighter copy limits; it checks every leg against them (a violation is a
// test failure) and forwards legs to the RAM device.
class LimitedCopyDevice : public block::BlockDevice, public block::CopyOffload {
 public:
  LimitedCopyDevice(std::shared_ptr<backends::RamDevice> inner, uint64_t max_copy_bytes,
                    uint32_t max_copy_segments, uint32_t granularity)
      : inner_(std::move(inner)), limits_(inner_->limits()) {
    limits_.max_copy_bytes = max_copy_bytes;
    limits_.max_copy_segments = max_copy_segments;
    limits_.copy_granularity_bytes = granularity;
  }
  std::string_view name() const override { return "limited"; }
  std::string_view type() const override { return "limited"; }
  const block::Geometry& geometry() const override { return inner_->geometry(); }
  const block::QueueLimits& limits() const override { return limits_; }
  void Submit(block::IoRequest& req) override { inner_->Submit(req); }
  block::CopyOffload* copy_offload() override { return this; }
  bool CanCopyFrom(const block::BlockDevice& src, std::string* why) const override {
    return inner_->CanCopyFrom(src, why);
  }
  void SubmitCopy(block::CopyLegRequest& req) override {
    ++legs;
    uint64_t total = 0;
    EXPECT_LE(req.segments.size(), limits_.max_copy_segments);
    for (const block::CopySegment& s : req.segments) {
      EXPECT_EQ(s.src_offset_bytes % limits_.copy_granularity_bytes, 0u);
      EXPECT_EQ(s.dst_offset_bytes % limits_.copy_granularity_bytes, 0u);
      EXPECT_EQ(s.len_bytes % limits_.copy_granularity_bytes, 0u);
      EXPECT_GT(s.len_bytes, 0u);
      total += s.len_bytes;
    }
    EXPECT_LE(total, limits_.max_copy_bytes);
    inner_->SubmitCopy(req);
  }
  int legs = 0;

 private:
  std::shared_ptr<backends::RamDevice> inner_;
  block::QueueLimits limits_;
};

// Equal byte images; on failure says where they first differ instead of printing them.
inline ::testing::AssertionResult SameBytes(const Bytes& got, const Bytes& want) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << "sizes differ: " << got.size() << " vs " << want.size();
  }
  const auto diff = std::mismatch(got.begin(), got.end(), want.begin());
  if (diff.first == got.end()) return ::testing::AssertionSuccess();
  const size_t at = static_cast<size_t>(diff.first - got.begin());
  size_t count = 0;
  for (size_t i = at; i < got.size(); ++i) count += got[i] != want[i];
  return ::testing::AssertionFailure() << count << " bytes differ, the first at byte " << at;
}

class CopyTest : public ::testing::Test {
 public:
  void SetUp() override { reactor_ = io::Reactor::Create().value(); }

  std::unique_ptr<CopyEngine> Engine(EngineOptions o = {}) {
    auto e = CopyEngine::Create(reactor_.get(), o);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return std::move(e).value();
  }
  std::shared_ptr<backends::RamDevice> Ram(uint64_t bytes, uint32_t bs,
                                           std::shared_ptr<backends::RamArena> arena = nullptr) {
    auto d = backends::RamDevice::Create({.name = "ram" + std::to_string(++devices_),
                                          .size_bytes = bytes,
                                          .block_size = bs,
                                          .arena = std::move(arena)});
    EXPECT_TRUE(d.ok());
    return *d;
  }
  IoStatus Io(block::BlockDevice& dev, block::IoOp op, uint64_t byte, Bytes* buf) {
    iovec iov{buf->data(), buf->size()};
    const uint32_t bs = dev.geometry().block_size;
    block::IoRequest req{.op = op,
                         .lba = Lba(byte / bs),
                         .blocks = BlockCount(buf->size() / bs),
                         .iov = &iov,
                         .iovcnt = 1};
    bool done = false;
    IoStatus st = IoStatus::kIoError;
    req.done = [&](IoStatus s) {
      st = s;
      done = true;
    };
    block::SubmitSplit(dev, req);
    reactor_->RunUntil([&] { return done; });
    return st;
  }
  // Fills the device with random bytes and returns them.
  Bytes Fill(block::BlockDevice& dev) {
    Bytes b(dev.geometry().size_bytes());
    for (size_t i = 0; i < b.size(); i += 4) {
      const uint32_t r = rng_();
      std::memcpy(b.data() + i, &r, std::min<size_t>(4, b.size() - i));
    }
    EXPECT_EQ(Io(dev, block::IoOp::kWrite, 0, &b), IoStatus::kOk);
    return b;
  }
  void Write(block::BlockDevice& dev, Bytes b) {
    EXPECT_EQ(Io(dev, block::IoOp::kWrite, 0, &b), IoStatus::kOk);
  }
  Bytes Contents(block::BlockDevice& dev) {
    Bytes b(dev.geometry().size_bytes());
    EXPECT_EQ(Io(dev, block::IoOp::kRead, 0, &b), IoStatus::kOk);
    return b;
  }

  // Submits a copy and runs the reactor until it completes; checks that the completion
  // runs exactly once, never inside Submit, and that the engine forgets the job.
  CopyResult Run(CopyEngine& e, CopyDescriptor d, std::shared_ptr<CopyJob>* job_out = nullptr) {
    int calls = 0;
    bool in_submit = true;
    CopyResult result;
    auto job = e.Submit(std::move(d), [&](CopyResult r) {
      EXPECT_FALSE(in_submit) << "completion inside Submit";
      ++calls;
      result = std::move(r);
    });
    in_submit = false;
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    if (!job.ok()) return result;
    if (job_out) *job_out = *job;
    reactor_->RunUntil([&] { return calls > 0; });
    for (int i = 0; i < 20; ++i) reactor_->RunOnce(false);  // a second call would show here
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(e.active_jobs(), 0u);
    return result;
  }

  // The model: the stream is gathered from the source image, then scattered into each
  // destination image in list order (later extents win where destination extents overlap).
  // Exact for copies whose destinations do not overlap the source on one device.
  using Images = std::map<const block::BlockDevice*, Bytes>;
  static void Model(const CopyDescriptor& d, Images* images) {
    Bytes stream;
    const Bytes& src = (*images)[d.src];
    const uint32_t sbs = d.src->geometry().block_size;
    for (const Extent& e : d.src_extents) {
      stream.insert(stream.end(), src.begin() + e.lba.value() * sbs,
                    src.begin() + (e.lba.value() + e.blocks.value()) * sbs);
    }
    for (const CopyDestination& dst : d.dsts) {
      Bytes& img = (*images)[dst.dev];
      const uint32_t dbs = dst.dev->geometry().block_size;
      uint64_t pos = 0;
      for (const Extent& e : dst.extents) {
        const uint64_t len = e.blocks.value() * dbs;
        std::memcpy(img.data() + e.lba.value() * dbs, stream.data() + pos, len);
        pos += len;
      }
    }
  }
  // Device byte of stream byte `s` through an extent list.
  static uint64_t DeviceByte(const std::vector<Extent>& ex, uint32_t bs, uint64_t s) {
    for (const Extent& e : ex) {
      const uint64_t len = e.blocks.value() * bs;
      if (s < len) return e.lba.value() * bs + s;
      s -= len;
    }
    ADD_FAILURE() << "stream byte past the end";
    return 0;
  }

  // Random extents of `total_bytes` on `dev`: lengths multiples of `len_unit` bytes (1 to 16
  // units), starts multiples of `start_unit` bytes. With `used` (one flag per start_unit of
  // the device), extents avoid and then mark what is used.
  std::vector<Extent> RandomExtents(uint64_t total_bytes, const block::BlockDevice& dev,
                                    uint64_t len_unit, uint64_t start_unit,
                                    std::vector<bool>* used = nullptr) {
    const uint32_t bs = dev.geometry().block_size;
    const uint64_t dev_bytes = dev.geometry().size_bytes();
    std::vector<Extent> out;
    for (uint64_t left = total_bytes; left > 0;) {
      const uint64_t len = std::min<uint64_t>(left, (rng_() % 16 + 1) * len_unit);
      const uint64_t at = rng_() % ((dev_bytes - len) / start_unit + 1) * start_unit;
      if (used != nullptr) {
        bool clash = false;
        for (uint64_t u = at / start_unit; u < (at + len) / start_unit; ++u) clash |= (*used)[u];
        if (clash) continue;
        for (uint64_t u = at / start_unit; u < (at + len) / start_unit; ++u) (*used)[u] = true;
      }
      out.push_back({Lba(at / bs), BlockCount(len / bs)});
      left -= len;
    }
    return out;
  }

  std::unique_ptr<io::Reactor> reactor_;
  std::mt19937 rng_{42};
  int devices_ = 0;
};

}  // namespace ferry::copy::testing
