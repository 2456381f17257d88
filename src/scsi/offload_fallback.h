// Why part of a copy was not offloaded, as a bounded label (docs/metrics.md,
// ferry_copy_offload_fallbacks_total). The copy engine explains each fallback in a note
// (copy::CopyResult::offload_notes, free text naming the devices); this folds a note
// into one of a few reasons.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ferry::scsi {

enum class OffloadFallback : uint8_t {
  kDisabled,      // offload turned off for the copy (--no-offload)
  kOverlap,       // source and destination ranges overlap: copied in order by emulation
  kNoNativeCopy,  // the destination device has no native copy at all
  kIncompatible,  // the pair cannot copy natively (other arena, file system, array, pool)
  kLimits,        // the device's copy limits are below the copy's alignment
  kUnaligned,     // ranges not aligned to the native copy granularity
  kRefused,       // the device refused a native copy leg at run time
  kSuspended,     // a volume was suspended past the copy's deadline
  kTableChanged,  // a volume's table changed during the copy
  kOther,
};
inline constexpr size_t kOffloadFallbackKinds = 10;

OffloadFallback OffloadFallbackOf(std::string_view note);
// Label values: "disabled", "overlap", "no_native_copy", ...
std::string_view OffloadFallbackName(OffloadFallback f);

}  // namespace ferry::scsi
