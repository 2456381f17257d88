// ROD tokens (SBC-3 POPULATE TOKEN, WRITE USING TOKEN, RECEIVE ROD TOKEN INFORMATION, REPORT
// ALL ROD TOKENS) through LogicalUnit::Execute: the token's bytes, data moved byte for byte,
// point-in-time revocation, authentication and access. Fixture: copy_manager_test.h.
#include <algorithm>
#include <set>

#include "base/endian.h"
#include "scsi/copy_manager_test.h"
#include "scsi/opcodes.h"

namespace ferry::scsi::tpc_test {
namespace {

Bytes Zeros(size_t blocks, size_t bs = 512) { return Bytes(blocks * bs, 0); }
Bytes Slice(const Bytes& d, size_t from, size_t len) {
  return Bytes(d.begin() + from, d.begin() + from + len);
}
Bytes Cat(const Bytes& x, const Bytes& y) {
  Bytes d = x;
  d.insert(d.end(), y.begin(), y.end());
  return d;
}

// ILLEGAL REQUEST with a field pointer into the parameter list.
void ExpectParamError(const Cmd& c, Asc asc, uint16_t field) {
  EXPECT_TRUE(HasSense(c, SenseKey::kIllegalRequest, asc));
  EXPECT_TRUE(c.task.sense.has_field_pointer);
  EXPECT_FALSE(c.task.sense.in_cdb);
  EXPECT_EQ(c.task.sense.field_byte, field);
}

TEST_F(CopyManagerTest, PopulateTokenMakesA512ByteToken) {
  Fill(*a_, 0, 8, 1);
  Fill(*a_, 100, 8, 2);
  Bytes p = PopulateTokenList({{0, 8}, {100, 8}});
  auto pt = Run(*a_, PopulateTokenCdb(0x10, static_cast<uint32_t>(p.size())), p, 0);
  ASSERT_TRUE(IsGood(*pt));
  auto r = Run(*a_, CopyInCdb(0x07, 0x10, 1024), {}, 1024);
  ASSERT_TRUE(IsGood(*r));
  const auto d = r->data();
  ASSERT_EQ(d.size(), 32u + 6 + 512);
  EXPECT_EQ(LoadBe32(&d[0]), d.size() - 4);
  EXPECT_EQ(d[4], 0x10);  // RESPONSE TO SERVICE ACTION: POPULATE TOKEN
  EXPECT_EQ(d[5], 0x01);  // completed
  EXPECT_EQ(d[12], 0x00);
  EXPECT_EQ(d[13], 0);
  EXPECT_EQ(d[15], 0xf1);  // TRANSFER COUNT in logical blocks
  EXPECT_EQ(LoadBe64(&d[16]), 16u);
  EXPECT_EQ(LoadBe32(&d[32]), 514u);  // ROD TOKEN DESCRIPTORS LENGTH
  const Bytes token(d.begin() + 38, d.end());
  EXPECT_EQ(LoadBe32(&token[0]), 0x00800001u);  // point in time, change vulnerable
  EXPECT_EQ(LoadBe16(&token[6]), 0x01f8);
  EXPECT_EQ(Slice(token, 16, 32), Cscd(*a_));  // creator: the LU by its NAA
  EXPECT_EQ(LoadBe64(&token[48]), 0u);         // NUMBER OF BYTES REPRESENTED (128 bits)
  EXPECT_EQ(LoadBe64(&token[56]), 16u * 512);
  EXPECT_EQ(LoadBe32(&token[96]), 512u);  // READ CAPACITY(16) LOGICAL BLOCK LENGTH
  const CopyMetrics m = cm_->metrics();
  EXPECT_EQ(m.populate_token_commands, 1u);
  EXPECT_EQ(m.tokens_created, 1u);
  EXPECT_EQ(m.tokens_live, 1u);
  // Every token is different, even over the same blocks.
  EXPECT_NE(Populate(*a_, 0x11, {{0, 8}, {100, 8}}), token);
}

TEST_F(CopyManagerTest, WriteUsingTokenCopiesTheRanges) {
  const Bytes s0 = Fill(*a_, 0, 8, 3), s1 = Fill(*a_, 100, 8, 4);
  const Bytes tok = Populate(*a_, 1, {{0, 8}, {100, 8}});
  ASSERT_TRUE(IsGood(*WriteUsingToken(*b_, 2, WriteUsingTokenList(tok, {{50, 16}}))));
  EXPECT_EQ(Read(*b_, 50, 16), Cat(s0, s1));
  EXPECT_EQ(Read(*b_, 49, 1), Zeros(1));
  EXPECT_EQ(Read(*b_, 66, 1), Zeros(1));
  auto r = Run(*b_, CopyInCdb(0x07, 2, 1024), {}, 1024);
  ASSERT_TRUE(IsGood(*r));
  const auto d = r->data();
  EXPECT_EQ(d[4], 0x11);  // WRITE USING TOKEN
  EXPECT_EQ(d[5], 0x01);
  EXPECT_EQ(d[15], 0xf1);
  EXPECT_EQ(LoadBe64(&d[16]), 16u);
  EXPECT_EQ(LoadBe32(&d[32]), 0u);  // no token
  const CopyMetrics m = cm_->metrics();
  EXPECT_EQ(m.write_using_token_commands, 1u);
  EXPECT_EQ(m.bytes_offloaded, 16u * 512);
  // The token may be used again, and the source LU may receive it too.
  ASSERT_TRUE(IsGood(*WriteUsingToken(*a_, 3, WriteUsingTokenList(tok, {{1000, 16}}))));
  EXPECT_EQ(Read(*a_, 1000, 16), Cat(s0, s1));
}

TEST_F(CopyManagerTest, OffsetIntoRodAndSeveralRangesOnBothSides) {
  const Bytes rod =
      Cat(Cat(Fill(*a_, 0, 8, 5), Fill(*a_, 100, 8, 6)), Fill(*a_, 200, 8, 7));  // 24 blocks
  const Bytes tok = Populate(*a_, 1, {{0, 8}, {100, 8}, {200, 8}});
  ASSERT_TRUE(IsGood(*WriteUsingToken(
      *b_, 2, WriteUsingTokenList(tok, {{10, 5}, {50, 15}}, /*offset_into_rod=*/4))));
  EXPECT_EQ(Read(*b_, 10, 5), Slice(rod, 4 * 512, 5 * 512));
  EXPECT_EQ(Read(*b_, 50, 15), Slice(rod, 9 * 512, 15 * 512));
  EXPECT_EQ(Read(*b_, 15, 1), Zeros(1));
  EXPECT_EQ(Read(*b_, 65, 1), Zeros(1));
  // An offset at or past the end of the ROD.
  ExpectParamError(*WriteUsingToken(*b_, 3, WriteUsingTokenList(tok, {{300, 1}}, 24)),
                   Asc::kInvalidFieldInParameterList, 8);
}

TEST_F(CopyManagerTest, WriteUsingTokenBetween512And4096ByteBlocks) {
  const Bytes src = Fill(*a_, 0, 16, 8);  // 8 KiB
  const Bytes tok = Populate(*a_, 1, {{0, 16}});
  ASSERT_TRUE(IsGood(*WriteUsingToken(*k4_, 2, WriteUsingTokenList(tok, {{5, 2}}))));
  EXPECT_EQ(Read(*k4_, 5, 2), src);
  // OFFSET INTO ROD counts blocks of the LU written.
  ASSERT_TRUE(IsGood(*WriteUsingToken(*k4_, 3, WriteUsingTokenList(tok, {{20, 1}}, 1))));
  EXPECT_EQ(Read(*k4_, 20, 1), Slice(src, 4096, 4096));
  // Several ranges on both sides, each a whole number of 4096-byte blocks.
  const Bytes other = Fill(*k4_, 7, 1, 9);
  const Bytes tok4 = Populate(*k4_, 4, {{5, 1}, {7, 1}});
  ASSERT_TRUE(IsGood(*WriteUsingToken(*a_, 5, WriteUsingTokenList(tok4, {{1000, 8}, {2000, 8}}))));
  EXPECT_EQ(Read(*a_, 1000, 8), Slice(src, 0, 4096));
  EXPECT_EQ(Read(*a_, 2000, 8), other);
}

TEST_F(CopyManagerTest, DestinationLongerThanTheRodIsResidualData) {
  const Bytes src = Fill(*a_, 0, 8, 10);
  const Bytes pre = Fill(*b_, 0, 16, 11);
  const Bytes tok = Populate(*a_, 1, {{0, 8}});
  ASSERT_TRUE(IsGood(*WriteUsingToken(*b_, 2, WriteUsingTokenList(tok, {{0, 4}, {8, 8}}))));
  EXPECT_EQ(Read(*b_, 0, 4), Slice(src, 0, 4 * 512));
  EXPECT_EQ(Read(*b_, 4, 4), Slice(pre, 4 * 512, 4 * 512));  // not a destination range
  EXPECT_EQ(Read(*b_, 8, 4), Slice(src, 4 * 512, 4 * 512));
  EXPECT_EQ(Read(*b_, 12, 4), Slice(pre, 12 * 512, 4 * 512));  // past the ROD: untouched
  auto r = Run(*b_, CopyInCdb(0x07, 2, 1024), {}, 1024);
  ASSERT_TRUE(IsGood(*r));
  EXPECT_EQ(r->data()[5], 0x04);  // completed with residual data
  EXPECT_EQ(LoadBe64(&r->data()[16]), 8u);
}

TEST_F(CopyManagerTest, BlockDeviceZeroTokenWritesZeroes) {
  const Bytes pre = Fill(*b_, 0, 16, 11);
  ASSERT_TRUE(
      IsGood(*WriteUsingToken(*b_, 1, WriteUsingTokenList(ZeroToken(), {{2, 4}, {10, 2}}))));
  Bytes want = pre;
  std::fill_n(want.begin() + 2 * 512, 4 * 512, 0);
  std::fill_n(want.begin() + 10 * 512, 2 * 512, 0);
  EXPECT_EQ(Read(*b_, 0, 16), want);
  EXPECT_EQ(cm_->metrics().bytes_zeroed, 6u * 512);
  auto r = Run(*b_, CopyInCdb(0x07, 1, 1024), {}, 1024);
  EXPECT_EQ(r->data()[5], 0x01);
  EXPECT_EQ(LoadBe64(&r->data()[16]), 6u);
}

TEST_F(CopyManagerTest, AlteredTokenIsCorrupt) {
  const Bytes src = Fill(*a_, 0, 8, 12);
  const Bytes tok = Populate(*a_, 1, {{0, 8}});
  for (size_t at : {3u, 8u, 20u, 60u, 100u, 300u, 450u, 511u}) {
    Bytes bad = tok;
    bad[at] ^= 0x01;
    ExpectParamError(*WriteUsingToken(*b_, 2, WriteUsingTokenList(bad, {{0, 8}})),
                     Asc::kInvalidTokenOperationTokenCorrupt, 16);
  }
  Bytes bad_len = tok;
  bad_len[7] ^= 0x01;
  ExpectParamError(*WriteUsingToken(*b_, 2, WriteUsingTokenList(bad_len, {{0, 8}})),
                   Asc::kInvalidTokenOperationInvalidTokenLength, 22);
  EXPECT_EQ(Read(*b_, 0, 8), Zeros(8));
  // Forgery attempts leave the genuine token usable.
  ASSERT_TRUE(IsGood(*WriteUsingToken(*b_, 2, WriteUsingTokenList(tok, {{0, 8}}))));
  EXPECT_EQ(Read(*b_, 0, 8), src);
}

TEST_F(CopyManagerTest, WriteIntoARepresentedBlockRevokesTheToken) {
  const Bytes src = Fill(*a_, 0, 8, 13);
  Fill(*a_, 100, 8, 14);
  const Bytes tok = Populate(*a_, 1, {{0, 8}, {100, 8}});
  auto write10 = [&](uint32_t lba) {
    Cdb c{kWrite10};
    StoreBe32(&c[2], lba);
    StoreBe16(&c[7], 1);
    auto w = Run(*a_, c, Pattern(512, lba), 0);
    EXPECT_TRUE(IsGood(*w));
  };
  write10(8);   // just after the first range
  write10(99);  // just before the second
  write10(50);
  ASSERT_TRUE(IsGood(*WriteUsingToken(*b_, 2, WriteUsingTokenList(tok, {{0, 8}}))));
  EXPECT_EQ(Read(*b_, 0, 8), src);
  EXPECT_EQ(cm_->metrics().tokens_revoked, 0u);
  write10(107);  // the last block of the second range
  ExpectParamError(*WriteUsingToken(*b_, 3, WriteUsingTokenList(tok, {{100, 8}})),
                   Asc::kInvalidTokenOperationTokenRevoked, 16);
  EXPECT_EQ(Read(*b_, 100, 8), Zeros(8));
  const CopyMetrics m = cm_->metrics();
  EXPECT_EQ(m.tokens_revoked, 1u);
  EXPECT_EQ(m.tokens_live, 0u);
}

TEST_F(CopyManagerTest, CopyIntoARepresentedBlockRevokesTheToken) {
  Fill(*b_, 0, 8, 15);
  const Bytes tok = Populate(*b_, 1, {{0, 8}});
  XcopyList l{.cscds = {Cscd(*a_), Cscd(*b_)}};
  l.segments = {Seg02(0, 1, 1, 500, 7)};
  ASSERT_TRUE(IsGood(*Xcopy(*a_, l)));
  ExpectParamError(*WriteUsingToken(*k4_, 2, WriteUsingTokenList(tok, {{0, 1}})),
                   Asc::kInvalidTokenOperationTokenRevoked, 16);
  // So does a WRITE USING TOKEN into it.
  const Bytes tok2 = Populate(*b_, 3, {{100, 8}});
  ASSERT_TRUE(IsGood(*WriteUsingToken(*b_, 4, WriteUsingTokenList(ZeroToken(), {{104, 1}}))));
  ExpectParamError(*WriteUsingToken(*k4_, 5, WriteUsingTokenList(tok2, {{0, 1}})),
                   Asc::kInvalidTokenOperationTokenRevoked, 16);
}

TEST_F(CopyManagerTest, WriteUsingTokenOverItsOwnSourceRevokesIt) {
  const Bytes src = Fill(*a_, 0, 8, 23);
  const Bytes tok = Populate(*a_, 1, {{0, 8}});
  ASSERT_TRUE(IsGood(*WriteUsingToken(*a_, 2, WriteUsingTokenList(tok, {{4, 8}}))));
  EXPECT_EQ(Read(*a_, 0, 12), Cat(Slice(src, 0, 4 * 512), src));  // as a memmove
  // Blocks 4-7 changed after POPULATE TOKEN: the token must not copy them now.
  ExpectParamError(*WriteUsingToken(*b_, 3, WriteUsingTokenList(tok, {{0, 8}})),
                   Asc::kInvalidTokenOperationTokenRevoked, 16);
  EXPECT_EQ(Read(*b_, 0, 8), Zeros(8));
}

TEST_F(CopyManagerTest, DeletedTokenIsReportedDeleted) {
  const Bytes src = Fill(*a_, 0, 8, 16);
  const Bytes tok = Populate(*a_, 1, {{0, 8}});
  ASSERT_TRUE(
      IsGood(*WriteUsingToken(*b_, 2, WriteUsingTokenList(tok, {{0, 8}}, 0, /*del_tkn=*/true))));
  EXPECT_EQ(Read(*b_, 0, 8), src);
  EXPECT_EQ(cm_->metrics().tokens_live, 0u);
  ExpectParamError(*WriteUsingToken(*b_, 3, WriteUsingTokenList(tok, {{100, 8}})),
                   Asc::kInvalidTokenOperationTokenDeleted, 16);
  EXPECT_EQ(Read(*b_, 100, 8), Zeros(8));
}

TEST_F(CopyManagerTest, TokensOfAnotherCopyManagerAreRefused) {
  Fill(*a_, 0, 8, 17);
  auto other_token = [&](CopyManagerOptions o, uint8_t tag) {
    auto cm = CopyManager::Create(reactor_.get(), o).value();
    auto lu = MakeLu(backends::RamDevice::Create({.name = "o", .size_bytes = 1 << 20}).value(), tag,
                     false, cm);
    auto view = std::make_shared<NexusView>();
    view->lus.push_back({.lu = lu});
    return Populate(*lu, 1, {{0, 8}}, 0, view);
  };
  CopyManagerOptions other_key = Options();
  other_key.token_key[0] ^= 0xff;
  ExpectParamError(
      *WriteUsingToken(*b_, 2, WriteUsingTokenList(other_token(other_key, 20), {{0, 8}})),
      Asc::kInvalidTokenOperationTokenCorrupt, 16);
  // Same key (a restarted manager): the MAC verifies but the token is unknown here.
  ExpectParamError(
      *WriteUsingToken(*b_, 3, WriteUsingTokenList(other_token(Options(), 21), {{0, 8}})),
      Asc::kInvalidTokenOperationTokenUnknown, 16);
  EXPECT_EQ(Read(*b_, 0, 8), Zeros(8));
}

TEST_F(CopyManagerTest, TokenSourceMustBeInTheWritersView) {
  Fill(*a_, 0, 8, 18);
  const Bytes tok = Populate(*a_, 1, {{0, 8}});
  auto only_b = std::make_shared<NexusView>();
  only_b->lus.push_back({.lu = b_});
  ExpectParamError(*WriteUsingToken(*b_, 2, WriteUsingTokenList(tok, {{0, 8}}), 2, only_b),
                   Asc::kCopySourceOrDestinationNotAuthorized, 16);
  EXPECT_EQ(Read(*b_, 0, 8), Zeros(8));
  // POPULATE TOKEN on an LU outside the view.
  Bytes p = PopulateTokenList({{0, 8}});
  EXPECT_TRUE(HasSense(*Run(*hidden_, PopulateTokenCdb(3, static_cast<uint32_t>(p.size())), p, 0),
                       SenseKey::kIllegalRequest, Asc::kCopySourceOrDestinationNotAuthorized));
}

TEST_F(CopyManagerTest, WriteUsingTokenIntoAWriteProtectedLu) {
  const Bytes tok = Populate(*a_, 1, {{0, 8}});
  const Bytes list = WriteUsingTokenList(tok, {{0, 8}});
  EXPECT_TRUE(
      HasSense(*WriteUsingToken(*wp_, 2, list), SenseKey::kDataProtect, Asc::kWriteProtected));
  // Write-protected for this nexus only (its ACL): the transport marks the task.
  Fill(*b_, 0, 8, 19);
  auto c = std::make_unique<Cmd>();
  c->task.cdb = WriteUsingTokenCdb(3, static_cast<uint32_t>(list.size()));
  c->task.nexus = kNexus;
  c->task.view = view_;
  c->task.write_protected = true;
  c->out = list;
  c->task.data_out = c->out;
  b_->Execute(c->task, [p = c.get()] { p->done = true; });
  EXPECT_TRUE(HasSense(Wait(*c), SenseKey::kDataProtect, Asc::kWriteProtected));
  EXPECT_EQ(Read(*b_, 0, 8), Pattern(8 * 512, 19));
}

TEST_F(CopyManagerTest, PopulateTokenFieldErrors) {
  auto populate = [&](const Bytes& p) {
    return Run(*a_, PopulateTokenCdb(1, static_cast<uint32_t>(p.size())), p, 0);
  };
  ExpectParamError(*populate(PopulateTokenList({{0, 8}}, 601)), Asc::kInvalidFieldInParameterList,
                   4);
  EXPECT_TRUE(IsGood(*populate(PopulateTokenList({{0, 8}}, 600))));
  for (uint32_t type : {0x00800000u, 0x00800001u, 0x0080ffffu}) {
    EXPECT_TRUE(IsGood(*populate(PopulateTokenList({{0, 8}}, 0, true, type)))) << std::hex << type;
  }
  for (uint32_t type : {0x00010000u, 0x00800002u, 0xffff0001u}) {
    ExpectParamError(*populate(PopulateTokenList({{0, 8}}, 0, true, type)),
                     Asc::kInvalidFieldInParameterList, 8);
  }
  ExpectParamError(*populate(PopulateTokenList({{0, 8}, {4, 8}})),
                   Asc::kInvalidFieldInParameterList, 32);
  ExpectParamError(*populate(PopulateTokenList({{0, 8}, {100, 8}, {107, 2}})),
                   Asc::kInvalidFieldInParameterList, 48);
  auto end = populate(PopulateTokenList({{0, 8}, {16380, 8}}));
  EXPECT_TRUE(HasSense(*end, SenseKey::kIllegalRequest, Asc::kLbaOutOfRange));
  EXPECT_EQ(end->task.sense.information, 16380u);
  EXPECT_TRUE(IsGood(*populate(PopulateTokenList({{16376, 8}}))));  // up to the last block
}

TEST_F(CopyManagerTest, WriteUsingTokenRangeErrors) {
  const Bytes tok = Populate(*a_, 1, {{0, 16}});
  ExpectParamError(*WriteUsingToken(*b_, 2, WriteUsingTokenList(tok, {{0, 8}, {7, 8}})),
                   Asc::kInvalidFieldInParameterList, 536 + 16);
  auto end = WriteUsingToken(*b_, 3, WriteUsingTokenList(tok, {{16380, 8}}));
  EXPECT_TRUE(HasSense(*end, SenseKey::kIllegalRequest, Asc::kLbaOutOfRange));
  EXPECT_EQ(end->task.sense.information, 16380u);
  EXPECT_EQ(Read(*b_, 16380, 4), Zeros(4));
}

TEST_F(CopyManagerTest, ReportAllRodTokensListsTheLusLiveTokens) {
  const Bytes a1 = Populate(*a_, 1, {{0, 8}});
  const Bytes a2 = Populate(*a_, 2, {{100, 8}});
  const Bytes b1 = Populate(*b_, 3, {{0, 8}});
  auto report = [&](LogicalUnit& lu) {
    auto c = Run(lu, CopyInCdb(0x08, 0));
    EXPECT_TRUE(IsGood(*c));
    const auto d = c->data();
    EXPECT_EQ(LoadBe32(&d[0]) + 4u, d.size());
    EXPECT_EQ((d.size() - 8) % 96, 0u);
    std::set<Bytes> out;
    for (size_t at = 8; at + 96 <= d.size(); at += 96) out.insert(Bytes(&d[at], &d[at] + 96));
    return out;
  };
  EXPECT_EQ(report(*a_), (std::set<Bytes>{Slice(a1, 0, 96), Slice(a2, 0, 96)}));
  EXPECT_EQ(report(*b_), (std::set<Bytes>{Slice(b1, 0, 96)}));
  EXPECT_TRUE(report(*k4_).empty());
  Write(*a_, 0, Pattern(512, 1));  // revokes a1
  EXPECT_EQ(report(*a_), (std::set<Bytes>{Slice(a2, 0, 96)}));
}

TEST_F(CopyManagerTest, IdleTokenExpires) {
  Fill(*a_, 0, 8, 20);
  const Bytes tok = Populate(*a_, 1, {{0, 8}}, /*timeout_s=*/1);
  // The timeout counts inactivity: each use restarts it.
  for (uint32_t i = 0; i < 2; ++i) {
    RunFor(std::chrono::milliseconds(500));
    ASSERT_TRUE(IsGood(*WriteUsingToken(*b_, 2, WriteUsingTokenList(tok, {{100, 8}}))));
  }
  RunFor(std::chrono::milliseconds(1100));
  ExpectParamError(*WriteUsingToken(*b_, 2, WriteUsingTokenList(tok, {{0, 8}})),
                   Asc::kInvalidTokenOperationTokenExpired, 16);
  EXPECT_EQ(Read(*b_, 0, 8), Zeros(8));
}

TEST_F(ThrottledCopyTest, WriteToTheSourceDuringTheCopyFailsIt) {
  Fill(*a_, 0, 8192, 21);  // 4 MiB: about a second at 4 MiB/s
  const Bytes tok = Populate(*a_, 1, {{0, 8192}});
  const Bytes list = WriteUsingTokenList(tok, {{0, 8192}}, 0, false, /*immed=*/true);
  ASSERT_TRUE(IsGood(*WriteUsingToken(*b_, 2, list)));
  EXPECT_EQ(cm_->metrics().active, 1u);
  Write(*a_, 4000, Pattern(512, 22));
  RunUntilIdle();
  auto r = Run(*b_, CopyInCdb(0x07, 2, 1024), {}, 1024);
  ASSERT_TRUE(IsGood(*r));
  const auto d = r->data();
  EXPECT_EQ(d[5], 0x02);  // completed with errors
  EXPECT_EQ(d[12], 0x02);
  ASSERT_EQ(d[13], 18);
  EXPECT_EQ(d[32 + 2] & 0x0f, 0x05);
  EXPECT_EQ(d[32 + 12], 0x23);
  EXPECT_EQ(d[32 + 13], 0x06);  // token revoked
}

}  // namespace
}  // namespace ferry::scsi::tpc_test
