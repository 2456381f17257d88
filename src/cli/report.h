// What `ferryctl copy` prints: the progress bar, the one-line summary, the JSON result and
// error lines. Pure functions of the copy counters, so they are unit-tested.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/copy.h"

namespace ferry::cli {

// A finished (or interrupted) copy as the user sees it.
struct CopyReport {
  std::string src;
  std::string dst;
  copy::CopyCounters counters;
  double seconds = 0;
  IoStatus status = IoStatus::kOk;
  bool interrupted = false;
  uint64_t skipped_hole_bytes = 0;  // --sparse: source holes not copied
  std::vector<std::string> notes;   // why parts were not offloaded
  std::vector<std::string> errors;  // one line per failed range
};

// "42%" style progress line without a newline, at most `width` columns, e.g.
// "[########            ]  42%  430 MiB / 1 GiB  1.25 GB/s  offloaded 100%".
std::string FormatProgress(const copy::CopyCounters& c, double seconds, size_t width);

// One line: "copied 1 GiB in 0.012 s (89.48 GB/s): offloaded 100% (reflink 1 GiB),
// emulated 0%". Interrupted and failed copies say so first.
std::string FormatSummary(const CopyReport& r);

// Per-mechanism breakdown and notes, one line each (for --verbose).
std::vector<std::string> FormatDetails(const CopyReport& r);

// The result as one JSON object (for --json and scripts).
std::string FormatJson(const CopyReport& r);

// Decimal throughput: "1.25 GB/s", "830.0 MB/s" (disk vendors' units, like dd).
std::string FormatRate(uint64_t bytes, double seconds);

// "reflink", "copy_file_range", "ram", "emulated".
std::string_view MechanismLabel(block::CopyMechanism m);

}  // namespace ferry::cli
