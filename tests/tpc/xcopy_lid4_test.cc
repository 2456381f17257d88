// EXTENDED COPY(LID4) (SPC-4 6.5), RECEIVE COPY STATUS(LID4) (SPC-4 6.18.5) and COPY
// OPERATION ABORT (SPC-4 6.3) on the unthrottled instance; slow_copy_test.cc watches copies
// while they run.
#include "tpc_client.h"

namespace ferry::tpc_test {
namespace {

class Lid4Test : public TpcTest {
 protected:
  Reply ReceiveStatus4(uint32_t list_id) { return c().CopyStatusLid4(0, list_id); }
  std::optional<CopyStatus4> WaitDone(uint32_t list_id) {
    return c().WaitCopyDone(0, list_id, std::chrono::seconds(10));
  }
};

TEST_F(Lid4Test, CopiesAcrossLunsAndReportsStatus) {
  Session& s = c();
  const uint64_t seed = NewSeed();
  s.Fill(0, 2000, 256, seed);
  const uint32_t id = NewListId();
  CopyList l{.list_id = id,
             .usage = kUsageHold,
             .cscds = {s.CscdOf(0), s.CscdOf(1)},
             .segments = {SegmentB2B(0, 1, 128, 2000, 9000),
                          SegmentB2BOffset(0, 1, 128 * 512, 2128, 9128)}};
  ASSERT_TRUE(IsGood(s.Xcopy4(0, l)));
  EXPECT_TRUE(SameBytes(s.Read(1, 9000, 256), Session::Expected(seed, 2000, 256, 512)));
  const Reply r = ReceiveStatus4(id);
  ASSERT_TRUE(IsGood(r));
  const auto st = ParseCopyStatus4(r.data);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->response_to_sa, kSaXcopyLid4) << "RESPONSE TO SERVICE ACTION";
  EXPECT_EQ(st->status, 0x01) << "COPY OPERATION STATUS";
  EXPECT_EQ(st->completion_status, SCSI_STATUS_GOOD) << "EXTENDED COPY COMPLETION STATUS";
  EXPECT_EQ(st->segments_processed, 2);
  EXPECT_EQ(TransferBytes(st->units, st->transfer_count, 512), 256 * 512)
      << "TRANSFER COUNT " << st->transfer_count << " in units " << std::hex << int{st->units};
}

TEST_F(Lid4Test, CscdFfffAndDifferentBlockSizes) {
  Session& s = c();
  const uint64_t seed = NewSeed();
  s.Fill(1, 8000, 64, seed);
  CopyList l{.cscds = {s.CscdOf(1)}, .segments = {SegmentB2B(0, kCscdThisLu, 8, 8000, 500, true)}};
  ASSERT_TRUE(IsGood(s.Xcopy4(2, l)));
  EXPECT_TRUE(SameBytes(s.Read(2, 500, 8), Session::Expected(seed, 8000, 64, 512)));
}

TEST_F(Lid4Test, EmptyParameterListIsGood) {
  EXPECT_TRUE(IsGood(c().Out(0, ThirdPartyCopyOut(kSaXcopyLid4, 0), {})));
}

TEST_F(Lid4Test, ImmediateCopyCompletesInTheBackground) {
  Session& s = c();
  const uint64_t seed = NewSeed();
  s.Fill(0, 12000, 2048, seed);
  const uint32_t id = NewListId();
  CopyList l{.list_id = id,
             .usage = kUsageHold,
             .immed = true,
             .cscds = {s.CscdOf(0), s.CscdOf(3)},
             .segments = {SegmentB2B(0, 1, 2048, 12000, 12000)}};
  ASSERT_TRUE(IsGood(s.Xcopy4(0, l)));
  const auto st = WaitDone(id);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, 0x01);
  EXPECT_EQ(TransferBytes(st->units, st->transfer_count, 512), 2048 * 512);
  EXPECT_TRUE(SameBytes(s.Read(3, 12000, 2048), Session::Expected(seed, 12000, 2048, 512)));
}

TEST_F(Lid4Test, FailedCopyReportsItsSense) {
  Session& s = c();
  const uint32_t id = NewListId();
  CopyList l{.list_id = id,
             .usage = kUsageHold,
             .cscds = {s.CscdOf(0), s.CscdOf(1)},
             .segments = {SegmentB2B(0, 1, 16, s.Info(0).blocks - 1, 100)}};
  ASSERT_TRUE(IsCheck(s.Xcopy4(0, l), kCopyAborted, {}));
  const Reply r = ReceiveStatus4(id);
  ASSERT_TRUE(IsGood(r));
  const auto st = ParseCopyStatus4(r.data);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, 0x02) << "COPY OPERATION STATUS: completed with errors";
  EXPECT_EQ(st->completion_status, SCSI_STATUS_CHECK_CONDITION);
  ASSERT_FALSE(st->sense.empty());
  EXPECT_EQ(DecodeSense(st->sense).key, kCopyAborted);
}

TEST_F(Lid4Test, CopyStatusOfUnknownListIdIsRefused) {
  EXPECT_TRUE(IsCheck(ReceiveStatus4(0x7fff0000), kIllegalRequest, {0x2400}));
}

TEST_F(Lid4Test, CopyOperationAbortOfUnknownListIdIsRefused) {
  EXPECT_TRUE(IsCheck(c().Out(0, CopyOperationAbort(0x7fff0001), {}), kIllegalRequest, {0x2400}));
}

}  // namespace
}  // namespace ferry::tpc_test
