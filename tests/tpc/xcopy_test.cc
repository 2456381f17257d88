// EXTENDED COPY(LID1) (SPC-4 6.4) and RECEIVE COPY RESULTS(LID1) (SPC-4 6.18) through a
// real initiator: what moves, what must not, and the sense each refusal carries.
// LUNs (tests/tpc/ferryd-tpc.json): 0, 1 RAM 512 B blocks; 2 RAM 4096 B blocks; 3 file;
// 4 write-protected; 5 visible only to tpc-other.
#include "tpc_client.h"

namespace ferry::tpc_test {
namespace {

constexpr uint16_t kCopyTargetNotReachable = 0x0d02;
constexpr uint16_t kUnreachableCopyTarget = 0x0804;
constexpr uint16_t kNoAdditionalSense = 0x0000;

class XcopyTest : public TpcTest {
 protected:
  // Fills [lba, lba + blocks) of `lun` with a fresh pattern and returns its seed.
  uint64_t Seed(int lun, uint64_t lba, uint64_t blocks) {
    const uint64_t seed = NewSeed();
    c().Fill(lun, lba, blocks, seed);
    return seed;
  }
  testing::AssertionResult Holds(int lun, uint64_t lba, uint64_t blocks, uint64_t seed,
                                 uint64_t src_lba, uint32_t src_block_size = 512) {
    const Bytes want = Pattern(seed, src_lba * src_block_size, blocks * c().Info(lun).block_size);
    return SameBytes(c().Read(lun, lba, blocks), want);
  }
  testing::AssertionResult Unchanged(int lun, uint64_t lba, uint64_t blocks, uint64_t seed) {
    return Holds(lun, lba, blocks, seed, lba, c().Info(lun).block_size);
  }
  // RECEIVE COPY STATUS(LID1) of `list_id`.
  Reply CopyStatus1(uint8_t list_id) {
    return c().In(0, ThirdPartyCopyIn(kSaCopyStatusLid1, list_id, 1024), 1024);
  }
};

// --- what moves ----------------------------------------------------------------------------

TEST_F(XcopyTest, CopiesAcrossLunsAndNothingElse) {
  Session& s = c();
  const uint64_t src = Seed(0, 1000, 2048);
  const uint64_t old = Seed(1, 40000 - 8, 2048 + 16);
  CopyList l{.cscds = {s.CscdOf(0), s.CscdOf(1)},
             .segments = {SegmentB2B(0, 1, 2048, 1000, 40000)}};
  ASSERT_TRUE(IsGood(s.Xcopy1(0, l)));
  EXPECT_TRUE(Holds(1, 40000, 2048, src, 1000));
  EXPECT_TRUE(Unchanged(1, 40000 - 8, 8, old)) << "blocks before the destination";
  EXPECT_TRUE(Unchanged(1, 40000 + 2048, 8, old)) << "blocks after the destination";
}

// The same copy with the CSCDs built from each kind of LU designator VPD 83h lists.
class DesignatorTest : public XcopyTest, public testing::WithParamInterface<uint8_t> {};

TEST_P(DesignatorTest, NamesTheLu) {
  Session& s = c();
  ASSERT_NE(s.Info(0).Find(GetParam()), nullptr)
      << "VPD 83h of LUN 0 has no LU designator of type " << int{GetParam()};
  const uint64_t src = Seed(0, 3000, 64);
  Seed(1, 3000, 64);
  CopyList l{.cscds = {s.CscdOf(0, GetParam()), s.CscdOf(1, GetParam())},
             .segments = {SegmentB2B(0, 1, 64, 3000, 3000)}};
  ASSERT_TRUE(IsGood(s.Xcopy1(0, l)));
  EXPECT_TRUE(Holds(1, 3000, 64, src, 3000));
}

INSTANTIATE_TEST_SUITE_P(Xcopy, DesignatorTest, testing::Values(3, 2, 1),
                         [](const testing::TestParamInfo<uint8_t>& i) {
                           return i.param == 3 ? "Naa" : i.param == 2 ? "Eui64" : "T10VendorId";
                         });

// CSCD id FFFFh names the LU the command was sent to, as source or destination.
TEST_F(XcopyTest, CscdFfffIsTheReceivingLu) {
  Session& s = c();
  const uint64_t a = Seed(0, 4000, 32);
  Seed(1, 4100, 32);
  CopyList into{.cscds = {s.CscdOf(0)}, .segments = {SegmentB2B(0, kCscdThisLu, 32, 4000, 4100)}};
  ASSERT_TRUE(IsGood(s.Xcopy1(1, into)));
  EXPECT_TRUE(Holds(1, 4100, 32, a, 4000));

  const uint64_t b = Seed(0, 4200, 32);
  CopyList from{.cscds = {s.CscdOf(1)}, .segments = {SegmentB2B(kCscdThisLu, 0, 32, 4200, 4300)}};
  ASSERT_TRUE(IsGood(s.Xcopy1(0, from)));
  EXPECT_TRUE(Holds(1, 4300, 32, b, 4200));
}

// One segment over overlapping ranges of one LU behaves like memmove, both ways.
TEST_F(XcopyTest, OverlappingRangesInOneLuCopyLikeMemmove) {
  Session& s = c();
  const uint64_t up = Seed(0, 10000, 2100);
  CopyList l{.cscds = {s.CscdOf(0)}, .segments = {SegmentB2B(0, 0, 2000, 10000, 10100)}};
  ASSERT_TRUE(IsGood(s.Xcopy1(0, l)));
  EXPECT_TRUE(Holds(0, 10100, 2000, up, 10000)) << "destination above the source";

  const uint64_t down = Seed(0, 15000, 2100);
  l.segments = {SegmentB2B(0, 0, 2000, 15100, 15000)};
  ASSERT_TRUE(IsGood(s.Xcopy1(0, l)));
  EXPECT_TRUE(Holds(0, 15000, 2000, down, 15100)) << "destination below the source";
}

// 512-byte LUN 1 to 4096-byte LUN 2: DC=0 counts source blocks, DC=1 destination blocks.
TEST_F(XcopyTest, DifferentBlockSizesWithAndWithoutDc) {
  Session& s = c();
  const uint64_t a = Seed(1, 3000, 64);
  CopyList l{.cscds = {s.CscdOf(1), s.CscdOf(2)},
             .segments = {SegmentB2B(0, 1, 64, 3000, 100, /*dc=*/false)}};
  ASSERT_TRUE(IsGood(s.Xcopy1(1, l)));
  EXPECT_TRUE(Holds(2, 100, 8, a, 3000)) << "DC=0: 64 source blocks = 8 destination blocks";

  const uint64_t b = Seed(1, 5000, 64);
  l.segments = {SegmentB2B(0, 1, 8, 5000, 200, /*dc=*/true)};
  ASSERT_TRUE(IsGood(s.Xcopy1(1, l)));
  EXPECT_TRUE(Holds(2, 200, 8, b, 5000)) << "DC=1: 8 destination blocks";

  const uint64_t c4 = Seed(2, 400, 4);
  l.segments = {SegmentB2B(1, 0, 4, 400, 7000, /*dc=*/false)};
  ASSERT_TRUE(IsGood(s.Xcopy1(1, l)));
  EXPECT_TRUE(Holds(1, 7000, 32, c4, 400, 4096)) << "4 blocks of 4096 B into 32 of 512 B";
}

// SPC-4 6.4.6.5: a byte count that is not a whole number of destination blocks.
TEST_F(XcopyTest, InexactSegmentIsRefused) {
  Session& s = c();
  Seed(1, 3000, 9);
  const uint64_t old = Seed(2, 600, 2);
  CopyList l{.cscds = {s.CscdOf(1), s.CscdOf(2)}, .segments = {SegmentB2B(0, 1, 9, 3000, 600)}};
  EXPECT_TRUE(IsCheck(s.Xcopy1(1, l), kCopyAborted, {0x260a}));
  EXPECT_TRUE(Unchanged(2, 600, 2, old));
}

Bytes ManySegments(Session& s, int n, uint64_t* seed) {
  *seed = NewSeed();
  s.Fill(0, 20000, uint64_t(n) * 16, *seed);
  CopyList l{.cscds = {s.CscdOf(0), s.CscdOf(1)}};
  for (int i = 0; i < n; ++i) {  // scattered sources, destinations in reverse order
    l.segments.push_back(SegmentB2B(0, 1, 8, 20000 + i * 16, 30000 + (n - 1 - i) * 8));
  }
  return EncodeLid1(l);
}

TEST_F(XcopyTest, SixtyFourAndTwoHundredFiftySixSegments) {
  for (int n : {64, 256}) {
    SCOPED_TRACE(n);
    uint64_t seed;
    const Bytes list = ManySegments(c(), n, &seed);
    const Reply r = c().Out(0, ThirdPartyCopyOut(0, static_cast<uint32_t>(list.size())), list);
    ASSERT_TRUE(IsGood(r));
    const Bytes got = c().Read(1, 30000, uint64_t(n) * 8);
    for (int i = 0; i < n; ++i) {
      const size_t at = size_t(n - 1 - i) * 8 * 512;
      ASSERT_TRUE(
          SameBytes({got.data() + at, 8 * 512}, Session::Expected(seed, 20000 + i * 16, 8, 512)))
          << "segment " << i;
    }
  }
}

// The limits OPERATING PARAMETERS reports are enforced (SPC-4 6.4.3.5, 6.4.3.4).
TEST_F(XcopyTest, DescriptorCountsAboveTheLimitsAreRefused) {
  Session& s = c();
  CopyList l{.cscds = {s.CscdOf(0), s.CscdOf(1)}};
  for (int i = 0; i < 257; ++i) l.segments.push_back(SegmentB2B(0, 1, 1, 100 + i, 100 + i));
  EXPECT_TRUE(IsCheck(s.Xcopy1(0, l), kIllegalRequest, {0x2608}));
  CopyList many{.cscds = std::vector<Cscd>(129, s.CscdOf(0)),
                .segments = {SegmentB2B(0, 0, 1, 100, 100)}};
  EXPECT_TRUE(IsCheck(s.Xcopy1(0, many), kIllegalRequest, {0x2606}));
}

// Segment 0Ah: one 32 MiB segment by byte count.
TEST_F(XcopyTest, ByteSegmentCopies32MiB) {
  Session& s = c();
  const uint64_t seed = Seed(0, 0, 65536);
  CopyList l{.cscds = {s.CscdOf(0), s.CscdOf(1)},
             .segments = {SegmentB2BOffset(0, 1, 32u << 20, 0, 0)}};
  ASSERT_TRUE(IsGood(s.Xcopy1(0, l)));
  EXPECT_TRUE(Holds(1, 0, 65536, seed, 0));
}

TEST_F(XcopyTest, ByteSegmentOffNonBlockBoundaryIsRefused) {
  Session& s = c();
  Seed(0, 500, 8);
  const uint64_t old = Seed(1, 500, 8);
  CopyList l{.cscds = {s.CscdOf(0), s.CscdOf(1)},
             .segments = {SegmentB2BOffset(0, 1, 1000, 500, 500)}};
  EXPECT_TRUE(IsCheck(s.Xcopy1(0, l), kCopyAborted, {0x260d})) << "1000 bytes";
  l.segments = {SegmentB2BOffset(0, 1, 1024, 500, 500, 100, 0)};
  EXPECT_TRUE(IsCheck(s.Xcopy1(0, l), kCopyAborted, {0x260d})) << "source byte offset 100";
  l.segments = {SegmentB2BOffset(0, 1, 1024, 500, 500, 0, 100)};
  EXPECT_TRUE(IsCheck(s.Xcopy1(0, l), kCopyAborted, {0x260d})) << "destination offset 100";
  EXPECT_TRUE(Unchanged(1, 500, 8, old));
}

// Segment 07h checks a CSCD and moves nothing.
TEST_F(XcopyTest, VerifyCscdSegmentMovesNothing) {
  Session& s = c();
  const uint8_t id = NewListId1();
  CopyList l{.list_id = id,
             .usage = kUsageHold,
             .cscds = {s.CscdOf(0), s.CscdOf(1)},
             .segments = {SegmentVerify(0, true), SegmentVerify(1, false)}};
  ASSERT_TRUE(IsGood(s.Xcopy1(0, l)));
  const Reply r = CopyStatus1(id);
  ASSERT_TRUE(IsGood(r));
  ASSERT_GE(r.data.size(), 12u);
  EXPECT_EQ(r.data[4] & 0x7f, 0x01) << "COPY MANAGER STATUS";
  EXPECT_EQ(Get32(&r.data[8]), 0u) << "TRANSFER COUNT";
}

// --- what must not move --------------------------------------------------------------------

TEST_F(XcopyTest, WriteProtectedDestinationIsRefused) {
  Session& s = c();
  Seed(0, 700, 16);
  const Bytes before = s.Read(4, 700, 16);
  CopyList l{.cscds = {s.CscdOf(0), s.CscdOf(4)}, .segments = {SegmentB2B(0, 1, 16, 700, 700)}};
  EXPECT_TRUE(IsCheck(s.Xcopy1(0, l), kDataProtect, {0x2700}));
  EXPECT_TRUE(SameBytes(s.Read(4, 700, 16), before));
}

// CVE-2020-28374: a CSCD may name only LUs this I_T nexus can reach. LUN 5 is tpc-other's.
TEST_F(XcopyTest, LuOfAnotherInitiatorIsUnreachable) {
  Session& s = c();
  Session* other = Other();
  ASSERT_NE(other, nullptr) << ConnectError();
  const uint64_t secret = NewSeed();
  other->Fill(0, 0, 64, secret);
  const Cscd lun5 = CscdE4(other->Info(0).Naa(), 512);
  const uint64_t mine = Seed(0, 800, 64);
  CopyList l{.cscds = {s.CscdOf(0), lun5}, .segments = {SegmentB2B(0, 1, 64, 800, 0)}};
  EXPECT_TRUE(
      IsCheck(s.Xcopy1(0, l), kCopyAborted, {kCopyTargetNotReachable, kUnreachableCopyTarget}))
      << "LUN 5 as destination";
  EXPECT_TRUE(SameBytes(other->Read(0, 0, 64), Session::Expected(secret, 0, 64, 512)));

  l.segments = {SegmentB2B(1, 0, 64, 0, 800)};
  EXPECT_TRUE(
      IsCheck(s.Xcopy1(0, l), kCopyAborted, {kCopyTargetNotReachable, kUnreachableCopyTarget}))
      << "LUN 5 as source";
  EXPECT_TRUE(Unchanged(0, 800, 64, mine)) << "LUN 5's data leaked into LUN 0";
}

TEST_F(XcopyTest, UnknownDesignatorIsUnreachable) {
  Session& s = c();
  Designator made_up = s.Info(0).Naa();
  ASSERT_FALSE(made_up.value.empty());
  made_up.value.back() ^= 0x5a;
  for (int lun = 1; lun <= 4; ++lun) ASSERT_NE(s.Info(lun).Naa().value, made_up.value);
  Seed(0, 900, 16);
  const uint64_t old = Seed(1, 900, 16);
  CopyList l{.cscds = {s.CscdOf(0), CscdE4(made_up, 512)},
             .segments = {SegmentB2B(0, 1, 16, 900, 900)}};
  EXPECT_TRUE(
      IsCheck(s.Xcopy1(0, l), kCopyAborted, {kCopyTargetNotReachable, kUnreachableCopyTarget}));
  l.segments = {SegmentB2B(1, 0, 16, 900, 900)};
  EXPECT_TRUE(
      IsCheck(s.Xcopy1(0, l), kCopyAborted, {kCopyTargetNotReachable, kUnreachableCopyTarget}));
  EXPECT_TRUE(Unchanged(1, 900, 16, old));
}

// SPC-4 6.4.4 / libiscsi ValidSegDescr: a segment beyond the end of an LU aborts the copy
// with the segment's index in COMMAND-SPECIFIC INFORMATION.
TEST_F(XcopyTest, SegmentBeyondCapacityNamesTheSegment) {
  Session& s = c();
  const uint64_t end = s.Info(0).blocks;
  CopyList l{.cscds = {s.CscdOf(0), s.CscdOf(1)},
             .segments = {SegmentB2B(0, 1, 8, 100, 100), SegmentB2B(0, 1, 8, 200, 200),
                          SegmentB2B(0, 1, 16, end - 4, 300)}};
  Reply r = s.Xcopy1(0, l);
  EXPECT_TRUE(IsCheck(r, kCopyAborted,
                      {kNoAdditionalSense, kCopyTargetNotReachable, kUnreachableCopyTarget}))
      << "source beyond the end";
  EXPECT_EQ(r.sense.command_specific.value_or(~0ull), 2u) << Describe(r);

  l.segments = {SegmentB2B(0, 1, 8, 100, 100), SegmentB2B(0, 1, 16, 300, end - 1)};
  r = s.Xcopy1(0, l);
  EXPECT_TRUE(IsCheck(r, kCopyAborted,
                      {kNoAdditionalSense, kCopyTargetNotReachable, kUnreachableCopyTarget}))
      << "destination beyond the end";
  EXPECT_EQ(r.sense.command_specific.value_or(~0ull), 1u) << Describe(r);
}

TEST_F(XcopyTest, EmptyParameterListIsGood) {
  EXPECT_TRUE(IsGood(c().Out(0, ThirdPartyCopyOut(kSaXcopyLid1, 0), {})));
}

// --- list identifiers and RECEIVE COPY RESULTS ---------------------------------------------

TEST_F(XcopyTest, EveryListIdUsageIsAccepted) {
  Session& s = c();
  const std::pair<uint8_t, uint8_t> usages[] = {
      {kUsageHold, NewListId1()}, {kUsageDiscard, NewListId1()}, {kUsageDisable, 0}};
  uint64_t lba = 1200;
  for (const auto& [usage, id] : usages) {
    SCOPED_TRACE(int{usage});
    const uint64_t seed = Seed(0, lba, 16);
    CopyList l{.list_id = id,
               .usage = usage,
               .cscds = {s.CscdOf(0), s.CscdOf(1)},
               .segments = {SegmentB2B(0, 1, 16, lba, lba)}};
    EXPECT_TRUE(IsGood(s.Xcopy1(0, l)));
    EXPECT_TRUE(Holds(1, lba, 16, seed, lba));
    lba += 16;
  }
}

TEST_F(XcopyTest, HeldListReportsItsStatus) {
  Session& s = c();
  const uint8_t id = NewListId1();
  Seed(0, 1300, 64);
  CopyList l{.list_id = id,
             .usage = kUsageHold,
             .cscds = {s.CscdOf(0), s.CscdOf(1)},
             .segments = {SegmentB2B(0, 1, 16, 1300, 1300), SegmentB2B(0, 1, 16, 1332, 1332)}};
  ASSERT_TRUE(IsGood(s.Xcopy1(0, l)));
  const Reply r = CopyStatus1(id);
  ASSERT_TRUE(IsGood(r));
  ASSERT_GE(r.data.size(), 12u);
  EXPECT_EQ(Get32(&r.data[0]), 8u) << "AVAILABLE DATA";
  EXPECT_EQ(r.data[4] & 0x7f, 0x01) << "COPY MANAGER STATUS: completed without errors";
  EXPECT_EQ(Get16(&r.data[5]), 2) << "SEGMENTS PROCESSED";
  EXPECT_EQ(TransferBytes(r.data[7], Get32(&r.data[8]), 512), 32 * 512)
      << "TRANSFER COUNT " << Get32(&r.data[8]) << " in units " << int{r.data[7]};
}

TEST_F(XcopyTest, CopyStatusOfUnknownListIdIsRefused) {
  EXPECT_TRUE(IsCheck(CopyStatus1(253), kIllegalRequest, {0x2400}));
}

TEST_F(XcopyTest, DiscardedListIsNotRetained) {
  Session& s = c();
  const uint8_t id = NewListId1();
  Seed(0, 1400, 8);
  CopyList l{.list_id = id,
             .usage = kUsageDiscard,
             .cscds = {s.CscdOf(0), s.CscdOf(1)},
             .segments = {SegmentB2B(0, 1, 8, 1400, 1400)}};
  ASSERT_TRUE(IsGood(s.Xcopy1(0, l)));
  EXPECT_TRUE(IsCheck(CopyStatus1(id), kIllegalRequest, {0x2400}));
}

// SPC-4 6.18.3: RECEIVE COPY FAILURE DETAILS returns the sense of a failed held copy.
TEST_F(XcopyTest, FailureDetailsOfAFailedHeldCopy) {
  Session& s = c();
  const uint8_t id = NewListId1();
  CopyList l{.list_id = id,
             .usage = kUsageHold,
             .cscds = {s.CscdOf(0), s.CscdOf(1)},
             .segments = {SegmentB2B(0, 1, 16, s.Info(0).blocks - 4, 100)}};
  ASSERT_TRUE(IsCheck(s.Xcopy1(0, l), kCopyAborted, {}));
  const Reply st = CopyStatus1(id);
  ASSERT_TRUE(IsGood(st));
  ASSERT_GE(st.data.size(), 5u);
  EXPECT_EQ(st.data[4] & 0x7f, 0x02) << "COPY MANAGER STATUS: completed with errors";

  const Reply r = c().In(0, ThirdPartyCopyIn(kSaFailureDetails, id, 1024), 1024);
  ASSERT_TRUE(IsGood(r));
  ASSERT_GE(r.data.size(), 60u);
  EXPECT_EQ(r.data[56], SCSI_STATUS_CHECK_CONDITION) << "COPY COMMAND STATUS";
  const size_t n = Get16(&r.data[58]);
  ASSERT_GT(n, 0u) << "SENSE DATA LENGTH";
  ASSERT_LE(60 + n, r.data.size());
  const Sense sense = DecodeSense({r.data.data() + 60, n});
  EXPECT_EQ(sense.key, kCopyAborted) << "sense key of the failure";
}

}  // namespace
}  // namespace ferry::tpc_test
