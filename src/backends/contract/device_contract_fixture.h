// The fixture of the block-device contract test (device_contract.h): devices from the
// factory, requests that record their completions, and a model of the device's bytes.
#pragma once

#include <gtest/gtest.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "block/splitter.h"
#include "ferry/block_device.h"
#include "io/reactor.h"

namespace ferry::backends::contract {

// Test names "<Prefix>/DeviceContract/<kName>.<Test>" instead of ".../0.<Test>".
class FactoryNames {
 public:
  template <typename F>
  static std::string GetName(int index) {
    if constexpr (requires { F::kName; }) {
      return std::string(F::kName);
    } else {
      return std::to_string(index);
    }
  }
};

// A heap buffer aligned for O_DIRECT (4 KiB, or the device's alignment when larger).
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(size_t len, size_t alignment) : len_(len) {
    alignment = std::max<size_t>(alignment, 4096);
    size_t alloc = std::max<size_t>((len + alignment - 1) / alignment * alignment, alignment);
    data_.reset(static_cast<uint8_t*>(std::aligned_alloc(alignment, alloc)));
    std::memset(data_.get(), 0, alloc);
  }
  uint8_t* data() const { return data_.get(); }
  size_t size() const { return len_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t len_ = 0;
};

// One request with its completion record. Not movable once armed (the callback points at
// it), so tests keep these in unique_ptrs or fixed-size vectors.
struct TrackedIo {
  block::IoRequest req;
  std::vector<iovec> iov;
  AlignedBuffer buf;
  int completions = 0;
  IoStatus status = IoStatus::kIoError;
  io::Reactor* completed_on = nullptr;

  void Arm() {
    completions = 0;
    completed_on = nullptr;
    req.done = [this](IoStatus s) {
      ++completions;
      status = s;
      completed_on = io::Reactor::Current();
    };
  }
};

template <typename Factory>
class DeviceContract : public ::testing::Test {
 protected:
  static constexpr uint64_t kDeviceBytes = 4u << 20;

  static constexpr uint32_t BlockSize() {
    if constexpr (requires { Factory::kBlockSize; }) {
      return Factory::kBlockSize;
    } else {
      return 512;
    }
  }
  static constexpr bool FreshDevicesReadZero() {
    if constexpr (requires { Factory::kFreshDevicesReadZero; }) {
      return Factory::kFreshDevicesReadZero;
    } else {
      return true;
    }
  }

  void SetUp() override {
    auto r = io::Reactor::Create(io::Reactor::Options{.name = "contract"});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    reactor_ = std::move(r).value();
  }

  void TearDown() override {
    devices_.clear();
    if constexpr (requires { Factory::Cleanup(); }) Factory::Cleanup();
  }

  // A fresh device (kept alive until TearDown) and a model of its contents.
  block::BlockDevice* MakeDevice() {
    auto dev = Factory::Make(kDeviceBytes, BlockSize());
    if (dev == nullptr) {
      ADD_FAILURE() << "factory could not create a device";
      return nullptr;
    }
    devices_.push_back(dev);
    return dev.get();
  }

  block::BlockDevice* MakeReadOnlyDevice(std::string* why_not) {
    if constexpr (requires { Factory::MakeReadOnly(kDeviceBytes, BlockSize(), why_not); }) {
      auto dev = Factory::MakeReadOnly(kDeviceBytes, BlockSize(), why_not);
      if (dev == nullptr) return nullptr;
      devices_.push_back(dev);
      return dev.get();
    } else {
      *why_not = "the factory cannot make read-only devices (no MakeReadOnly)";
      return nullptr;
    }
  }

  uint32_t bs(const block::BlockDevice& dev) const { return dev.geometry().block_size; }
  uint64_t nblocks(const block::BlockDevice& dev) const {
    return dev.geometry().num_blocks.value();
  }
  // The largest read or write the tests submit directly: within the limits, <= 1 MiB.
  uint64_t MaxIoBlocks(const block::BlockDevice& dev) const {
    uint64_t b = std::min<uint64_t>(dev.limits().max_io_bytes, 1u << 20) / bs(dev);
    return std::max<uint64_t>(b, 1);
  }
  uint64_t Rand(uint64_t lo, uint64_t hi) {  // inclusive
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
  }
  std::vector<uint8_t> RandomBytes(size_t n) {
    std::vector<uint8_t> v(n);
    for (auto& b : v) b = static_cast<uint8_t>(rng_());
    return v;
  }

  // Cuts `len` bytes at `base` into at most `pieces` iovecs whose lengths are multiples of
  // the device's buffer alignment (byte-granular when it is 1).
  std::vector<iovec> CutIovecs(const block::BlockDevice& dev, uint8_t* base, size_t len,
                               uint32_t pieces) {
    const uint64_t unit = std::max<uint32_t>(dev.limits().buffer_alignment, 1);
    pieces = std::min<uint32_t>(pieces, dev.limits().max_iovecs);
    std::vector<size_t> cuts;
    for (uint32_t i = 1; i < pieces && len / unit >= 1; ++i) {
      cuts.push_back(Rand(1, len / unit) * unit);
    }
    cuts.push_back(0);
    cuts.push_back(len);
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    std::vector<iovec> iov;
    for (size_t i = 0; i + 1 < cuts.size(); ++i) {
      iov.push_back({base + cuts[i], cuts[i + 1] - cuts[i]});
    }
    return iov;
  }

  // Prepares (does not submit) a request; reads and writes get an aligned buffer of
  // blocks * block_size bytes, cut into up to `pieces` iovecs; writes copy `data` in.
  std::unique_ptr<TrackedIo> Prepare(const block::BlockDevice& dev, block::IoOp op, uint64_t lba,
                                     uint64_t blocks, const uint8_t* data = nullptr,
                                     uint32_t pieces = 1, uint8_t flags = 0) {
    auto io = std::make_unique<TrackedIo>();
    io->req.op = op;
    io->req.flags = flags;
    io->req.lba = Lba(lba);
    io->req.blocks = BlockCount(blocks);
    if (op == block::IoOp::kRead || op == block::IoOp::kWrite) {
      size_t len = blocks * bs(dev);
      io->buf = AlignedBuffer(len, dev.limits().buffer_alignment);
      if (data != nullptr) std::memcpy(io->buf.data(), data, len);
      io->iov = CutIovecs(dev, io->buf.data(), len, pieces);
      io->req.iov = io->iov.data();
      io->req.iovcnt = static_cast<uint32_t>(io->iov.size());
    }
    io->Arm();
    return io;
  }

  // Runs callbacks that are ready without waiting, so a second completion would show.
  void Drain() {
    while (reactor_->RunOnce(false) > 0) {
    }
  }

  // Submits and waits; checks the completion rules on the way.
  IoStatus Run(block::BlockDevice& dev, TrackedIo& io, bool split = false) {
    io.Arm();
    if (split) {
      block::SubmitSplit(dev, io.req);
    } else {
      dev.Submit(io.req);
    }
    EXPECT_EQ(io.completions, 0) << block::IoOpName(io.req.op) << " completed inside Submit";
    reactor_->RunUntil([&] { return io.completions > 0; });
    Drain();
    EXPECT_EQ(io.completions, 1) << block::IoOpName(io.req.op) << " completed more than once";
    EXPECT_EQ(io.completed_on, reactor_.get()) << "completed off the submitting reactor";
    return io.status;
  }

  IoStatus Write(block::BlockDevice& dev, uint64_t lba, const std::vector<uint8_t>& data,
                 uint32_t pieces = 1, uint8_t flags = 0) {
    auto io =
        Prepare(dev, block::IoOp::kWrite, lba, data.size() / bs(dev), data.data(), pieces, flags);
    IoStatus st = Run(dev, *io);
    if (st == IoStatus::kOk) {
      std::copy(data.begin(), data.end(), model_.begin() + lba * bs(dev));
    }
    return st;
  }

  IoStatus Read(block::BlockDevice& dev, uint64_t lba, uint64_t blocks, std::vector<uint8_t>* out,
                uint32_t pieces = 1) {
    auto io = Prepare(dev, block::IoOp::kRead, lba, blocks, nullptr, pieces);
    IoStatus st = Run(dev, *io);
    out->assign(io->buf.data(), io->buf.data() + blocks * bs(dev));
    return st;
  }

  // Flush, discard or write-zeroes (directly, or through SubmitSplit when `split`).
  IoStatus Simple(block::BlockDevice& dev, block::IoOp op, uint64_t lba, uint64_t blocks,
                  bool split = false) {
    auto io = Prepare(dev, op, lba, blocks);
    IoStatus st = Run(dev, *io, split);
    if (st == IoStatus::kOk && op == block::IoOp::kWriteZeroes) {
      std::fill_n(model_.begin() + lba * bs(dev), blocks * bs(dev), 0);
    }
    return st;
  }

  // Loads the model from the device (all of it).
  void LoadModel(block::BlockDevice& dev) {
    model_.assign(dev.geometry().size_bytes(), 0);
    uint64_t step = MaxIoBlocks(dev);
    for (uint64_t lba = 0; lba < nblocks(dev); lba += step) {
      uint64_t n = std::min(step, nblocks(dev) - lba);
      std::vector<uint8_t> out;
      ASSERT_EQ(Read(dev, lba, n, &out), IoStatus::kOk);
      std::copy(out.begin(), out.end(), model_.begin() + lba * bs(dev));
    }
  }

  // Compares device blocks [lba, lba+blocks) with the model; reports the first difference.
  void ExpectModel(block::BlockDevice& dev, uint64_t lba, uint64_t blocks,
                   const std::string& what = "") {
    uint64_t step = MaxIoBlocks(dev);
    for (uint64_t at = lba; at < lba + blocks; at += step) {
      uint64_t n = std::min(step, lba + blocks - at);
      std::vector<uint8_t> out;
      ASSERT_EQ(Read(dev, at, n, &out), IoStatus::kOk);
      auto want = model_.begin() + at * bs(dev);
      auto diff = std::mismatch(out.begin(), out.end(), want);
      if (diff.first != out.end()) {
        uint64_t off = at * bs(dev) + (diff.first - out.begin());
        ADD_FAILURE() << what << ": byte " << off << " (block " << off / bs(dev) << ") is "
                      << int(*diff.first) << ", expected " << int(*diff.second);
        return;
      }
    }
  }
  void ExpectModel(block::BlockDevice& dev, const std::string& what = "") {
    ExpectModel(dev, 0, nblocks(dev), what);
  }

  // A fresh device with random data in its first and last four blocks (the guards), for
  // tests that check failed requests change nothing.
  block::BlockDevice* DeviceWithGuards() {
    block::BlockDevice* dev = MakeDevice();
    if (dev == nullptr) return nullptr;
    LoadModel(*dev);
    EXPECT_EQ(Write(*dev, 0, RandomBytes(4 * bs(*dev))), IoStatus::kOk);
    EXPECT_EQ(Write(*dev, nblocks(*dev) - 4, RandomBytes(4 * bs(*dev))), IoStatus::kOk);
    return dev;
  }
  void ExpectGuards(block::BlockDevice& dev) {
    ExpectModel(dev, 0, 4, "first blocks after failed requests");
    ExpectModel(dev, nblocks(dev) - 4, 4, "last blocks after failed requests");
  }

  // Submits a native copy leg into `dst` and waits; checks the completion rules.
  IoStatus Copy(block::BlockDevice& dst, block::BlockDevice& src,
                const std::vector<block::CopySegment>& segs, block::CopyMechanism* mech) {
    block::CopyLegRequest leg;
    leg.src = &src;
    leg.segments = segs;
    int completions = 0;
    IoStatus status = IoStatus::kIoError;
    io::Reactor* on = nullptr;
    leg.done = [&](IoStatus s) {
      ++completions;
      status = s;
      on = io::Reactor::Current();
    };
    dst.copy_offload()->SubmitCopy(leg);
    EXPECT_EQ(completions, 0) << "copy leg completed inside SubmitCopy";
    reactor_->RunUntil([&] { return completions > 0; });
    Drain();
    EXPECT_EQ(completions, 1) << "copy leg completed more than once";
    EXPECT_EQ(on, reactor_.get()) << "copy leg completed off the submitting reactor";
    if (mech != nullptr) *mech = leg.mechanism;
    return status;
  }

  // The model after copying `segs` one after the other with memmove semantics.
  void ApplyCopyToModel(const std::vector<block::CopySegment>& segs) {
    for (const auto& s : segs) {
      std::memmove(model_.data() + s.dst_offset_bytes, model_.data() + s.src_offset_bytes,
                   s.len_bytes);
    }
  }

  std::unique_ptr<io::Reactor> reactor_;
  std::vector<std::shared_ptr<block::BlockDevice>> devices_;
  std::vector<uint8_t> model_;
  std::mt19937_64 rng_{0xfe77'c0de};
};

}  // namespace ferry::backends::contract
