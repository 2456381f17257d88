#include "cli/report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ferry::cli {
namespace {

copy::CopyCounters Counters(uint64_t total, uint64_t done, uint64_t reflink, uint64_t emulated) {
  copy::CopyCounters c;
  c.total_bytes = total;
  c.done_bytes = done;
  c.offloaded_bytes = reflink;
  c.emulated_bytes = emulated;
  c.by_mechanism[static_cast<size_t>(block::CopyMechanism::kReflink)] = reflink;
  c.by_mechanism[static_cast<size_t>(block::CopyMechanism::kEmulated)] = emulated;
  return c;
}

TEST(Report, SummaryOfAFullyOffloadedCopy) {
  CopyReport r;
  r.counters = Counters(1ull << 30, 1ull << 30, 1ull << 30, 0);
  r.seconds = 0.5;
  EXPECT_EQ(FormatSummary(r),
            "copied 1 GiB in 0.500 s (2.15 GB/s): offloaded 100% (reflink 1 GiB), emulated 0%");
}

TEST(Report, SummaryOfAMixedCopyWithHoles) {
  CopyReport r;
  r.counters = Counters(4 << 20, 4 << 20, 1 << 20, 3 << 20);
  r.seconds = 2;
  r.skipped_hole_bytes = 8 << 20;
  EXPECT_EQ(FormatSummary(r),
            "copied 4 MiB in 2.000 s (2.1 MB/s): offloaded 25% (reflink 1 MiB), emulated 75%, "
            "holes skipped 8 MiB");
}

TEST(Report, SummaryOfFailedAndInterruptedCopies) {
  CopyReport r;
  r.counters = Counters(4 << 20, 1 << 20, 0, 1 << 20);
  r.seconds = 1;
  r.status = IoStatus::kIoError;
  EXPECT_EQ(FormatSummary(r).rfind("FAILED (io-error) after 1 MiB of 4 MiB", 0), 0u)
      << FormatSummary(r);
  r.status = IoStatus::kAborted;
  r.interrupted = true;
  EXPECT_EQ(FormatSummary(r).rfind("interrupted after 1 MiB of 4 MiB", 0), 0u);
}

TEST(Report, ProgressFitsTheWidth) {
  auto c = Counters(100 << 20, 50 << 20, 50 << 20, 0);
  for (size_t width : {10u, 40u, 79u, 200u}) {
    std::string p = FormatProgress(c, 1.0, width);
    EXPECT_LE(p.size(), width);
  }
  std::string p = FormatProgress(c, 1.0, 120);
  EXPECT_NE(p.find(" 50%"), std::string::npos) << p;
  EXPECT_NE(p.find("offloaded 100%"), std::string::npos) << p;
  EXPECT_EQ(p[0], '[');
}

TEST(Report, ZeroTotalIsNotADivisionByZero) {
  CopyReport r;
  EXPECT_EQ(FormatSummary(r), "copied 0 B in 0.000 s (-): offloaded 0%, emulated 0%");
  EXPECT_NE(FormatProgress(r.counters, 0, 80).find("0%"), std::string::npos);
}

TEST(Report, JsonHasEveryCounter) {
  CopyReport r;
  r.src = "a";
  r.dst = "b";
  r.counters = Counters(10, 10, 6, 4);
  r.notes = {"why"};
  auto j = nlohmann::json::parse(FormatJson(r));
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["done_bytes"], 10);
  EXPECT_EQ(j["offloaded_bytes"], 6);
  EXPECT_EQ(j["emulated_bytes"], 4);
  EXPECT_EQ(j["by_mechanism"]["reflink"], 6);
  EXPECT_EQ(j["by_mechanism"]["emulated"], 4);
  EXPECT_EQ(j["notes"][0], "why");
}

TEST(Report, Rates) {
  EXPECT_EQ(FormatRate(2'500'000'000, 1), "2.50 GB/s");
  EXPECT_EQ(FormatRate(830'000'000, 1), "830.0 MB/s");
  EXPECT_EQ(FormatRate(1000, 1), "1.0 kB/s");
  EXPECT_EQ(FormatRate(1000, 0), "-");
}

}  // namespace
}  // namespace ferry::cli
