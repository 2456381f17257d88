#include "volume/thin/thin_target.h"

#include <gtest/gtest.h>

#include <random>

#include "volume/thin/testing/thin_fixture.h"

namespace ferry::volume::thin {
namespace {

using block::IoOp;

class ThinTargetTest : public testing::ThinFixture {};

std::vector<uint8_t> Bytes(size_t n, uint8_t v) { return std::vector<uint8_t>(n, v); }

TEST_F(ThinTargetTest, TablesRoundTrip) {
  auto pool = MakePool(16, " 2 skip_block_zeroing error_if_no_space");
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(pool->TableText(),
            "0 2048 thin-pool meta data 128 0 2 skip_block_zeroing error_if_no_space\n");
  auto thin = MakeThin("t1", 7, 4 << 20);
  ASSERT_NE(thin, nullptr);
  EXPECT_EQ(thin->TableText(), "0 8192 thin pool 7\n");
  // Parse -> print -> parse prints the same (the pool is reused, not opened twice).
  auto again = Build(pool->TableText());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)->ToText(), pool->TableText());
  EXPECT_EQ(Build(thin->TableText()).value()->ToText(), thin->TableText());
}

TEST_F(ThinTargetTest, TablesPreparedTogetherShareOnePool) {
  AddRam("meta", 1 << 20);
  AddRam("data", 16 * kBlock);
  auto t1 = Table::Parse("0 2048 thin-pool meta data 128 0", ThinOptions()).value();
  auto t2 = Table::Parse("0 2048 thin-pool meta data 128 0 1 read_only", ThinOptions()).value();
  int prepared = 0;
  PrepareTable(t1, [&](Status s) { prepared += s.ok(); });
  PrepareTable(t2, [&](Status s) { prepared += s.ok(); });
  reactor_->RunUntil([&] { return prepared == 2; });
  const PoolLine* p1 = t1->target(0).pool_line();
  const PoolLine* p2 = t2->target(0).pool_line();
  EXPECT_EQ(p1->pool(), p2->pool());
  EXPECT_TRUE(p1->pool()->options().read_only);  // the table prepared last sets the features
}

TEST_F(ThinTargetTest, ConstructorErrors) {
  AddRam("meta", 1 << 20);
  AddRam("data", 1 << 20);
  AddRam("zeros", 1 << 20);
  AddRam("junk", 1 << 20);
  Write(*registry_.Find("junk"), 0, Bytes(4096, 0x5a));
  struct Case {
    std::string text;
    std::string error;
  };
  const Case cases[] = {
      {"0 2048 thin-pool meta data 128", "expected <metadata dev> <data dev>"},
      {"0 2048 thin-pool meta data 100 0", "not a multiple of 128 sectors"},
      {"0 2048 thin-pool meta data 0 0", "not a multiple of 128 sectors"},
      {"0 2048 thin-pool meta data 4194304 0", "is larger than 2097152"},
      {"0 2048 thin-pool meta data x 0", "data block size 'x' is not a decimal number"},
      {"0 2048 thin-pool meta data 128 y", "low water mark 'y'"},
      {"0 2048 thin-pool meta data 128 0 2 read_only", "does not match the 1 words"},
      {"0 2048 thin-pool meta data 128 0 1 fast", "unknown feature 'fast'"},
      {"0 2048 thin-pool meta data 128 0 2 read_only read_only", "read_only is given twice"},
      {"0 2048 thin-pool nometa data 128 0", "metadata device: device 'nometa' does not exist"},
      {"0 4096 thin-pool meta data 128 0", "data device: device 'data' has 2048 sectors"},
      {"0 2048 thin-pool junk data 128 0", "no valid superblock"},
      {"0 2048 thin-pool zeros data 128 0 1 read_only", "is blank; load the pool without"},
      {"0 2048 thin pool", "expected <pool dev> <dev id>"},
      {"0 2048 thin nopool 1", "pool device 'nopool' does not exist"},
      {"0 2048 thin data 1", "'data' is not a pool"},
      {"0 2048 thin data 16777216", "thin device id 16777216 is larger than 16777215"},
  };
  for (const Case& c : cases) {
    EXPECT_NE(BuildError(c.text).find(c.error), std::string::npos)
        << c.text << " -> " << BuildError(c.text);
  }
  // Without a reactor and a mover.
  auto t = Table::Parse("0 2048 thin-pool meta data 128 0", Options());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("needs a reactor and a data mover"), std::string::npos);
  // A thin id the pool does not know; a different block size over formatted metadata.
  auto pool = MakePool(16, "", false);
  ASSERT_NE(pool, nullptr);
  EXPECT_NE(BuildError("0 2048 thin pool 3").find("has no thin device 3; send it 'create_thin 3'"),
            std::string::npos);
  EXPECT_NE(BuildError("0 2048 thin-pool meta data 256 0").find("in use by another pool"),
            std::string::npos);
  EXPECT_NE(Msg(*pool, "create_thin").status().message().find("thin-pool messages"),
            std::string::npos);
  EXPECT_TRUE(Msg(*pool, "create_thin 1").ok());
  EXPECT_EQ(Msg(*pool, "create_thin 1").status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(Msg(*pool, "delete 9").status().code(), StatusCode::kNotFound);
}

TEST_F(ThinTargetTest, ProvisionZeroFillsAndReadsZeroes) {
  auto pool = MakePool(16);
  auto thin = MakeThin("t", 1, 2 << 20);
  EXPECT_EQ(Read(*thin, 0, 256), Bytes(256 * 512, 0));
  // The data device holds junk: a new block must not show it.
  Write(*data_, 0, Bytes(kBlock, 0xee));
  Write(*thin, 2, Bytes(1024, 0x11));
  std::vector<uint8_t> want = Bytes(kBlock, 0);
  std::fill(want.begin() + 1024, want.begin() + 2048, 0x11);
  EXPECT_EQ(Read(*thin, 0, 128), want);
  EXPECT_EQ(thin->StatusText(), "0 4096 thin 128 127\n");
  EXPECT_NE(pool->StatusText().find(" 1/16 - rw discard_passdown queue_if_no_space - 0"),
            std::string::npos)
      << pool->StatusText();
  auto e = thin->Provisioning(Lba(0), BlockCount(4096));
  EXPECT_TRUE(e.mapped);
  EXPECT_EQ(e.blocks.value(), 128u);
  e = thin->Provisioning(Lba(128), BlockCount(1000));
  EXPECT_FALSE(e.mapped);
  EXPECT_EQ(e.blocks.value(), 1000u);
}

TEST_F(ThinTargetTest, SkipBlockZeroingLeavesTheRestOfTheBlock) {
  auto pool = MakePool(16, " 1 skip_block_zeroing");
  auto thin = MakeThin("t", 1, 1 << 20);
  Write(*data_, 0, Bytes(kBlock, 0xee));
  Write(*thin, 0, Bytes(512, 0x11));
  std::vector<uint8_t> got = Read(*thin, 0, 128);
  EXPECT_EQ(got[0], 0x11);
  EXPECT_EQ(got[512], 0xee);
}

TEST_F(ThinTargetTest, MappingAtBoundaries) {
  auto pool = MakePool(16);
  auto thin = MakeThin("t", 1, 1 << 20);  // 16 blocks, last sector 2047
  std::vector<uint8_t> across(4096);
  for (size_t i = 0; i < across.size(); ++i) across[i] = static_cast<uint8_t>(i * 7);
  Write(*thin, 124, across);  // the last 2 KiB of block 0, the first 2 KiB of block 1
  EXPECT_EQ(Read(*thin, 124, 8), across);
  Write(*thin, 2047, Bytes(512, 0x33));
  EXPECT_EQ(Read(*thin, 2047, 1), Bytes(512, 0x33));
  EXPECT_EQ(Meta().FindDevice(1)->map.size(), 3u);
  EXPECT_EQ(Io(*thin, IoOp::kRead, 2047, 2), IoStatus::kInvalid);  // past the end
  // The pool volume itself maps to the data device.
  EXPECT_EQ(Read(*pool, 0, 1).size(), 512u);
}

// Random writes to an origin and its snapshots against a byte model, with the metadata's
// invariants checked after each step.
TEST_F(ThinTargetTest, SnapshotsCopyOnWriteModelChecked) {
  auto pool = MakePool(64);
  constexpr uint64_t kSize = 512 << 10;  // 8 blocks per thin
  std::vector<std::shared_ptr<Volume>> thins = {MakeThin("origin", 1, kSize)};
  std::vector<std::vector<uint8_t>> model = {Bytes(kSize, 0)};
  std::mt19937 rng(7);
  for (int step = 0; step < 120; ++step) {
    if (step % 30 == 10 && thins.size() < 4) {
      const size_t from = rng() % thins.size();
      const uint32_t id = static_cast<uint32_t>(thins.size() + 1);
      ASSERT_TRUE(
          Msg(*pool, "create_snap " + std::to_string(id) + " " + std::to_string(from + 1)).ok());
      thins.push_back(MakeThin("snap" + std::to_string(id), id, kSize, false));
      model.push_back(model[from]);
    }
    const size_t i = rng() % thins.size();
    const uint64_t sectors = 1 + rng() % 300;
    const uint64_t lba = rng() % (kSize / 512 - sectors + 1);
    std::vector<uint8_t> data(sectors * 512);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    if (rng() % 8 == 0) {
      ASSERT_EQ(Io(*thins[i], IoOp::kWriteZeroes, lba, sectors), IoStatus::kOk);
      std::fill(data.begin(), data.end(), 0);
    } else {
      Write(*thins[i], lba, data, rng() % 5 == 0 ? block::kIoFua : 0);
    }
    std::copy(data.begin(), data.end(), model[i].begin() + static_cast<ptrdiff_t>(lba * 512));
    for (size_t k = 0; k < thins.size(); ++k) {
      ASSERT_EQ(Read(*thins[k], 0, kSize / 512), model[k]) << "step " << step << " thin " << k;
    }
    ASSERT_TRUE(Meta().Check().ok()) << Meta().Check().ToString();
  }
}

TEST_F(ThinTargetTest, DiscardsPassDownAfterCommit) {
  auto pool = MakePool(16);
  auto thin = MakeThin("t", 1, 1 << 20);
  Write(*thin, 0, Bytes(2 * kBlock, 0x55));
  ASSERT_EQ(Flush(*thin), IoStatus::kOk);
  EXPECT_EQ(Io(*thin, IoOp::kDiscard, 0, 128 + 64), IoStatus::kOk);  // 1.5 blocks: 1 unmapped
  EXPECT_EQ(Read(*thin, 0, 128), Bytes(kBlock, 0));
  EXPECT_EQ(Read(*data_, 0, 128), Bytes(kBlock, 0x55));  // freed only at commit
  ASSERT_EQ(Flush(*thin), IoStatus::kOk);
  Drain();
  EXPECT_EQ(Read(*data_, 0, 128), Bytes(kBlock, 0));
  EXPECT_EQ(Read(*data_, 128, 128), Bytes(kBlock, 0x55));
  EXPECT_EQ(Meta().used_data_blocks(), 1u);
}

TEST_F(ThinTargetTest, NoDiscardPassdownKeepsData) {
  auto pool = MakePool(16, " 1 no_discard_passdown");
  auto thin = MakeThin("t", 1, 1 << 20);
  Write(*thin, 0, Bytes(kBlock, 0x55));
  EXPECT_EQ(Io(*thin, IoOp::kDiscard, 0, 128), IoStatus::kOk);
  ASSERT_EQ(Flush(*thin), IoStatus::kOk);
  Drain();
  EXPECT_EQ(Read(*thin, 0, 128), Bytes(kBlock, 0));
  EXPECT_EQ(Read(*data_, 0, 128), Bytes(kBlock, 0x55));
  EXPECT_NE(pool->StatusText().find("no_discard_passdown"), std::string::npos);
}

TEST_F(ThinTargetTest, ErrorIfNoSpaceFailsAtOnce) {
  auto pool = MakePool(4, " 1 error_if_no_space");
  auto thin = MakeThin("t", 1, 1 << 20);
  Write(*thin, 0, Bytes(4 * kBlock, 1));
  EXPECT_EQ(Io(*thin, IoOp::kWrite, 4 * 128, 1), IoStatus::kNoSpace);
  EXPECT_NE(pool->StatusText().find("out_of_data_space"), std::string::npos);
  // Overwrites need no space.
  EXPECT_EQ(Io(*thin, IoOp::kWrite, 0, 1, 9), IoStatus::kOk);
}

TEST_F(ThinTargetTest, QueueIfNoSpaceWaitsForFreedBlocks) {
  auto pool = MakePool(4);
  auto thin = MakeThin("t", 1, 1 << 20);
  Write(*thin, 0, Bytes(4 * kBlock, 1));
  ASSERT_EQ(Flush(*thin), IoStatus::kOk);
  auto queued = Start(*thin, IoOp::kWrite, 5 * 128, 1, 0x77);
  Drain();
  EXPECT_FALSE(queued->done());
  EXPECT_NE(pool->StatusText().find("out_of_data_space"), std::string::npos);
  // Freeing a block lets the write through once the discard commits.
  EXPECT_EQ(Io(*thin, IoOp::kDiscard, 0, 128), IoStatus::kOk);
  EXPECT_EQ(Wait(*queued), IoStatus::kOk);
  EXPECT_EQ(Read(*thin, 5 * 128, 1), Bytes(512, 0x77));
  EXPECT_NE(pool->StatusText().find(" rw "), std::string::npos);
}

TEST_F(ThinTargetTest, QueueIfNoSpaceTimesOut) {
  auto pool = MakePool(1);
  auto thin = MakeThin("t", 1, 1 << 20);
  ASSERT_TRUE(Msg(*pool, "no_space_timeout 1").ok());
  Write(*thin, 0, Bytes(kBlock, 1));
  auto queued = Start(*thin, IoOp::kWrite, 128, 1, 0x77);
  EXPECT_EQ(Wait(*queued), IoStatus::kNoSpace);  // after about a second (the pool's tick)
}

TEST_F(ThinTargetTest, ReloadWithABiggerDataDeviceWakesQueuedWrites) {
  AddRam("meta", 1 << 20);
  AddRam("d0", 2 * kBlock);
  AddRam("d1", 2 * kBlock);
  auto datavol = Vol("datavol", "0 256 linear d0 0");
  auto pool = Vol("pool", "0 256 thin-pool meta datavol 128 0");
  auto thin = MakeThin("t", 1, 1 << 20);
  Write(*thin, 0, Bytes(2 * kBlock, 1));
  auto queued = Start(*thin, IoOp::kWrite, 2 * 128, 1, 0x77);
  Drain();
  EXPECT_FALSE(queued->done());
  // Grow the data volume, then reload the pool table over it: the live pool grows.
  ASSERT_TRUE(datavol->Load(Build("0 256 linear d0 0\n256 256 linear d1 0").value()).ok());
  SuspendResume(*datavol);
  ASSERT_TRUE(pool->Load(Build("0 512 thin-pool meta datavol 128 0").value()).ok());
  SuspendResume(*pool);
  EXPECT_EQ(Wait(*queued), IoStatus::kOk);
  EXPECT_EQ(Read(*thin, 2 * 128, 1), Bytes(512, 0x77));
  EXPECT_EQ(Meta().data_blocks(), 4u);
  ASSERT_EQ(Flush(*thin), IoStatus::kOk);
  EXPECT_NE(pool->StatusText().find(" 3/4 - rw "), std::string::npos) << pool->StatusText();
  EXPECT_TRUE(Meta().Check().ok());
}

TEST_F(ThinTargetTest, ReopenReadsTheSame) {
  std::vector<uint8_t> a(3 * kBlock);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint8_t>(i / 512 + 3);
  {
    auto pool = MakePool(16);
    auto thin = MakeThin("t", 1, 1 << 20);
    Write(*thin, 64, a);
    ASSERT_TRUE(Msg(*pool, "create_snap 2 1").ok());
    Write(*thin, 64, Bytes(512, 0xcc), block::kIoFua);
    ASSERT_TRUE(thin->Remove().ok());
    ASSERT_TRUE(pool->Remove().ok());
    ASSERT_TRUE(registry_.Remove("t").ok());
    ASSERT_TRUE(registry_.Remove("pool").ok());
    vols_.clear();
    Drain();
  }
  auto pool = MakePool(16, "", false);
  ASSERT_NE(pool, nullptr);
  auto thin = MakeThin("t", 1, 1 << 20, false);
  auto snap = MakeThin("s", 2, 1 << 20, false);
  EXPECT_EQ(Read(*snap, 64, 3 * 128), a);
  std::vector<uint8_t> b = a;
  std::fill(b.begin(), b.begin() + 512, 0xcc);
  EXPECT_EQ(Read(*thin, 64, 3 * 128), b);
  EXPECT_TRUE(Meta().Check().ok());
}

// ferryd flushes every backstore when it stops: a flush of the pool volume itself must
// commit what the pool has not committed yet (a provisioned block, a new thin device).
TEST_F(ThinTargetTest, AFlushOfThePoolCommitsTheMetadata) {
  auto pool = MakePool(16);
  auto thin = MakeThin("t", 1, 1 << 20);
  Write(*thin, 0, Bytes(512, 0x5a));  // provisions a block; committed by a flush or FUA only
  ASSERT_TRUE(Meta().dirty());
  ASSERT_EQ(Flush(*pool), IoStatus::kOk);
  EXPECT_FALSE(Meta().dirty());
}

TEST_F(ThinTargetTest, SuspendDrainsInFlightIo) {
  auto pool = MakePool(16);
  auto thin = MakeThin("t", 1, 1 << 20);
  std::vector<std::unique_ptr<volume::testing::Pending>> ios;
  for (int i = 0; i < 8; ++i) ios.push_back(Start(*thin, IoOp::kWrite, i * 100, 50, i + 1));
  std::optional<Status> suspended;
  thin->Suspend(std::chrono::seconds(5), [&](Status s) { suspended.emplace(std::move(s)); });
  auto late = Start(*thin, IoOp::kRead, 0, 8);
  reactor_->RunUntil([&] { return suspended.has_value(); });
  EXPECT_TRUE(suspended->ok());
  for (auto& p : ios) EXPECT_TRUE(p->done() && p->status == IoStatus::kOk);
  EXPECT_FALSE(late->done());
  ASSERT_TRUE(thin->Resume().ok());
  EXPECT_EQ(Wait(*late), IoStatus::kOk);
  EXPECT_EQ(late->buf, Bytes(8 * 512, 1));
}

}  // namespace
}  // namespace ferry::volume::thin
