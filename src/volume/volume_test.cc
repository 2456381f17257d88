// Volume: I/O against a model over RAM devices, suspend / resume with I/O in flight,
// generations, copy pins, remove, messages, status and provisioning.
#include "volume/volume.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "backends/faulty/faulty_device.h"
#include "volume/testing/volume_fixture.h"

namespace ferry::volume {
namespace {

using block::IoOp;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

class VolumeTest : public testing::VolumeFixture {
 protected:
  void SetUp() override {
    VolumeFixture::SetUp();
    a_ = AddRam("a", 1 << 20);
    b_ = AddRam("b", 1 << 20);
    c_ = AddRam("c", 1 << 20);
  }
  // Suspends and drives the reactor until the drain completed.
  void SuspendAndWait(Volume& v, std::chrono::nanoseconds deadline = 1s) {
    bool done = false;
    v.Suspend(deadline, [&](Status s) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      done = true;
    });
    EXPECT_FALSE(done);
    reactor_->RunUntil([&] { return done; });
  }
  std::shared_ptr<backends::RamDevice> a_, b_, c_;
};

// Random reads and writes of random lengths across linear, striped and zero lines, checked
// byte for byte against a model (zero lines read zeroes and drop writes).
TEST_F(VolumeTest, ReadsAndWritesMatchAModel) {
  auto v = MakeVolume("v",
                      "0 40 linear a 8\n40 64 striped 2 8 b 0 c 0\n104 8 zero\n"
                      "112 48 striped 3 8 a 512 b 512 c 512\n160 16 linear c 1024");
  const uint64_t sectors = 176;
  ASSERT_EQ(v->geometry().num_blocks, BlockCount(sectors));
  std::vector<uint8_t> model(sectors * 512, 0);
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    const uint64_t lba = rng() % sectors;
    const uint64_t n = 1 + rng() % std::min<uint64_t>(40, sectors - lba);
    if (rng() % 2 == 0) {
      std::vector<uint8_t> data(n * 512);
      for (uint8_t& byte : data) byte = static_cast<uint8_t>(rng());
      auto p = Start(*v, IoOp::kWrite, lba, n, 0, 0, &data);
      ASSERT_EQ(Wait(*p), IoStatus::kOk);
      for (uint64_t s = lba; s < lba + n; ++s) {
        if (s >= 104 && s < 112) continue;  // zero line drops writes
        std::copy_n(data.begin() + (s - lba) * 512, 512, model.begin() + s * 512);
      }
    } else {
      auto got = Read(*v, lba, n);
      ASSERT_TRUE(std::equal(got.begin(), got.end(), model.begin() + lba * 512))
          << "read " << lba << "+" << n;
    }
  }
  // The striped line really spreads: chunk 1 of line 2 (volume sector 48) is on c at 0.
  EXPECT_EQ(Read(*c_, 0, 8),
            std::vector<uint8_t>(model.begin() + 48 * 512, model.begin() + 56 * 512));
}

TEST_F(VolumeTest, ManyIovecsSplitAcrossPieces) {
  auto v = MakeVolume("v", "0 32 striped 2 8 a 0 b 0");
  std::vector<uint8_t> data(32 * 512);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + 3);
  std::vector<iovec> iov;
  for (size_t off = 0; off < data.size(); off += 1536) iov.push_back({data.data() + off, 1536});
  iov.back().iov_len = data.size() - (iov.size() - 1) * 1536;
  block::IoRequest req;
  req.op = IoOp::kWrite;
  req.blocks = BlockCount(32);
  req.iov = iov.data();
  req.iovcnt = static_cast<uint32_t>(iov.size());
  int calls = 0;
  req.done = [&](IoStatus s) {
    EXPECT_EQ(s, IoStatus::kOk);
    ++calls;
  };
  v->Submit(req);
  reactor_->RunUntil([&] { return calls == 1; });
  EXPECT_EQ(Read(*v, 0, 32), data);
}

TEST_F(VolumeTest, ErrorZeroDiscardWriteZeroesFlushAndInvalid) {
  auto v = MakeVolume("v", "0 8 linear a 0\n8 8 error\n16 8 zero");
  EXPECT_EQ(Io(*v, IoOp::kWrite, 0, 8, 0xaa), IoStatus::kOk);
  EXPECT_EQ(Io(*v, IoOp::kRead, 8, 8), IoStatus::kIoError);
  EXPECT_EQ(Io(*v, IoOp::kWrite, 9, 1), IoStatus::kIoError);
  EXPECT_EQ(Io(*v, IoOp::kDiscard, 8, 1), IoStatus::kIoError);
  // A request that spans a good line and the error line fails as a whole.
  EXPECT_EQ(Io(*v, IoOp::kRead, 4, 8), IoStatus::kIoError);
  // The zero line: writes succeed and are dropped, reads return zeroes.
  EXPECT_EQ(Io(*v, IoOp::kWrite, 16, 8, 0x55), IoStatus::kOk);
  std::vector<uint8_t> got;
  EXPECT_EQ(Io(*v, IoOp::kRead, 16, 8, 0x77, &got), IoStatus::kOk);
  EXPECT_EQ(got, std::vector<uint8_t>(8 * 512, 0));
  EXPECT_EQ(Io(*v, IoOp::kDiscard, 16, 8), IoStatus::kOk);
  // Write-zeroes and discard reach the linear line's device.
  EXPECT_EQ(Io(*v, IoOp::kWriteZeroes, 2, 2), IoStatus::kOk);
  got = Read(*a_, 0, 8);
  EXPECT_EQ(got[1023], 0xaa);
  EXPECT_EQ(got[1024], 0);
  EXPECT_EQ(got[2047], 0);
  EXPECT_EQ(got[2048], 0xaa);
  EXPECT_EQ(Io(*v, IoOp::kFlush, 0, 0), IoStatus::kOk);
  EXPECT_EQ(Io(*v, IoOp::kRead, 20, 8), IoStatus::kInvalid);  // past the end
  EXPECT_EQ(Io(*v, IoOp::kRead, 0, 0), IoStatus::kInvalid);
  auto zeroes = MakeVolume("z", "0 8 zero");
  EXPECT_EQ(Io(*zeroes, IoOp::kFlush, 0, 0), IoStatus::kOk);  // no device to flush
}

TEST_F(VolumeTest, SuspendDrainsThenQueuesAndResumeRunsAgainstTheNewTable) {
  // Delay keeps a write in flight for 20 ms of reactor time.
  auto v = MakeVolume("v", "0 64 delay a 0 20");
  EXPECT_EQ(v->generation(), 1u);
  auto inflight = Start(*v, IoOp::kWrite, 0, 8, 0x11);
  bool drained = false;
  v->Suspend(1s, [&](Status s) {
    EXPECT_TRUE(s.ok());
    EXPECT_TRUE(inflight->done()) << "drain completed before the in-flight write";
    drained = true;
  });
  EXPECT_TRUE(v->suspended());
  EXPECT_EQ(v->Resume().code(), StatusCode::kFailedPrecondition);  // still draining
  reactor_->RunUntil([&] { return drained; });
  EXPECT_EQ(inflight->status, IoStatus::kOk);
  EXPECT_EQ(Read(*a_, 0, 1)[0], 0x11);

  // New requests queue while suspended.
  auto queued = Start(*v, IoOp::kWrite, 8, 8, 0x22);
  auto queued_read = Start(*v, IoOp::kRead, 0, 8);
  Drain();
  EXPECT_FALSE(queued->done());
  EXPECT_EQ(v->queued(), 2u);
  // Load a table over another device, twice as long; resume swaps it in.
  ASSERT_TRUE(v->Load(MustParse("0 128 linear b 0")).ok());
  EXPECT_EQ(v->InactiveTableText(), "0 128 linear b 0\n");
  EXPECT_EQ(v->geometry().num_blocks, BlockCount(64));
  ASSERT_TRUE(v->Resume().ok());
  EXPECT_EQ(v->generation(), 2u);
  EXPECT_EQ(v->geometry().num_blocks, BlockCount(128));
  EXPECT_EQ(v->TableText(), "0 128 linear b 0\n");
  EXPECT_EQ(v->InactiveTableText(), "");
  EXPECT_EQ(Wait(*queued), IoStatus::kOk);
  EXPECT_EQ(Wait(*queued_read), IoStatus::kOk);
  EXPECT_EQ(Read(*b_, 8, 1)[0], 0x22);  // the queued write followed the new table
  EXPECT_EQ(Read(*a_, 8, 1)[0], 0);
  EXPECT_EQ(queued_read->buf[0], 0);  // read b, not the old write on a
  EXPECT_EQ(Io(*v, IoOp::kRead, 100, 8), IoStatus::kOk);
}

TEST_F(VolumeTest, ResumeRules) {
  auto v = MakeVolume("v", "0 8 linear a 0");
  EXPECT_TRUE(v->Resume().ok());  // not suspended, nothing loaded: nothing to do
  ASSERT_TRUE(v->Load(MustParse("0 8 linear b 0")).ok());
  EXPECT_THAT(std::string(v->Resume().message()), HasSubstr("is not suspended"));
  v->ClearInactive();
  SuspendAndWait(*v);
  SuspendAndWait(*v);  // suspending again waits for the same (empty) drain
  ASSERT_TRUE(v->Resume().ok());
  EXPECT_EQ(v->generation(), 1u);  // no table swapped, no new generation
  EXPECT_FALSE(v->suspended());
  EXPECT_EQ(v->Load(nullptr).code(), StatusCode::kInvalidArgument);
}

TEST_F(VolumeTest, StackedVolumesAndSelfReference) {
  auto lower = MakeVolume("lower", "0 32 striped 2 8 a 0 b 0");
  ASSERT_TRUE(registry_.Add(lower).ok());
  auto upper = MakeVolume("upper", "0 16 linear lower 16");
  EXPECT_EQ(lower->open_count(), 1);
  EXPECT_EQ(Io(*upper, IoOp::kWrite, 0, 16, 0x3c), IoStatus::kOk);
  EXPECT_EQ(Read(*lower, 16, 1)[0], 0x3c);
  EXPECT_EQ(Read(*b_, 8, 1)[0], 0x3c);  // lower sector 24 is chunk 3: b row 1

  EXPECT_THAT(std::string(lower->Load(MustParse("0 8 linear lower 0")).message()),
              HasSubstr("refers to the volume itself"));
  ASSERT_TRUE(registry_.Add(upper).ok());
  EXPECT_THAT(std::string(lower->Load(MustParse("0 8 linear upper 0")).message()),
              HasSubstr("refers to the volume itself"));
}

TEST_F(VolumeTest, RemoveRefusesWhileInUse) {
  auto lower = MakeVolume("lower", "0 8 linear a 0");
  ASSERT_TRUE(registry_.Add(lower).ok());
  auto upper = MakeVolume("upper", "0 8 linear lower 0");
  EXPECT_EQ(std::string(lower->Remove().message()),
            "volume 'lower' is open by 1 holder(s) (LUNs or tables of other volumes); close "
            "them or reload those tables first");
  ASSERT_TRUE(upper->Remove().ok());  // drops its table, and with it the hold on lower
  EXPECT_EQ(lower->open_count(), 0);
  EXPECT_EQ(Io(*upper, IoOp::kRead, 0, 1), IoStatus::kInvalid);
  EXPECT_EQ(upper->Remove().code(), StatusCode::kFailedPrecondition);

  SuspendAndWait(*lower);
  auto queued = Start(*lower, IoOp::kRead, 0, 1);
  EXPECT_EQ(std::string(lower->Remove().message()),
            "volume 'lower' is suspended with 1 queued requests; resume it first");
  ASSERT_TRUE(lower->Resume().ok());
  EXPECT_EQ(Wait(*queued), IoStatus::kOk);
  auto pin = lower->PinForCopy(nullptr);
  ASSERT_TRUE(pin.ok());
  EXPECT_THAT(std::string(lower->Remove().message()), HasSubstr("1 copy pins in flight"));
  pin->Release();
  lower->Open();
  EXPECT_EQ(lower->Remove().code(), StatusCode::kFailedPrecondition);
  lower->Close();
  EXPECT_TRUE(lower->Remove().ok());
}

TEST_F(VolumeTest, CopyPinHoldsSuspendUntilReleased) {
  auto v = MakeVolume("v", "0 8 linear a 0");
  int release_asked = 0;
  auto pin = v->PinForCopy([&] { ++release_asked; });
  ASSERT_TRUE(pin.ok());
  EXPECT_TRUE(pin->held());
  EXPECT_EQ(pin->generation(), 1u);
  EXPECT_EQ(v->in_flight(), 1u);
  bool drained = false;
  v->Suspend(5ms, [&](Status s) {
    EXPECT_TRUE(s.ok());
    drained = true;
  });
  // The pin holds the suspend; past the deadline the copy is asked to let go.
  reactor_->RunUntil([&] { return release_asked > 0; });
  EXPECT_FALSE(drained);
  EXPECT_EQ(v->PinForCopy(nullptr).status().code(), StatusCode::kUnavailable);
  Volume::CopyPin moved = std::move(*pin);
  EXPECT_FALSE(pin->held());
  moved.Release();
  reactor_->RunUntil([&] { return drained; });
  EXPECT_EQ(release_asked, 1);
  ASSERT_TRUE(v->Load(MustParse("0 8 linear b 0")).ok());
  ASSERT_TRUE(v->Resume().ok());
  auto again = v->PinForCopy(nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->generation(), 2u);  // a new table, a new generation to check against
}

TEST_F(VolumeTest, PinReleasedBeforeTheDeadlineIsNotAsked) {
  auto v = MakeVolume("v", "0 8 linear a 0");
  int asked = 0;
  {
    auto pin = v->PinForCopy([&] { ++asked; });
    ASSERT_TRUE(pin.ok());
    v->Suspend(1h, [](Status) {});
  }  // the pin goes out of scope: the drain completes
  Drain();
  EXPECT_EQ(v->in_flight(), 0u);
  EXPECT_EQ(asked, 0);
}

TEST_F(VolumeTest, MessagesAndStatus) {
  auto faulty = std::make_shared<backends::FaultyDevice>(registry_.Find("b"), "fb");
  ASSERT_TRUE(registry_.Add(faulty).ok());
  auto v = MakeVolume("v", "0 16 striped 2 8 a 0 fb 0\n16 8 flakey a 64 10 10\n24 8 delay a 0 0");
  EXPECT_EQ(v->StatusText(), "0 16 striped 2 a fb 1 AA\n16 8 flakey up auto\n24 8 delay 0 0 0\n");
  faulty->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(8)});
  EXPECT_EQ(Io(*v, IoOp::kRead, 8, 8), IoStatus::kIoError);
  EXPECT_THAT(v->StatusText(), HasSubstr("striped 2 a fb 1 AD"));

  const std::vector<std::string> down = {"down"};
  ASSERT_TRUE(v->Message(1, down).ok());
  EXPECT_THAT(v->StatusText(), HasSubstr("flakey down forced"));
  ASSERT_TRUE(v->MessageAtSector(23, std::vector<std::string>{"auto"}).ok());
  EXPECT_THAT(v->StatusText(), HasSubstr("flakey up auto"));
  EXPECT_EQ(std::string(v->Message(0, down).status().message()),
            "striped: target takes no messages");
  EXPECT_EQ(v->Message(3, down).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(v->MessageAtSector(32, down).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(v->Message(1, std::vector<std::string>{"sideways"}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(VolumeTest, ProvisioningDelegatesToLeaves) {
  auto v = MakeVolume("v", "0 256 linear a 0\n256 256 zero\n512 8 error");
  EXPECT_FALSE(v->Provisioning(Lba(0), BlockCount(256)).mapped);
  EXPECT_EQ(Io(*v, IoOp::kWrite, 0, 8, 1), IoStatus::kOk);
  auto e = v->Provisioning(Lba(0), BlockCount(256));
  EXPECT_TRUE(e.mapped);
  EXPECT_EQ(e.blocks, BlockCount(128));  // one 64 KiB RAM chunk
  e = v->Provisioning(Lba(128), BlockCount(500));
  EXPECT_FALSE(e.mapped);
  EXPECT_EQ(e.blocks, BlockCount(128));  // stops at the end of the line
  e = v->Provisioning(Lba(300), BlockCount(500));
  EXPECT_FALSE(e.mapped);
  EXPECT_EQ(e.blocks, BlockCount(212));
  EXPECT_TRUE(v->Provisioning(Lba(515), BlockCount(1)).mapped);
}

}  // namespace
}  // namespace ferry::volume
