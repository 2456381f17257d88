// Copies between IscsiDevices through the copy engine, against in-process Ferry targets that
// do third-party copy: EXTENDED COPY between LUs of one target, ODX when asked for, the
// array's refusal remembered and the rest emulated, and bytes identical on every path. Also
// the remote LU's provisioning status (GET LBA STATUS) as a gateway reports it.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "backends/iscsi/iscsi_device.h"
#include "backends/iscsi/testing/iscsi_test_target.h"
#include "block/splitter.h"
#include "ferry/copy.h"
#include "io/reactor.h"

namespace ferry::backends::iscsi {
namespace {

using testing::TestTarget;
using Offload = IscsiOptions::Offload;
constexpr uint64_t kLuBytes = 4u << 20;
constexpr uint32_t kBs = 512;

class IscsiCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reactor_ = io::Reactor::Create().value();
    engine_ = copy::CopyEngine::Create(reactor_.get(), {}).value();
  }

  std::shared_ptr<IscsiDevice> Open(const TestTarget& t, uint64_t lun,
                                    Offload offload = Offload::kAuto) {
    auto dev = IscsiDevice::Open(
        {.name = "lun" + std::to_string(lun), .url = t.Url(lun), .offload = offload});
    EXPECT_TRUE(dev.ok()) << dev.status().ToString();
    return dev.ok() ? *dev : nullptr;
  }

  // The whole `buf` at byte 0, run to completion.
  IoStatus Io(block::BlockDevice& dev, block::IoOp op, std::vector<uint8_t>* buf) {
    iovec iov{buf->data(), buf->size()};
    block::IoRequest req{
        .op = op, .lba = Lba(0), .blocks = BlockCount(buf->size() / kBs), .iov = &iov, .iovcnt = 1};
    bool done = false;
    IoStatus st = IoStatus::kIoError;
    req.done = [&](IoStatus s) {
      st = s;
      done = true;
    };
    block::SubmitSplit(dev, req);  // larger than one request may be
    reactor_->RunUntil([&] { return done; });
    return st;
  }

  std::vector<uint8_t> Fill(block::BlockDevice& dev, uint32_t seed) {
    std::vector<uint8_t> data(kLuBytes);
    std::mt19937 rng(seed);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    EXPECT_EQ(Io(dev, block::IoOp::kWrite, &data), IoStatus::kOk);
    return data;
  }

  std::vector<uint8_t> ReadAll(block::BlockDevice& dev) {
    std::vector<uint8_t> data(kLuBytes);
    EXPECT_EQ(Io(dev, block::IoOp::kRead, &data), IoStatus::kOk);
    return data;
  }

  copy::CopyResult Copy(block::BlockDevice& src, block::BlockDevice& dst) {
    copy::CopyDescriptor d;
    d.src = &src;
    d.src_extents = {{Lba(0), BlockCount(kLuBytes / kBs)}};
    d.dsts = {{&dst, {{Lba(0), BlockCount(kLuBytes / kBs)}}}};
    copy::CopyResult result;
    bool done = false;
    auto job = engine_->Submit(std::move(d), [&](copy::CopyResult r) {
      result = std::move(r);
      done = true;
    });
    EXPECT_TRUE(job.ok());
    reactor_->RunUntil([&] { return done; });
    return result;
  }

  static uint64_t Mech(const copy::CopyResult& r, block::CopyMechanism m) {
    return r.counters.by_mechanism[static_cast<size_t>(m)];
  }

  std::unique_ptr<io::Reactor> reactor_;
  std::unique_ptr<copy::CopyEngine> engine_;
};

TEST_F(IscsiCopyTest, LusOfOneTargetCopyByExtendedCopy) {
  TestTarget target(nullptr, /*third_party_copy=*/true);
  auto src = Open(target, target.AddRamLun(kLuBytes, kBs));
  auto dst = Open(target, target.AddRamLun(kLuBytes, kBs));
  const auto data = Fill(*src, 1);
  std::string why;
  EXPECT_TRUE(dst->CanCopyFrom(*src, &why)) << why;
  copy::CopyResult r = Copy(*src, *dst);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.offloaded_bytes, kLuBytes);
  EXPECT_EQ(r.counters.emulated_bytes, 0u);
  EXPECT_EQ(Mech(r, block::CopyMechanism::kXcopy), kLuBytes);
  EXPECT_EQ(ReadAll(*dst), data);
}

TEST_F(IscsiCopyTest, OffloadOdxUsesTokens) {
  TestTarget target(nullptr, true);
  auto src = Open(target, target.AddRamLun(kLuBytes, kBs));
  auto dst = Open(target, target.AddRamLun(kLuBytes, kBs), Offload::kOdx);
  const auto data = Fill(*src, 2);
  copy::CopyResult r = Copy(*src, *dst);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(Mech(r, block::CopyMechanism::kOdx), kLuBytes);
  EXPECT_EQ(r.counters.emulated_bytes, 0u);
  EXPECT_EQ(ReadAll(*dst), data);
}

TEST_F(IscsiCopyTest, OffloadNoneEmulatesAndSaysWhy) {
  TestTarget target(nullptr, true);
  auto src = Open(target, target.AddRamLun(kLuBytes, kBs));
  auto dst = Open(target, target.AddRamLun(kLuBytes, kBs), Offload::kNone);
  const auto data = Fill(*src, 3);
  copy::CopyResult r = Copy(*src, *dst);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.emulated_bytes, kLuBytes);
  ASSERT_FALSE(r.offload_notes.empty());
  EXPECT_NE(r.offload_notes[0].find("offload=none"), std::string::npos) << r.offload_notes[0];
  EXPECT_EQ(ReadAll(*dst), data);
}

// Two targets of one process are two arrays here (each has its own copy manager and token
// key): ODX is tried, the destination refuses the foreign token, the engine emulates, and
// the pair is not asked again.
TEST_F(IscsiCopyTest, RefusedPairIsEmulatedAndRemembered) {
  TestTarget a(nullptr, true);
  TestTarget b(nullptr, true);
  auto src = Open(a, a.AddRamLun(kLuBytes, kBs));
  auto dst = Open(b, b.AddRamLun(kLuBytes, kBs));
  const auto data = Fill(*src, 4);
  copy::CopyResult r = Copy(*src, *dst);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.emulated_bytes, kLuBytes);
  EXPECT_EQ(ReadAll(*dst), data);
  bool said = false;
  for (const std::string& n : r.offload_notes) said |= n.find("native copy refused (") != n.npos;
  EXPECT_TRUE(said) << "no refusal reason in the notes";
  std::string why;
  EXPECT_FALSE(dst->CanCopyFrom(*src, &why));
  EXPECT_NE(why.find("refused this pair before"), std::string::npos) << why;
}

// A gateway's GET LBA STATUS asks the array: what was discarded there reads deallocated.
TEST_F(IscsiCopyTest, ProvisioningComesFromTheRemoteLu) {
  TestTarget target(nullptr, true);
  auto dev = Open(target, target.AddRamLun(kLuBytes, kBs));
  Fill(*dev, 5);
  std::vector<uint8_t> first_mib(1u << 20);
  ASSERT_EQ(Io(*dev, block::IoOp::kDiscard, &first_mib), IoStatus::kOk);
  std::vector<block::ProvisioningExtent> runs;
  IoStatus st = IoStatus::kIoError;
  bool done = false;
  dev->QueryProvisioning(Lba(0), BlockCount(kLuBytes / kBs), 8,
                         [&](IoStatus s, std::vector<block::ProvisioningExtent> r) {
                           st = s;
                           runs = std::move(r);
                           done = true;
                         });
  EXPECT_FALSE(done);  // never inside the call
  reactor_->RunUntil([&] { return done; });
  ASSERT_EQ(st, IoStatus::kOk);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_FALSE(runs[0].mapped);
  EXPECT_EQ(runs[0].blocks.value(), (1u << 20) / kBs);
  EXPECT_TRUE(runs[1].mapped);
  EXPECT_EQ(runs[1].blocks.value(), (kLuBytes - (1u << 20)) / kBs);
}

// Cancelling the copy aborts the array's EXTENDED COPY (ABORT TASK) instead of waiting for
// it: the array copies at 1 MiB/s, so the 4 MiB copy would take seconds to run out.
TEST_F(IscsiCopyTest, CancelAbortsTheArraysCopy) {
  TestTarget target(nullptr, true, /*copy_bytes_per_sec=*/1u << 20);
  auto src = Open(target, target.AddRamLun(kLuBytes, kBs));
  auto dst = Open(target, target.AddRamLun(kLuBytes, kBs));
  Fill(*src, 6);
  copy::CopyDescriptor d;
  d.src = src.get();
  d.src_extents = {{Lba(0), BlockCount(kLuBytes / kBs)}};
  d.dsts = {{dst.get(), {{Lba(0), BlockCount(kLuBytes / kBs)}}}};
  copy::CopyResult result;
  bool done = false;
  auto job = engine_->Submit(std::move(d), [&](copy::CopyResult r) {
    result = std::move(r);
    done = true;
  });
  ASSERT_TRUE(job.ok());
  reactor_->RunAfter(std::chrono::milliseconds(200), [&] { (*job)->Cancel(); });
  const auto start = std::chrono::steady_clock::now();
  reactor_->RunUntil([&] { return done; });
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(result.status, IoStatus::kAborted);
  EXPECT_LT(Mech(result, block::CopyMechanism::kXcopy), kLuBytes);
  EXPECT_LT(took, std::chrono::seconds(3)) << "the array's copy was not aborted";
}

TEST_F(IscsiCopyTest, OtherBackendsAreNotCopiedNatively) {
  TestTarget target(nullptr, true);
  auto dst = Open(target, target.AddRamLun(kLuBytes, kBs));
  auto ram = RamDevice::Create({.name = "ram", .size_bytes = kLuBytes}).value();
  std::string why;
  EXPECT_FALSE(dst->CanCopyFrom(*ram, &why));
  EXPECT_NE(why.find("remote arrays copy only between their own LUNs"), std::string::npos);
}

}  // namespace
}  // namespace ferry::backends::iscsi
