#include "scsi/offload_fallback.h"

namespace ferry::scsi {

// The phrases are the copy engine's (src/copy/job.cc, offload.cc, pins.cc); the test in
// tests/metrics/lu_stats_test.cc holds one note of each kind.
OffloadFallback OffloadFallbackOf(std::string_view note) {
  auto has = [&](std::string_view s) { return note.find(s) != std::string_view::npos; };
  if (has("offload disabled")) return OffloadFallback::kDisabled;
  if (has("ranges overlap")) return OffloadFallback::kOverlap;
  if (has("has no native copy")) return OffloadFallback::kNoNativeCopy;
  if (has("max_copy_bytes")) return OffloadFallback::kLimits;
  if (has("not aligned to the native copy granularity")) return OffloadFallback::kUnaligned;
  if (has("native copy refused")) return OffloadFallback::kRefused;
  if (has("suspended past its deadline")) return OffloadFallback::kSuspended;
  if (has("changed its table")) return OffloadFallback::kTableChanged;
  // "src -> dst: why": CanCopyFrom said no (another arena, file system, array or pool).
  if (has(" -> ")) return OffloadFallback::kIncompatible;
  return OffloadFallback::kOther;
}

std::string_view OffloadFallbackName(OffloadFallback f) {
  switch (f) {
    case OffloadFallback::kDisabled: return "disabled";
    case OffloadFallback::kOverlap: return "overlap";
    case OffloadFallback::kNoNativeCopy: return "no_native_copy";
    case OffloadFallback::kIncompatible: return "incompatible";
    case OffloadFallback::kLimits: return "limits";
    case OffloadFallback::kUnaligned: return "unaligned";
    case OffloadFallback::kRefused: return "refused";
    case OffloadFallback::kSuspended: return "suspended";
    case OffloadFallback::kTableChanged: return "table_changed";
    case OffloadFallback::kOther: return "other";
  }
  return "other";
}

}  // namespace ferry::scsi
