// Copies watched while they run, on the second ferryd whose copies are throttled to 32 MiB/s
// ("copy": {"bandwidth": "32M"}, tests/tpc/ferryd-tpc-slow.json): a 64 MiB copy takes about
// two seconds, long enough to poll its progress (SPC-4 6.18.5), stop it with COPY OPERATION
// ABORT (SPC-4 6.3), abort its task with ABORT TASK or LUN RESET (SAM-5 7), and have another
// initiator abort it with LUN RESET or PREEMPT AND ABORT (TASK ABORTED status: TAS 1).
#include <cstdio>

#include "tpc_client.h"

namespace ferry::tpc_test {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kBlocks = 131072;    // 64 MiB of 512-byte blocks: all of LUN 0
constexpr uint64_t kSampleStep = 2048;  // one sampled block per MiB
constexpr size_t kSamples = kBlocks / kSampleStep;
constexpr uint64_t kBytes = kBlocks * 512;

class SlowTest : public testing::Test {
 protected:
  void SetUp() override {
    if (Env("FERRY_SLOW_PORTAL").empty()) GTEST_SKIP() << "FERRY_SLOW_PORTAL is not set";
    s_ = Slow();
    ASSERT_NE(s_, nullptr) << ConnectError();
    seed_ = NewSeed();
    s_->Fill(0, 0, kBlocks, seed_);
  }
  Session& s() { return *s_; }

  // LUN 0 to LUN 1, all 64 MiB in one 0Ah segment.
  CopyList WholeLun(uint32_t list_id, uint8_t usage, bool immed) {
    return CopyList{.list_id = list_id,
                    .usage = usage,
                    .immed = immed,
                    .cscds = {s().CscdOf(0), s().CscdOf(1)},
                    .segments = {SegmentB2BOffset(0, 1, static_cast<uint32_t>(kBytes), 0, 0)}};
  }
  // How many of the sampled blocks of LUN 1 already hold the source's data.
  size_t Copied() {
    size_t n = 0;
    for (uint64_t lba = 0; lba < kBlocks; lba += kSampleStep) {
      n += s().Read(1, lba, 1) == Session::Expected(seed_, lba, 1, 512);
    }
    return n;
  }
  bool WaitForProgress() {
    return PollUntil([&] { return Copied() > 0; }, milliseconds(3000));
  }
  // After a copy was stopped: the destination no longer changes, and it was not finished.
  void ExpectStopped() {
    WaitOut(milliseconds(200));
    const size_t first = Copied();
    WaitOut(milliseconds(500));
    const size_t second = Copied();
    std::printf("  stopped after %zu of %zu MiB\n", second, kSamples);
    EXPECT_EQ(first, second) << "the destination still changes after the copy was stopped";
    EXPECT_LT(second, kSamples) << "the copy ran to the end";
  }
  std::optional<CopyStatus4> WaitNotRunning(uint32_t list_id) {
    return s().WaitCopyDone(0, list_id, milliseconds(10000));
  }
  void ExpectUsable() {
    const uint8_t tur[6] = {};
    EXPECT_TRUE(IsGood(s().Run(0, tur, SCSI_XFER_NONE, 0))) << "TEST UNIT READY afterwards";
    EXPECT_TRUE(SameBytes(s().Read(0, 4096, 8), Session::Expected(seed_, 4096, 8, 512)));
  }

  uint64_t seed_ = 0;

 private:
  Session* s_ = nullptr;
};

TEST_F(SlowTest, ImmediateCopyReportsProgressThenCompletion) {
  const uint32_t id = NewListId();
  const auto t0 = Clock::now();
  ASSERT_TRUE(IsGood(s().Xcopy4(0, WholeLun(id, kUsageHold, /*immed=*/true))));
  EXPECT_LT(Clock::now() - t0, milliseconds(1000)) << "IMMED: GOOD before the copy ends";
  uint64_t last = 0;
  int running = 0, partial = 0;
  std::optional<CopyStatus4> st;
  // Every status while the copy runs: in progress, an estimate, a growing transfer count.
  auto still_running = [&] {
    const Reply r = s().CopyStatusLid4(0, id);
    st = r.good() ? ParseCopyStatus4(r.data) : std::nullopt;
    if (!st) {
      ADD_FAILURE() << "RECEIVE COPY STATUS(LID4): " << Describe(r);
      return false;
    }
    if (st->status < 0x10 || st->status > 0x12) return false;
    ++running;
    EXPECT_GT(st->estimated_delay_ms, 0u) << "ESTIMATED STATUS UPDATE DELAY while running";
    const auto bytes = TransferBytes(st->units, st->transfer_count, 512);
    EXPECT_TRUE(bytes) << "TRANSFER COUNT UNITS " << std::hex << int{st->units};
    EXPECT_GE(bytes.value_or(0), last) << "TRANSFER COUNT went backwards";
    EXPECT_LE(bytes.value_or(0), kBytes);
    partial += bytes.value_or(0) > 0 && bytes.value_or(0) < kBytes;
    last = bytes.value_or(last);
    return true;
  };
  EXPECT_TRUE(PollUntil([&] { return !still_running(); }, milliseconds(20000), milliseconds(50)))
      << "the copy still runs after 20 s";
  ASSERT_TRUE(st);
  EXPECT_GT(running, 3) << "a two-second copy was seen running only " << running << " times";
  EXPECT_GT(partial, 0) << "no partial TRANSFER COUNT was ever reported";
  EXPECT_EQ(st->status, 0x01) << "COPY OPERATION STATUS at the end";
  EXPECT_EQ(TransferBytes(st->units, st->transfer_count, 512), kBytes);
  EXPECT_EQ(st->segments_processed, 1);
  EXPECT_TRUE(SameBytes(s().Read(1, 0, kBlocks), Session::Expected(seed_, 0, kBlocks, 512)));
}

TEST_F(SlowTest, CopyOperationAbortStopsARunningCopy) {
  const uint32_t id = NewListId();
  ASSERT_TRUE(IsGood(s().Xcopy4(0, WholeLun(id, kUsageHold, /*immed=*/true))));
  ASSERT_TRUE(WaitForProgress()) << "the copy never started";
  EXPECT_TRUE(IsGood(s().Out(0, CopyOperationAbort(id), {})));
  const auto st = WaitNotRunning(id);
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->status == 0x60 || st->status == 0x02)
      << "COPY OPERATION STATUS after COPY OPERATION ABORT: " << std::hex << int{st->status};
  ExpectStopped();
}

TEST_F(SlowTest, ListIdOfARunningCopyIsBusy) {
  const uint32_t id = NewListId();
  ASSERT_TRUE(IsGood(s().Xcopy4(0, WholeLun(id, kUsageHold, /*immed=*/true))));
  EXPECT_TRUE(
      IsCheck(s().Xcopy4(0, WholeLun(id, kUsageHold, /*immed=*/false)), kIllegalRequest, {0x0016}))
      << "a second copy with the list id of a running one";
  EXPECT_TRUE(IsGood(s().Out(0, CopyOperationAbort(id), {})));
  WaitNotRunning(id);
}

// ABORT TASK of an EXTENDED COPY that is still moving data: the copy stops, the session
// goes on (libiscsi cancels the task locally and sends the TMF).
TEST_F(SlowTest, AbortTaskStopsARunningExtendedCopy) {
  const Bytes list = EncodeLid1(WholeLun(0, kUsageDisable, false));
  AsyncCommand cmd;
  s().Start(0, ThirdPartyCopyOut(kSaXcopyLid1, static_cast<uint32_t>(list.size())), SCSI_XFER_WRITE,
            static_cast<uint32_t>(list.size()), list, &cmd);
  ASSERT_TRUE(WaitForProgress()) << "the copy never started";
  ASSERT_FALSE(cmd.done) << "the copy ended before it could be aborted: " << Describe(cmd.reply);
  EXPECT_EQ(s().AbortTask(&cmd), ISCSI_TMR_FUNC_COMPLETE);
  ExpectStopped();
  ExpectUsable();
}

TEST_F(SlowTest, LunResetStopsARunningExtendedCopy) {
  const Bytes list = EncodeLid1(WholeLun(0, kUsageDisable, false));
  AsyncCommand cmd;
  s().Start(0, ThirdPartyCopyOut(kSaXcopyLid1, static_cast<uint32_t>(list.size())), SCSI_XFER_WRITE,
            static_cast<uint32_t>(list.size()), list, &cmd);
  ASSERT_TRUE(WaitForProgress()) << "the copy never started";
  ASSERT_FALSE(cmd.done) << "the copy ended before the reset: " << Describe(cmd.reply);
  EXPECT_EQ(s().LunReset(0), ISCSI_TMR_FUNC_COMPLETE);
  // SAM-5 6.3.3: the reset leaves a unit attention on every nexus of the LU.
  EXPECT_TRUE(s().ClearUnitAttentions(0));
  ExpectStopped();
  ExpectUsable();
}

// A second initiator on the throttled target, for the tests where another nexus aborts.
std::unique_ptr<Session> OtherOnSlow() {
  std::string err;
  auto o = Session::Connect(Env("FERRY_SLOW_PORTAL"), Env("FERRY_SLOW_TARGET"), kOtherName, {0, 1},
                            &err);
  if (o == nullptr) ADD_FAILURE() << "second initiator: " << err;
  return o;
}

TEST_F(SlowTest, LunResetFromAnotherInitiatorEndsTheCopyInTaskAborted) {
  std::unique_ptr<Session> other = OtherOnSlow();
  ASSERT_NE(other, nullptr);
  const Bytes list = EncodeLid1(WholeLun(0, kUsageDisable, false));
  AsyncCommand cmd;
  s().Start(0, ThirdPartyCopyOut(kSaXcopyLid1, static_cast<uint32_t>(list.size())), SCSI_XFER_WRITE,
            static_cast<uint32_t>(list.size()), list, &cmd);
  ASSERT_TRUE(WaitForProgress()) << "the copy never started";
  ASSERT_FALSE(cmd.done) << "the copy ended before the reset: " << Describe(cmd.reply);
  EXPECT_EQ(other->LunReset(0), ISCSI_TMR_FUNC_COMPLETE);
  // SAM-5 7.6 with TAS 1: the other nexus's task ends in TASK ABORTED, not in silence.
  ASSERT_TRUE(s().PumpUntil([&] { return cmd.done; }, milliseconds(10000)))
      << "the copy's task never ended after another initiator's LUN RESET";
  EXPECT_EQ(s().Finished(&cmd).status, SCSI_STATUS_TASK_ABORTED);
  EXPECT_TRUE(s().ClearUnitAttentions(0));
  ExpectStopped();
  ExpectUsable();
}

TEST_F(SlowTest, PreemptAndAbortEndsThePreemptedNexussCopy) {
  std::unique_ptr<Session> other = OtherOnSlow();
  ASSERT_NE(other, nullptr);
  // SPC-4 6.16: REGISTER (key), RESERVE Write Exclusive, PREEMPT AND ABORT; basic lists.
  auto prout = [](Session& who, uint8_t sa, uint8_t type, uint64_t key, uint64_t sa_key) {
    Bytes p(24, 0);
    Put64(&p[0], key);
    Put64(&p[8], sa_key);
    std::array<uint8_t, 10> c{0x5f, sa, type};
    Put32(&c[5], 24);
    return who.Out(0, c, p);
  };
  constexpr uint64_t kMine = 0x51, kTheirs = 0x52;
  ASSERT_TRUE(IsGood(prout(s(), 0x00, 0, 0, kMine)));
  ASSERT_TRUE(IsGood(prout(*other, 0x00, 0, 0, kTheirs)));
  ASSERT_TRUE(IsGood(prout(s(), 0x01, 0x01, kMine, 0)));
  const Bytes list = EncodeLid1(WholeLun(0, kUsageDisable, false));
  AsyncCommand cmd;
  s().Start(0, ThirdPartyCopyOut(kSaXcopyLid1, static_cast<uint32_t>(list.size())), SCSI_XFER_WRITE,
            static_cast<uint32_t>(list.size()), list, &cmd);
  ASSERT_TRUE(WaitForProgress()) << "the copy never started";
  ASSERT_FALSE(cmd.done) << "the copy ended before the preemption: " << Describe(cmd.reply);
  EXPECT_TRUE(IsGood(prout(*other, 0x05, 0x01, kTheirs, kMine)));
  ASSERT_TRUE(s().PumpUntil([&] { return cmd.done; }, milliseconds(10000)))
      << "the preempted nexus's copy never ended";
  EXPECT_EQ(s().Finished(&cmd).status, SCSI_STATUS_TASK_ABORTED);
  // The preempted nexus learns why (REGISTRATIONS PREEMPTED); reads pass Write Exclusive.
  EXPECT_TRUE(s().ClearUnitAttentions(0));
  ExpectStopped();
  EXPECT_TRUE(IsGood(prout(*other, 0x03, 0, kTheirs, 0)));  // the holder clears
  ExpectUsable();
}

}  // namespace
}  // namespace ferry::tpc_test
