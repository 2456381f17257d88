// The Prometheus text formatter (src/metrics/exposition.h): escaping, HELP/TYPE lines,
// counters as exact integers, histograms as cumulative buckets with +Inf, _sum and _count.
#include "metrics/exposition.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace ferry::metrics {
namespace {

TEST(Exposition, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue(R"(a"b\c)"), R"(a\"b\\c)");
  EXPECT_EQ(EscapeLabelValue("line1\nline2"), "line1\\nline2");
  EXPECT_EQ(EscapeLabelValue("iqn.2026-11.org.ferry:demo"), "iqn.2026-11.org.ferry:demo");
  EXPECT_EQ(EscapeHelp("a\\b\nc\"d"), "a\\\\b\\nc\"d");  // quotes stay in HELP
}

TEST(Exposition, CounterAndGaugeLines) {
  Family c{
      .name = "ferry_lun_read_bytes_total", .help = "Bytes read.", .type = MetricType::kCounter};
  c.Add({{"target", "iqn.x:\"t\""}, {"lun", "0"}}, uint64_t{18446744073709551615u});
  Family g{.name = "ferry_iscsi_sessions", .help = "Sessions.", .type = MetricType::kGauge};
  g.AddGauge({}, 3);
  g.AddGauge({{"k", "v"}}, 0.5);
  EXPECT_EQ(FormatText({c, g}),
            "# HELP ferry_lun_read_bytes_total Bytes read.\n"
            "# TYPE ferry_lun_read_bytes_total counter\n"
            "ferry_lun_read_bytes_total{target=\"iqn.x:\\\"t\\\"\",lun=\"0\"} "
            "18446744073709551615\n"
            "# HELP ferry_iscsi_sessions Sessions.\n"
            "# TYPE ferry_iscsi_sessions gauge\n"
            "ferry_iscsi_sessions 3\n"
            "ferry_iscsi_sessions{k=\"v\"} 0.5\n");
}

TEST(Exposition, EmptyFamilyKeepsHelpAndType) {
  Family f{.name = "ferry_x_total", .help = "X.", .type = MetricType::kCounter};
  EXPECT_EQ(FormatText({f}), "# HELP ferry_x_total X.\n# TYPE ferry_x_total counter\n");
}

TEST(Exposition, SpecialValues) {
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatValue(0.00025), "0.00025");
  EXPECT_EQ(FormatValue(2.5e-05), "2.5e-05");
  EXPECT_EQ(FormatValue(10), "10");
}

TEST(Exposition, HistogramIsCumulativeWithInfSumAndCount) {
  HistogramSnapshot h{.upper_bounds = {0.001, 0.01, 0.1}, .counts = {2, 0, 3, 1}, .sum = 1.25};
  Family f{.name = "ferry_lun_latency_seconds", .help = "Latency.", .type = MetricType::kHistogram};
  f.AddHistogram({{"op", "read"}}, h);
  EXPECT_EQ(FormatText({f}),
            "# HELP ferry_lun_latency_seconds Latency.\n"
            "# TYPE ferry_lun_latency_seconds histogram\n"
            "ferry_lun_latency_seconds_bucket{op=\"read\",le=\"0.001\"} 2\n"
            "ferry_lun_latency_seconds_bucket{op=\"read\",le=\"0.01\"} 2\n"
            "ferry_lun_latency_seconds_bucket{op=\"read\",le=\"0.1\"} 5\n"
            "ferry_lun_latency_seconds_bucket{op=\"read\",le=\"+Inf\"} 6\n"
            "ferry_lun_latency_seconds_sum{op=\"read\"} 1.25\n"
            "ferry_lun_latency_seconds_count{op=\"read\"} 6\n");
}

TEST(Exposition, HistogramWithoutLabels) {
  HistogramSnapshot h{.upper_bounds = {1}, .counts = {0, 0}, .sum = 0};
  Family f{.name = "h_seconds", .help = "H.", .type = MetricType::kHistogram};
  f.AddHistogram({}, h);
  EXPECT_EQ(FormatText({f}),
            "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
            "h_seconds_bucket{le=\"1\"} 0\nh_seconds_bucket{le=\"+Inf\"} 0\n"
            "h_seconds_sum 0\nh_seconds_count 0\n");
}

}  // namespace
}  // namespace ferry::metrics
