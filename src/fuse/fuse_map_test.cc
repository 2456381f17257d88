#include "fuse/fuse_map.h"

#include <gtest/gtest.h>
#include <linux/falloc.h>

#include <cerrno>
#include <vector>

namespace ferry::fuse {
namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;

TEST(PlanCopy, CopiesWhatBothDevicesHold) {
  const CopyPlan p = PlanCopy({.off_in = 4096,
                               .off_out = 0,
                               .len = 1 << 20,
                               .size_in = 8 << 20,
                               .size_out = 8 << 20,
                               .bs_in = 512,
                               .bs_out = 4096});
  EXPECT_EQ(p.error, 0);
  EXPECT_EQ(p.len, 1u << 20);
}

TEST(PlanCopy, LongRequestsAreCutBelowThe32BitReply) {
  // cp asks for SSIZE_MAX; the kernel clamps to the source's end (here 16 GiB).
  const CopyPlan p = PlanCopy({.off_in = 0,
                               .off_out = 0,
                               .len = uint64_t{1} << 62,
                               .size_in = 16 * kGiB,
                               .size_out = 16 * kGiB});
  EXPECT_EQ(p.error, 0);
  EXPECT_EQ(p.len, kMaxCopyReplyBytes);
  EXPECT_LE(p.len, uint64_t{UINT32_MAX});
  EXPECT_EQ(p.len % (1 << 20), 0u);
  // The rest, as the caller asks again from where it stopped.
  const CopyPlan rest = PlanCopy({.off_in = p.len,
                                  .off_out = p.len,
                                  .len = 16 * kGiB - p.len,
                                  .size_in = 16 * kGiB,
                                  .size_out = 16 * kGiB});
  EXPECT_EQ(rest.len, kMaxCopyReplyBytes);
  // A 4 GiB copy takes two requests.
  const CopyPlan four = PlanCopy(
      {.off_in = 0, .off_out = 0, .len = 4 * kGiB, .size_in = 4 * kGiB, .size_out = 4 * kGiB});
  EXPECT_EQ(four.len, 4 * kGiB - (1 << 20));
}

TEST(PlanCopy, ShortAtEitherEnd) {
  EXPECT_EQ(
      PlanCopy({.off_in = 0, .off_out = 0, .len = 1 << 20, .size_in = 4096, .size_out = 1 << 20})
          .len,
      4096u);
  EXPECT_EQ(
      PlanCopy(
          {.off_in = 0, .off_out = 8192, .len = 1 << 20, .size_in = 1 << 20, .size_out = 12288})
          .len,
      4096u);
}

TEST(PlanCopy, PastTheEnds) {
  const CopyPlan src_end =
      PlanCopy({.off_in = 4096, .off_out = 0, .len = 512, .size_in = 4096, .size_out = 4096});
  EXPECT_EQ(src_end.error, 0);
  EXPECT_EQ(src_end.len, 0u);
  EXPECT_EQ(
      PlanCopy({.off_in = 0, .off_out = 4096, .len = 512, .size_in = 4096, .size_out = 4096}).error,
      ENOSPC);
}

TEST(PlanCopy, OffBlocksIsDeclinedNeverEnosys) {
  EXPECT_EQ(
      PlanCopy({.off_in = 100, .off_out = 0, .len = 4096, .size_in = 1 << 20, .size_out = 1 << 20})
          .error,
      EOPNOTSUPP);
  EXPECT_EQ(PlanCopy({.off_in = 0,
                      .off_out = 512,
                      .len = 8192,
                      .size_in = 1 << 20,
                      .size_out = 1 << 20,
                      .bs_in = 512,
                      .bs_out = 4096})
                .error,
            EOPNOTSUPP);
  // Less than a block: declined; more: the whole blocks, the tail comes back as a short copy.
  EXPECT_EQ(
      PlanCopy({.off_in = 0, .off_out = 0, .len = 511, .size_in = 4096, .size_out = 4096}).error,
      EOPNOTSUPP);
  EXPECT_EQ(PlanCopy({.off_in = 0,
                      .off_out = 0,
                      .len = 5000,
                      .size_in = 1 << 20,
                      .size_out = 1 << 20,
                      .bs_in = 4096,
                      .bs_out = 512})
                .len,
            4096u);
}

TEST(WidenToBlocks, CoversTheCallersBytes) {
  BlockSpan s = WidenToBlocks(4096, 8192, 512);
  EXPECT_TRUE(s.aligned());
  EXPECT_EQ(s.first, 4096u);
  EXPECT_EQ(s.len, 8192u);
  s = WidenToBlocks(1000, 100, 512);
  EXPECT_EQ(s.first, 512u);
  EXPECT_EQ(s.len, 1024u);
  EXPECT_EQ(s.head, 488u);
  s = WidenToBlocks(4095, 2, 4096);
  EXPECT_EQ(s.first, 0u);
  EXPECT_EQ(s.len, 8192u);
  EXPECT_EQ(s.head, 4095u);
}

TEST(ClampToDevice, EndOfDevice) {
  EXPECT_EQ(ClampToDevice(0, 10, 100), 10u);
  EXPECT_EQ(ClampToDevice(95, 10, 100), 5u);
  EXPECT_EQ(ClampToDevice(100, 10, 100), 0u);
  EXPECT_EQ(ClampToDevice(200, 10, 100), 0u);
}

// A device of 16 blocks of 512 bytes: blocks 4..7 and 12..13 hold data.
block::ProvisioningExtent Map(Lba lba, BlockCount max) {
  const std::vector<std::pair<uint64_t, bool>> runs = {{0, false}, {4, true},   {8, false},
                                                       {12, true}, {14, false}, {16, false}};
  for (size_t i = 0; i + 1 < runs.size(); ++i) {
    if (lba.value() < runs[i + 1].first) {
      return {runs[i].second, BlockCount(std::min(runs[i + 1].first - lba.value(), max.value()))};
    }
  }
  return {false, max};
}

TEST(SeekProvisioned, DataAndHoles) {
  const uint64_t size = 16 * 512;
  EXPECT_EQ(SeekProvisioned(0, size, 512, true, Map), 4 * 512);
  EXPECT_EQ(SeekProvisioned(5 * 512 + 7, size, 512, true, Map), 5 * 512 + 7);
  EXPECT_EQ(SeekProvisioned(8 * 512, size, 512, true, Map), 12 * 512);
  EXPECT_EQ(SeekProvisioned(14 * 512, size, 512, true, Map), -ENXIO);
  EXPECT_EQ(SeekProvisioned(0, size, 512, false, Map), 0);
  EXPECT_EQ(SeekProvisioned(4 * 512, size, 512, false, Map), 8 * 512);
  EXPECT_EQ(SeekProvisioned(12 * 512, size, 512, false, Map), 14 * 512);
  EXPECT_EQ(SeekProvisioned(size, size, 512, false, Map), -ENXIO);
  EXPECT_EQ(SeekProvisioned(size + 1, size, 512, true, Map), -ENXIO);
  // Fully mapped: the only hole is the end.
  auto full = [](Lba, BlockCount max) { return block::ProvisioningExtent{true, max}; };
  EXPECT_EQ(SeekProvisioned(100, size, 512, false, full), static_cast<int64_t>(size));
}

TEST(AllocatedBytes, CountsMappedRuns) {
  EXPECT_EQ(AllocatedBytes(16 * 512, 512, Map, 100), 6u * 512);
  // Out of runs after the first two: the rest counts as allocated.
  EXPECT_EQ(AllocatedBytes(16 * 512, 512, Map, 2), (4u + 8u) * 512);
  auto empty = [](Lba, BlockCount max) { return block::ProvisioningExtent{false, max}; };
  EXPECT_EQ(AllocatedBytes(1 << 20, 4096, empty, 1), 0u);
}

TEST(PlanFallocate, Modes) {
  const uint64_t size = 1 << 20;
  FallocatePlan p = PlanFallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192, size, 512,
                                  /*discard_zeroes=*/true);
  EXPECT_EQ(p.error, 0);
  EXPECT_EQ(p.op, block::IoOp::kDiscard);
  EXPECT_EQ(p.len, 8192u);
  p = PlanFallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 512, size, 512, false);
  EXPECT_EQ(p.op, block::IoOp::kWriteZeroes);
  p = PlanFallocate(FALLOC_FL_ZERO_RANGE, size - 512, 4096, size, 512, true);
  EXPECT_EQ(p.op, block::IoOp::kWriteZeroes);
  EXPECT_EQ(p.len, 512u);
  EXPECT_TRUE(PlanFallocate(FALLOC_FL_ZERO_RANGE, size, 4096, size, 512, true).noop);
  EXPECT_EQ(PlanFallocate(FALLOC_FL_ZERO_RANGE, 100, 512, size, 512, true).error, EINVAL);
  EXPECT_EQ(PlanFallocate(FALLOC_FL_COLLAPSE_RANGE, 0, 4096, size, 512, true).error, EOPNOTSUPP);
  EXPECT_TRUE(PlanFallocate(0, 0, size, size, 512, true).noop);
  EXPECT_EQ(PlanFallocate(FALLOC_FL_KEEP_SIZE, 0, size + 1, size, 512, true).error, ENOSPC);
}

TEST(PlanTruncate, ZeroesTheTail) {
  EXPECT_TRUE(PlanTruncate(1 << 20, 1 << 20, 512).noop);
  EXPECT_EQ(PlanTruncate((1 << 20) + 512, 1 << 20, 512).error, EFBIG);
  EXPECT_EQ(PlanTruncate(100, 1 << 20, 512).error, EINVAL);
  const TruncatePlan p = PlanTruncate(0, 1 << 20, 512);
  EXPECT_EQ(p.error, 0);
  EXPECT_EQ(p.off, 0u);
  EXPECT_EQ(p.len, 1u << 20);
}

TEST(ErrnoOf, NeverEnosys) {
  for (int i = 0; i <= static_cast<int>(IoStatus::kMiscompare); ++i) {
    EXPECT_NE(ErrnoOf(static_cast<IoStatus>(i)), ENOSYS);
  }
  EXPECT_EQ(ErrnoOf(IoStatus::kNotSupported), EOPNOTSUPP);
  EXPECT_EQ(ErrnoOf(IoStatus::kOk), 0);
}

}  // namespace
}  // namespace ferry::fuse
