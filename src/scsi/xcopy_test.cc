// EXTENDED COPY (SPC-4 6.4 LID1, 6.5 LID4) through LogicalUnit::Execute: CSCD resolution in
// the nexus's view, segment descriptors 02h/0Ah/07h, the errors of docs/third-party-copy.md
// and the copy manager's metrics. Fixture: copy_manager_test.h.
#include <algorithm>

#include "base/endian.h"
#include "scsi/copy_manager_test.h"

namespace ferry::scsi::tpc_test {
namespace {

Bytes Zeros(size_t blocks, size_t bs = 512) { return Bytes(blocks * bs, 0); }
Bytes Slice(const Bytes& d, size_t from, size_t len) {
  return Bytes(d.begin() + from, d.begin() + from + len);
}

// A COPY ABORTED sense with the segment number and a field pointer into the parameter list.
void ExpectSegmentError(const Cmd& c, Asc asc, uint32_t segment, uint16_t field) {
  EXPECT_TRUE(HasSense(c, SenseKey::kCopyAborted, asc));
  EXPECT_EQ(c.task.sense.command_specific, segment);
  EXPECT_TRUE(c.task.sense.has_field_pointer);
  EXPECT_FALSE(c.task.sense.in_cdb);
  EXPECT_EQ(c.task.sense.field_byte, field);
}

TEST_F(CopyManagerTest, CopiesBetweenLusByNaaEui64AndT10) {
  uint32_t seed = 1;
  for (bool lid4 : {false, true}) {
    for (Designator type : {Designator::kNaa, Designator::kEui64, Designator::kT10}) {
      const uint64_t lba = 100 * seed;
      const Bytes src = Fill(*a_, lba, 16, seed);
      XcopyList l{.lid4 = lid4, .list_id = seed, .cscds = {Cscd(*a_, type), Cscd(*b_, type)}};
      l.segments = {Seg02(0, 1, 16, lba, lba + 5)};
      // Any LU of the copy manager may receive the command.
      ASSERT_TRUE(IsGood(*Xcopy(*k4_, l))) << "lid4 " << lid4 << " type " << int(type);
      EXPECT_EQ(Read(*b_, lba + 5, 16), src);
      EXPECT_EQ(Read(*b_, lba + 4, 1), Zeros(1));
      EXPECT_EQ(Read(*b_, lba + 21, 1), Zeros(1));
      ++seed;
    }
  }
}

TEST_F(CopyManagerTest, CscdIdFfffIsTheReceivingLu) {
  const Bytes src = Fill(*a_, 0, 8, 2);
  XcopyList l{.cscds = {Cscd(*b_)}};
  l.segments = {Seg02(kCscdIdReceivingLu, 0, 8, 0, 50)};
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  EXPECT_EQ(Read(*b_, 50, 8), src);
  l.segments = {Seg02(0, kCscdIdReceivingLu, 8, 50, 1000)};
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  EXPECT_EQ(Read(*a_, 1000, 8), src);
  // The receiving LU must itself be in the view.
  l.segments = {Seg02(kCscdIdReceivingLu, 0, 1, 0, 0)};
  ExpectSegmentError(*Xcopy(*hidden_, l), Asc::kCopyTargetDeviceNotReachable, 0,
                     l.SegmentOffset(0) + 4);
}

TEST_F(CopyManagerTest, SameLuOverlappingCopyIsAMemmove) {
  const Bytes old = Fill(*a_, 0, 32, 3);
  XcopyList l{.cscds = {Cscd(*a_)}};
  l.segments = {Seg02(0, kCscdIdReceivingLu, 24, 0, 8)};  // forward, overlapping
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  Bytes want = old;
  std::copy(old.begin(), old.begin() + 24 * 512, want.begin() + 8 * 512);
  EXPECT_EQ(Read(*a_, 0, 32), want);

  const Bytes old2 = Fill(*a_, 100, 32, 4);
  l.segments = {Seg02(0, 0, 24, 108, 100)};  // backward, overlapping
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  Bytes want2 = old2;
  std::copy(old2.begin() + 8 * 512, old2.end(), want2.begin());
  EXPECT_EQ(Read(*a_, 100, 32), want2);
}

TEST_F(CopyManagerTest, DcPicksTheBlockSizeOfTheCount) {
  const Bytes src = Fill(*a_, 0, 16, 5);  // 8 KiB
  XcopyList l{.cscds = {Cscd(*a_), Cscd(*k4_)}};
  l.segments = {Seg02(0, 1, 2, 0, 10, /*dc=*/true),  // 2 destination blocks of 4096
                Seg02(0, 1, 16, 0, 20)};             // 16 source blocks of 512
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  EXPECT_EQ(Read(*k4_, 10, 2), src);
  EXPECT_EQ(Read(*k4_, 20, 2), src);
  EXPECT_EQ(Read(*k4_, 12, 1), Zeros(1, 4096));
  XcopyList back{.cscds = {Cscd(*k4_), Cscd(*a_)}};
  back.segments = {Seg02(0, 1, 1, 10, 1000),                // 1 source block = 8 of 512
                   Seg02(0, 1, 8, 11, 2000, /*dc=*/true)};  // 8 destination blocks
  ASSERT_TRUE(IsGood(*Xcopy(*a_, back)));
  EXPECT_EQ(Read(*a_, 1000, 8), Slice(src, 0, 4096));
  EXPECT_EQ(Read(*a_, 2000, 8), Slice(src, 4096, 4096));
}

TEST_F(CopyManagerTest, InexactLengthIsUnexpectedInexactSegment) {
  const Bytes src = Fill(*a_, 0, 8, 6);
  XcopyList l{.cscds = {Cscd(*a_), Cscd(*k4_)}};
  l.segments = {Seg02(0, 1, 8, 0, 0), Seg02(0, 1, 3, 0, 4)};  // 1536 bytes: not 4096-aligned
  ExpectSegmentError(*Xcopy(*a_, l), Asc::kUnexpectedInexactSegment, 1, l.SegmentOffset(1) + 10);
  EXPECT_EQ(Read(*k4_, 0, 1), src);  // segment 0 was done
  EXPECT_EQ(Read(*k4_, 4, 1), Zeros(1, 4096));
  // DC=1 counting 512-byte destination blocks from a 4096-byte source.
  XcopyList back{.cscds = {Cscd(*k4_), Cscd(*a_)}};
  back.segments = {Seg02(0, 1, 3, 0, 100, /*dc=*/true)};
  ExpectSegmentError(*Xcopy(*a_, back), Asc::kUnexpectedInexactSegment, 0,
                     back.SegmentOffset(0) + 10);
  EXPECT_EQ(Read(*a_, 100, 8), Zeros(8));
}

TEST_F(CopyManagerTest, ByteOffsetSegmentsMoveWholeBlocks) {
  const Bytes src = Fill(*a_, 10, 8, 7);
  XcopyList l{.cscds = {Cscd(*a_), Cscd(*b_)}};
  l.segments = {Seg0A(0, 1, 2048, 10, 0, 1024, 512)};  // from LBA 12 to LBA 1, 4 blocks
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  EXPECT_EQ(Read(*b_, 1, 4), Slice(src, 1024, 2048));
  EXPECT_EQ(Read(*b_, 0, 1), Zeros(1));
  EXPECT_EQ(Read(*b_, 5, 1), Zeros(1));
  // Into a 4096-byte LU with an offset of one of its blocks.
  XcopyList k{.cscds = {Cscd(*a_), Cscd(*k4_)}};
  k.segments = {Seg0A(0, 1, 4096, 10, 2, 0, 4096)};
  ASSERT_TRUE(IsGood(*Xcopy(*a_, k)));
  EXPECT_EQ(Read(*k4_, 3, 1), src);
  EXPECT_EQ(Read(*k4_, 2, 1), Zeros(1, 4096));
  // Offsets and lengths that are not whole blocks: granularity violation at the field.
  struct Bad {
    uint32_t bytes;
    uint16_t src_off, dst_off, field;
  };
  for (const Bad& bad : {Bad{1000, 0, 0, 8}, Bad{1024, 100, 0, 28}, Bad{1024, 0, 100, 30}}) {
    l.segments = {Seg0A(0, 1, bad.bytes, 10, 500, bad.src_off, bad.dst_off)};
    ExpectSegmentError(*Xcopy(*a_, l), Asc::kCopySegmentGranularityViolation, 0,
                       l.SegmentOffset(0) + bad.field);
    EXPECT_EQ(Read(*b_, 500, 4), Zeros(4));
  }
}

TEST_F(CopyManagerTest, VerifySegmentMovesNoData) {
  const CopyMetrics before = cm_->metrics();
  XcopyList l{.list_id = 11, .cscds = {Cscd(*a_), Cscd(*hidden_)}};
  l.segments = {Seg07(0), Seg07(kCscdIdReceivingLu)};
  ASSERT_TRUE(IsGood(*Xcopy(*b_, l)));
  auto st = Run(*b_, CopyInCdb(0x00, 11));
  EXPECT_EQ(st->data()[4], 0x01);
  EXPECT_EQ(LoadBe16(&st->data()[5]), 2);
  EXPECT_EQ(LoadBe32(&st->data()[8]), 0u);
  const CopyMetrics after = cm_->metrics();
  EXPECT_EQ(after.bytes_offloaded + after.bytes_emulated,
            before.bytes_offloaded + before.bytes_emulated);
  // Verifying an LU outside the view: not reachable.
  l.segments = {Seg07(1)};
  ExpectSegmentError(*Xcopy(*b_, l), Asc::kCopyTargetDeviceNotReachable, 0, l.SegmentOffset(0) + 4);
}

TEST_F(CopyManagerTest, LuOutsideTheViewIsNotReachable) {
  const Bytes src = Fill(*a_, 0, 8, 8);
  const Bytes secret = Fill(*hidden_, 0, 8, 9);
  for (Designator type : {Designator::kNaa, Designator::kEui64, Designator::kT10}) {
    XcopyList l{.cscds = {Cscd(*a_, type), Cscd(*hidden_, type)}};
    l.segments = {Seg02(0, 1, 8, 0, 0)};
    ExpectSegmentError(*Xcopy(*a_, l), Asc::kCopyTargetDeviceNotReachable, 0,
                       l.SegmentOffset(0) + 6);
    EXPECT_EQ(Read(*hidden_, 0, 8), secret) << int(type);
    l.segments = {Seg02(1, 0, 8, 0, 100)};  // reading from it
    ExpectSegmentError(*Xcopy(*a_, l), Asc::kCopyTargetDeviceNotReachable, 0,
                       l.SegmentOffset(0) + 4);
    EXPECT_EQ(Read(*a_, 100, 8), Zeros(8)) << int(type);
  }
  // Only the view decides: the same list works for a nexus that sees the LU.
  auto wide = std::make_shared<NexusView>(*view_);
  wide->lus.push_back({.lu = hidden_});
  XcopyList l{.cscds = {Cscd(*a_), Cscd(*hidden_)}};
  l.segments = {Seg02(0, 1, 8, 0, 0)};
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l, 2, wide)));
  EXPECT_EQ(Read(*hidden_, 0, 8), src);
}

TEST_F(CopyManagerTest, CscdIndexPastTheListIsNotReachable) {
  XcopyList l{.cscds = {Cscd(*a_), Cscd(*b_)}};
  l.segments = {Seg02(0, 1, 1, 0, 0), Seg02(0, 2, 1, 0, 0)};
  ExpectSegmentError(*Xcopy(*a_, l), Asc::kCopyTargetDeviceNotReachable, 1, l.SegmentOffset(1) + 6);
  l.segments = {Seg02(0x07ff, 1, 1, 0, 0)};
  ExpectSegmentError(*Xcopy(*a_, l), Asc::kCopyTargetDeviceNotReachable, 0, l.SegmentOffset(0) + 4);
}

TEST_F(CopyManagerTest, LbaPastTheEndStopsAtThatSegment) {
  const Bytes s0 = Fill(*a_, 0, 4, 10), s1 = Fill(*a_, 4, 4, 11);
  Fill(*a_, 8, 4, 12);
  XcopyList l{.list_id = 12, .cscds = {Cscd(*a_), Cscd(*b_)}};
  l.segments = {Seg02(0, 1, 4, 0, 100), Seg02(0, 1, 4, 4, 200), Seg02(0, 1, 4, 16382, 300),
                Seg02(0, 1, 4, 8, 400)};
  auto x = Xcopy(*a_, l);
  ExpectSegmentError(*x, Asc::kNoAdditionalSense, 2, l.SegmentOffset(2) + 12);
  EXPECT_EQ(x->task.sense.information, 16382u);
  EXPECT_EQ(Read(*b_, 100, 4), s0);
  EXPECT_EQ(Read(*b_, 200, 4), s1);
  EXPECT_EQ(Read(*b_, 300, 4), Zeros(4));
  EXPECT_EQ(Read(*b_, 400, 4), Zeros(4));  // after the failed segment: not processed
  auto st = Run(*a_, CopyInCdb(0x00, 12));
  EXPECT_EQ(st->data()[4], 0x02);  // completed with errors
  EXPECT_EQ(LoadBe16(&st->data()[5]), 2);
  EXPECT_EQ(LoadBe32(&st->data()[8]), 8u * 512);
  // The destination side, and an LBA far beyond the end.
  l.segments = {Seg02(0, 1, 4, 0, 16381)};
  auto dst = Xcopy(*a_, l);
  ExpectSegmentError(*dst, Asc::kNoAdditionalSense, 0, l.SegmentOffset(0) + 20);
  EXPECT_EQ(dst->task.sense.information, 16381u);
  l.segments = {Seg02(0, 1, 1, 1ull << 40, 0)};
  auto far = Xcopy(*a_, l);
  ExpectSegmentError(*far, Asc::kNoAdditionalSense, 0, l.SegmentOffset(0) + 12);
  EXPECT_EQ(far->task.sense.information, 1ull << 40);
}

TEST_F(CopyManagerTest, WriteProtectedDestinationIsDataProtect) {
  Fill(*a_, 0, 8, 13);
  auto ro_view = std::make_shared<NexusView>(*view_);
  for (NexusLu& n : ro_view->lus) n.write_protect = n.lu == b_;
  XcopyList l{.cscds = {Cscd(*a_), Cscd(*b_)}};
  l.segments = {Seg02(0, 1, 8, 0, 0)};
  auto x = Xcopy(*a_, l, kNexus, ro_view);
  EXPECT_TRUE(HasSense(*x, SenseKey::kDataProtect, Asc::kWriteProtected));
  EXPECT_EQ(x->task.sense.command_specific, 0u);
  EXPECT_EQ(Read(*b_, 0, 8), Zeros(8));
  // The same nexus may still read from it.
  l.segments = {Seg02(1, 0, 8, 0, 100)};
  EXPECT_TRUE(IsGood(*Xcopy(*a_, l, kNexus, ro_view)));
  // A write-protected LU, and an LU over a read-only device.
  auto ro_dev =
      backends::RamDevice::Create({.name = "ro", .size_bytes = 1 << 20, .read_only = true});
  auto ro = MakeLu(ro_dev.value(), 7);
  auto view = std::make_shared<NexusView>(*view_);
  view->lus.push_back({.lu = ro});
  for (const auto& dst : {wp_, ro}) {
    XcopyList w{.cscds = {Cscd(*a_), Cscd(*dst)}};
    w.segments = {Seg02(0, 1, 8, 0, 0)};
    EXPECT_TRUE(
        HasSense(*Xcopy(*a_, w, kNexus, view), SenseKey::kDataProtect, Asc::kWriteProtected));
    EXPECT_EQ(Read(*dst, 0, 8), Zeros(8));
    w.segments = {Seg02(1, 0, 8, 0, 200)};
    EXPECT_TRUE(IsGood(*Xcopy(*a_, w, kNexus, view)));
  }
}

TEST_F(CopyManagerTest, ZeroParameterListLengthIsGood) {
  EXPECT_TRUE(IsGood(*Run(*a_, XcopyCdb(false, 0), {}, 0)));
  EXPECT_TRUE(IsGood(*Run(*a_, XcopyCdb(true, 0), {}, 0)));
  EXPECT_EQ(cm_->metrics().active, 0u);
}

TEST_F(CopyManagerTest, TwoHundredFiftySixSegments) {
  const Bytes src = Fill(*a_, 0, 256, 14);
  XcopyList l{.list_id = 13, .cscds = {Cscd(*a_), Cscd(*b_)}};
  for (uint16_t i = 0; i < 256; ++i) l.segments.push_back(Seg02(0, 1, 1, i, 255 - i));
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  Bytes want(src.size());
  for (size_t i = 0; i < 256; ++i) {
    std::copy_n(src.begin() + i * 512, 512, want.begin() + (255 - i) * 512);
  }
  EXPECT_EQ(Read(*b_, 0, 256), want);
  auto st = Run(*a_, CopyInCdb(0x00, 13));
  EXPECT_EQ(LoadBe16(&st->data()[5]), 256);
  EXPECT_EQ(LoadBe32(&st->data()[8]), 256u * 512);
  l.segments.push_back(Seg02(0, 1, 1, 0, 0));
  EXPECT_TRUE(HasSense(*Xcopy(*a_, l), SenseKey::kIllegalRequest, Asc::kTooManySegmentDescriptors));
}

TEST_F(CopyManagerTest, MetricsCountMechanismsAndCommands) {
  constexpr auto kRam = static_cast<size_t>(block::CopyMechanism::kRamNative);
  constexpr auto kEmu = static_cast<size_t>(block::CopyMechanism::kEmulated);
  const Bytes src = Fill(*a_, 0, 16, 15);
  XcopyList l{.cscds = {Cscd(*a_), Cscd(*b_), Cscd(*k4_), Cscd(*f_)}};
  l.segments = {Seg02(0, 1, 16, 0, 0)};  // RAM to RAM in one arena: native
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  CopyMetrics m = cm_->metrics();
  EXPECT_EQ(m.extended_copy_commands, 1u);
  EXPECT_EQ(m.bytes_offloaded, 8192u);
  EXPECT_EQ(m.bytes_emulated, 0u);
  EXPECT_EQ(m.by_mechanism[kRam], 8192u);
  EXPECT_EQ(m.by_mechanism[kEmu], 0u);

  l.segments = {Seg02(0, 2, 16, 0, 0)};  // into another arena: emulated
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  faulty_->SetCopyStatus(IoStatus::kNotSupported);  // the faulty device refuses offload
  l.segments = {Seg02(0, 3, 16, 0, 0)};
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  EXPECT_EQ(Read(*k4_, 0, 2), src);
  EXPECT_EQ(Read(*f_, 0, 16), src);
  m = cm_->metrics();
  EXPECT_EQ(m.extended_copy_commands, 3u);
  EXPECT_EQ(m.bytes_offloaded, 8192u);
  EXPECT_EQ(m.bytes_emulated, 2u * 8192);
  EXPECT_EQ(m.by_mechanism[kRam], 8192u);
  EXPECT_EQ(m.by_mechanism[kEmu], 2u * 8192);
  EXPECT_EQ(m.failed_commands, 0u);
  EXPECT_EQ(m.active, 0u);

  l.segments = {Seg02(0, 1, 16, 16380, 0)};
  EXPECT_FALSE(IsGood(*Xcopy(*a_, l)));
  m = cm_->metrics();
  EXPECT_EQ(m.extended_copy_commands, 4u);
  EXPECT_EQ(m.failed_commands, 1u);
  EXPECT_EQ(m.aborted_commands, 0u);
}

TEST_F(CopyManagerTest, IoErrorUnderTheCopyIsThirdPartyDeviceFailure) {
  const Bytes src = Fill(*a_, 0, 16, 16);
  faulty_->AddErrorRange({.lba = Lba(40), .blocks = BlockCount(1), .on_read = false});
  XcopyList l{.cscds = {Cscd(*a_), Cscd(*f_)}};
  l.segments = {Seg02(0, 1, 8, 0, 0), Seg02(0, 1, 16, 0, 32)};
  auto x = Xcopy(*a_, l);
  EXPECT_TRUE(HasSense(*x, SenseKey::kCopyAborted, Asc::kThirdPartyDeviceFailure));
  EXPECT_EQ(x->task.sense.command_specific, 1u);
  ASSERT_TRUE(x->task.sense.information.has_value());
  EXPECT_GE(*x->task.sense.information, 32u);  // where the failed write began
  EXPECT_LE(*x->task.sense.information, 40u);
  EXPECT_EQ(Read(*f_, 0, 8), Slice(src, 0, 8 * 512));
  EXPECT_EQ(cm_->metrics().failed_commands, 1u);
}

// A copy's writes take the destination LU's range lock like any write (range_lock.h), so a
// COMPARE AND WRITE holding the blocks is atomic against the copy too.
TEST_F(CopyManagerTest, CopyWaitsForTheRangeLockOfItsDestination) {
  const Bytes src = Fill(*a_, 300, 8, 77);
  bool held = false;
  RangeLock::Holder* h = b_->range_lock().Acquire(304, 2, [&] { held = true; });
  ASSERT_TRUE(held);
  XcopyList l{.list_id = 91, .cscds = {Cscd(*a_), Cscd(*b_)}};
  l.segments = {Seg02(0, 1, 8, 300, 300)};
  const Bytes p = l.Encode();
  auto c = Start(*b_, XcopyCdb(false, static_cast<uint32_t>(p.size())), p, 0);
  RunFor(std::chrono::milliseconds(50));
  EXPECT_FALSE(c->done) << "the copy wrote through a held range";
  EXPECT_EQ(Read(*b_, 300, 8), Zeros(8));
  b_->range_lock().Release(h);
  ASSERT_TRUE(IsGood(Wait(*c)));
  EXPECT_EQ(Read(*b_, 300, 8), src);
  EXPECT_EQ(b_->range_lock().held_for_testing(), 0u);
}

}  // namespace
}  // namespace ferry::scsi::tpc_test
