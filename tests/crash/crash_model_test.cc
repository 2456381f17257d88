#include "crash_model.h"

#include <gtest/gtest.h>

namespace ferry::crash_test {
namespace {

const Content kA{.origin_lba = 3, .gen = 1};
const Content kB{.origin_lba = 3, .gen = 2};
const Content kC{.origin_lba = 3, .gen = 3};
const Content kZero{};

TEST(CrashBlock, RoundTripsAndRejectsTornBlocks) {
  std::vector<uint8_t> b(4096);
  FillBlock(kB, b);
  EXPECT_EQ(DecodeBlock(b), kB);
  b[2000] ^= 1;  // one flipped bit anywhere: not this write's block
  EXPECT_EQ(DecodeBlock(b), std::nullopt);
  std::vector<uint8_t> torn(4096);
  FillBlock(kA, torn);
  std::vector<uint8_t> other(4096);
  FillBlock(kB, other);
  std::copy(other.begin() + 2048, other.end(), torn.begin() + 2048);  // half old, half new
  EXPECT_EQ(DecodeBlock(torn), std::nullopt);
  FillBlock(kZero, b);
  EXPECT_EQ(DecodeBlock(b), kZero);
  std::vector<uint8_t> small(512);
  FillBlock(kC, small);
  EXPECT_EQ(DecodeBlock(small), kC);
}

TEST(CrashModel, AnAcknowledgedWriteWithoutSyncMayBeLost) {
  Model m(8);
  m.Issue(3, kA);
  m.Ack(3, /*fua=*/false);
  EXPECT_EQ(m.Check(3, kZero), "");
  EXPECT_EQ(m.Check(3, kA), "");
  EXPECT_NE(m.Check(3, kB), "");
}

TEST(CrashModel, FuaMakesAWriteDurable) {
  Model m(8);
  m.Issue(3, kA);
  m.Ack(3, /*fua=*/true);
  EXPECT_NE(m.Check(3, kZero), "");
  EXPECT_EQ(m.Check(3, kA), "");
}

TEST(CrashModel, ASyncCoversOnlyWritesCompletedBeforeItWasSent) {
  Model m(8);
  m.Issue(3, kA);
  m.Ack(3, false);
  const uint64_t mark = m.SyncIssued();
  m.Issue(3, kB);
  m.Ack(3, false);  // completed after the sync was sent: not covered
  m.SyncDone(mark);
  EXPECT_NE(m.Check(3, kZero), "") << "A was made durable by the sync";
  EXPECT_EQ(m.Check(3, kA), "");
  EXPECT_EQ(m.Check(3, kB), "");
  m.SyncDone(m.SyncIssued());
  EXPECT_NE(m.Check(3, kA), "") << "B is durable now";
}

TEST(CrashModel, InFlightAndFailedWritesMayOrMayNotHaveLanded) {
  Model m(8);
  m.Issue(3, kA);
  m.Ack(3, true);
  m.Issue(3, kB);
  m.Fail(3);
  EXPECT_EQ(m.Known(3), std::nullopt);
  m.Issue(3, kC);
  EXPECT_TRUE(m.busy(3));
  EXPECT_EQ(m.Check(3, kA), "");
  EXPECT_EQ(m.Check(3, kB), "");
  EXPECT_EQ(m.Check(3, kC), "");
  EXPECT_NE(m.Check(3, kZero), "");
  m.Ack(3, false);
  EXPECT_EQ(m.Known(3), kC);
}

TEST(CrashModel, WithoutACrashAReadSeesTheNewestAcknowledgedWrite) {
  Model m(8);
  m.Issue(3, kA);
  m.Ack(3, /*fua=*/true);
  m.Issue(3, kB);
  m.Ack(3, /*fua=*/false);  // not durable, but a read must see it
  EXPECT_EQ(m.Check(3, kA), "") << "a crash may lose B";
  EXPECT_NE(m.CheckVisible(3, kA), "") << "without a crash, A is an old write";
  EXPECT_EQ(m.CheckVisible(3, kB), "");
  m.Issue(3, kC);
  m.Fail(3);  // aborted: C may or may not have landed
  EXPECT_EQ(m.CheckVisible(3, kB), "");
  EXPECT_EQ(m.CheckVisible(3, kC), "");
  EXPECT_NE(m.CheckVisible(3, kZero), "");
}

TEST(CrashModel, ACancelledStepLeavesTheBlockAsItWas) {
  Model m(8);
  m.Issue(3, kA);
  m.Ack(3, false);
  m.Issue(3, kB);
  m.Cancel(3);
  EXPECT_FALSE(m.busy(3));
  EXPECT_EQ(m.Known(3), kA);
  EXPECT_NE(m.CheckVisible(3, kB), "");
}

TEST(CrashModel, SavesAndLoadsEveryState) {
  Model m(16);
  m.Issue(1, kA);
  m.Ack(1, true);
  m.Issue(2, kB);
  m.Ack(2, false);
  m.Issue(2, kC);
  m.Issue(5, kA);
  m.Fail(5);
  auto back = Model::Load(m.Save());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->Save(), m.Save());
  EXPECT_EQ(back->acked(), m.acked());
  EXPECT_NE(back->Check(1, kZero), "");
  EXPECT_EQ(back->Check(2, kC), "");
  EXPECT_EQ(back->NewGen(), m.NewGen());
  EXPECT_FALSE(Model::Load("not a model").has_value());
  EXPECT_FALSE(Model::Load("ferry-crash-model 1 4 0 0\n9 0 1 0\n").has_value())
      << "LBA past the end";
}

TEST(CrashModel, ObserveMakesTheContentDurable) {
  Model m(8);
  m.Issue(3, kA);
  m.Ack(3, false);
  ASSERT_EQ(m.Check(3, kZero), "");
  m.Observe(3, kZero);
  EXPECT_NE(m.Check(3, kA), "");
}

}  // namespace
}  // namespace ferry::crash_test
