#include "metrics/exposition.h"

#include <fmt/format.h>

#include <cmath>

namespace ferry::metrics {
namespace {

std::string_view TypeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter: return "counter";
    case MetricType::kGauge: return "gauge";
    case MetricType::kHistogram: return "histogram";
  }
  return "untyped";
}

// `{a="x",b="y"}` with an optional extra label last (le of a bucket); empty when no labels.
void AppendLabels(const Labels& labels, std::string_view extra_name, std::string_view extra_value,
                  std::string* out) {
  if (labels.empty() && extra_name.empty()) return;
  out->push_back('{');
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out->push_back(',');
    first = false;
    *out += name;
    *out += "=\"";
    *out += EscapeLabelValue(value);
    out->push_back('"');
  }
  if (!extra_name.empty()) {
    if (!first) out->push_back(',');
    *out += extra_name;
    *out += "=\"";
    *out += extra_value;
    out->push_back('"');
  }
  out->push_back('}');
}

void AppendLine(std::string_view name, std::string_view suffix, const Labels& labels,
                std::string_view extra_name, std::string_view extra_value, std::string_view value,
                std::string* out) {
  *out += name;
  *out += suffix;
  AppendLabels(labels, extra_name, extra_value, out);
  out->push_back(' ');
  *out += value;
  out->push_back('\n');
}

void AppendHistogram(const Family& f, const Sample& s, std::string* out) {
  const HistogramSnapshot& h = s.histogram;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.upper_bounds.size(); ++i) {
    cumulative += i < h.counts.size() ? h.counts[i] : 0;
    AppendLine(f.name, "_bucket", s.labels, "le", FormatValue(h.upper_bounds[i]),
               std::to_string(cumulative), out);
  }
  const uint64_t count = h.count();
  AppendLine(f.name, "_bucket", s.labels, "le", "+Inf", std::to_string(count), out);
  AppendLine(f.name, "_sum", s.labels, "", "", FormatValue(h.sum), out);
  AppendLine(f.name, "_count", s.labels, "", "", std::to_string(count), out);
}

}  // namespace

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

std::string FormatText(const std::vector<Family>& families) {
  std::string out;
  for (const Family& f : families) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, EscapeHelp(f.help), f.name,
                       TypeName(f.type));
    for (const Sample& s : f.samples) {
      if (f.type == MetricType::kHistogram) {
        AppendHistogram(f, s, &out);
        continue;
      }
      const std::string value = std::holds_alternative<uint64_t>(s.value)
                                    ? std::to_string(std::get<uint64_t>(s.value))
                                    : FormatValue(std::get<double>(s.value));
      AppendLine(f.name, "", s.labels, "", "", value, &out);
    }
  }
  return out;
}

}  // namespace ferry::metrics
