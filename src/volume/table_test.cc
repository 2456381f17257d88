// Table lines: parse -> print -> parse round trips and every constructor error message.
#include "volume/table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "volume/builtin.h"
#include "volume/testing/volume_fixture.h"

namespace ferry::volume {
namespace {

using ::testing::HasSubstr;

class TableTest : public testing::VolumeFixture {
 public:
  using VolumeFixture::ParseError;

 protected:
  void SetUp() override {
    VolumeFixture::SetUp();
    AddRam("a", 1 << 20);  // 2048 sectors
    AddRam("b", 1 << 20);
    AddRam("big", 64 << 20);
    AddRam("k4", 1 << 20, 4096);  // 4 KiB blocks
  }
  // Parses, prints, parses the print and prints again: both prints are `want`.
  void RoundTrip(const std::string& text, const std::string& want) {
    auto t = MustParse(text);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->ToText(), want);
    auto again = MustParse(t->ToText());
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(again->ToText(), want);
    EXPECT_EQ(again->num_sectors(), t->num_sectors());
    EXPECT_EQ(again->size(), t->size());
  }
};

TEST_F(TableTest, EveryTargetRoundTrips) {
  const std::string canonical =
      "0 16 linear a 8\n"
      "16 32 striped 2 8 a 100 b 200\n"
      "48 8 zero\n"
      "56 8 error\n"
      "64 16 flakey b 0 10 5 0\n"
      "80 16 flakey b 16 1 2 2 drop_writes error_reads\n"
      "96 16 flakey a 1000 1 1 5 corrupt_bio_byte 32 r 255 0\n"
      "112 16 flakey a 1000 1 1 6 error_writes corrupt_bio_byte 1 r 7 1\n"
      "128 8 delay a 0 50\n"
      "136 8 delay a 0 0 b 40 20\n"
      "144 8 delay a 0 10 b 40 20 a 8 30\n";
  RoundTrip(canonical, canonical);
  EXPECT_EQ(MustParse(canonical)->num_sectors(), 152u);
}

TEST_F(TableTest, PreparingTargetsWithoutStateCompletesOnce) {
  auto t = MustParse("0 16 linear a 8\n16 8 zero\n24 8 error\n");
  ASSERT_NE(t, nullptr);
  int calls = 0;
  PrepareTable(t, [&](Status st) {
    EXPECT_TRUE(st.ok()) << st.ToString();
    ++calls;
  });
  EXPECT_EQ(calls, 1);
}

TEST_F(TableTest, PrintsTheCanonicalForm) {
  RoundTrip("# a comment\n\n  0\t008 linear  a  0010 \r\n8 8 flakey a 0 3 4\n",
            "0 8 linear a 10\n8 8 flakey a 0 3 4 0\n");
  // Features print in a fixed order whatever order they were given in.
  RoundTrip("0 8 flakey a 0 1 1 2 error_reads drop_writes",
            "0 8 flakey a 0 1 1 2 drop_writes error_reads\n");
}

TEST_F(TableTest, LookupInRegistryAndMissingLookup) {
  EXPECT_THAT(std::string(Table::Parse("0 8 linear a 0", {}).status().message()),
              HasSubstr("device 'a' does not exist"));
  EXPECT_TRUE(Table::Parse("0 8 linear a 0", {.lookup = LookupIn(registry_)}).ok());
  EXPECT_EQ(TargetTypeNames(),
            "linear, striped, zero, error, flakey, delay, mirror, snapshot, snapshot-origin, "
            "snapshot-merge, thin-pool, thin");
}

struct ErrorCase {
  const char* text;
  const char* message;
};

void CheckErrors(TableTest* t, std::initializer_list<ErrorCase> cases) {
  for (const ErrorCase& c : cases) {
    EXPECT_EQ(t->ParseError(c.text), c.message) << c.text;
  }
}

TEST_F(TableTest, LineSyntaxErrors) {
  CheckErrors(
      this, {
                {"", "the table has no lines"},
                {"# only a comment\n\n", "the table has no lines"},
                {"0 8",
                 "line 1: expected <start_sector> <num_sectors> <target_type> [<args>...], "
                 "got 2 fields"},
                {"x 8 zero", "line 1: start sector 'x' is not a decimal number"},
                {"0 -8 zero", "line 1: length '-8' is not a decimal number"},
                {"0 18446744073709551616 zero",
                 "line 1: length '18446744073709551616' overflows 64 bits"},
                {"0 8 raid5",
                 "line 1: unknown target type 'raid5' (known: linear, striped, zero, "
                 "error, flakey, delay, mirror, snapshot, snapshot-origin, snapshot-merge, "
                 "thin-pool, thin)"},
                {"8 8 zero",
                 "line 1: zero: starts at sector 8 but the first line must start at sector "
                 "0 (lines must be contiguous, without gaps or overlaps)"},
                {"0 8 zero\n\n16 8 zero",
                 "line 3: zero: starts at sector 16 but the previous line "
                 "ends at sector 8 (lines must be contiguous, without gaps "
                 "or overlaps)"},
                {"0 8 zero\n4 8 zero",
                 "line 2: zero: starts at sector 4 but the previous line ends "
                 "at sector 8 (lines must be contiguous, without gaps or "
                 "overlaps)"},
                {"0 0 zero", "line 1: zero: length must be greater than 0 sectors"},
                {"0 36028797018963967 zero\n36028797018963967 1 zero",
                 "line 2: zero: the table would be longer than 36028797018963967 sectors"},
                {"0 8 zero x", "line 1: zero: expected 0 arguments (zero takes none), got 1"},
                {"0 8 error x y", "line 1: error: expected 0 arguments (error takes none), got 2"},
            });
}

TEST_F(TableTest, LinearErrors) {
  CheckErrors(
      this,
      {
          {"0 8 linear a", "line 1: linear: expected 2 arguments (<dev> <offset>), got 1"},
          {"0 8 linear a 0 1", "line 1: linear: expected 2 arguments (<dev> <offset>), got 3"},
          {"0 8 linear a 1x", "line 1: linear: offset '1x' is not a decimal number"},
          {"0 8 linear nosuch 0",
           "line 1: linear: device 'nosuch' does not exist (create it first)"},
          {"0 8 linear a 2041",
           "line 1: linear: device 'a' has 2048 sectors; offset 2041 + "
           "length 8 runs past its end (shorten the line or lower the "
           "offset)"},
          {"0 8 linear a 18446744073709551615",
           "line 1: linear: device 'a' has 2048 sectors; offset 18446744073709551615 + length 8 "
           "runs past its end (shorten the line or lower the offset)"},
      });
  EXPECT_NE(MustParse("0 8 linear a 2040"), nullptr);  // the last 8 sectors fit exactly
}

TEST_F(TableTest, StripedErrors) {
  CheckErrors(
      this, {
                {"0 32 striped 2",
                 "line 1: striped: expected <#stripes> <chunk_sectors> followed by "
                 "<dev> <offset> per stripe, got 1 arguments"},
                {"0 32 striped 0 8", "line 1: striped: number of stripes must be at least 1"},
                {"0 32 striped 2 8 a 0 b",
                 "line 1: striped: expected 2 + 2 x 2 arguments "
                 "(<#stripes> <chunk_sectors> then <dev> <offset> per "
                 "stripe), got 5"},
                {"0 32 striped 99999999999999 8 a 0",
                 "line 1: striped: expected 2 + 2 x 99999999999999 arguments (<#stripes> "
                 "<chunk_sectors> then <dev> <offset> per stripe), got 4"},
                {"0 32 striped 2 7 a 0 b 0",
                 "line 1: striped: chunk size 7 is not a power of two >= 8 sectors"},
                {"0 48 striped 2 12 a 0 b 0",
                 "line 1: striped: chunk size 12 is not a power of two >= 8 sectors"},
                {"0 32 striped 2 4 a 0 b 0",
                 "line 1: striped: chunk size 4 is not a power of two >= 8 sectors"},
                {"0 24 striped 2 8 a 0 b 0",
                 "line 1: striped: length 24 sectors is not a multiple "
                 "of chunk size x stripes (8 x 2)"},
                {"0 32 striped 2 8 a 0 c 0",
                 "line 1: striped: stripe 1: device 'c' does not exist "
                 "(create it first)"},
                {"0 32 striped 2 8 a 0 b 2040",
                 "line 1: striped: stripe 1: device 'b' has 2048 sectors; offset 2040 + length 16 "
                 "runs past its end (shorten the line or lower the offset)"},
                {"0 32 striped 2 8 a 0 b z",
                 "line 1: striped: stripe 1 offset 'z' is not a decimal "
                 "number"},
            });
  EXPECT_NE(MustParse("0 32 striped 2 8 a 0 b 2032"), nullptr);
  EXPECT_NE(MustParse("0 24 striped 3 8 a 0 b 0 big 0"), nullptr);  // any number of stripes
}

TEST_F(TableTest, AlignmentToTheLargestBlockSize) {
  EXPECT_EQ(MustParse("0 8 linear k4 8\n8 8 linear a 0")->block_size(), 4096u);
  CheckErrors(
      this,
      {
          {"0 8 linear k4 1",
           "line 1: linear: offset 1 on device 'k4' is not a multiple of the "
           "volume block size 4096 (8 sectors, the largest block size of "
           "the table's devices)"},
          {"0 12 linear k4 0",
           "line 1: linear: length 12 is not a multiple of the volume block "
           "size 4096 (8 sectors, the largest block size of the table's "
           "devices)"},
          {"0 4 zero\n4 8 linear k4 0",
           "line 1: zero: length 4 is not a multiple of the volume block size 4096 (8 sectors, "
           "the largest block size of the table's devices)"},
          {"0 16 striped 2 8 a 4 k4 0",
           "line 1: striped: offset 4 on device 'a' is not a multiple of the volume block size "
           "4096 (8 sectors, the largest block size of the table's devices)"},
      });
}

TEST_F(TableTest, FlakeyErrors) {
  CheckErrors(
      this,
      {
          {"0 8 flakey a 0 1",
           "line 1: flakey: expected <dev> <offset> <up_interval> "
           "<down_interval> [<#feature_args> <feature_args>...], got 3 "
           "arguments"},
          {"0 8 flakey a 0 0 0",
           "line 1: flakey: up interval + down interval is 0 seconds; give at least 1"},
          {"0 8 flakey a 0 4294967296 1",
           "line 1: flakey: up interval 4294967296 is larger than 4294967295"},
          {"0 8 flakey a 0 1 1 2 drop_writes",
           "line 1: flakey: number of feature arguments 2 "
           "does not match the 1 words that follow it"},
          {"0 8 flakey a 0 1 1 1 explode",
           "line 1: flakey: unknown feature 'explode' (known: "
           "drop_writes, error_writes, error_reads, "
           "corrupt_bio_byte)"},
          {"0 8 flakey a 0 1 1 2 error_reads error_reads",
           "line 1: flakey: feature error_reads is given twice"},
          {"0 8 flakey a 0 1 1 2 drop_writes error_writes",
           "line 1: flakey: features drop_writes and error_writes conflict; choose one"},
          {"0 8 flakey a 0 1 1 4 corrupt_bio_byte 1 r 0",
           "line 1: flakey: corrupt_bio_byte needs 4 arguments: <Nth_byte> <r|w> <value> "
           "<flags>"},
          {"0 8 flakey a 0 1 1 5 corrupt_bio_byte 0 r 0 0",
           "line 1: flakey: corrupt_bio_byte Nth_byte counts from 1; 0 is not a byte"},
          {"0 8 flakey a 0 1 1 5 corrupt_bio_byte 1 x 0 0",
           "line 1: flakey: corrupt_bio_byte direction 'x' is neither r (reads) nor w (writes)"},
          {"0 8 flakey a 0 1 1 5 corrupt_bio_byte 1 r 256 0",
           "line 1: flakey: corrupt_bio_byte value 256 is larger than 255"},
          {"0 8 flakey a 0 1 1 10 corrupt_bio_byte 1 r 0 0 corrupt_bio_byte 1 r 0 0",
           "line 1: flakey: feature corrupt_bio_byte is given twice"},
          {"0 8 flakey a 0 1 1 6 drop_writes corrupt_bio_byte 1 w 0 0",
           "line 1: flakey: corrupt_bio_byte on writes (w) conflicts with drop_writes"},
          {"0 8 flakey nosuch 0 1 1",
           "line 1: flakey: device 'nosuch' does not exist (create "
           "it first)"},
      });
}

TEST_F(TableTest, DelayErrors) {
  CheckErrors(
      this,
      {
          {"0 8 delay a 0",
           "line 1: delay: expected 3, 6 or 9 arguments (<dev> <offset> "
           "<delay_ms>, then optionally the same for writes and then for "
           "flushes), got 2"},
          {"0 8 delay a 0 1 b 0",
           "line 1: delay: expected 3, 6 or 9 arguments (<dev> <offset> "
           "<delay_ms>, then optionally the same for writes and then "
           "for flushes), got 5"},
          {"0 8 delay a 0 soon", "line 1: delay: read delay (ms) 'soon' is not a decimal number"},
          {"0 8 delay a 0 1 c 0 1",
           "line 1: delay: write device: device 'c' does not exist "
           "(create it first)"},
          {"0 8 delay a 0 1 b 0 1 a 2048 1",
           "line 1: delay: flush device: device 'a' has 2048 sectors; offset 2048 + length 8 "
           "runs past its end (shorten the line or lower the offset)"},
      });
}

}  // namespace
}  // namespace ferry::volume
