// RECEIVE COPY RESULTS (SPC-4 6.18) of EXTENDED COPY operations, and the ways a copy stops
// early: COPY OPERATION ABORT, ABORT TASK (Task::cancel), LUN reset, and nexus loss.
// Fixture: copy_manager_test.h.
#include "base/endian.h"
#include "scsi/copy_manager_test.h"

namespace ferry::scsi::tpc_test {
namespace {

TEST_F(CopyManagerTest, OperatingParametersReportTheLimits) {
  for (auto [lu, gran] : {std::pair{a_.get(), 9}, std::pair{k4_.get(), 12}}) {
    auto c = Run(*lu, CopyInCdb(0x03, 0));
    ASSERT_TRUE(IsGood(*c));
    const auto d = c->data();
    ASSERT_EQ(d.size(), 48u);
    EXPECT_EQ(LoadBe32(&d[0]), 44u);  // AVAILABLE DATA
    EXPECT_EQ(d[4] & 0x01, 0x01);     // SNLID
    EXPECT_EQ(LoadBe16(&d[8]), 128);  // MAXIMUM CSCD DESCRIPTOR COUNT
    EXPECT_EQ(LoadBe16(&d[10]), 256);
    EXPECT_EQ(LoadBe32(&d[12]), 16384u);    // MAXIMUM DESCRIPTOR LIST LENGTH
    EXPECT_EQ(LoadBe32(&d[16]), 1u << 30);  // MAXIMUM SEGMENT LENGTH
    EXPECT_EQ(LoadBe32(&d[20]), 0u);        // MAXIMUM INLINE DATA LENGTH
    EXPECT_EQ(LoadBe32(&d[24]), 0u);        // HELD DATA LIMIT
    EXPECT_EQ(LoadBe16(&d[34]), 255);       // TOTAL CONCURRENT COPIES
    EXPECT_EQ(d[36], 255);
    EXPECT_EQ(d[37], gran);  // DATA SEGMENT GRANULARITY (log2 of the block size)
    EXPECT_EQ(d[43], 4);     // IMPLEMENTED DESCRIPTOR LIST LENGTH
    EXPECT_EQ(Bytes(d.begin() + 44, d.end()), (Bytes{0x02, 0x07, 0x0a, 0xe4}));
  }
}

TEST_F(CopyManagerTest, CopyStatusLid1OfAHeldCopy) {
  Fill(*a_, 0, 32, 1);
  XcopyList l{.list_id = 3, .cscds = {Cscd(*a_), Cscd(*b_)}};
  l.segments = {Seg02(0, 1, 8, 0, 0), Seg02(0, 1, 16, 8, 8)};
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  auto st = Run(*a_, CopyInCdb(0x00, 3));
  ASSERT_TRUE(IsGood(*st));
  const auto d = st->data();
  ASSERT_EQ(d.size(), 12u);
  EXPECT_EQ(LoadBe32(&d[0]), 8u);
  EXPECT_EQ(d[4], 0x01);          // completed, no errors; HDD 0
  EXPECT_EQ(LoadBe16(&d[5]), 2);  // SEGMENTS PROCESSED
  EXPECT_EQ(d[7], 0x00);          // TRANSFER COUNT UNITS: bytes
  EXPECT_EQ(LoadBe32(&d[8]), 24u * 512);
  // A list identifier is per I_T nexus.
  EXPECT_TRUE(HasSense(*Run(*a_, CopyInCdb(0x00, 3), {}, 4096, /*nexus=*/2),
                       SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb));
}

TEST_F(CopyManagerTest, DiscardedAndUnknownListsAreNotReported) {
  XcopyList l{.list_id = 4, .usage = ListIdUsage::kDiscard, .cscds = {Cscd(*a_), Cscd(*b_)}};
  l.segments = {Seg02(0, 1, 1, 0, 0)};
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  for (uint32_t id : {4u, 77u}) {
    auto st = Run(*a_, CopyInCdb(0x00, id));
    EXPECT_TRUE(HasSense(*st, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb)) << id;
    EXPECT_TRUE(st->task.sense.in_cdb);
    EXPECT_EQ(st->task.sense.field_byte, 2);  // LIST IDENTIFIER
  }
  EXPECT_TRUE(HasSense(*Run(*a_, CopyInCdb(0x05, 0x12345678)), SenseKey::kIllegalRequest,
                       Asc::kInvalidFieldInCdb));
}

TEST_F(CopyManagerTest, FailureDetailsOfAFailedHeldCopy) {
  XcopyList l{.list_id = 5, .cscds = {Cscd(*a_), Cscd(*b_)}};
  l.segments = {Seg02(0, 1, 4, 0, 0), Seg02(0, 1, 4, 16382, 0)};  // the second ends past a_
  auto x = Xcopy(*a_, l);
  ASSERT_TRUE(HasSense(*x, SenseKey::kCopyAborted, Asc::kNoAdditionalSense));
  auto fd = Run(*a_, CopyInCdb(0x04, 5));
  ASSERT_TRUE(IsGood(*fd));
  const auto d = fd->data();
  ASSERT_EQ(d.size(), 60u + 18u);
  EXPECT_EQ(LoadBe32(&d[0]), 74u);
  EXPECT_EQ(d[56], 0x02);           // COPY COMMAND STATUS: CHECK CONDITION
  EXPECT_EQ(LoadBe16(&d[58]), 18);  // SENSE DATA LENGTH
  const uint8_t* s = &d[60];
  EXPECT_EQ(s[0], 0xf0);               // fixed format, VALID (the information field is set)
  EXPECT_EQ(s[2] & 0x0f, 0x0a);        // COPY ABORTED
  EXPECT_EQ(LoadBe32(&s[3]), 16382u);  // INFORMATION: the LBA
  EXPECT_EQ(LoadBe32(&s[8]), 1u);      // COMMAND-SPECIFIC INFORMATION: segment 1
  EXPECT_EQ(s[12], 0x00);
  EXPECT_EQ(s[13], 0x00);
  EXPECT_EQ(s[15], 0x80);  // SKSV, parameter list
  EXPECT_EQ(LoadBe16(&s[16]), l.SegmentOffset(1) + 12);
  // COPY STATUS agrees: completed with errors after one segment.
  auto st = Run(*a_, CopyInCdb(0x00, 5));
  EXPECT_EQ(st->data()[4], 0x02);
  EXPECT_EQ(LoadBe16(&st->data()[5]), 1);
  // A copy that did not fail has no failure details.
  l.list_id = 6;
  l.segments.pop_back();
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  auto none = Run(*a_, CopyInCdb(0x04, 6));
  ASSERT_TRUE(IsGood(*none));
  EXPECT_EQ(none->data().size(), 4u);
  EXPECT_EQ(LoadBe32(none->data().data()), 0u);
}

TEST_F(ThrottledCopyTest, Lid4ImmedCompletesFirstAndReportsProgress) {
  const Bytes src = Fill(*a_, 0, 2048, 7);  // 1 MiB at 4 MiB/s
  XcopyList l{.lid4 = true, .list_id = 0x01020304, .immed = true, .cscds = {Cscd(*a_)}};
  l.cscds.push_back(Cscd(*b_));
  l.segments = {Seg02(0, 1, 2048, 0, 0)};
  auto x = Xcopy(*a_, l);
  ASSERT_TRUE(IsGood(*x));
  auto st = Run(*a_, CopyInCdb(0x05, 0x01020304));
  ASSERT_TRUE(IsGood(*st));
  EXPECT_EQ(st->data()[4], 0x01);  // RESPONSE TO SERVICE ACTION: EXTENDED COPY(LID4)
  EXPECT_TRUE(st->data()[5] == 0x12 || st->data()[5] == 0x01) << int(st->data()[5]);
  if (st->data()[5] == 0x12) {  // ESTIMATED STATUS UPDATE DELAY: 1 ms .. 5 s while it runs
    EXPECT_GE(LoadBe32(&st->data()[8]), 1u);
    EXPECT_LE(LoadBe32(&st->data()[8]), 5000u);
  }
  RunUntilIdle();
  st = Run(*a_, CopyInCdb(0x05, 0x01020304));
  ASSERT_TRUE(IsGood(*st));
  const auto d = st->data();
  ASSERT_EQ(d.size(), 32u);
  EXPECT_EQ(LoadBe32(&d[0]), 28u);
  EXPECT_EQ(d[5], 0x01);   // completed without errors
  EXPECT_EQ(d[12], 0x00);  // the copy's status: GOOD
  EXPECT_EQ(d[13], 0);     // no sense
  EXPECT_EQ(d[15], 0x00);  // TRANSFER COUNT UNITS: bytes
  EXPECT_EQ(LoadBe64(&d[16]), 1u << 20);
  EXPECT_EQ(LoadBe16(&d[24]), 1);
  EXPECT_EQ(Read(*b_, 0, 2048), src);
}

TEST_F(CopyManagerTest, Lid4ImmedFailureIsInTheRecord) {
  XcopyList l{.lid4 = true, .list_id = 77, .immed = true, .cscds = {Cscd(*a_), Cscd(*b_)}};
  l.segments = {Seg02(0, 1, 1, 0, 0), Seg02(0, 1, 4, 16382, 0)};
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));  // IMMED: the error comes later
  RunUntilIdle();
  auto st = Run(*a_, CopyInCdb(0x05, 77));
  ASSERT_TRUE(IsGood(*st));
  const auto d = st->data();
  ASSERT_EQ(d.size(), 32u + 18);
  EXPECT_EQ(LoadBe32(&d[0]), d.size() - 4);
  EXPECT_EQ(d[5], 0x02);   // completed with errors
  EXPECT_EQ(d[12], 0x02);  // CHECK CONDITION
  EXPECT_EQ(d[13], 18);
  EXPECT_EQ(d[14], 18);
  EXPECT_EQ(LoadBe64(&d[16]), 512u);
  EXPECT_EQ(LoadBe16(&d[24]), 1);
  EXPECT_EQ(d[32 + 2] & 0x0f, 0x0a);  // COPY ABORTED
  EXPECT_EQ(LoadBe32(&d[32 + 3]), 16382u);
  EXPECT_EQ(LoadBe32(&d[32 + 8]), 1u);
  EXPECT_EQ(cm_->metrics().failed_commands, 1u);
}

TEST_F(CopyManagerTest, HeldRecordsAreBoundedPerNexus) {
  XcopyList l{.cscds = {Cscd(*a_), Cscd(*b_)}, .segments = {Seg02(0, 1, 1, 0, 0)}};
  for (uint32_t id = 0; id <= 64; ++id) {  // one more than max_records_per_nexus
    l.list_id = id;
    ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  }
  EXPECT_TRUE(HasSense(*Run(*a_, CopyInCdb(0x00, 0)), SenseKey::kIllegalRequest,
                       Asc::kInvalidFieldInCdb));  // the oldest went first
  for (uint32_t id : {1u, 64u}) EXPECT_TRUE(IsGood(*Run(*a_, CopyInCdb(0x00, id)))) << id;
  // Another nexus's records do not count against this one.
  EXPECT_TRUE(IsGood(*Xcopy(*a_, l, 2)));
  EXPECT_TRUE(IsGood(*Run(*a_, CopyInCdb(0x00, 1))));
}

TEST_F(ThrottledCopyTest, ListIdInUseIsOperationInProgress) {
  XcopyList l{.list_id = 9, .cscds = {Cscd(*a_), Cscd(*b_)}};
  l.segments = {Seg02(0, 1, 16384, 0, 0)};  // 8 MiB: about 2 s at 4 MiB/s
  Bytes p = l.Encode();
  const auto len = static_cast<uint32_t>(p.size());
  auto first = Start(*a_, XcopyCdb(false, len), p, 0);
  RunFor(std::chrono::milliseconds(20));
  ASSERT_FALSE(first->done);
  auto second = Run(*b_, XcopyCdb(false, len), p, 0);  // same nexus, another LU
  EXPECT_TRUE(HasSense(*second, SenseKey::kIllegalRequest, Asc::kOperationInProgress));
  // Another nexus may use the same list identifier (writing blocks the first copy does not
  // hold: it would wait for them, range_lock.h).
  l.segments = {Seg02(1, 0, 1, 0, 100)};
  EXPECT_TRUE(IsGood(*Xcopy(*a_, l, /*nexus=*/2)));
  EXPECT_TRUE(IsGood(*Run(*a_, CopyOperationAbortCdb(9))));
  Wait(*first);
  EXPECT_EQ(first->task.sense.key, SenseKey::kCopyAborted);
  // Once it ended, the identifier is free again.
  EXPECT_TRUE(IsGood(*Xcopy(*a_, l)));
}

TEST_F(ThrottledCopyTest, CopyOperationAbortTerminatesABackgroundCopy) {
  XcopyList l{.lid4 = true, .list_id = 7, .immed = true, .cscds = {Cscd(*a_), Cscd(*b_)}};
  l.segments = {Seg02(0, 1, 16384, 0, 0)};  // 8 MiB: about 2 s at 4 MiB/s
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  RunFor(std::chrono::milliseconds(50));
  EXPECT_EQ(cm_->metrics().active, 1u);
  ASSERT_TRUE(IsGood(*Run(*a_, CopyOperationAbortCdb(7))));
  RunUntilIdle();
  auto st = Run(*a_, CopyInCdb(0x05, 7));
  ASSERT_TRUE(IsGood(*st));
  const auto d = st->data();
  EXPECT_EQ(d[5], 0x60);  // terminated
  EXPECT_LT(LoadBe64(&d[16]), 8u << 20);
  EXPECT_EQ(LoadBe32(&d[8]), 0u);  // ESTIMATED STATUS UPDATE DELAY: nothing to wait for
  const CopyMetrics m = cm_->metrics();
  EXPECT_EQ(m.aborted_commands, 1u);
  EXPECT_EQ(m.active, 0u);
  EXPECT_EQ(Read(*b_, 16383, 1), Bytes(512, 0));  // never reached
  // A foreground copy: its command completes with COPY ABORTED.
  XcopyList fg{.list_id = 8, .cscds = l.cscds, .segments = l.segments};
  Bytes p = fg.Encode();
  auto x = Start(*a_, XcopyCdb(false, static_cast<uint32_t>(p.size())), p, 0);
  RunFor(std::chrono::milliseconds(20));
  ASSERT_TRUE(IsGood(*Run(*a_, CopyOperationAbortCdb(8))));
  Wait(*x);
  EXPECT_EQ(x->task.status, Status::kCheckCondition);
  EXPECT_EQ(x->task.sense.key, SenseKey::kCopyAborted);
  EXPECT_EQ(Run(*a_, CopyInCdb(0x00, 8))->data()[4], 0x02);
  EXPECT_EQ(Run(*a_, CopyInCdb(0x05, 8))->data()[5], 0x60);
  EXPECT_EQ(cm_->metrics().aborted_commands, 2u);
  // Unknown list identifier.
  EXPECT_TRUE(HasSense(*Run(*a_, CopyOperationAbortCdb(99)), SenseKey::kIllegalRequest,
                       Asc::kInvalidFieldInCdb));
}

TEST_F(ThrottledCopyTest, AbortedCopyReportsTheBytesItWrote) {
  const Bytes src = Fill(*a_, 0, 16384, 4);
  XcopyList l{.lid4 = true, .list_id = 7, .immed = true, .cscds = {Cscd(*a_), Cscd(*b_)}};
  l.segments = {Seg02(0, 1, 16384, 0, 0)};
  const CopyMetrics before = cm_->metrics();
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  RunFor(std::chrono::milliseconds(50));
  ASSERT_TRUE(IsGood(*Run(*a_, CopyOperationAbortCdb(7))));
  RunUntilIdle();
  const CopyMetrics after = cm_->metrics();
  const uint64_t written = after.bytes_offloaded - before.bytes_offloaded;
  ASSERT_GT(written, 0u);
  auto st = Run(*a_, CopyInCdb(0x05, 7));
  EXPECT_EQ(st->data()[5], 0x60);
  EXPECT_EQ(LoadBe64(&st->data()[16]), written);  // TRANSFER COUNT: what it wrote
  EXPECT_EQ(LoadBe16(&st->data()[24]), 0);        // the segment was not completed
  const auto blocks = static_cast<uint32_t>(written / 512);
  EXPECT_EQ(Read(*b_, 0, blocks), Bytes(src.begin(), src.begin() + written));
}

TEST_F(CopyManagerTest, CopyOperationAbortAfterTheEndChangesNothing) {
  XcopyList l{.list_id = 8, .cscds = {Cscd(*a_), Cscd(*b_)}};
  l.segments = {Seg02(0, 1, 8, 0, 0)};
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  Run(*a_, CopyOperationAbortCdb(8));  // too late: the copy completed
  auto st = Run(*a_, CopyInCdb(0x00, 8));
  ASSERT_TRUE(IsGood(*st));
  EXPECT_EQ(st->data()[4], 0x01) << "a copy that completed is not 'completed with errors'";
  EXPECT_EQ(Run(*a_, CopyInCdb(0x05, 8))->data()[5], 0x01);
  EXPECT_EQ(cm_->metrics().aborted_commands, 0u);
}

TEST_F(ThrottledCopyTest, TaskCancelStopsAForegroundCopy) {
  Fill(*a_, 16383, 1, 5);
  XcopyList l{.list_id = 0, .usage = ListIdUsage::kDisable, .cscds = {Cscd(*a_), Cscd(*b_)}};
  l.segments = {Seg02(0, 1, 16384, 0, 0)};
  Bytes p = l.Encode();
  const auto len = static_cast<uint32_t>(p.size());
  auto x = Start(*a_, XcopyCdb(false, len), p, 0);
  ASSERT_TRUE(static_cast<bool>(x->task.cancel)) << "a running copy offers a cancel hook";
  RunFor(std::chrono::milliseconds(20));
  ASSERT_FALSE(x->done);
  x->task.cancel();  // what ABORT TASK does
  Wait(*x);
  EXPECT_EQ(x->task.status, Status::kCheckCondition);
  EXPECT_EQ(x->task.sense.key, SenseKey::kCopyAborted);
  const CopyMetrics m = cm_->metrics();
  EXPECT_EQ(m.aborted_commands, 1u);
  EXPECT_EQ(m.active, 0u);
  EXPECT_EQ(Read(*b_, 16383, 1), Bytes(512, 0));
  // LUN RESET stops a background copy received by that LU.
  XcopyList bg{.lid4 = true, .list_id = 1, .immed = true, .cscds = l.cscds};
  bg.segments = l.segments;
  ASSERT_TRUE(IsGood(*Xcopy(*a_, bg)));
  RunFor(std::chrono::milliseconds(20));
  cm_->LuReset(*b_);  // not the LU that received it
  EXPECT_EQ(cm_->metrics().active, 1u);
  cm_->LuReset(*a_);
  RunUntilIdle();
  EXPECT_EQ(Run(*a_, CopyInCdb(0x05, 1))->data()[5], 0x60);
  EXPECT_EQ(cm_->metrics().aborted_commands, 2u);
}

TEST_F(ThrottledCopyTest, NexusLossDuringABackgroundCopyDropsItsRecord) {
  XcopyList l{.lid4 = true, .list_id = 1, .immed = true, .cscds = {Cscd(*a_), Cscd(*b_)}};
  l.segments = {Seg02(0, 1, 2048, 0, 0)};
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  cm_->NexusLost(kNexus);  // while the copy runs
  RunUntilIdle();
  EXPECT_TRUE(
      HasSense(*Run(*a_, CopyInCdb(0x05, 1)), SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb));
}

TEST_F(CopyManagerTest, NexusLossDropsItsHeldRecords) {
  XcopyList l{.list_id = 2, .cscds = {Cscd(*a_), Cscd(*b_)}};
  l.segments = {Seg02(0, 1, 1, 0, 0)};
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l, 1)));
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l, 2)));
  cm_->NexusLost(1);
  EXPECT_TRUE(HasSense(*Run(*a_, CopyInCdb(0x00, 2), {}, 4096, 1), SenseKey::kIllegalRequest,
                       Asc::kInvalidFieldInCdb));
  auto other = Run(*a_, CopyInCdb(0x00, 2), {}, 4096, 2);
  ASSERT_TRUE(IsGood(*other));
  EXPECT_EQ(other->data()[4], 0x01);
}

}  // namespace
}  // namespace ferry::scsi::tpc_test
