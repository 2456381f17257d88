#include "volume/thin/pool_metadata.h"

#include <gtest/gtest.h>

#include <vector>

#include "backends/faulty/faulty_device.h"
#include "backends/ram/ram_device.h"
#include "io/reactor.h"
#include "volume/thin/testing/crash_device.h"
#include "volume/thin/testing/pool_sync.h"

namespace ferry::volume::thin {
namespace {

using testing::CommitSync;
using testing::FormatSync;
using testing::OpenSync;

class PoolMetadataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reactor_ = std::move(io::Reactor::Create()).value();
    meta_ = *backends::RamDevice::Create({.name = "meta", .size_bytes = 1 << 20});
  }

  std::unique_ptr<PoolMetadata> Format(uint64_t data_blocks, block::BlockDevice* dev = nullptr) {
    auto pool = FormatSync(*reactor_, dev ? *dev : *meta_, {.data_blocks = data_blocks});
    EXPECT_TRUE(pool.ok()) << pool.status().ToString();
    return pool.ok() ? std::move(*pool) : nullptr;
  }
  std::unique_ptr<PoolMetadata> Reopen(block::BlockDevice* dev = nullptr) {
    auto pool = OpenSync(*reactor_, dev ? *dev : *meta_);
    EXPECT_TRUE(pool.ok()) << pool.status().ToString();
    if (!pool.ok()) return nullptr;
    EXPECT_TRUE((*pool)->Check().ok()) << (*pool)->Check().ToString();
    return std::move(*pool);
  }
  uint64_t Write(PoolMetadata& p, uint32_t dev, uint64_t vblock) {
    auto plan = p.PrepareWrite(dev, vblock);
    EXPECT_TRUE(plan.ok()) << plan.status().ToString();
    return plan.ok() ? plan->data_block : UINT64_MAX;
  }
  std::optional<uint64_t> Mapped(PoolMetadata& p, uint32_t dev, uint64_t vblock) {
    auto f = p.Find(dev, vblock);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    if (!f.ok() || !f->has_value()) return std::nullopt;
    return (*f)->data_block;
  }

  std::unique_ptr<io::Reactor> reactor_;
  std::shared_ptr<backends::RamDevice> meta_;
};

TEST_F(PoolMetadataTest, FormatGivesAnEmptyPoolThatReopens) {
  auto pool = Format(1000);
  EXPECT_EQ(pool->txn(), 1u);
  EXPECT_EQ(pool->free_data_blocks(), 1000u);
  EXPECT_TRUE(pool->Check().ok());
  auto again = Reopen();
  EXPECT_EQ(again->txn(), 1u);
  EXPECT_EQ(again->data_blocks(), 1000u);
  EXPECT_EQ(again->data_block_bytes(), 65536u);
  EXPECT_TRUE(again->state().devices.empty());
}

TEST_F(PoolMetadataTest, GrowAddsFreeBlocksThatTheNextCommitRecords) {
  auto pool = Format(2);
  ASSERT_TRUE(pool->CreateThin(1, 10).ok());
  Write(*pool, 1, 0);
  Write(*pool, 1, 1);
  EXPECT_EQ(pool->PrepareWrite(1, 2).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(pool->Grow(1).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(pool->Grow(4).ok());
  EXPECT_EQ(Write(*pool, 1, 2), 2u);
  EXPECT_TRUE(pool->Check().ok());
  // Not committed: a reopen finds the old size.
  EXPECT_EQ(Reopen()->data_blocks(), 2u);
  ASSERT_TRUE(testing::CommitSync(*reactor_, *pool).ok());
  auto again = Reopen();
  EXPECT_EQ(again->data_blocks(), 4u);
  EXPECT_EQ(Mapped(*again, 1, 2), 2u);
}

TEST_F(PoolMetadataTest, FormatRejectsBadArguments) {
  EXPECT_FALSE(FormatSync(*reactor_, *meta_, {.data_blocks = 0}).ok());
  auto tiny = *backends::RamDevice::Create({.name = "tiny", .size_bytes = 16 << 10});
  auto st = FormatSync(*reactor_, *tiny, {.data_blocks = 10}).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("smaller than"), std::string::npos) << st.ToString();
}

TEST_F(PoolMetadataTest, OpenOfBlankDeviceSaysNoSuperblock) {
  auto st = OpenSync(*reactor_, *meta_).status();
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("no valid superblock"), std::string::npos) << st.ToString();
}

TEST_F(PoolMetadataTest, ProvisionThenOverwriteInPlace) {
  auto pool = Format(100);
  ASSERT_TRUE(pool->CreateThin(1, 50).ok());
  auto first = pool->PrepareWrite(1, 7);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->action, WriteAction::kProvision);
  auto second = pool->PrepareWrite(1, 7);
  EXPECT_EQ(second->action, WriteAction::kOverwrite);
  EXPECT_EQ(second->data_block, first->data_block);
  EXPECT_EQ(pool->used_data_blocks(), 1u);
  EXPECT_EQ(pool->state().refcount[first->data_block], 1u);
  EXPECT_FALSE((*pool->Find(1, 7))->shared);
  EXPECT_FALSE(pool->Find(1, 8)->has_value());
  EXPECT_TRUE(pool->Check().ok());
}

TEST_F(PoolMetadataTest, ArgumentErrors) {
  auto pool = Format(100);
  ASSERT_TRUE(pool->CreateThin(1, 50).ok());
  EXPECT_EQ(pool->CreateThin(1, 50).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(pool->CreateThin(2, 0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(pool->CreateThin(format::kNoOrigin, 5).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(pool->PrepareWrite(9, 0).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(pool->PrepareWrite(1, 50).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(pool->Discard(1, 40, 11).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(pool->ShareRange(1, 0, 9, 0, 1).code(), StatusCode::kNotFound);
  EXPECT_EQ(pool->CreateSnapshot(9, 3).code(), StatusCode::kNotFound);
  EXPECT_EQ(pool->CreateSnapshot(1, 1).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(pool->DeleteThin(9).code(), StatusCode::kNotFound);
  EXPECT_EQ(pool->Find(1, 50).status().code(), StatusCode::kOutOfRange);
}

TEST_F(PoolMetadataTest, SnapshotSharesBlocksAndWritesCopyOnWrite) {
  auto pool = Format(100);
  ASSERT_TRUE(pool->CreateThin(1, 10).ok());
  for (uint64_t v = 0; v < 3; ++v) Write(*pool, 1, v);
  ASSERT_TRUE(pool->CreateSnapshot(1, 2).ok());
  EXPECT_EQ(pool->FindDevice(2)->origin, 1u);
  EXPECT_EQ(pool->used_data_blocks(), 3u);
  const uint64_t shared = *Mapped(*pool, 1, 0);
  EXPECT_EQ(*Mapped(*pool, 2, 0), shared);
  EXPECT_TRUE((*pool->Find(2, 0))->shared);
  EXPECT_EQ(pool->state().refcount[shared], 2u);

  auto cow = pool->PrepareWrite(2, 0);
  ASSERT_TRUE(cow.ok());
  EXPECT_EQ(cow->action, WriteAction::kCopyOnWrite);
  EXPECT_EQ(cow->copy_from, shared);
  EXPECT_NE(cow->data_block, shared);
  EXPECT_EQ(pool->state().refcount[shared], 1u);
  // The origin's block is no longer shared: it is written in place.
  EXPECT_EQ(pool->PrepareWrite(1, 0)->action, WriteAction::kOverwrite);
  EXPECT_EQ(pool->used_data_blocks(), 4u);
  EXPECT_TRUE(pool->Check().ok());
}

TEST_F(PoolMetadataTest, BlockSharedInTheCommittedStateIsCopiedUntilTheUnshareCommits) {
  auto pool = Format(100);
  ASSERT_TRUE(pool->CreateThin(1, 10).ok());
  const uint64_t block = Write(*pool, 1, 0);
  ASSERT_TRUE(pool->CreateSnapshot(1, 2).ok());
  ASSERT_TRUE(CommitSync(*reactor_, *pool).ok());
  // The snapshot goes away, but only in memory: a crash brings it back, mapping `block`.
  ASSERT_TRUE(pool->DeleteThin(2).ok());
  EXPECT_EQ(pool->state().refcount[block], 1u);
  EXPECT_TRUE((*pool->Find(1, 0))->shared);
  auto plan = pool->PrepareWrite(1, 0);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->action, WriteAction::kCopyOnWrite);
  EXPECT_EQ(plan->copy_from, block);
  ASSERT_TRUE(CommitSync(*reactor_, *pool).ok());
  // Once committed, the new block is written in place.
  EXPECT_EQ(pool->PrepareWrite(1, 0)->action, WriteAction::kOverwrite);
}

TEST_F(PoolMetadataTest, DeleteReleasesOnlyUnsharedBlocks) {
  auto pool = Format(100);
  ASSERT_TRUE(pool->CreateThin(1, 10).ok());
  for (uint64_t v = 0; v < 4; ++v) Write(*pool, 1, v);
  ASSERT_TRUE(pool->CreateSnapshot(1, 2).ok());
  Write(*pool, 2, 0);  // copy-on-write: one block private to the snapshot
  ASSERT_TRUE(pool->DeleteThin(1).ok());
  EXPECT_EQ(pool->used_data_blocks(), 4u);
  EXPECT_EQ(pool->FindDevice(1), nullptr);
  ASSERT_TRUE(pool->DeleteThin(2).ok());
  EXPECT_EQ(pool->used_data_blocks(), 0u);
  EXPECT_TRUE(pool->Check().ok());
  ASSERT_TRUE(CommitSync(*reactor_, *pool).ok());
  EXPECT_EQ(pool->free_data_blocks(), 100u);
}

TEST_F(PoolMetadataTest, ShareRangeRemapsDestinationAndReleasesItsBlocks) {
  auto pool = Format(100);
  ASSERT_TRUE(pool->CreateThin(1, 10).ok());
  ASSERT_TRUE(pool->CreateThin(2, 10).ok());
  for (uint64_t v = 0; v < 3; ++v) Write(*pool, 1, v);  // 1: blocks 0..2 mapped, 3 not
  std::vector<uint64_t> old_dst;
  for (uint64_t v = 0; v < 4; ++v) old_dst.push_back(Write(*pool, 2, v));
  ASSERT_TRUE(pool->ShareRange(1, 0, 2, 0, 4).ok());
  for (uint64_t v = 0; v < 3; ++v) {
    EXPECT_EQ(Mapped(*pool, 2, v), Mapped(*pool, 1, v));
    EXPECT_EQ(pool->state().refcount[*Mapped(*pool, 1, v)], 2u);
  }
  EXPECT_FALSE(Mapped(*pool, 2, 3).has_value());  // the source hole is copied as a hole
  for (uint64_t d : old_dst) EXPECT_EQ(pool->state().refcount[d], 0u);
  EXPECT_EQ(pool->used_data_blocks(), 3u);
  EXPECT_TRUE(pool->Check().ok());
  // Sharing a range with itself changes nothing.
  ASSERT_TRUE(pool->ShareRange(1, 0, 1, 0, 3).ok());
  EXPECT_EQ(pool->state().refcount[*Mapped(*pool, 1, 0)], 2u);
  EXPECT_TRUE(pool->Check().ok());
}

TEST_F(PoolMetadataTest, ShareRangeOverlappingOnOneDeviceIsMemmove) {
  auto pool = Format(100);
  ASSERT_TRUE(pool->CreateThin(1, 10).ok());
  std::vector<uint64_t> blocks;
  for (uint64_t v = 0; v < 4; ++v) blocks.push_back(Write(*pool, 1, v));
  ASSERT_TRUE(pool->ShareRange(1, 0, 1, 2, 4).ok());  // 0..3 -> 2..5
  EXPECT_EQ(Mapped(*pool, 1, 0), blocks[0]);
  EXPECT_EQ(Mapped(*pool, 1, 1), blocks[1]);
  for (uint64_t i = 0; i < 4; ++i) EXPECT_EQ(Mapped(*pool, 1, 2 + i), blocks[i]);
  EXPECT_EQ(pool->state().refcount[blocks[0]], 2u);
  EXPECT_EQ(pool->state().refcount[blocks[2]], 1u);
  EXPECT_TRUE(pool->Check().ok());
}

TEST_F(PoolMetadataTest, DiscardFreesBlocksOnlyAfterCommitAndCallsTheHook) {
  auto pool = Format(100);
  std::vector<std::pair<uint64_t, uint64_t>> discarded;
  pool->set_discard_hook([&](uint64_t first, uint64_t count) {
    discarded.push_back({first, count});
  });
  ASSERT_TRUE(pool->CreateThin(1, 10).ok());
  for (uint64_t v = 0; v < 5; ++v) Write(*pool, 1, v);
  ASSERT_TRUE(CommitSync(*reactor_, *pool).ok());
  ASSERT_TRUE(pool->Discard(1, 1, 3).ok());
  ASSERT_TRUE(pool->Discard(1, 8, 2).ok());  // nothing mapped there
  EXPECT_EQ(pool->used_data_blocks(), 2u);
  EXPECT_EQ(pool->free_data_blocks(), 95u);  // the three stay reserved until the commit
  EXPECT_TRUE(discarded.empty());
  ASSERT_TRUE(CommitSync(*reactor_, *pool).ok());
  EXPECT_EQ(pool->free_data_blocks(), 98u);
  ASSERT_EQ(discarded.size(), 1u);
  EXPECT_EQ(discarded[0], std::make_pair(uint64_t{1}, uint64_t{3}));
  EXPECT_FALSE(Mapped(*pool, 1, 2).has_value());
  EXPECT_TRUE(pool->Check().ok());
}

TEST_F(PoolMetadataTest, OutOfDataSpaceIsResourceExhaustedUntilACommitFreesBlocks) {
  auto pool = Format(4);
  ASSERT_TRUE(pool->CreateThin(1, 10).ok());
  for (uint64_t v = 0; v < 4; ++v) Write(*pool, 1, v);
  auto full = pool->PrepareWrite(1, 4);
  EXPECT_EQ(full.status().code(), StatusCode::kResourceExhausted);
  // In-place overwrites need no space; copy-on-write does.
  EXPECT_EQ(pool->PrepareWrite(1, 0)->action, WriteAction::kOverwrite);
  ASSERT_TRUE(pool->CreateSnapshot(1, 2).ok());
  EXPECT_EQ(pool->PrepareWrite(2, 0).status().code(), StatusCode::kResourceExhausted);
  ASSERT_TRUE(pool->DeleteThin(2).ok());
  ASSERT_TRUE(pool->Discard(1, 0, 1).ok());
  EXPECT_EQ(pool->PrepareWrite(1, 4).status().code(), StatusCode::kResourceExhausted);
  ASSERT_TRUE(CommitSync(*reactor_, *pool).ok());
  EXPECT_EQ(pool->PrepareWrite(1, 4)->action, WriteAction::kProvision);
  EXPECT_TRUE(pool->Check().ok());
}

TEST_F(PoolMetadataTest, CommittedStateReopensAndUncommittedIsLost) {
  auto pool = Format(100);
  ASSERT_TRUE(pool->CreateThin(1, 10).ok());
  for (uint64_t v = 0; v < 5; ++v) Write(*pool, 1, v);
  ASSERT_TRUE(pool->CreateSnapshot(1, 2).ok());
  Write(*pool, 2, 3);
  ASSERT_TRUE(CommitSync(*reactor_, *pool).ok());
  EXPECT_EQ(pool->txn(), 2u);
  PoolState committed = pool->state();
  ASSERT_TRUE(pool->DeleteThin(1).ok());
  auto again = Reopen();
  EXPECT_EQ(again->txn(), 2u);
  EXPECT_EQ(again->state(), committed);
}

TEST_F(PoolMetadataTest, ManyCommitsRollTheChainIntoFullRecordsAndReuseMetadataSpace) {
  auto pool = Format(4096);
  ASSERT_TRUE(pool->CreateThin(1, 4096).ok());
  const uint64_t free_at_start = pool->free_meta_blocks();
  std::mt19937_64 rng(1);
  for (int i = 0; i < 400; ++i) {
    for (int j = 0; j < 20; ++j) Write(*pool, 1, rng() % 4096);
    if (i % 7 == 0) {
      ASSERT_TRUE(pool->Discard(1, rng() % 4000, 64).ok());
    }
    ASSERT_TRUE(CommitSync(*reactor_, *pool).ok()) << i;
  }
  // The chain is bounded: old records were dropped by full ones.
  EXPECT_GT(pool->free_meta_blocks(), free_at_start - 200);
  auto again = Reopen();
  EXPECT_EQ(again->state(), pool->state());
  EXPECT_EQ(again->txn(), 401u);
  EXPECT_TRUE(pool->Check().ok());
}

TEST_F(PoolMetadataTest, MutationsDuringACommitGoToTheNextTransaction) {
  auto pool = Format(100);
  ASSERT_TRUE(pool->CreateThin(1, 10).ok());
  Write(*pool, 1, 0);
  std::optional<Status> first;
  pool->Commit([&](Status st) { first = std::move(st); });
  PoolState at_commit = pool->state();
  Write(*pool, 1, 1);
  std::optional<Status> second;
  pool->Commit([&](Status st) { second = std::move(st); });
  reactor_->RunUntil([&] { return first.has_value() && second.has_value(); });
  ASSERT_TRUE(first->ok());
  EXPECT_EQ(second->code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Reopen()->state(), at_commit);
  ASSERT_TRUE(CommitSync(*reactor_, *pool).ok());
  EXPECT_EQ(Reopen()->state(), pool->state());
}

TEST_F(PoolMetadataTest, FailedCommitKeepsChangesForTheNextOne) {
  auto faulty = std::make_shared<backends::FaultyDevice>(meta_);
  auto pool = Format(100, faulty.get());
  ASSERT_TRUE(pool->CreateThin(1, 10).ok());
  Write(*pool, 1, 0);
  ASSERT_TRUE(pool->Discard(1, 0, 1).ok());
  Write(*pool, 1, 1);
  faulty->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(2048), .on_read = false});
  EXPECT_EQ(CommitSync(*reactor_, *pool).code(), StatusCode::kUnavailable);
  EXPECT_EQ(pool->txn(), 1u);
  EXPECT_TRUE(pool->Check().ok());
  faulty->ClearFaults();
  ASSERT_TRUE(CommitSync(*reactor_, *pool).ok());
  EXPECT_EQ(pool->txn(), 2u);
  EXPECT_EQ(Reopen()->state(), pool->state());
}

TEST_F(PoolMetadataTest, FullMetadataDeviceFailsTheCommitCleanly) {
  auto small = *backends::RamDevice::Create({.name = "small", .size_bytes = 8 * 4096});
  auto pool = Format(65536, small.get());
  ASSERT_TRUE(pool->CreateThin(1, 65536).ok());
  // Every other block: no runs, so ~25 bytes of record per mapping.
  for (uint64_t v = 0; v < 8000; v += 2) Write(*pool, 1, v);
  auto st = CommitSync(*reactor_, *pool);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.ToString();
  EXPECT_NE(st.message().find("metadata device full"), std::string::npos);
  ASSERT_TRUE(pool->DeleteThin(1).ok());
  ASSERT_TRUE(CommitSync(*reactor_, *pool).ok());
  EXPECT_EQ(Reopen(small.get())->state(), pool->state());
}

TEST_F(PoolMetadataTest, FourGiBPoolOfSixtyFourKiBBlocksFullyMapped) {
  auto big = *backends::RamDevice::Create({.name = "big", .size_bytes = 16 << 20});
  auto pool = Format(65536, big.get());
  ASSERT_TRUE(pool->CreateThin(1, 65536).ok());
  for (uint64_t v = 0; v < 65536; ++v) Write(*pool, 1, v);
  ASSERT_TRUE(pool->CreateSnapshot(1, 2).ok());
  for (uint64_t v = 0; v < 65536; v += 3) ASSERT_TRUE(pool->Discard(2, v, 1).ok());
  ASSERT_TRUE(CommitSync(*reactor_, *pool).ok());
  EXPECT_EQ(pool->free_data_blocks(), 0u);
  auto again = Reopen(big.get());
  EXPECT_EQ(again->state(), pool->state());
  EXPECT_EQ(again->used_data_blocks(), 65536u);
}

TEST_F(PoolMetadataTest, DamagedNewestSuperblockFallsBackToThePreviousCommit) {
  auto pool = Format(100);
  ASSERT_TRUE(pool->CreateThin(1, 10).ok());
  ASSERT_TRUE(CommitSync(*reactor_, *pool).ok());  // txn 2 in slot 1
  PoolState at_two = pool->state();
  Write(*pool, 1, 0);
  ASSERT_TRUE(CommitSync(*reactor_, *pool).ok());  // txn 3 in slot 0
  // Tear slot 0 (one 512-byte sector of garbage).
  std::vector<uint8_t> junk(512, 0x5a);
  iovec iov{junk.data(), junk.size()};
  block::IoRequest req{
      .op = block::IoOp::kWrite, .lba = Lba(1), .blocks = BlockCount(1), .iov = &iov, .iovcnt = 1};
  bool done = false;
  req.done = [&](IoStatus) { done = true; };
  meta_->Submit(req);
  reactor_->RunUntil([&] { return done; });
  auto again = Reopen();
  EXPECT_EQ(again->txn(), 2u);
  EXPECT_EQ(again->state(), at_two);
}

TEST_F(PoolMetadataTest, CheckStateFindsLeaksAndDoubleOwnership) {
  PoolState s;
  s.refcount = {1, 0, 2, 1};
  s.devices[1].virtual_blocks = 10;
  s.devices[1].map = {{0, 0}, {1, 1}, {2, 2}};  // block 1 reached, refcount 0; block 2 once of 2
  EXPECT_TRUE(CheckState(PoolState{}).ok());
  Status st = CheckState(s);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("data block 1: refcount 0, reached by 1"), std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find("owned more times than counted"), std::string::npos);
  EXPECT_NE(st.message().find("over-counted"), std::string::npos);
  EXPECT_NE(st.message().find("data block 3"), std::string::npos);
  EXPECT_NE(st.message().find("(leaked)"), std::string::npos);
  s.devices[1].map[20] = 9;
  EXPECT_NE(CheckState(s).message().find("beyond its size"), std::string::npos);
}

}  // namespace
}  // namespace ferry::volume::thin
