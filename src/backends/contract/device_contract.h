// The block-device contract test: one typed GoogleTest suite that every backend passes.
//
// It checks the rules of include/ferry/block_device.h from the outside: geometry and limits
// are sane, data round-trips, out-of-range / zero-length / misaligned requests complete
// kInvalid and change nothing, every request completes exactly once, never inside Submit,
// on the submitting reactor (also when two reactor threads share the device), discard,
// write-zeroes, flush and FUA work, read-only devices refuse writes, a native copy inside
// the device leaves the bytes an emulated copy leaves, and WRITE SAME and COMPARE AND WRITE
// are done or refused as the limits say.
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

#include "backends/contract/device_contract_fixture.h"

namespace ferry::backends::contract {

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

// IoOp::kWriteSame and kCompareAndWrite: as block_device.h says on a device whose limits
// offer them; kNotSupported and nothing changed on one that does not.
TYPED_TEST_P(DeviceContract, WriteSameAndCompareAndWrite) {
  block::BlockDevice* dev = this->DeviceWithGuards();
  ASSERT_NE(dev, nullptr);
  const uint32_t b = this->bs(*dev);
  const block::QueueLimits& l = dev->limits();
  const uint64_t lba = 8, n = 16;
  auto run = [&](block::IoOp op, uint64_t blocks, const std::vector<uint8_t>& payload) {
    auto io = std::make_unique<TrackedIo>();
    io->req = block::IoRequest{.op = op, .lba = Lba(lba), .blocks = BlockCount(blocks)};
    io->buf = AlignedBuffer(payload.size(), l.buffer_alignment);
    std::memcpy(io->buf.data(), payload.data(), payload.size());
    io->iov = {{io->buf.data(), payload.size()}};
    io->req.iov = io->iov.data();
    io->req.iovcnt = 1;
    const IoStatus st = this->Run(*dev, *io);
    return std::make_pair(st, io->req.miscompare_offset);
  };
  const std::vector<uint8_t> pattern = this->RandomBytes(b);
  const IoStatus ws = run(block::IoOp::kWriteSame, n, pattern).first;
  if (l.max_write_same_bytes < n * b) {
    EXPECT_EQ(ws, l.max_write_same_bytes == 0 ? IoStatus::kNotSupported : IoStatus::kInvalid);
  } else {
    ASSERT_EQ(ws, IoStatus::kOk);
    for (uint64_t i = 0; i < n; ++i) {
      std::copy(pattern.begin(), pattern.end(), this->model_.begin() + (lba + i) * b);
    }
  }
  this->ExpectModel(*dev, "after WRITE SAME");
  // One block: what it holds, then new data.
  std::vector<uint8_t> caw(this->model_.begin() + lba * b, this->model_.begin() + (lba + 1) * b);
  const std::vector<uint8_t> fresh = this->RandomBytes(b);
  std::vector<uint8_t> bad = caw;
  bad[5] ^= 0x40;  // differs in byte 5
  bad.insert(bad.end(), fresh.begin(), fresh.end());
  const uint64_t max = l.max_compare_write_bytes;
  const IoStatus want = max >= b   ? IoStatus::kOk
                        : max == 0 ? IoStatus::kNotSupported
                                   : IoStatus::kInvalid;
  const auto [miss, at] = run(block::IoOp::kCompareAndWrite, 1, bad);
  EXPECT_EQ(miss, want == IoStatus::kOk ? IoStatus::kMiscompare : want);
  if (want == IoStatus::kOk) {
    EXPECT_EQ(at, 5u) << "the first differing byte from the start of the range";
  }
  this->ExpectModel(*dev, "after a COMPARE AND WRITE that miscompared");
  caw.insert(caw.end(), fresh.begin(), fresh.end());
  EXPECT_EQ(run(block::IoOp::kCompareAndWrite, 1, caw).first, want);
  if (want == IoStatus::kOk) std::copy(fresh.begin(), fresh.end(), this->model_.begin() + lba * b);
  this->ExpectModel(*dev, "after a COMPARE AND WRITE that matched");
  this->ExpectGuards(*dev);
}

REGISTER_TYPED_TEST_SUITE_P(
    DeviceContract, GeometryAndLimitsAreSane, FreshDeviceReadsZeroes, RandomWritesReadBack,
    FirstAndLastBlocks, OutOfRangeAndZeroLengthAreInvalidAndChangeNothing,
    MalformedPayloadsAreInvalidAndChangeNothing, EveryRequestCompletesOnceNeverInline,
    FlushAndFuaWrite, DiscardThenWriteZeroesReadsZero, ManyRequestsInFlight,
    TwoReactorThreadsShareTheDevice, ReadOnlyDeviceRefusesWrites, NativeCopyMatchesEmulatedCopy,
    OverlappingNativeCopyIsMemmoveOrNotSupported, WriteSameAndCompareAndWrite);

}  // namespace ferry::backends::contract
