// Windows ODX through a real initiator: POPULATE TOKEN, RECEIVE ROD TOKEN INFORMATION, WRITE
// USING TOKEN and REPORT ALL ROD TOKENS (SBC-3 5.x, SPC-4 6.18.6/6.18.7), ROD token
// lifetime (revoked, expired, deleted, corrupt, forgotten by a restart) and authorization.
#include <fstream>

#include "tpc_client.h"

namespace ferry::tpc_test {
namespace {

constexpr uint16_t kTokenUnknown = 0x2304;
constexpr uint16_t kTokenCorrupt = 0x2305;
constexpr uint16_t kTokenRevoked = 0x2306;
constexpr uint16_t kTokenExpired = 0x2307;
constexpr uint16_t kTokenDeleted = 0x2309;

class OdxTest : public TpcTest {
 protected:
  // Fills `ranges` of `lun` and returns a token for them with the seed.
  std::optional<Token> Source(int lun, std::vector<Range> ranges, uint64_t* seed,
                              uint32_t timeout_s = 0) {
    *seed = NewSeed();
    for (const Range& r : ranges) c().Fill(lun, r.lba, r.blocks, *seed);
    return c().MakeToken(lun, NewListId(), ranges, timeout_s);
  }
  // Fills `ranges` of `lun` with a fresh pattern: what they hold while nothing is written.
  Bytes Before(int lun, const std::vector<Range>& ranges) {
    const uint64_t seed = NewSeed();
    for (const Range& r : ranges) c().Fill(lun, r.lba, r.blocks, seed);
    return RodBytes(seed, ranges, c().Info(lun).block_size);
  }
  Bytes ReadRanges(int lun, const std::vector<Range>& ranges) {
    Bytes out;
    for (const Range& r : ranges) {
      const Bytes b = c().Read(lun, r.lba, r.blocks);
      out.insert(out.end(), b.begin(), b.end());
    }
    return out;
  }
  Reply Wut(int lun, const Token& t, const std::vector<Range>& ranges, uint64_t offset = 0,
            bool del = false) {
    return c().WriteUsing(lun, NewListId(), t, ranges, offset, del);
  }
  // REPORT ALL ROD TOKENS of `lun`: the 96-byte management tokens.
  std::vector<Bytes> ReportAll(int lun) {
    const Reply r = c().In(lun, ThirdPartyCopyIn(kSaReportAllRodTokens, 0, 65536), 65536);
    EXPECT_TRUE(IsGood(r)) << "REPORT ALL ROD TOKENS";
    std::vector<Bytes> out;
    if (r.data.size() < 8) return out;
    const size_t end = std::min<size_t>(r.data.size(), 4 + Get32(&r.data[0]));
    EXPECT_EQ((end - 8) % 96, 0u) << "entries are 96 bytes";
    for (size_t i = 8; i + 96 <= end; i += 96) out.emplace_back(&r.data[i], &r.data[i + 96]);
    return out;
  }
  static bool Lists(const std::vector<Bytes>& all, const Token& t) {
    const Bytes head(t.begin(), t.begin() + 96);
    return std::find(all.begin(), all.end(), head) != all.end();
  }
};

TEST_F(OdxTest, PopulateTokenReturnsAPointInTimeToken) {
  uint64_t seed;
  const auto t = Source(0, {{1000, 100}, {5000, 300}}, &seed);
  ASSERT_TRUE(t);
  EXPECT_EQ(Get32(&(*t)[0]), 0x00800001u) << "ROD TYPE";
  EXPECT_EQ(Get16(&(*t)[6]), 0x01f8) << "ROD TOKEN LENGTH";
  EXPECT_EQ(Get64(&(*t)[56]), 400u * 512) << "NUMBER OF BYTES REPRESENTED";
}

TEST_F(OdxTest, WriteUsingTokenCopiesAcrossLuns) {
  uint64_t seed;
  const std::vector<Range> src = {{1000, 100}, {5000, 300}};
  const auto t = Source(0, src, &seed);
  ASSERT_TRUE(t);
  const std::vector<Range> dst = {{20000, 150}, {30000, 250}};
  ASSERT_TRUE(IsGood(Wut(1, *t, dst)));
  EXPECT_TRUE(SameBytes(ReadRanges(1, dst), RodBytes(seed, src, 512)));
}

TEST_F(OdxTest, WriteUsingTokenIntoAFileLun) {
  uint64_t seed;
  const std::vector<Range> src = {{2000, 64}, {2100, 64}, {2300, 128}};
  const auto t = Source(0, src, &seed);
  ASSERT_TRUE(t);
  const std::vector<Range> dst = {{100, 200}, {1000, 56}};
  ASSERT_TRUE(IsGood(Wut(3, *t, dst)));
  EXPECT_TRUE(SameBytes(ReadRanges(3, dst), RodBytes(seed, src, 512)));
}

// OFFSET INTO ROD skips the first blocks of the ROD; here the window spans both sources.
TEST_F(OdxTest, OffsetIntoRod) {
  uint64_t seed;
  const std::vector<Range> src = {{3000, 100}, {3500, 100}};
  const auto t = Source(0, src, &seed);
  ASSERT_TRUE(t);
  const std::vector<Range> dst = {{40000, 60}, {40100, 40}};
  ASSERT_TRUE(IsGood(Wut(1, *t, dst, /*offset=*/50)));
  const Bytes rod = RodBytes(seed, src, 512);
  EXPECT_TRUE(SameBytes(ReadRanges(1, dst), {rod.data() + 50 * 512, 100 * 512}));
}

TEST_F(OdxTest, DifferentBlockSizes) {
  uint64_t seed;
  const std::vector<Range> src = {{6000, 64}, {7000, 16}};  // 40 KiB of 512-byte blocks
  const auto t = Source(1, src, &seed);
  ASSERT_TRUE(t);
  const std::vector<Range> dst = {{300, 10}};  // 40 KiB of 4096-byte blocks
  ASSERT_TRUE(IsGood(Wut(2, *t, dst)));
  EXPECT_TRUE(SameBytes(ReadRanges(2, dst), RodBytes(seed, src, 512)));
}

TEST_F(OdxTest, ZeroTokenZeroesTheRanges) {
  const std::vector<Range> dst = {{50000, 64}, {50100, 32}};
  const std::vector<Range> around = {{49999, 1}, {50064, 1}, {50132, 1}};
  Before(1, dst);
  const Bytes kept = Before(1, around);
  ASSERT_TRUE(IsGood(Wut(1, ZeroToken(), dst)));
  EXPECT_TRUE(SameBytes(ReadRanges(1, dst), Bytes(96 * 512, 0)));
  EXPECT_TRUE(SameBytes(ReadRanges(1, around), kept));
}

TEST_F(OdxTest, CorruptTokenIsRefused) {
  uint64_t seed;
  const auto t = Source(0, {{4000, 16}}, &seed);
  ASSERT_TRUE(t);
  const std::vector<Range> dst = {{41000, 16}};
  const Bytes before = Before(1, dst);
  for (size_t at : {300, 500}) {
    Token bad = *t;
    bad[at] ^= 0x01;
    EXPECT_TRUE(IsCheck(Wut(1, bad, dst), kIllegalRequest, {kTokenCorrupt})) << "byte " << at;
  }
  EXPECT_TRUE(SameBytes(ReadRanges(1, dst), before));
}

// ROD type 00800001h is change vulnerable: a write into a represented range revokes it.
TEST_F(OdxTest, WriteToTheSourceRevokesTheToken) {
  uint64_t seed;
  const auto t = Source(0, {{8000, 64}}, &seed);
  ASSERT_TRUE(t);
  c().Fill(0, 8010, 1, NewSeed());
  const std::vector<Range> dst = {{42000, 64}};
  const Bytes before = Before(1, dst);
  EXPECT_TRUE(IsCheck(Wut(1, *t, dst), kIllegalRequest, {kTokenRevoked}));
  EXPECT_TRUE(SameBytes(ReadRanges(1, dst), before));
}

TEST_F(OdxTest, WriteNextToTheSourceDoesNotRevoke) {
  uint64_t seed;
  const auto t = Source(0, {{9000, 64}}, &seed);
  ASSERT_TRUE(t);
  c().Fill(0, 8999, 1, NewSeed());
  c().Fill(0, 9064, 1, NewSeed());
  const std::vector<Range> dst = {{43000, 64}};
  ASSERT_TRUE(IsGood(Wut(1, *t, dst)));
  EXPECT_TRUE(SameBytes(ReadRanges(1, dst), Session::Expected(seed, 9000, 64, 512)));
}

TEST_F(OdxTest, InactivityTimeoutExpiresTheToken) {
  uint64_t seed;
  const auto t = Source(0, {{9500, 8}}, &seed, /*timeout_s=*/1);
  ASSERT_TRUE(t);
  WaitOut(std::chrono::milliseconds(2500));  // twice the inactivity timeout, and then some
  const std::vector<Range> dst = {{44000, 8}};
  const Bytes before = Before(1, dst);
  EXPECT_TRUE(IsCheck(Wut(1, *t, dst), kIllegalRequest, {kTokenExpired}));
  EXPECT_TRUE(SameBytes(ReadRanges(1, dst), before));
}

TEST_F(OdxTest, TimeoutAboveTheMaximumIsRefused) {
  const std::vector<Range> src = {{9600, 8}};
  const Reply r = c().Populate(0, NewListId(), src, 601);
  ASSERT_TRUE(IsCheck(r, kIllegalRequest, {0x2600}));
  EXPECT_TRUE(r.sense.sksv && !r.sense.in_cdb() && r.sense.field_pointer == 4)
      << "field pointer: parameter list byte 4 (INACTIVITY TIMEOUT); got " << Describe(r);
}

TEST_F(OdxTest, DeletedTokenIsGone) {
  uint64_t seed;
  const auto t = Source(0, {{9700, 16}}, &seed);
  ASSERT_TRUE(t);
  EXPECT_TRUE(Lists(ReportAll(0), *t)) << "a live token is not reported";
  ASSERT_TRUE(IsGood(Wut(1, *t, {{45000, 16}}, 0, /*del=*/true)));
  EXPECT_TRUE(SameBytes(c().Read(1, 45000, 16), Session::Expected(seed, 9700, 16, 512)));
  EXPECT_TRUE(IsCheck(Wut(1, *t, {{45100, 16}}), kIllegalRequest, {kTokenDeleted, kTokenUnknown}));
  EXPECT_FALSE(Lists(ReportAll(0), *t)) << "a deleted token is still reported";
}

TEST_F(OdxTest, ReportAllRodTokensListsTheTokensOfThatLu) {
  uint64_t seed;
  const auto a = Source(0, {{9800, 8}}, &seed);
  const auto b = Source(1, {{9800, 8}}, &seed);
  ASSERT_TRUE(a && b);
  const auto on0 = ReportAll(0);
  const auto on1 = ReportAll(1);
  EXPECT_TRUE(Lists(on0, *a));
  EXPECT_FALSE(Lists(on0, *b)) << "LUN 1's token reported by LUN 0";
  EXPECT_TRUE(Lists(on1, *b));
  EXPECT_FALSE(Lists(on1, *a)) << "LUN 0's token reported by LUN 1";
}

// A token names its source; using it must not reach an LU the user cannot see (LUN 5).
TEST_F(OdxTest, TokenOfAnotherInitiatorsLuIsNotAuthorized) {
  Session* other = Other();
  ASSERT_NE(other, nullptr) << ConnectError();
  const uint64_t secret = NewSeed();
  other->Fill(0, 100, 32, secret);
  const std::vector<Range> src = {{100, 32}};
  const auto t = other->MakeToken(0, NewListId(), src);
  ASSERT_TRUE(t);
  const std::vector<Range> dst = {{46000, 32}};
  const Bytes before = Before(1, dst);
  EXPECT_TRUE(IsCheck(Wut(1, *t, dst), kIllegalRequest, {0x2615}));
  EXPECT_TRUE(SameBytes(ReadRanges(1, dst), before));
}

TEST_F(OdxTest, WriteUsingTokenIntoAWriteProtectedLu) {
  uint64_t seed;
  const auto t = Source(0, {{9900, 16}}, &seed);
  ASSERT_TRUE(t);
  const Bytes before = c().Read(4, 100, 16);
  EXPECT_TRUE(IsCheck(Wut(4, *t, {{100, 16}}), kDataProtect, {0x2700}));
  EXPECT_TRUE(SameBytes(c().Read(4, 100, 16), before));
}

TEST_F(OdxTest, ImmediatePopulateTokenThenPoll) {
  const uint64_t seed = NewSeed();
  const std::vector<Range> src = {{10000, 2048}};
  c().Fill(0, 10000, 2048, seed);
  const uint32_t id = NewListId();
  ASSERT_TRUE(IsGood(c().Populate(0, id, src, 0, /*immed=*/true)));
  Reply r;
  std::optional<CopyStatus4> st;
  const bool done = PollUntil(
      [&] {
        r = c().In(0, ThirdPartyCopyIn(kSaRrti, id, 4096), 4096);
        st = r.good() ? ParseCopyStatus4(r.data) : std::nullopt;
        return !st || st->status < 0x10 || st->status > 0x12;
      },
      std::chrono::seconds(10));
  ASSERT_TRUE(done) << "POPULATE TOKEN still in progress after 10 s";
  ASSERT_TRUE(st) << "RECEIVE ROD TOKEN INFORMATION: " << Describe(r);
  ASSERT_EQ(st->status, 0x01) << "COPY OPERATION STATUS";
  const std::optional<Token> t = st->token;
  ASSERT_TRUE(t) << "no ROD token after completion";
  const std::vector<Range> dst = {{47000, 2048}};
  ASSERT_TRUE(IsGood(Wut(1, *t, dst)));
  EXPECT_TRUE(SameBytes(ReadRanges(1, dst), RodBytes(seed, src, 512)));
}

// Tokens live in memory: after a restart ferryd knows none. run.sh runs this binary twice:
// first with --gtest_filter=-*AfterRestart*, then, with ferryd restarted on the same state
// directory, with --gtest_filter=*AfterRestart*; the token travels in FERRY_TOKEN_FILE.
TEST_F(OdxTest, SaveTokenForRestart) {
  const std::string file = Env("FERRY_TOKEN_FILE");
  if (file.empty()) GTEST_SKIP() << "FERRY_TOKEN_FILE is not set";
  uint64_t seed;
  const auto t = Source(0, {{11000, 8}}, &seed, /*timeout_s=*/600);
  ASSERT_TRUE(t);
  std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(t->data()), t->size());
}

TEST_F(OdxTest, TokenFromBeforeRestartIsUnknownAfterRestart) {
  const std::string file = Env("FERRY_TOKEN_FILE");
  if (file.empty()) GTEST_SKIP() << "FERRY_TOKEN_FILE is not set";
  Token t{};
  std::ifstream in(file, std::ios::binary);
  ASSERT_TRUE(in.read(reinterpret_cast<char*>(t.data()), t.size())) << "no token in " << file;
  const std::vector<Range> dst = {{48000, 8}};
  const Bytes before = Before(1, dst);
  EXPECT_TRUE(IsCheck(Wut(1, t, dst), kIllegalRequest, {kTokenUnknown}));
  EXPECT_TRUE(SameBytes(ReadRanges(1, dst), before));
}

}  // namespace
}  // namespace ferry::tpc_test
