// The planner of rbd copy legs (rbd_copy_plan.h): pure, no cluster.
#include "backends/rbd/rbd_copy_plan.h"

#include <gtest/gtest.h>

namespace ferry::backends::rbd {
namespace {

constexpr uint64_t kObj = 4u << 20;
constexpr uint64_t kMiB = 1u << 20;

CopyPlanInput Input(const std::vector<block::CopySegment>& segs, const std::vector<ByteRange>& data,
                    bool server) {
  return {.segments = segs,
          .src_data = data,
          .src_object_bytes = kObj,
          .dst_object_bytes = kObj,
          .server_allowed = server,
          .max_io_bytes = kObj,
          .max_zero_bytes = 1ull << 30};
}

uint64_t Total(const std::vector<CopyStep>& steps) {
  uint64_t n = 0;
  for (const CopyStep& s : steps) n += s.len;
  return n;
}

TEST(RbdCopyPlan, WholeObjectsGoToTheClusterAndHolesAreZeroed) {
  std::vector<block::CopySegment> segs{{0, 0, 4 * kObj}};
  // Data in objects 0 and 2 only.
  std::vector<ByteRange> data{{0, kMiB}, {2 * kObj + 5, 10}};
  auto steps = PlanCopySteps(Input(segs, data, true));
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[0].kind, CopyStep::kServer);
  EXPECT_EQ(steps[1].kind, CopyStep::kZero);
  EXPECT_EQ(steps[2].kind, CopyStep::kServer);
  EXPECT_EQ(steps[2].src_off, 2 * kObj);
  EXPECT_EQ(steps[3].kind, CopyStep::kZero);
  EXPECT_EQ(Total(steps), 4 * kObj);
}

TEST(RbdCopyPlan, NotAllowedMeansTheGatewayCopiesTheSameRanges) {
  std::vector<block::CopySegment> segs{{0, 0, 2 * kObj}};
  std::vector<ByteRange> data{{0, 2 * kObj}};
  auto steps = PlanCopySteps(Input(segs, data, false));
  ASSERT_EQ(steps.size(), 2u);
  for (const CopyStep& s : steps) EXPECT_EQ(s.kind, CopyStep::kGateway);
  EXPECT_EQ(Total(steps), 2 * kObj);
}

// A leg whose ends are parts of objects: the parts through the gateway, cut at the
// destination's object boundaries; the whole object in the middle in the cluster.
TEST(RbdCopyPlan, PartialObjectsAtTheEndsGoThroughTheGateway) {
  std::vector<block::CopySegment> segs{{kObj - kMiB, kObj - kMiB, kObj + 2 * kMiB}};
  std::vector<ByteRange> data{{0, 8 * kObj}};
  auto steps = PlanCopySteps(Input(segs, data, true));
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0].kind, CopyStep::kGateway);
  EXPECT_EQ(steps[0].len, kMiB);
  EXPECT_EQ(steps[1].kind, CopyStep::kServer);
  EXPECT_EQ(steps[1].dst_off, kObj);
  EXPECT_EQ(steps[2].kind, CopyStep::kGateway);
  EXPECT_EQ(steps[2].len, kMiB);
}

// Source and destination offsets on different object boundaries: no object is whole on
// both, so nothing goes to the cluster.
TEST(RbdCopyPlan, MisalignedOffsetsNeverCopyInTheCluster) {
  std::vector<block::CopySegment> segs{{kMiB, 0, 3 * kObj}};
  std::vector<ByteRange> data{{0, 8 * kObj}};
  auto steps = PlanCopySteps(Input(segs, data, true));
  for (const CopyStep& s : steps) EXPECT_EQ(s.kind, CopyStep::kGateway);
  EXPECT_EQ(Total(steps), 3 * kObj);
}

TEST(RbdCopyPlan, DifferentObjectSizesGoThroughTheGateway) {
  std::vector<block::CopySegment> segs{{0, 0, 2 * kObj}};
  std::vector<ByteRange> data{{0, 2 * kObj}};
  CopyPlanInput in = Input(segs, data, true);
  in.src_object_bytes = kObj / 2;
  for (const CopyStep& s : PlanCopySteps(in)) EXPECT_EQ(s.kind, CopyStep::kGateway);
}

TEST(RbdCopyPlan, ZeroStepsMergeUpToTheLimit) {
  std::vector<block::CopySegment> segs{{0, 0, 8 * kObj}};
  CopyPlanInput in = Input(segs, {}, true);
  in.max_zero_bytes = 3 * kObj;
  auto steps = PlanCopySteps(in);
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0].len, 3 * kObj);
  EXPECT_EQ(steps[2].len, 2 * kObj);
  for (const CopyStep& s : steps) EXPECT_EQ(s.kind, CopyStep::kZero);
}

TEST(RbdCopyPlan, GatewayStepsRespectTheIoLimitAndSegmentsKeepTheirOrder) {
  std::vector<block::CopySegment> segs{{5 * kObj, 0, kObj}, {0, kObj, kObj}};
  std::vector<ByteRange> data{{0, 8 * kObj}};
  CopyPlanInput in = Input(segs, data, false);
  in.max_io_bytes = kMiB;
  auto steps = PlanCopySteps(in);
  ASSERT_EQ(steps.size(), 8u);
  EXPECT_EQ(steps[0].src_off, 5 * kObj);
  EXPECT_EQ(steps[4].src_off, 0u);
  EXPECT_EQ(steps[4].dst_off, kObj);
  for (const CopyStep& s : steps) EXPECT_EQ(s.len, kMiB);
}

TEST(RbdCopyPlan, NormalizeSortsAndMerges) {
  std::vector<ByteRange> r{{10, 5}, {0, 4}, {4, 2}, {12, 10}, {30, 0}};
  NormalizeRanges(&r);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].off, 0u);
  EXPECT_EQ(r[0].len, 6u);
  EXPECT_EQ(r[1].off, 10u);
  EXPECT_EQ(r[1].len, 12u);
}

}  // namespace
}  // namespace ferry::backends::rbd
