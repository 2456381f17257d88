// Third-party copies from many sessions at once. Each session logs in as tpc-client with an
// ISID of its own, which makes it an I_T nexus of its own; copy records and list identifiers
// belong to the nexus (SPC-4 5.17), so every session uses the same list identifiers. Then
// ROD tokens (SBC-3 4.26) used by several sessions while another writes into what one of
// them represents: a point-in-time token copies the data of POPULATE TOKEN or nothing.
#include <algorithm>
#include <cstdio>
#include <deque>

#include "tpc_client.h"

namespace ferry::tpc_test {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr uint16_t kTokenRevoked = 0x2306;
constexpr uint64_t kMiB = 1 << 20;

class ConcurrentTest : public TpcTest {
 protected:
  // Logs in `n` more sessions of tpc-client, ISID qualifiers from `first_isid` on.
  void Open(size_t n, uint16_t first_isid) {
    for (size_t i = 0; i < n; ++i) {
      std::string error;
      auto s = Session::ConnectWithIsid(Env("FERRY_PORTAL"), Env("FERRY_TARGET"), kClientName,
                                        static_cast<uint16_t>(first_isid + i), {0, 1, 3}, &error);
      ASSERT_NE(s, nullptr) << "session " << i << ": " << error;
      sessions_.push_back(std::move(s));
    }
  }
  Session& s(size_t i) { return *sessions_[i]; }
  std::vector<Session*> All() {
    std::vector<Session*> out;
    for (const auto& s : sessions_) out.push_back(s.get());
    return out;
  }

  // Sends `cdb` with `data` on `s` without waiting.
  AsyncCommand* StartOut(Session& s, int lun, const Cdb& cdb, const Bytes& data) {
    AsyncCommand* cmd = &commands_.emplace_back();
    s.Start(lun, cdb, data.empty() ? SCSI_XFER_NONE : SCSI_XFER_WRITE,
            static_cast<uint32_t>(data.size()), data, cmd);
    return cmd;
  }
  // Services `order` (all sessions by default) until every command in `cmds` is done.
  bool WaitAll(const std::vector<AsyncCommand*>& cmds, std::vector<Session*> order = {}) {
    if (order.empty()) order = All();
    return Session::PumpAll(
        order,
        [&] { return std::all_of(cmds.begin(), cmds.end(), [](auto* c) { return c->done; }); },
        milliseconds(30000));
  }

  Bytes ReadRanges(int lun, const std::vector<Range>& ranges) {
    Bytes out;
    for (const Range& r : ranges) {
      const Bytes b = c().Read(lun, r.lba, r.blocks);
      out.insert(out.end(), b.begin(), b.end());
    }
    return out;
  }

  // ferryd's copy counters once no copy runs any more.
  std::optional<CopyCounters> IdleCounters() {
    std::optional<CopyCounters> now;
    const bool idle = PollUntil(
        [&] {
          now = ReadCopyCounters();
          return !now || !now->active || *now->active == 0;
        },
        milliseconds(5000));
    if (!now) return std::nullopt;
    if (!now->active) ADD_FAILURE() << "ferryctl status --json has no copy.active";
    if (!idle) ADD_FAILURE() << "copy.active is still " << *now->active << " after 5 s";
    return now;
  }

 private:
  // Declared first, so destroyed last: libiscsi may still reference a command until its
  // session is gone.
  std::deque<AsyncCommand> commands_;
  std::vector<std::unique_ptr<Session>> sessions_;
};

uint64_t Delta(const std::map<std::string, uint64_t>& before,
               const std::map<std::string, uint64_t>& after, const std::string& key) {
  const auto b = before.find(key), a = after.find(key);
  EXPECT_NE(a, after.end()) << "no counter \"" << key << "\"";
  return (a == after.end() ? 0 : a->second) - (b == before.end() ? 0 : b->second);
}

uint64_t MechanismBytes(const CopyCounters& c) {
  uint64_t n = 0;
  for (const auto& [name, bytes] : c.mechanisms) n += bytes;
  return n;
}

// --- EXTENDED COPY from eight sessions ------------------------------------------------------

constexpr size_t kSessions = 8;
constexpr uint64_t kSliceBlocks = 8192;  // 4 MiB of 512-byte blocks
constexpr uint64_t kSliceBytes = kSliceBlocks * 512;

struct Place {
  int lun;
  uint64_t lba;
};
// Where the copies of session i land: its LID1 copy takes source slice i of LUN 0, its LID4
// copy slice 7 - i. LUNs 0 and 1 are RAM, LUN 3 a file; the sources are LUN 0's first 32 MiB.
constexpr Place kLid1Dst[kSessions] = {{1, 0}, {1, 8192}, {1, 16384}, {1, 24576},
                                       {3, 0}, {3, 8192}, {0, 65536}, {0, 73728}};
constexpr Place kLid4Dst[kSessions] = {{3, 16384}, {3, 24576}, {0, 81920}, {0, 90112},
                                       {1, 32768}, {1, 40960}, {1, 49152}, {1, 57344}};
constexpr int kRamCopies = 12;  // of the 16, those into LUN 0 or 1

// The slice at `src_lba` of LUN 0 to `dst` in `n` segments, sent last first, 02h and 0Ah
// alternating. The command goes to LUN 0: CSCD 0 is LUN 0, the destination CSCD 1, or FFFFh
// (the receiving LU) when it is LUN 0 too.
CopyList SliceCopy(Session& s, uint64_t src_lba, Place dst, int n) {
  CopyList l{.cscds = {s.CscdOf(0)}};
  uint16_t to = kCscdThisLu;
  if (dst.lun != 0) {
    l.cscds.push_back(s.CscdOf(dst.lun));
    to = 1;
  }
  for (int k = n - 1; k >= 0; --k) {
    const uint64_t from = kSliceBlocks * k / n;
    const uint64_t blocks = kSliceBlocks * (k + 1) / n - from;
    l.segments.push_back(k % 2 == 0 ? SegmentB2B(0, to, static_cast<uint16_t>(blocks),
                                                 src_lba + from, dst.lba + from)
                                    : SegmentB2BOffset(0, to, static_cast<uint32_t>(blocks * 512),
                                                       src_lba + from, dst.lba + from));
  }
  return l;
}

// Eight nexuses with two copies each in flight together, all under the same list ids: an
// EXTENDED COPY(LID1) of 2-4 segments that holds its command, and an immediate
// EXTENDED COPY(LID4) polled to completion. Each nexus then reads its own records.
TEST_F(ConcurrentTest, ConcurrentExtendedCopiesFromManySessions) {
  ASSERT_NO_FATAL_FAILURE(Open(kSessions, 1));
  for (int lun : {0, 1, 3}) ASSERT_EQ(c().Info(lun).block_size, 512u) << "LUN " << lun;
  const uint64_t seed = NewSeed();
  c().Fill(0, 0, kSessions * kSliceBlocks, seed);
  const uint8_t lid1 = NewListId1();
  const uint32_t lid4 = NewListId();
  auto segments1 = [](size_t i) { return static_cast<int>(2 + i % 3); };

  std::vector<AsyncCommand*> cmds;
  std::vector<Bytes> lists;  // LID4 then LID1, per session
  for (size_t i = 0; i < kSessions; ++i) {
    CopyList l4 = SliceCopy(s(i), (7 - i) * kSliceBlocks, kLid4Dst[i], 2);
    l4.list_id = lid4;
    l4.usage = kUsageHold;
    l4.immed = true;
    lists.push_back(EncodeLid4(l4));
    CopyList l1 = SliceCopy(s(i), i * kSliceBlocks, kLid1Dst[i], segments1(i));
    l1.list_id = lid1;
    l1.usage = kUsageHold;
    lists.push_back(EncodeLid1(l1));
  }
  const auto before = IdleCounters();
  ASSERT_TRUE(before);
  const auto t0 = Clock::now();
  for (size_t i = 0; i < kSessions; ++i) {
    for (int k : {0, 1}) {
      const Bytes& list = lists[2 * i + k];
      const uint8_t sa = k == 0 ? kSaXcopyLid4 : kSaXcopyLid1;
      cmds.push_back(
          StartOut(s(i), 0, ThirdPartyCopyOut(sa, static_cast<uint32_t>(list.size())), list));
    }
  }
  ASSERT_TRUE(WaitAll(cmds)) << "the copies did not all complete within 30 s";
  for (size_t i = 0; i < kSessions; ++i) {
    EXPECT_TRUE(IsGood(s(i).Finished(cmds[2 * i]))) << "session " << i << " LID4 (IMMED)";
    EXPECT_TRUE(IsGood(s(i).Finished(cmds[2 * i + 1]))) << "session " << i << " LID1";
  }
  for (size_t i = 0; i < kSessions; ++i) {
    SCOPED_TRACE("session " + std::to_string(i));
    const auto st = s(i).WaitCopyDone(0, lid4, milliseconds(10000));
    ASSERT_TRUE(st);
    EXPECT_EQ(st->status, 0x01) << "COPY OPERATION STATUS of the LID4 copy";
    EXPECT_EQ(st->segments_processed, 2);
    EXPECT_EQ(TransferBytes(st->units, st->transfer_count, 512), kSliceBytes);
  }
  const auto elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
  for (size_t i = 0; i < kSessions; ++i) {
    SCOPED_TRACE("session " + std::to_string(i));
    const Reply r = s(i).In(0, ThirdPartyCopyIn(kSaCopyStatusLid1, lid1, 1024), 1024);
    ASSERT_TRUE(IsGood(r)) << "RECEIVE COPY STATUS(LID1)";
    ASSERT_GE(r.data.size(), 12u);
    EXPECT_EQ(r.data[4] & 0x7f, 0x01) << "COPY MANAGER STATUS";
    EXPECT_EQ(Get16(&r.data[5]), segments1(i)) << "SEGMENTS PROCESSED: this nexus's copy";
    EXPECT_EQ(TransferBytes(r.data[7], Get32(&r.data[8]), 512), kSliceBytes);
  }

  for (size_t i = 0; i < kSessions; ++i) {
    for (const auto& [dst, src] : {std::pair{kLid1Dst[i], i}, std::pair{kLid4Dst[i], 7 - i}}) {
      EXPECT_TRUE(SameBytes(c().Read(dst.lun, dst.lba, kSliceBlocks),
                            Session::Expected(seed, src * kSliceBlocks, kSliceBlocks, 512)))
          << "session " << i << ": slice " << src << " into LUN " << dst.lun << " LBA " << dst.lba;
    }
  }
  EXPECT_TRUE(SameBytes(c().Read(0, 0, kSessions * kSliceBlocks),
                        Session::Expected(seed, 0, kSessions * kSliceBlocks, 512)))
      << "the sources changed";

  const auto after = IdleCounters();
  ASSERT_TRUE(after);
  const auto& b = before->commands_by_name;
  const auto& a = after->commands_by_name;
  EXPECT_EQ(Delta(b, a, "extended_copy"), 2 * kSessions);
  EXPECT_EQ(Delta(b, a, "failed"), 0u);
  EXPECT_EQ(Delta(b, a, "aborted"), 0u);
  const uint64_t total = 2 * kSessions * kSliceBytes;
  EXPECT_EQ(after->bytes_offloaded + after->bytes_emulated -
                (before->bytes_offloaded + before->bytes_emulated),
            total);
  EXPECT_EQ(MechanismBytes(*after) - MechanismBytes(*before), total) << "bytes by mechanism";
  EXPECT_EQ(Delta(before->mechanisms, after->mechanisms, "ram"), kRamCopies * kSliceBytes);
  std::printf("  %zu sessions: %zu copies of 4 MiB (%llu MiB) done in %lld ms\n", kSessions,
              2 * kSessions, static_cast<unsigned long long>(total / kMiB),
              static_cast<long long>(elapsed.count()));
}

// --- ROD tokens across sessions -------------------------------------------------------------

constexpr int kRounds = 8;
constexpr int kTokens = 3;  // one per writing session
constexpr uint32_t kRangeBlocks = 512;
constexpr uint64_t kRegionBlocks = 4 * kTokens * kRangeBlocks;  // 3 MiB

// Token k of round r: four ranges of 256 KiB in round r's region of LUN 0, each between
// ranges of the two other tokens of the round.
std::vector<Range> TokenRanges(int round, int k) {
  std::vector<Range> out;
  for (int j = 0; j < 4; ++j) {
    out.push_back({round * kRegionBlocks + (kTokens * j + k) * kRangeBlocks, kRangeBlocks});
  }
  return out;
}

// Writer w (sessions B, C, D) copies its token of round r into LUN 1, 3 and 0 (above the
// token regions): two ranges, as many blocks as the ROD.
constexpr int kWriterLun[kTokens] = {1, 3, 0};
constexpr uint64_t kWriterBase[kTokens] = {0, 0, 65536};
std::vector<Range> WriterRanges(int w, int round) {
  const uint64_t base = kWriterBase[w] + round * 4096;
  return {{base, 1000}, {base + 2048, 4 * kRangeBlocks - 1000}};
}
// Where B tries the victim token again (refused), and where it uses the last tokens.
const std::vector<Range> kRetryRanges = {{32768, 4 * kRangeBlocks}};
std::vector<Range> FinalRanges(int k) { return {{49152 + k * 4096ull, 4 * kRangeBlocks}}; }

Cdb Write16(uint64_t lba, uint32_t blocks) {
  Cdb c{};
  c[0] = 0x8a;
  Put64(&c[2], lba);
  Put32(&c[10], blocks);
  return c;
}

// Session A makes three tokens a round (over four interleaved ranges each); sessions B, C, D
// write with them into LUNs 1, 3 and 0 while E writes 8 blocks at an edge of one range of
// one token (the victim, a different one each round) and A makes the next round's tokens.
// The other two tokens must copy; the victim's WRITE USING TOKEN either copies the data of
// POPULATE TOKEN or fails with TOKEN REVOKED; afterwards it is revoked for good.
TEST_F(ConcurrentTest, ConcurrentTokensAcrossSessions) {
  ASSERT_NO_FATAL_FAILURE(Open(5, 101));
  Session& a = s(0);
  Session* writers[kTokens] = {&s(1), &s(2), &s(3)};
  Session& e = s(4);
  const uint64_t seed = NewSeed();
  c().Fill(0, 0, (kRounds + 1) * kRegionBlocks, seed);
  // The destinations hold other data first (and no older token represents them any more).
  const uint64_t old = NewSeed();
  for (int w = 0; w < kTokens; ++w) {
    for (int r = 0; r < kRounds; ++r) {
      for (const Range& d : WriterRanges(w, r)) c().Fill(kWriterLun[w], d.lba, d.blocks, old);
    }
    c().Fill(1, FinalRanges(w)[0].lba, FinalRanges(w)[0].blocks, old);
  }
  c().Fill(1, kRetryRanges[0].lba, kRetryRanges[0].blocks, old);
  const auto before = IdleCounters();
  ASSERT_TRUE(before);

  std::vector<Token> tokens;
  for (int k = 0; k < kTokens; ++k) {
    const auto t = a.MakeToken(0, NewListId(), TokenRanges(0, k));
    ASSERT_TRUE(t);
    tokens.push_back(*t);
  }
  int copied = 0, revoked = 0;
  for (int r = 0; r < kRounds; ++r) {
    SCOPED_TRACE("round " + std::to_string(r));
    const int victim = r % kTokens;
    const Range in = TokenRanges(r, victim)[r % 4];
    const uint64_t hit = r % 2 == 0 ? in.lba : in.lba + in.blocks - 8;
    const Bytes fresh = Pattern(NewSeed(), 0, 8 * 512);

    std::vector<AsyncCommand*> cmds;
    uint32_t next_ids[kTokens];
    for (int k = 0; k < kTokens; ++k) {
      next_ids[k] = NewListId();
      const Bytes p = PopulateTokenParams(TokenRanges(r + 1, k));
      cmds.push_back(
          StartOut(a, 0, PopulateToken(next_ids[k], static_cast<uint32_t>(p.size())), p));
    }
    AsyncCommand* wut[kTokens];
    for (int w = 0; w < kTokens; ++w) {
      const Bytes p = WriteUsingTokenParams(tokens[w], WriterRanges(w, r));
      wut[w] = StartOut(*writers[w], kWriterLun[w],
                        WriteUsingToken(NewListId(), static_cast<uint32_t>(p.size())), p);
      cmds.push_back(wut[w]);
    }
    AsyncCommand* write = StartOut(e, 0, Write16(hit, 8), fresh);
    cmds.push_back(write);
    // Each round the sessions are serviced from a different one first.
    std::vector<Session*> order = All();
    std::rotate(order.begin(), order.begin() + r % order.size(), order.end());
    ASSERT_TRUE(WaitAll(cmds, order)) << "the commands did not all complete within 30 s";

    ASSERT_TRUE(IsGood(e.Finished(write))) << "WRITE(16) into the victim's range";
    for (int w = 0; w < kTokens; ++w) {
      SCOPED_TRACE("writer " + std::to_string(w) + " into LUN " + std::to_string(kWriterLun[w]));
      const Reply rep = writers[w]->Finished(wut[w]);
      const Bytes want = RodBytes(seed, TokenRanges(r, w), 512);
      if (w != victim) {
        EXPECT_TRUE(IsGood(rep)) << "a token nobody wrote into";
      } else if (rep.good()) {
        ++copied;
      } else {
        ++revoked;
        EXPECT_TRUE(IsCheck(rep, kIllegalRequest, {kTokenRevoked}));
      }
      if (rep.good()) {
        EXPECT_TRUE(SameBytes(ReadRanges(kWriterLun[w], WriterRanges(w, r)), want))
            << "WRITE USING TOKEN was GOOD but did not copy the data of POPULATE TOKEN";
      }
    }
    // The write has completed: from now on the victim is revoked whoever uses it.
    EXPECT_TRUE(IsCheck(writers[0]->WriteUsing(1, NewListId(), tokens[victim], kRetryRanges),
                        kIllegalRequest, {kTokenRevoked}))
        << "the victim token after the write completed";
    for (int k = 0; k < kTokens; ++k) {
      ASSERT_TRUE(IsGood(a.Finished(cmds[k]))) << "POPULATE TOKEN for the next round, " << k;
      const auto t = a.ReceiveToken(0, next_ids[k]);
      ASSERT_TRUE(t);
      tokens[k] = *t;
    }
  }
  // The tokens made during the last round are as good as any.
  for (int k = 0; k < kTokens; ++k) {
    ASSERT_TRUE(IsGood(writers[0]->WriteUsing(1, NewListId(), tokens[k], FinalRanges(k))));
    EXPECT_TRUE(
        SameBytes(ReadRanges(1, FinalRanges(k)), RodBytes(seed, TokenRanges(kRounds, k), 512)));
  }

  const auto after = IdleCounters();
  ASSERT_TRUE(after);
  const auto& b = before->commands_by_name;
  const auto& x = after->commands_by_name;
  EXPECT_EQ(Delta(b, x, "populate_token"), uint64_t{kTokens} * (kRounds + 1));
  EXPECT_EQ(Delta(b, x, "write_using_token"), uint64_t{kTokens} * kRounds + kRounds + kTokens);
  EXPECT_EQ(Delta(b, x, "aborted"), 0u);
  EXPECT_EQ(Delta(before->tokens, after->tokens, "created"), uint64_t{kTokens} * (kRounds + 1));
  EXPECT_EQ(Delta(before->tokens, after->tokens, "revoked"), uint64_t{kRounds})
      << "one token revoked a round: the victim";
  std::printf("  victim tokens: %d copied before the write, %d refused as revoked\n", copied,
              revoked);
}

}  // namespace
}  // namespace ferry::tpc_test
