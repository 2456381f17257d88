// Logical-unit statistics (src/scsi/lu_stats.h): READ and WRITE commands and their bytes
// (bytes only when GOOD), latency observed per kind, in-flight gauge, CHECK CONDITIONs by
// (sense key, ASC) with a bounded table.
#include "scsi/lu_stats.h"

#include <gtest/gtest.h>

#include "scsi/offload_fallback.h"
#include "scsi/opcodes.h"
#include "scsi/task.h"

namespace ferry::scsi {
namespace {

Task Rw10(uint8_t opcode, uint16_t blocks) {
  Task t;
  t.cdb[0] = opcode;
  t.cdb[7] = static_cast<uint8_t>(blocks >> 8);
  t.cdb[8] = static_cast<uint8_t>(blocks);
  return t;
}

TEST(LuStats, CountsReadsAndWritesWithBytesOfGoodOnes) {
  LuStats s;
  Task r = Rw10(kRead10, 8);
  Task w = Rw10(kWrite10, 16);
  Task bad = Rw10(kWrite10, 4);
  bad.Fail(MakeSense(SenseKey::kDataProtect, Asc::kWriteProtected));
  Task tur;  // TEST UNIT READY
  Task verify = Rw10(kVerify10, 8);
  for (Task* t : {&r, &w, &bad, &tur, &verify}) s.Completed(*t, s.Started(), 512);
  LuStatsSnapshot snap = s.Snapshot();
  EXPECT_EQ(snap.read_ops, 1u);
  EXPECT_EQ(snap.read_bytes, 8u * 512);
  EXPECT_EQ(snap.write_ops, 2u);
  EXPECT_EQ(snap.write_bytes, 16u * 512);
  EXPECT_EQ(snap.other_ops, 2u);
  EXPECT_EQ(snap.in_flight, 0u);
  EXPECT_EQ(snap.read_latency.count(), 1u);
  EXPECT_EQ(snap.write_latency.count(), 2u);
  ASSERT_EQ(snap.errors.size(), 1u);
  EXPECT_EQ(snap.errors[0].key, SenseKey::kDataProtect);
  EXPECT_EQ(snap.errors[0].asc, Asc::kWriteProtected);
  EXPECT_EQ(snap.errors[0].count, 1u);
}

TEST(LuStats, InFlightUntilCompleted) {
  LuStats s;
  Task r = Rw10(kRead10, 1);
  const uint64_t t0 = s.Started();
  const uint64_t t1 = s.Started();
  EXPECT_EQ(s.Snapshot().in_flight, 2u);
  s.Completed(r, t0, 4096);
  EXPECT_EQ(s.Snapshot().in_flight, 1u);
  s.Completed(r, t1, 4096);
  EXPECT_EQ(s.Snapshot().in_flight, 0u);
  EXPECT_EQ(s.Snapshot().read_bytes, 2u * 4096);
}

TEST(LuStats, ErrorTableIsBounded) {
  LuStats s;
  const size_t kPairs = LuStats::kErrorSlots + 8;
  for (size_t i = 0; i < kPairs; ++i) {
    Task t;
    t.Fail(MakeSense(SenseKey::kIllegalRequest, static_cast<Asc>(0x2400 + i)));
    s.Completed(t, s.Started(), 512);
    s.Completed(t, s.Started(), 512);  // the same pair twice
  }
  LuStatsSnapshot snap = s.Snapshot();
  EXPECT_EQ(snap.errors.size(), LuStats::kErrorSlots);
  uint64_t tracked = 0;
  for (const auto& e : snap.errors) {
    EXPECT_EQ(e.count, 2u);
    tracked += e.count;
  }
  EXPECT_EQ(tracked + snap.errors_untracked, 2 * kPairs);
  EXPECT_EQ(snap.errors_untracked, 16u);
  EXPECT_EQ(SenseKeyLabel(SenseKey::kIllegalRequest), "illegal_request");
}

}  // namespace
}  // namespace ferry::scsi

namespace ferry::scsi {
namespace {

// One note of each kind, as the copy engine (src/copy) words them.
TEST(OffloadFallback, FoldsEngineNotesIntoReasons) {
  EXPECT_EQ(OffloadFallbackOf("offload disabled (--no-offload)"), OffloadFallback::kDisabled);
  EXPECT_EQ(OffloadFallbackOf("a: source and destination ranges overlap; 4096 bytes copied in "
                              "stream order by emulation"),
            OffloadFallback::kOverlap);
  EXPECT_EQ(OffloadFallbackOf("a -> b: b (file) has no native copy"),
            OffloadFallback::kNoNativeCopy);
  EXPECT_EQ(OffloadFallbackOf("a -> b: different RAM arenas"), OffloadFallback::kIncompatible);
  EXPECT_EQ(OffloadFallbackOf("a -> b: max_copy_bytes 512 is below the copy alignment of 4096 "
                              "bytes"),
            OffloadFallback::kLimits);
  EXPECT_EQ(OffloadFallbackOf("b: 512 bytes not aligned to the native copy granularity (4096 "
                              "bytes); emulated"),
            OffloadFallback::kUnaligned);
  EXPECT_EQ(OffloadFallbackOf("b: native copy refused (EXDEV); emulated"),
            OffloadFallback::kRefused);
  EXPECT_EQ(OffloadFallbackOf("a volume of the copy was suspended past its deadline; ..."),
            OffloadFallback::kSuspended);
  EXPECT_EQ(OffloadFallbackOf("a volume of the copy changed its table; ..."),
            OffloadFallback::kTableChanged);
  EXPECT_EQ(OffloadFallbackOf("something new"), OffloadFallback::kOther);
  EXPECT_EQ(OffloadFallbackName(OffloadFallback::kNoNativeCopy), "no_native_copy");
}

}  // namespace
}  // namespace ferry::scsi
