// Prometheus text exposition format 0.0.4 (prometheus.io/docs/instrumenting/exposition_formats):
// families of samples in, text out. Pure: no I/O, no global state, unit-tested.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "metrics/histogram.h"

namespace ferry::metrics {

inline constexpr char kTextContentType[] = "text/plain; version=0.0.4; charset=utf-8";

enum class MetricType : uint8_t { kCounter, kGauge, kHistogram };

// Label names are fixed identifiers of the caller ([a-zA-Z_][a-zA-Z0-9_]*); values are any
// UTF-8 and are escaped here.
using Labels = std::vector<std::pair<std::string, std::string>>;

struct Sample {
  Labels labels;
  std::variant<uint64_t, double> value = uint64_t{0};  // counters and gauges
  HistogramSnapshot histogram;                         // histograms
};

struct Family {
  std::string name;  // counters end in _total; histograms get _bucket, _sum and _count
  std::string help;
  MetricType type = MetricType::kCounter;
  std::vector<Sample> samples;

  void Add(Labels labels, uint64_t v) { samples.push_back({std::move(labels), v, {}}); }
  void AddGauge(Labels labels, double v) { samples.push_back({std::move(labels), v, {}}); }
  void AddHistogram(Labels labels, HistogramSnapshot h) {
    samples.push_back({std::move(labels), uint64_t{0}, std::move(h)});
  }
};

// HELP and TYPE lines, then one line per sample; histograms as cumulative _bucket lines
// (le ascending, ending with le="+Inf" equal to _count), _sum and _count. A family without
// samples still gets its HELP and TYPE lines.
std::string FormatText(const std::vector<Family>& families);

// Label value escaping: backslash, double quote and line feed (\\, \", \n).
std::string EscapeLabelValue(std::string_view v);
// HELP text escaping: backslash and line feed.
std::string EscapeHelp(std::string_view v);
// A sample value: integers exactly; doubles in the shortest form that reads back the same,
// NaN, +Inf and -Inf as Prometheus spells them.
std::string FormatValue(double v);

}  // namespace ferry::metrics
