// The block-device contract test: one typed GoogleTest suite that every backend passes.
//
// It checks the rules of include/ferry/block_device.h from the outside: geometry and limits
// are sane, data round-trips, out-of-range / zero-length / misaligned requests complete
// kInvalid and change nothing, every request completes exactly once, never inside Submit,
// on the submitting reactor (also when two reactor threads share the device), discard,
// write-zeroes, flush and FUA work, read-only devices refuse writes, and a native copy
// inside the device leaves the bytes an emulated copy leaves.
//
// Where block_device.h leaves room, the suite pins down (devices are kDeviceBytes = 4 MiB):
// - range and zero-length errors win over everything but read-only (kInvalid even for a
//   discard on a device without discard); discard is kNotSupported iff max_discard_bytes
//   is 0;
// - max_copy_bytes > 0 implies copy_granularity_bytes > 0, a multiple of the block size;
// - when CanCopyFrom(self) is true, a leg of non-overlapping segments inside the device
//   completes kOk with a mechanism other than kNone/kEmulated; an overlapping one is kOk
//   (memmove) or kNotSupported; a leg into a read-only device is kReadOnly.
//
// Using it from a backend's test (one .cc per binary; this header defines the suite):
//
//   // CMake:  ferry_test(ferry_contract_foo_test SOURCES foo_contract_test.cc
//   //                    LIBS ferry_backend_foo ferry_backend_contract)
//   #include "backends/contract/device_contract.h"
//   namespace ferry::backends::contract {
//   struct FooFactory { ... see below ... };
//   using FooFactories = ::testing::Types<FooFactory, ...>;  // a comma breaks the macro
//   INSTANTIATE_TYPED_TEST_SUITE_P(Foo, DeviceContract, FooFactories, FactoryNames);
//   }  // namespace ferry::backends::contract
//
// The instantiation must sit in namespace ferry::backends::contract (GoogleTest looks the
// suite up unqualified). `ferry_backend_contract` is a header-only INTERFACE library
// (src/backends/contract/CMakeLists.txt) that brings ferry_block and GoogleTest.
//
// The factory. Required:
//   // A fresh device of `size_bytes` (a multiple of block_size) with that block size, or
//   // nullptr after reporting why (ADD_FAILURE). Called on the test thread, which owns a
//   // reactor (io::Reactor::Current() != nullptr). May be called more than once per test.
//   static std::shared_ptr<block::BlockDevice> Make(uint64_t size_bytes, uint32_t block_size);
// Optional (detected with `requires`; defaults in brackets):
//   static constexpr uint32_t kBlockSize = 4096;        // [512] block size of the devices
//   static constexpr const char* kName = "direct4k";    // [index] test-name suffix
//   static constexpr bool kFreshDevicesReadZero = true;  // [true] unwritten blocks read 0
//   // A fresh read-only device whose blocks read as zeroes, or nullptr with *why_not set
//   // (the read-only test is then skipped with that reason).  [skip: "not supported"]
//   static std::shared_ptr<block::BlockDevice> MakeReadOnly(uint64_t size_bytes,
//                                                           uint32_t block_size,
//                                                           std::string* why_not);
//   // Called after every test once the suite has dropped its devices (temp files).  [none]
//   static void Cleanup();
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

TYPED_TEST_SUITE_P(DeviceContract);

TYPED_TEST_P(DeviceContract, GeometryAndLimitsAreSane) {
  block::BlockDevice* dev = this->MakeDevice();
  ASSERT_NE(dev, nullptr);
  const block::Geometry& g = dev->geometry();
  const block::QueueLimits& l = dev->limits();
  EXPECT_FALSE(dev->name().empty());
  EXPECT_FALSE(dev->type().empty());
  EXPECT_EQ(g.block_size, this->BlockSize());
  EXPECT_EQ(g.size_bytes(), this->kDeviceBytes);
  EXPECT_EQ(g.block_size & (g.block_size - 1), 0u) << "block size is not a power of two";
  EXPECT_FALSE(dev->read_only());
  EXPECT_GE(l.max_io_bytes, g.block_size);
  EXPECT_GE(l.max_iovecs, 1u);
  EXPECT_GE(l.buffer_alignment, 1u);
  EXPECT_EQ(l.buffer_alignment & (l.buffer_alignment - 1), 0u);
  EXPECT_TRUE(l.max_discard_bytes == 0 || l.max_discard_bytes >= g.block_size);
  EXPECT_TRUE(l.max_write_zeroes_bytes == 0 || l.max_write_zeroes_bytes >= g.block_size);
  if (l.max_copy_bytes != 0) {
    EXPECT_GE(l.max_copy_bytes, g.block_size);
    EXPECT_GE(l.max_copy_segments, 1u);
    EXPECT_GT(l.copy_granularity_bytes, 0u);
    EXPECT_TRUE(l.copy_granularity_bytes != 0 && l.copy_granularity_bytes % g.block_size == 0)
        << "copy granularity " << l.copy_granularity_bytes
        << " is not a multiple of the block size";
  }
  std::string why;
  if (dev->copy_offload() != nullptr) {
    // The answer must not depend on anything but the two devices: ask twice.
    EXPECT_EQ(dev->copy_offload()->CanCopyFrom(*dev, &why),
              dev->copy_offload()->CanCopyFrom(*dev, nullptr));
  }
}

TYPED_TEST_P(DeviceContract, FreshDeviceReadsZeroes) {
  if (!this->FreshDevicesReadZero()) GTEST_SKIP() << "factory: fresh devices hold old data";
  block::BlockDevice* dev = this->MakeDevice();
  ASSERT_NE(dev, nullptr);
  this->model_.assign(dev->geometry().size_bytes(), 0);
  this->ExpectModel(*dev, "fresh device");
}

TYPED_TEST_P(DeviceContract, RandomWritesReadBack) {
  block::BlockDevice* dev = this->MakeDevice();
  ASSERT_NE(dev, nullptr);
  this->LoadModel(*dev);
  const uint64_t n = this->nblocks(*dev);
  for (int i = 0; i < 40; ++i) {
    uint64_t blocks = this->Rand(1, std::min(this->MaxIoBlocks(*dev), n));
    uint64_t lba = this->Rand(0, n - blocks);
    uint32_t pieces = static_cast<uint32_t>(this->Rand(1, 8));
    ASSERT_EQ(this->Write(*dev, lba, this->RandomBytes(blocks * this->bs(*dev)), pieces),
              IoStatus::kOk)
        << "write " << i << " lba " << lba << " blocks " << blocks;
    // A random read, cut into several iovecs, against the model.
    uint64_t rb = this->Rand(1, std::min(this->MaxIoBlocks(*dev), n));
    uint64_t rl = this->Rand(0, n - rb);
    std::vector<uint8_t> out;
    ASSERT_EQ(this->Read(*dev, rl, rb, &out, static_cast<uint32_t>(this->Rand(1, 8))),
              IoStatus::kOk);
    ASSERT_TRUE(std::equal(out.begin(), out.end(), this->model_.begin() + rl * this->bs(*dev)))
        << "read lba " << rl << " blocks " << rb << " after write " << i;
  }
  this->ExpectModel(*dev, "after random writes");
}

TYPED_TEST_P(DeviceContract, FirstAndLastBlocks) {
  block::BlockDevice* dev = this->MakeDevice();
  ASSERT_NE(dev, nullptr);
  this->LoadModel(*dev);
  const uint64_t n = this->nblocks(*dev);
  const uint32_t b = this->bs(*dev);
  ASSERT_EQ(this->Write(*dev, 0, this->RandomBytes(b)), IoStatus::kOk);
  ASSERT_EQ(this->Write(*dev, n - 1, this->RandomBytes(b)), IoStatus::kOk);
  uint64_t tail = std::min<uint64_t>(this->MaxIoBlocks(*dev), 8);
  ASSERT_EQ(this->Write(*dev, n - tail, this->RandomBytes(tail * b), 3), IoStatus::kOk);
  this->ExpectModel(*dev, 0, 1, "first block");
  this->ExpectModel(*dev, n - tail, tail, "last blocks");
  std::vector<uint8_t> out;
  ASSERT_EQ(this->Read(*dev, n - 1, 1, &out), IoStatus::kOk);
  EXPECT_TRUE(std::equal(out.begin(), out.end(), this->model_.end() - b));
}

TYPED_TEST_P(DeviceContract, OutOfRangeAndZeroLengthAreInvalidAndChangeNothing) {
  using block::IoOp;
  block::BlockDevice* dev = this->DeviceWithGuards();
  ASSERT_NE(dev, nullptr);
  const uint64_t n = this->nblocks(*dev);
  auto junk = this->RandomBytes(2 * this->bs(*dev));
  struct Case {
    const char* what;
    IoOp op;
    uint64_t lba;
    uint64_t blocks;
  };
  const Case cases[] = {
      {"write past the end", IoOp::kWrite, n - 1, 2},
      {"write at num_blocks", IoOp::kWrite, n, 1},
      {"write with lba overflow", IoOp::kWrite, UINT64_MAX - 1, 2},
      {"read past the end", IoOp::kRead, n - 1, 2},
      {"zero-length write", IoOp::kWrite, 0, 0},
      {"zero-length read", IoOp::kRead, 0, 0},
      {"discard past the end", IoOp::kDiscard, n - 1, 2},
      {"write-zeroes past the end", IoOp::kWriteZeroes, n - 2, 3},
      {"write-zeroes with lba overflow", IoOp::kWriteZeroes, UINT64_MAX, 1},
      {"zero-length discard", IoOp::kDiscard, 0, 0},
      {"zero-length write-zeroes", IoOp::kWriteZeroes, 0, 0},
  };
  for (const Case& c : cases) {
    // Payload sized for the blocks the request would touch inside the device (at least one).
    uint64_t payload_blocks = std::clamp<uint64_t>(c.blocks, 1, 2);
    auto io = this->Prepare(*dev, c.op, c.lba, payload_blocks, junk.data());
    io->req.blocks = BlockCount(c.blocks);
    if (c.op != IoOp::kRead && c.op != IoOp::kWrite) io->req.iovcnt = 0;
    EXPECT_EQ(this->Run(*dev, *io), IoStatus::kInvalid) << c.what;
  }
  this->ExpectGuards(*dev);
}

TYPED_TEST_P(DeviceContract, MalformedPayloadsAreInvalidAndChangeNothing) {
  using block::IoOp;
  block::BlockDevice* dev = this->DeviceWithGuards();
  ASSERT_NE(dev, nullptr);
  const uint32_t b = this->bs(*dev);
  const uint32_t align = dev->limits().buffer_alignment;
  auto junk = this->RandomBytes(2 * b);
  {
    auto io = this->Prepare(*dev, IoOp::kWrite, 0, 2, junk.data());
    io->req.blocks = BlockCount(1);
    EXPECT_EQ(this->Run(*dev, *io), IoStatus::kInvalid) << "payload longer than blocks";
    io->req.blocks = BlockCount(3);
    EXPECT_EQ(this->Run(*dev, *io), IoStatus::kInvalid) << "payload shorter than blocks";
    io->req.blocks = BlockCount(2);
    io->req.iovcnt = 0;
    EXPECT_EQ(this->Run(*dev, *io), IoStatus::kInvalid) << "no iovecs";
    io->req.iovcnt = 1;
    io->req.iov = nullptr;
    EXPECT_EQ(this->Run(*dev, *io), IoStatus::kInvalid) << "null iovec array";
  }
  // One iovec more than max_iovecs, of `align` bytes each, rounded up to whole blocks.
  const uint64_t piece = std::max<uint32_t>(align, 1);
  const uint64_t bytes = ((dev->limits().max_iovecs + 1) * piece + b - 1) / b * b;
  if (piece <= b && bytes / b <= this->nblocks(*dev) && bytes <= dev->limits().max_io_bytes) {
    auto io = this->Prepare(*dev, IoOp::kWrite, 0, bytes / b);
    io->iov.clear();
    for (uint64_t at = 0; at < bytes; at += piece) io->iov.push_back({io->buf.data() + at, piece});
    io->req.iov = io->iov.data();
    io->req.iovcnt = static_cast<uint32_t>(io->iov.size());
    EXPECT_EQ(this->Run(*dev, *io), IoStatus::kInvalid) << "more than max_iovecs iovecs";
  }
  if (align > 1 && align <= b) {
    auto io = this->Prepare(*dev, IoOp::kWrite, 0, 1, junk.data());
    AlignedBuffer buf(2 * b, align);
    iovec shifted{buf.data() + align / 2, b};
    io->req.iov = &shifted;
    io->req.iovcnt = 1;
    EXPECT_EQ(this->Run(*dev, *io), IoStatus::kInvalid) << "misaligned buffer address";
    iovec halves[2] = {{buf.data(), align / 2}, {buf.data() + align, b - align / 2}};
    io->req.iov = halves;
    io->req.iovcnt = 2;
    EXPECT_EQ(this->Run(*dev, *io), IoStatus::kInvalid) << "misaligned iovec length";
  }
  this->ExpectGuards(*dev);
}

TYPED_TEST_P(DeviceContract, EveryRequestCompletesOnceNeverInline) {
  using block::IoOp;
  block::BlockDevice* dev = this->MakeDevice();
  ASSERT_NE(dev, nullptr);
  const uint64_t n = this->nblocks(*dev);
  auto data = this->RandomBytes(4 * this->bs(*dev));
  std::vector<std::unique_ptr<TrackedIo>> ios;
  ios.push_back(this->Prepare(*dev, IoOp::kWrite, 0, 4, data.data()));
  ios.push_back(this->Prepare(*dev, IoOp::kRead, 8, 4, nullptr, 2));
  ios.push_back(this->Prepare(*dev, IoOp::kFlush, 0, 0));
  ios.push_back(this->Prepare(*dev, IoOp::kWrite, 16, 4, data.data(), 1, block::kIoFua));
  ios.push_back(this->Prepare(*dev, IoOp::kWrite, n, 4, data.data()));  // invalid
  ios.push_back(this->Prepare(*dev, IoOp::kRead, 0, 0));                // invalid
  if (dev->limits().max_discard_bytes != 0) {
    ios.push_back(this->Prepare(*dev, IoOp::kDiscard, 32, 4));
  }
  if (dev->limits().max_write_zeroes_bytes != 0) {
    ios.push_back(this->Prepare(*dev, IoOp::kWriteZeroes, 40, 4));
  }
  for (auto& io : ios) {
    dev->Submit(io->req);
    EXPECT_EQ(io->completions, 0) << block::IoOpName(io->req.op) << " completed inside Submit";
  }
  this->reactor_->RunUntil([&] {
    return std::all_of(ios.begin(), ios.end(), [](auto& io) { return io->completions > 0; });
  });
  this->Drain();
  for (auto& io : ios) {
    EXPECT_EQ(io->completions, 1) << block::IoOpName(io->req.op) << " lba " << io->req.lba.value();
    EXPECT_EQ(io->completed_on, this->reactor_.get());
  }
  EXPECT_EQ(ios[0]->status, IoStatus::kOk);
  EXPECT_EQ(ios[2]->status, IoStatus::kOk);
  EXPECT_EQ(ios[4]->status, IoStatus::kInvalid);
  EXPECT_EQ(ios[5]->status, IoStatus::kInvalid);
}

TYPED_TEST_P(DeviceContract, FlushAndFuaWrite) {
  block::BlockDevice* dev = this->MakeDevice();
  ASSERT_NE(dev, nullptr);
  this->LoadModel(*dev);
  EXPECT_EQ(this->Simple(*dev, block::IoOp::kFlush, 0, 0), IoStatus::kOk);
  ASSERT_EQ(this->Write(*dev, 5, this->RandomBytes(3 * this->bs(*dev)), 2, block::kIoFua),
            IoStatus::kOk);
  EXPECT_EQ(this->Simple(*dev, block::IoOp::kFlush, 0, 0), IoStatus::kOk);
  this->ExpectModel(*dev, 0, 16, "after FUA write");
}

TYPED_TEST_P(DeviceContract, DiscardThenWriteZeroesReadsZero) {
  using block::IoOp;
  block::BlockDevice* dev = this->MakeDevice();
  ASSERT_NE(dev, nullptr);
  const uint32_t b = this->bs(*dev);
  const uint64_t span = std::min<uint64_t>(this->MaxIoBlocks(*dev), (256u << 10) / b);
  this->LoadModel(*dev);
  for (uint64_t i = 0; i < 3; ++i) {
    ASSERT_EQ(this->Write(*dev, i * span, this->RandomBytes(span * b)), IoStatus::kOk);
  }
  // Discard the middle third; its content is then undefined until written.
  if (dev->limits().max_discard_bytes == 0) {
    EXPECT_EQ(this->Simple(*dev, IoOp::kDiscard, span, span), IoStatus::kNotSupported);
  } else {
    uint64_t d = std::min<uint64_t>(span, dev->limits().max_discard_bytes / b);
    ASSERT_EQ(this->Simple(*dev, IoOp::kDiscard, span, d), IoStatus::kOk);
    std::vector<uint8_t> out;
    ASSERT_EQ(this->Read(*dev, span, d, &out), IoStatus::kOk);
  }
  this->ExpectModel(*dev, 0, span, "before the discarded range");
  this->ExpectModel(*dev, 2 * span, span, "after the discarded range");
  // Write-zeroes over the middle: directly when the device does it, else emulated.
  if (dev->limits().max_write_zeroes_bytes != 0) {
    uint64_t z = std::min<uint64_t>(span, dev->limits().max_write_zeroes_bytes / b);
    ASSERT_EQ(this->Simple(*dev, IoOp::kWriteZeroes, span, z), IoStatus::kOk);
    if (z < span) {
      ASSERT_EQ(this->Simple(*dev, IoOp::kWriteZeroes, span + z, span - z, true), IoStatus::kOk);
    }
  } else {
    ASSERT_EQ(this->Simple(*dev, IoOp::kWriteZeroes, span, span, true), IoStatus::kOk);
  }
  this->ExpectModel(*dev, "after write-zeroes");
  // The whole device through the splitter.
  ASSERT_EQ(this->Simple(*dev, IoOp::kWriteZeroes, 0, this->nblocks(*dev), true), IoStatus::kOk);
  this->ExpectModel(*dev, "after write-zeroes of the whole device");
}

TYPED_TEST_P(DeviceContract, ManyRequestsInFlight) {
  block::BlockDevice* dev = this->MakeDevice();
  ASSERT_NE(dev, nullptr);
  this->LoadModel(*dev);
  constexpr int kCount = 64;
  const uint64_t per = this->nblocks(*dev) / kCount;
  const uint64_t blocks = std::min<uint64_t>(per, 4);
  std::vector<std::unique_ptr<TrackedIo>> ios;
  for (int i = 0; i < kCount; ++i) {
    auto data = this->RandomBytes(blocks * this->bs(*dev));
    std::copy(data.begin(), data.end(), this->model_.begin() + i * per * this->bs(*dev));
    ios.push_back(this->Prepare(*dev, block::IoOp::kWrite, i * per, blocks, data.data(), 2));
  }
  auto all_done = [&] {
    return std::all_of(ios.begin(), ios.end(), [](auto& io) { return io->completions > 0; });
  };
  for (auto& io : ios) dev->Submit(io->req);
  this->reactor_->RunUntil(all_done);
  this->Drain();
  for (auto& io : ios) {
    EXPECT_EQ(io->completions, 1);
    EXPECT_EQ(io->status, IoStatus::kOk);
  }
  ios.clear();
  for (int i = 0; i < kCount; ++i) {
    ios.push_back(this->Prepare(*dev, block::IoOp::kRead, i * per, blocks, nullptr, 3));
  }
  for (auto& io : ios) dev->Submit(io->req);
  this->reactor_->RunUntil(all_done);
  this->Drain();
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(ios[i]->completions, 1);
    ASSERT_EQ(ios[i]->status, IoStatus::kOk);
    auto want = this->model_.begin() + i * per * this->bs(*dev);
    EXPECT_TRUE(std::equal(ios[i]->buf.data(), ios[i]->buf.data() + ios[i]->buf.size(), want))
        << "read " << i;
  }
}

TYPED_TEST_P(DeviceContract, TwoReactorThreadsShareTheDevice) {
  block::BlockDevice* dev = this->MakeDevice();
  ASSERT_NE(dev, nullptr);
  this->LoadModel(*dev);
  constexpr int kPerThread = 32;
  const uint64_t per = this->nblocks(*dev) / (2 * kPerThread);
  const uint64_t blocks = std::min<uint64_t>(per, 2);
  std::vector<std::unique_ptr<TrackedIo>> ios;
  for (int i = 0; i < 2 * kPerThread; ++i) {
    auto data = this->RandomBytes(blocks * this->bs(*dev));
    std::copy(data.begin(), data.end(), this->model_.begin() + i * per * this->bs(*dev));
    ios.push_back(this->Prepare(*dev, block::IoOp::kWrite, i * per, blocks, data.data()));
  }
  // Each completion checks its reactor and reports to the test reactor through Post.
  int reported = 0;
  std::atomic<int> wrong_reactor{0};
  io::Reactor* main = this->reactor_.get();
  struct Batch {
    block::BlockDevice* dev;
    std::vector<std::unique_ptr<TrackedIo>>* ios;
    int parity;
  };
  Batch batches[2] = {{dev, &ios, 0}, {dev, &ios, 1}};
  // Declared last so the threads stop before anything their callbacks touch goes away.
  io::ReactorThread threads[2];
  for (int i = 0; i < 2 * kPerThread; ++i) {
    io::Reactor* want = threads[i % 2].reactor();
    TrackedIo* io = ios[i].get();
    io->req.done = [io, want, main, &reported, &wrong_reactor](IoStatus s) {
      io->status = s;
      if (io::Reactor::Current() != want) wrong_reactor.fetch_add(1);
      main->Post([&reported] { ++reported; });
    };
  }
  for (int t = 0; t < 2; ++t) {
    Batch* batch = &batches[t];
    threads[t].reactor()->Post([batch] {
      for (size_t i = batch->parity; i < batch->ios->size(); i += 2) {
        batch->dev->Submit((*batch->ios)[i]->req);
      }
    });
  }
  this->reactor_->RunUntil([&] { return reported == 2 * kPerThread; });
  EXPECT_EQ(wrong_reactor.load(), 0) << "completions ran off their submitting reactor";
  for (auto& io : ios) EXPECT_EQ(io->status, IoStatus::kOk);
  this->ExpectModel(*dev, "after writes from two reactor threads");
}

TYPED_TEST_P(DeviceContract, ReadOnlyDeviceRefusesWrites) {
  using block::IoOp;
  std::string why;
  block::BlockDevice* dev = this->MakeReadOnlyDevice(&why);
  if (dev == nullptr) GTEST_SKIP() << why;
  EXPECT_TRUE(dev->read_only());
  this->model_.assign(dev->geometry().size_bytes(), 0);
  const uint32_t b = this->bs(*dev);
  auto data = this->RandomBytes(2 * b);
  auto w = this->Prepare(*dev, IoOp::kWrite, 0, 2, data.data());
  EXPECT_EQ(this->Run(*dev, *w), IoStatus::kReadOnly);
  auto fua = this->Prepare(*dev, IoOp::kWrite, 2, 2, data.data(), 1, block::kIoFua);
  EXPECT_EQ(this->Run(*dev, *fua), IoStatus::kReadOnly);
  EXPECT_EQ(this->Simple(*dev, IoOp::kWriteZeroes, 0, 2), IoStatus::kReadOnly);
  EXPECT_EQ(this->Simple(*dev, IoOp::kDiscard, 0, 2), IoStatus::kReadOnly);
  EXPECT_EQ(this->Simple(*dev, IoOp::kWriteZeroes, 0, 2, true), IoStatus::kReadOnly);
  EXPECT_EQ(this->Simple(*dev, IoOp::kFlush, 0, 0), IoStatus::kOk);
  if (dev->copy_offload() != nullptr && dev->copy_offload()->CanCopyFrom(*dev, nullptr)) {
    std::vector<block::CopySegment> segs = {{0, 8u * b, 2u * b}};
    EXPECT_EQ(this->Copy(*dev, *dev, segs, nullptr), IoStatus::kReadOnly);
  }
  if (this->FreshDevicesReadZero()) this->ExpectModel(*dev, 0, 16, "read-only device");
}

TYPED_TEST_P(DeviceContract, NativeCopyMatchesEmulatedCopy) {
  block::BlockDevice* dev = this->MakeDevice();
  ASSERT_NE(dev, nullptr);
  std::string why;
  if (dev->copy_offload() == nullptr) GTEST_SKIP() << "no copy offload";
  if (!dev->copy_offload()->CanCopyFrom(*dev, &why)) GTEST_SKIP() << "no native copy: " << why;
  const block::QueueLimits& l = dev->limits();
  const uint64_t g = std::max<uint64_t>(l.copy_granularity_bytes, this->bs(*dev));
  this->LoadModel(*dev);
  const uint64_t half = this->kDeviceBytes / 2;
  ASSERT_EQ(this->Write(*dev, 0, this->RandomBytes(std::min<uint64_t>(half, 1u << 20))),
            IoStatus::kOk);
  // Up to three segments from the first half into the second, never overlapping.
  std::vector<block::CopySegment> segs;
  const uint64_t slots = std::min<uint64_t>(3, std::max<uint32_t>(l.max_copy_segments, 1));
  const uint64_t slot = half / slots / g * g;  // each segment stays inside its slot
  uint64_t budget = std::min<uint64_t>(l.max_copy_bytes, half);
  for (uint64_t i = 0; i < slots && budget >= g; ++i) {
    uint64_t len = std::min(this->Rand(1, slot / g / 2) * g, budget / g * g);
    uint64_t src = i * slot + this->Rand(0, (slot - len) / g) * g;
    uint64_t dst = half + i * slot + this->Rand(0, (slot - len) / g) * g;
    segs.push_back({src, dst, len});
    budget -= len;
  }
  ASSERT_FALSE(segs.empty());
  block::CopyMechanism mech = block::CopyMechanism::kNone;
  ASSERT_EQ(this->Copy(*dev, *dev, segs, &mech), IoStatus::kOk);
  EXPECT_NE(mech, block::CopyMechanism::kNone) << "device did not say how it copied";
  EXPECT_NE(mech, block::CopyMechanism::kEmulated) << "a native leg is not emulated";
  this->ApplyCopyToModel(segs);
  this->ExpectModel(*dev, "after native copy");
}

TYPED_TEST_P(DeviceContract, OverlappingNativeCopyIsMemmoveOrNotSupported) {
  block::BlockDevice* dev = this->MakeDevice();
  ASSERT_NE(dev, nullptr);
  if (dev->copy_offload() == nullptr || !dev->copy_offload()->CanCopyFrom(*dev, nullptr)) {
    GTEST_SKIP() << "no native copy inside the device";
  }
  const block::QueueLimits& l = dev->limits();
  const uint64_t g = std::max<uint64_t>(l.copy_granularity_bytes, this->bs(*dev));
  const uint64_t len =
      std::max<uint64_t>(std::min<uint64_t>(l.max_copy_bytes, 256u << 10) / g, 2) * g;
  this->LoadModel(*dev);
  const uint64_t base = this->kDeviceBytes / 4 / g * g;
  for (int64_t shift : {int64_t(g), -int64_t(g), int64_t(len / 2 / g * g)}) {
    if (shift == 0) continue;
    ASSERT_EQ(this->Write(*dev, base / this->bs(*dev), this->RandomBytes(len)), IoStatus::kOk);
    std::vector<block::CopySegment> segs = {{base, uint64_t(int64_t(base) + shift), len}};
    IoStatus st = this->Copy(*dev, *dev, segs, nullptr);
    ASSERT_TRUE(st == IoStatus::kOk || st == IoStatus::kNotSupported)
        << "overlapping copy by " << shift << ": " << IoStatusName(st);
    this->ApplyCopyToModel(segs);
    if (st == IoStatus::kNotSupported) {
      // The destination may be partly written: rewrite it as the copy engine would.
      std::vector<uint8_t> want(this->model_.begin() + segs[0].dst_offset_bytes,
                                this->model_.begin() + segs[0].dst_offset_bytes + len);
      ASSERT_EQ(this->Write(*dev, segs[0].dst_offset_bytes / this->bs(*dev), want), IoStatus::kOk);
    }
    this->ExpectModel(*dev, "after overlapping copy by " + std::to_string(shift));
  }
}

REGISTER_TYPED_TEST_SUITE_P(DeviceContract, GeometryAndLimitsAreSane, FreshDeviceReadsZeroes,
                            RandomWritesReadBack, FirstAndLastBlocks,
                            OutOfRangeAndZeroLengthAreInvalidAndChangeNothing,
                            MalformedPayloadsAreInvalidAndChangeNothing,
                            EveryRequestCompletesOnceNeverInline, FlushAndFuaWrite,
                            DiscardThenWriteZeroesReadsZero, ManyRequestsInFlight,
                            TwoReactorThreadsShareTheDevice, ReadOnlyDeviceRefusesWrites,
                            NativeCopyMatchesEmulatedCopy,
                            OverlappingNativeCopyIsMemmoveOrNotSupported);

}  // namespace ferry::backends::contract
