// snapshot, snapshot-origin and snapshot-merge: tables, errors, mapping, copy-on-write
// checked byte for byte against a model, restart, a full store, merge.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <set>

#include "volume/snapshot/testing/snapshot_fixture.h"

namespace ferry::volume::snapshot {
namespace {

using testing::Bytes;
using ::testing::HasSubstr;

constexpr uint64_t kOriginBytes = 256 << 10;
constexpr uint64_t kOriginSectors = kOriginBytes / 512;

class SnapshotTest : public testing::SnapshotFixture {
 protected:
  void SetUp() override {
    SnapshotFixture::SetUp();
    origin_ = AddRam("o", kOriginBytes);
    AddRam("cow1", 1 << 20);
    AddRam("cow2", 1 << 20);
  }
  std::string Snap(const std::string& cow, const std::string& type = "P", int chunk = 8) {
    return Line(kOriginSectors, "snapshot", "o " + cow + " " + type + " " + std::to_string(chunk));
  }
  std::string OriginLine() { return Line(kOriginSectors, "snapshot-origin", "o"); }
  std::shared_ptr<block::BlockDevice> origin_;
};

TEST_F(SnapshotTest, TablesRoundTrip) {
  for (const std::string& text :
       {Snap("cow1") + "\n", Snap("cow2", "N", 16) + "\n", OriginLine() + "\n",
        Line(kOriginSectors, "snapshot-merge", "o cow1 P 8") + "\n"}) {
    auto t = Table::Parse(text, Env());
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ((*t)->ToText(), text);
    EXPECT_EQ(Table::Parse((*t)->ToText(), Env()).value()->ToText(), text);
  }
  EXPECT_EQ(Table::Parse(Snap("cow1", "p"), Env()).value()->ToText(), Snap("cow1") + "\n");
}

TEST_F(SnapshotTest, ConstructorErrorsSayWhatToFix) {
  auto err = [&](const std::string& text, TableOptions o) {
    auto t = Table::Parse(text, o);
    EXPECT_FALSE(t.ok()) << text;
    return t.ok() ? std::string() : std::string(t.status().message());
  };
  const TableOptions env = Env();
  EXPECT_THAT(err(Line(8, "snapshot", "o cow1 P"), env),
              HasSubstr("line 1: snapshot: expected <origin> <COW dev> <P|N> <chunk sectors>"));
  EXPECT_THAT(err(Line(8, "snapshot-merge", "o cow1"), env),
              HasSubstr("expected <origin> <COW dev> P <chunk sectors>, got 2"));
  EXPECT_THAT(err(Line(8, "snapshot", "o cow1 X 8"), env),
              HasSubstr("store type 'X' must be P (persistent) or N"));
  EXPECT_THAT(err(Line(8, "snapshot-merge", "o cow1 N 8"), env),
              HasSubstr("snapshot-merge needs a persistent store (P)"));
  EXPECT_THAT(err(Line(8, "snapshot", "o cow1 P 12"), env),
              HasSubstr("chunk size 12 is not a power of two in 8..16384"));
  EXPECT_THAT(err(Line(8, "snapshot", "o cow1 P 4"), env), HasSubstr("chunk size 4 is not"));
  EXPECT_THAT(err(Line(8, "snapshot", "o cow1 P 32768"), env), HasSubstr("chunk size 32768"));
  EXPECT_THAT(err(Line(8, "snapshot", "o cow1 P x"), env),
              HasSubstr("chunk size 'x' is not a decimal number"));
  EXPECT_THAT(err(Line(8, "snapshot", "nope cow1 P 8"), env),
              HasSubstr("origin: device 'nope' does not exist"));
  EXPECT_THAT(err(Line(8, "snapshot", "o nope P 8"), env),
              HasSubstr("COW device: device 'nope' does not exist"));
  EXPECT_THAT(err(Line(kOriginSectors + 8, "snapshot", "o cow1 P 8"), env),
              HasSubstr("runs past its end"));
  EXPECT_THAT(err(Line(8, "snapshot", "o o P 8"), env), HasSubstr("must be different devices"));
  AddRam("big", 1 << 20, 8192);
  AddRam("tiny", 8192);
  EXPECT_THAT(err(Line(16, "snapshot", "o big P 8"), env),
              HasSubstr("chunk size 8 sectors is not a multiple of device 'big' block size 8192"));
  EXPECT_THAT(err(Line(8, "snapshot", "o tiny P 8"), env),
              HasSubstr("holds 2 chunks; a persistent store needs at least 3"));
  EXPECT_THAT(err(Line(8, "snapshot", "o cow1 P 8"), Options()),
              HasSubstr("needs a reactor for its exception store"));
  TableOptions no_mover = Env();
  no_mover.env.mover = nullptr;
  EXPECT_THAT(err(Line(8, "snapshot", "o cow1 P 8"), no_mover), HasSubstr("needs a data mover"));
  EXPECT_THAT(err(Line(8, "snapshot-origin", ""), env), HasSubstr("expected <origin>, got 0"));
  EXPECT_THAT(err(Line(8, "snapshot-origin", "gone"), env),
              HasSubstr("origin: device 'gone' does not exist"));
  // A COW device in use by a live snapshot with other arguments.
  auto live = Vol("s1", Snap("cow1"));
  EXPECT_THAT(err(Snap("cow1", "P", 16), env),
              HasSubstr("COW device 'cow1' is in use by a snapshot of origin 'o' (P, chunk size "
                        "8); give the same arguments or remove that table first"));
}

TEST_F(SnapshotTest, PrepareErrorsSayWhatToFix) {
  auto junk = AddRam("junk", 1 << 20);
  ASSERT_EQ(Io(*junk, block::IoOp::kWrite, 0, 1, 0xab), IoStatus::kOk);
  EXPECT_THAT(PrepareError(Snap("junk")),
              HasSubstr("line 1: snapshot: COW device holds no snapshot store (bad magic); zero"));
  { auto v = Vol("s", Snap("cow1")); }  // formats cow1 with 8-sector chunks
  EXPECT_THAT(PrepareError(Snap("cow1", "P", 16)),
              HasSubstr("holds a store with chunk size 8 sectors; use that chunk size or zero"));
}

TEST_F(SnapshotTest, MapsOnePiecePerChunkAndFlushesBothDevices) {
  auto t = Prepared(Snap("cow1")).value();
  std::vector<MappedPiece> pieces;
  ASSERT_TRUE(t->Map(block::IoOp::kRead, 4096 - 512, 4096 + 1024, &pieces).ok());
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0].len_bytes, 512u);
  EXPECT_EQ(pieces[1].dev_offset_bytes, 4096u);
  EXPECT_EQ(pieces[1].len_bytes, 4096u);
  EXPECT_EQ(pieces[2].len_bytes, 512u);
  pieces.clear();
  ASSERT_TRUE(t->Map(block::IoOp::kWrite, kOriginBytes - 4096, 4096, &pieces).ok());
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0].dev_offset_bytes, kOriginBytes - 4096);
  EXPECT_FALSE(t->Map(block::IoOp::kRead, kOriginBytes - 512, 1024, &pieces).ok());
  pieces.clear();
  ASSERT_TRUE(t->Map(block::IoOp::kFlush, 0, 0, &pieces).ok());
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[0].dev->name(), "o");
  EXPECT_EQ(pieces[1].dev->name(), "cow1");
  EXPECT_FALSE(t->target(0).copy_transparent());
}

// Random writes to the origin (through snapshot-origin) and to two snapshots, several in
// flight at once (including on the same chunks); every byte compared with a model.
TEST_F(SnapshotTest, CopyOnWriteMatchesAModel) {
  std::mt19937_64 rng(11);
  Bytes origin_model = Random(kOriginBytes, rng);
  ASSERT_EQ(WriteBytes(*origin_, 0, origin_model), IoStatus::kOk);
  auto ov = Vol("ov", OriginLine());
  auto s1 = Vol("s1", Snap("cow1"));
  auto s2 = Vol("s2", Snap("cow2", "N", 16));
  Bytes m1 = origin_model, m2 = origin_model;
  struct Dev {
    Volume* v;
    Bytes* model;
  };
  std::vector<Dev> devs = {{ov.get(), &origin_model}, {s1.get(), &m1}, {s2.get(), &m2}};
  for (int round = 0; round < 60; ++round) {
    std::vector<std::unique_ptr<volume::testing::Pending>> inflight;
    std::vector<std::vector<bool>> used(3, std::vector<bool>(kOriginBytes / 512));
    for (int k = 0; k < 8; ++k) {
      const size_t d = rng() % 3;
      const uint64_t blocks = 1 + rng() % 24;
      const uint64_t lba = rng() % (kOriginBytes / 512 - blocks);
      bool clash = false;  // no two writes in flight overlap on the same device
      for (uint64_t b = lba; b < lba + blocks; ++b) clash = clash || used[d][b];
      if (clash) continue;
      for (uint64_t b = lba; b < lba + blocks; ++b) used[d][b] = true;
      Bytes data = Random(blocks * 512, rng);
      std::copy(data.begin(), data.end(), devs[d].model->begin() + lba * 512);
      inflight.push_back(Start(*devs[d].v, block::IoOp::kWrite, lba, blocks, 0, 0, &data));
    }
    for (auto& p : inflight) ASSERT_EQ(Wait(*p), IoStatus::kOk);
    if (round % 10 == 9) {
      ExpectBytes(*ov, origin_model, "origin");
      ExpectBytes(*s1, m1, "snapshot 1");
      ExpectBytes(*s2, m2, "snapshot 2");
      EXPECT_TRUE(CoreOf(*s1).store().Check().ok());
      EXPECT_TRUE(CoreOf(*s2).store().Check().ok());
    }
  }
  EXPECT_THAT(s1->StatusText(), HasSubstr("snapshot "));
  EXPECT_NE(s1->StatusText().find("/2048 "), std::string::npos) << s1->StatusText();
}

// Writes racing on one chunk: the chunk is copied once, before any of them lands, and a
// snapshot read sent meanwhile sees the old data.
TEST_F(SnapshotTest, ConcurrentWritesToOneChunkCopyItOnce) {
  ASSERT_EQ(Io(*origin_, block::IoOp::kWrite, 0, 8, 0x01), IoStatus::kOk);
  auto ov = Vol("ov", OriginLine());
  auto s1 = Vol("s1", Snap("cow1"));
  auto s2 = Vol("s2", Snap("cow2"));
  std::vector<std::unique_ptr<volume::testing::Pending>> inflight;
  inflight.push_back(Start(*s1, block::IoOp::kRead, 0, 8));
  for (uint64_t i = 0; i < 8; ++i) {
    inflight.push_back(Start(*ov, block::IoOp::kWrite, i, 1, static_cast<uint8_t>(0x10 + i)));
  }
  inflight.push_back(Start(*s2, block::IoOp::kWrite, 4, 2, 0xee));
  inflight.push_back(Start(*s1, block::IoOp::kRead, 0, 8));
  for (auto& p : inflight) ASSERT_EQ(Wait(*p), IoStatus::kOk);
  EXPECT_EQ(inflight.front()->buf, Bytes(4096, 0x01));
  EXPECT_EQ(inflight.back()->buf, Bytes(4096, 0x01));
  // One exception each: 8 sectors of data plus header and one metadata area.
  EXPECT_THAT(s1->StatusText(), HasSubstr(" 24/2048 16"));
  EXPECT_THAT(s2->StatusText(), HasSubstr(" 24/2048 16"));
  Bytes s2_want(4096, 0x01);
  std::fill(s2_want.begin() + 2048, s2_want.begin() + 3072, 0xee);
  EXPECT_EQ(Read(*s2, 0, 8), s2_want);
  Bytes origin_want(4096);
  for (size_t i = 0; i < 4096; ++i) origin_want[i] = static_cast<uint8_t>(0x10 + i / 512);
  EXPECT_EQ(Read(*ov, 0, 8), origin_want);
}

TEST_F(SnapshotTest, ReopenedSnapshotReadsTheSame) {
  std::mt19937_64 rng(5);
  Bytes base = Random(kOriginBytes, rng);
  ASSERT_EQ(WriteBytes(*origin_, 0, base), IoStatus::kOk);
  Bytes snap = base;
  std::string status;
  {
    auto ov = Vol("ov", OriginLine());
    auto s1 = Vol("s1", Snap("cow1"));
    for (int i = 0; i < 40; ++i) {
      const uint64_t lba = rng() % (kOriginSectors - 16);
      Bytes data = Random(16 * 512, rng);
      if (i % 3 == 0) {
        std::copy(data.begin(), data.end(), snap.begin() + lba * 512);
        ASSERT_EQ(WriteBytes(*s1, lba, data), IoStatus::kOk);
      } else {
        ASSERT_EQ(WriteBytes(*ov, lba, data), IoStatus::kOk);
      }
    }
    ExpectBytes(*s1, snap, "before restart");
    status = s1->StatusText();
  }
  Drain();
  auto s1 = Vol("s1", Snap("cow1"));
  ExpectBytes(*s1, snap, "after restart");
  EXPECT_EQ(s1->StatusText(), status);
  EXPECT_TRUE(CoreOf(*s1).store().Check().ok());
}

TEST_F(SnapshotTest, TransientStoreStartsEmptyAfterRestart) {
  {
    auto ov = Vol("ov", OriginLine());
    auto s = Vol("s", Snap("cow1", "N"));
    ASSERT_EQ(Io(*ov, block::IoOp::kWrite, 0, 8, 0x11), IoStatus::kOk);
    EXPECT_EQ(Read(*s, 0, 8), Bytes(4096, 0));
    EXPECT_EQ(s->StatusText(), "0 " + std::to_string(kOriginSectors) + " snapshot 8/2048 0\n");
  }
  Drain();
  auto s = Vol("s", Snap("cow1", "N"));
  EXPECT_EQ(Read(*s, 0, 8), Bytes(4096, 0x11));
}

TEST_F(SnapshotTest, FullStoreInvalidatesOnlyThatSnapshot) {
  AddRam("small", 6 * 4096);  // header, area, 4 data chunks
  auto ov = Vol("ov", OriginLine());
  auto small = Vol("small", Snap("small"));
  auto big = Vol("big", Snap("cow1"));
  Bytes model(kOriginBytes, 0);
  for (uint64_t c = 0; c < 6; ++c) {
    ASSERT_EQ(Io(*ov, block::IoOp::kWrite, c * 8, 8, static_cast<uint8_t>(c + 1)), IoStatus::kOk);
    std::fill(model.begin() + c * 4096, model.begin() + (c + 1) * 4096, c + 1);
  }
  EXPECT_THAT(small->StatusText(), HasSubstr("snapshot Invalid"));
  EXPECT_EQ(Io(*small, block::IoOp::kRead, 0, 8), IoStatus::kIoError);
  EXPECT_EQ(Io(*small, block::IoOp::kWrite, 0, 8), IoStatus::kIoError);
  ExpectBytes(*ov, model, "origin");
  ExpectBytes(*big, Bytes(kOriginBytes, 0), "the other snapshot");
  // Invalid survives a restart.
  small.reset();
  Drain();
  auto again = Vol("small", Snap("small"));
  EXPECT_THAT(again->StatusText(), HasSubstr("snapshot Invalid"));
}

TEST_F(SnapshotTest, MergeCopiesExceptionsBackAndReadsSeeMergedStateThroughout) {
  std::mt19937_64 rng(17);
  Bytes base = Random(kOriginBytes, rng);
  ASSERT_EQ(WriteBytes(*origin_, 0, base), IoStatus::kOk);
  Bytes snap = base;
  {
    auto ov = Vol("ov", OriginLine());
    auto s1 = Vol("s1", Snap("cow1"));
    for (int i = 0; i < 30; ++i) {
      const uint64_t lba = rng() % (kOriginSectors - 8);
      Bytes data = Random(8 * 512, rng);
      if (i % 2 == 0) {
        std::copy(data.begin(), data.end(), snap.begin() + lba * 512);
        ASSERT_EQ(WriteBytes(*s1, lba, data), IoStatus::kOk);
      } else {
        ASSERT_EQ(WriteBytes(*ov, lba, data), IoStatus::kOk);
      }
    }
  }
  Drain();
  auto mv = Vol("m", Line(kOriginSectors, "snapshot-merge", "o cow1 P 8"));
  SnapshotCore& core = CoreOf(*mv);
  const uint64_t start = core.store().live_exceptions();
  ASSERT_GT(start, 10u);
  // Reads and writes while merging: the volume always shows the snapshot's content.
  // Suspending the merging volume pauses the merge; resuming continues it.
  SuspendAndWait(*mv);
  Drain();
  const uint64_t paused = core.store().live_exceptions();
  ASSERT_GT(paused, 0u);
  for (int i = 0; i < 20; ++i) reactor_->RunOnce(false);
  EXPECT_EQ(core.store().live_exceptions(), paused);
  ASSERT_TRUE(mv->Resume().ok());
  std::set<uint64_t> seen;  // exception counts observed while merging
  uint64_t last_allocated = UINT64_MAX;
  while (core.store().live_exceptions() > 0) {
    seen.insert(core.store().live_exceptions());
    // Status "<allocated>/<total> <metadata>" shrinks as chunks merge.
    const std::string st = core.Status();
    const uint64_t allocated = std::stoull(st.substr(0, st.find('/')));
    EXPECT_LE(allocated, last_allocated) << st;
    last_allocated = allocated;
    const uint64_t lba = rng() % (kOriginSectors - 4);
    Bytes data = Random(4 * 512, rng);
    std::copy(data.begin(), data.end(), snap.begin() + lba * 512);
    // Driven only until each request completes (Wait would drain the whole merge).
    auto w = Start(*mv, block::IoOp::kWrite, lba, 4, 0, 0, &data);
    reactor_->RunUntil([&] { return w->done(); });
    ASSERT_EQ(w->status, IoStatus::kOk);
    const uint64_t at = rng() % (kOriginSectors - 8);
    auto r = Start(*mv, block::IoOp::kRead, at, 8);
    reactor_->RunUntil([&] { return r->done(); });
    ASSERT_EQ(r->buf, Bytes(snap.begin() + at * 512, snap.begin() + at * 512 + 4096))
        << "sector " << at << " with " << core.store().live_exceptions() << " exceptions left";
  }
  EXPECT_GT(seen.size(), 3u);  // progress was visible step by step
  ExpectBytes(*mv, snap, "merged volume");
  EXPECT_EQ(mv->StatusText(),
            "0 " + std::to_string(kOriginSectors) + " snapshot-merge 16/2048 16\n");
  ExpectBytes(*origin_, snap, "origin after merge");
  EXPECT_TRUE(core.store().Check().ok());
}

// Merging one snapshot changes origin chunks: the origin's other snapshots save them first.
TEST_F(SnapshotTest, MergeKeepsTheOriginsOtherSnapshotsIntact) {
  std::mt19937_64 rng(23);
  Bytes base = Random(kOriginBytes, rng);
  ASSERT_EQ(WriteBytes(*origin_, 0, base), IoStatus::kOk);
  auto ov = Vol("ov", OriginLine());
  auto s1 = Vol("s1", Snap("cow1"));
  Bytes snap1 = base;
  for (int i = 0; i < 10; ++i) {
    const uint64_t lba = rng() % (kOriginSectors - 8);
    Bytes data = Random(8 * 512, rng);
    std::copy(data.begin(), data.end(), snap1.begin() + lba * 512);
    ASSERT_EQ(WriteBytes(*s1, lba, data), IoStatus::kOk);
  }
  auto s2 = Vol("s2", Snap("cow2", "N", 16));  // taken after s1's writes: sees `base`
  // snapshot-merge replaces the origin's table; s1's table may stay (it shares the state).
  ov.reset();
  auto mv = Vol("m", Line(kOriginSectors, "snapshot-merge", "o cow1 P 8"));
  SnapshotCore& core = CoreOf(*mv);
  reactor_->RunUntil([&] { return core.store().live_exceptions() == 0; });
  ExpectBytes(*mv, snap1, "merged volume");
  ExpectBytes(*s1, snap1, "the merged snapshot");
  ExpectBytes(*s2, base, "the other snapshot");
  ExpectBytes(*origin_, snap1, "origin");
}

}  // namespace
}  // namespace ferry::volume::snapshot
