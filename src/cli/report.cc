#include "cli/report.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/size_parse.h"

namespace ferry::cli {
namespace {

int Percent(uint64_t part, uint64_t whole) {
  if (whole == 0) return 0;
  return static_cast<int>((static_cast<unsigned __int128>(part) * 100 + whole / 2) / whole);
}

std::string Fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

}  // namespace

std::string_view MechanismLabel(block::CopyMechanism m) {
  switch (m) {
    case block::CopyMechanism::kNone: return "none";
    case block::CopyMechanism::kEmulated: return "emulated";
    case block::CopyMechanism::kRamNative: return "ram";
    case block::CopyMechanism::kReflink: return "reflink";
    case block::CopyMechanism::kCopyFileRange: return "copy_file_range";
    case block::CopyMechanism::kThinShare: return "thin_share";
    case block::CopyMechanism::kXcopy: return "xcopy";
    case block::CopyMechanism::kOdx: return "odx";
    case block::CopyMechanism::kRadosCopy: return "rados_copy";
    case block::CopyMechanism::kRbdGateway: return "rbd_gateway";
  }
  return "unknown";
}

std::string FormatRate(uint64_t bytes, double seconds) {
  if (seconds <= 0) return "-";
  double rate = static_cast<double>(bytes) / seconds;
  if (rate >= 1e9) return Fmt("%.2f GB/s", rate / 1e9);
  if (rate >= 1e6) return Fmt("%.1f MB/s", rate / 1e6);
  return Fmt("%.1f kB/s", rate / 1e3);
}

std::string FormatProgress(const copy::CopyCounters& c, double seconds, size_t width) {
  std::string tail = " " + std::to_string(Percent(c.done_bytes, c.total_bytes)) + "%  " +
                     FormatSize(c.done_bytes) + " / " + FormatSize(c.total_bytes) + "  " +
                     FormatRate(c.done_bytes, seconds) + "  offloaded " +
                     std::to_string(Percent(c.offloaded_bytes, c.done_bytes)) + "%";
  if (width <= tail.size() + 4) return tail.substr(0, width);
  size_t bar = std::min<size_t>(width - tail.size() - 2, 40);
  size_t filled =
      c.total_bytes == 0
          ? bar
          : static_cast<size_t>(static_cast<unsigned __int128>(c.done_bytes) * bar / c.total_bytes);
  return "[" + std::string(filled, '#') + std::string(bar - filled, ' ') + "]" + tail;
}

std::string FormatSummary(const CopyReport& r) {
  const copy::CopyCounters& c = r.counters;
  std::string s;
  if (r.interrupted) {
    s = "interrupted after " + FormatSize(c.done_bytes) + " of " + FormatSize(c.total_bytes);
  } else if (r.status != IoStatus::kOk) {
    s = "FAILED (" + std::string(IoStatusName(r.status)) + ") after " + FormatSize(c.done_bytes) +
        " of " + FormatSize(c.total_bytes);
  } else {
    s = "copied " + FormatSize(c.done_bytes);
  }
  s += " in " + Fmt("%.3f", r.seconds) + " s (" + FormatRate(c.done_bytes, r.seconds) + "): ";
  s += "offloaded " + std::to_string(Percent(c.offloaded_bytes, c.done_bytes)) + "%";
  std::string mech;
  for (size_t m = 0; m < copy::kNumMechanisms; ++m) {
    auto mm = static_cast<block::CopyMechanism>(m);
    if (mm == block::CopyMechanism::kEmulated || c.by_mechanism[m] == 0) continue;
    if (!mech.empty()) mech += ", ";
    mech += std::string(MechanismLabel(mm)) + " " + FormatSize(c.by_mechanism[m]);
  }
  if (!mech.empty()) s += " (" + mech + ")";
  s += ", emulated " + std::to_string(Percent(c.emulated_bytes, c.done_bytes)) + "%";
  if (r.skipped_hole_bytes > 0) s += ", holes skipped " + FormatSize(r.skipped_hole_bytes);
  return s;
}

std::vector<std::string> FormatDetails(const CopyReport& r) {
  std::vector<std::string> lines;
  lines.push_back("source:      " + r.src);
  lines.push_back("destination: " + r.dst);
  for (size_t m = 0; m < copy::kNumMechanisms; ++m) {
    if (r.counters.by_mechanism[m] == 0) continue;
    lines.push_back("  " + std::string(MechanismLabel(static_cast<block::CopyMechanism>(m))) +
                    ": " + std::to_string(r.counters.by_mechanism[m]) + " bytes");
  }
  for (const std::string& n : r.notes) lines.push_back("not offloaded: " + n);
  return lines;
}

std::string FormatJson(const CopyReport& r) {
  nlohmann::json j;
  j["source"] = r.src;
  j["destination"] = r.dst;
  j["status"] = r.interrupted ? "interrupted" : std::string(IoStatusName(r.status));
  j["total_bytes"] = r.counters.total_bytes;
  j["done_bytes"] = r.counters.done_bytes;
  j["offloaded_bytes"] = r.counters.offloaded_bytes;
  j["emulated_bytes"] = r.counters.emulated_bytes;
  j["skipped_hole_bytes"] = r.skipped_hole_bytes;
  j["seconds"] = r.seconds;
  nlohmann::json by = nlohmann::json::object();
  for (size_t m = 0; m < copy::kNumMechanisms; ++m) {
    if (r.counters.by_mechanism[m] == 0) continue;
    by[std::string(MechanismLabel(static_cast<block::CopyMechanism>(m)))] =
        r.counters.by_mechanism[m];
  }
  j["by_mechanism"] = by;
  j["notes"] = r.notes;
  j["errors"] = r.errors;
  return j.dump();
}

}  // namespace ferry::cli
