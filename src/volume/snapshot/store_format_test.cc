#include "volume/snapshot/store_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::volume::snapshot {
namespace {

using ::testing::HasSubstr;

TEST(StoreFormatTest, ChecksumIsCrc32c) {
  const std::string check = "123456789";  // the standard check input of CRC-32C
  EXPECT_EQ(Crc32c(std::span(reinterpret_cast<const uint8_t*>(check.data()), check.size())),
            0xE3069283u);
}

TEST(StoreFormatTest, HeaderRoundTripsAndBlankIsNoHeader) {
  std::vector<uint8_t> block(kHeaderBytes, 0);
  auto blank = DecodeHeader(block);
  ASSERT_TRUE(blank.ok());
  EXPECT_FALSE(blank->has_value());
  const Header h{.chunk_sectors = 16, .valid = false, .store_id = 0x1234567890abcdefull};
  EncodeHeader(h, block);
  auto got = DecodeHeader(block);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(**got, h);
}

TEST(StoreFormatTest, HeaderErrorsSayWhatIsWrong) {
  std::vector<uint8_t> block(kHeaderBytes, 0);
  EncodeHeader({.chunk_sectors = 8, .valid = true, .store_id = 7}, block);
  auto bad = block;
  bad[0] ^= 1;
  EXPECT_THAT(std::string(DecodeHeader(bad).status().message()), HasSubstr("bad magic"));
  bad = block;
  bad[30] ^= 1;
  EXPECT_THAT(std::string(DecodeHeader(bad).status().message()), HasSubstr("checksum"));
  EXPECT_THAT(std::string(DecodeHeader(std::span(block).first(100)).status().message()),
              HasSubstr("needs 4096 bytes"));
  bad = block;
  bad[19] = 7;  // chunk sectors 7, resealed
  bad[4] = bad[5] = bad[6] = bad[7] = 0;
  uint32_t crc = Crc32c(std::span(bad).subspan(8, 56));
  bad[4] = crc >> 24, bad[5] = crc >> 16, bad[6] = crc >> 8, bad[7] = crc;
  EXPECT_THAT(std::string(DecodeHeader(bad).status().message()), HasSubstr("power of two"));
}

TEST(StoreFormatTest, RecordsRoundTripAndForeignOrTornRecordsAreEmpty) {
  uint8_t buf[kRecordBytes];
  std::span<uint8_t, kRecordBytes> rec(buf, kRecordBytes);
  const Record r{.origin_chunk = 42, .cow_chunk = 3, .state = RecordState::kException};
  EncodeRecord(r, 99, rec);
  EXPECT_EQ(DecodeRecord(rec, 99), r);
  EXPECT_EQ(DecodeRecord(rec, 98).state, RecordState::kEmpty);  // another format's record
  buf[3] ^= 0x10;
  EXPECT_EQ(DecodeRecord(rec, 99).state, RecordState::kEmpty);  // torn or corrupt
  EncodeRecord({}, 99, rec);
  EXPECT_EQ(DecodeRecord(rec, 99).state, RecordState::kEmpty);
}

TEST(StoreFormatTest, LayoutPutsOneDataChunkBehindEverySlot) {
  const Layout l(4096, 1 + 129 + 10);  // header, one full area, a partial one
  EXPECT_EQ(l.per_area(), 128u);
  EXPECT_EQ(l.slots(), 128u + 9u);
  EXPECT_EQ(l.areas(), 2u);
  EXPECT_EQ(l.AreaChunk(0), 1u);
  EXPECT_EQ(l.DataChunk(0), 2u);
  EXPECT_EQ(l.DataChunk(127), 129u);
  EXPECT_EQ(l.AreaChunk(1), 130u);
  EXPECT_EQ(l.DataChunk(128), 131u);
  EXPECT_EQ(Layout(4096, 2).slots(), 0u);
}

TEST(StoreFormatTest, DecodeAreaAndCheckRefuseMisplacedOrDoubleOwnedRecords) {
  const Layout l(4096, 20);
  std::vector<uint8_t> area(4096, 0);
  auto put = [&](uint64_t slot, Record r) {
    EncodeRecord(r, 5,
                 std::span<uint8_t, kRecordBytes>(area.data() + slot * kRecordBytes, kRecordBytes));
  };
  put(0, {7, l.DataChunk(0), RecordState::kException});
  put(1, {8, l.DataChunk(1), RecordState::kMerged});
  std::vector<Record> slots;
  ASSERT_TRUE(DecodeArea(area, l, 0, 5, 100, &slots).ok());
  EXPECT_EQ(slots.size(), l.slots());
  EXPECT_TRUE(CheckSlots(slots, l, 100).ok());
  slots.clear();
  EXPECT_THAT(std::string(DecodeArea(area, l, 0, 5, 8, &slots).message()),
              HasSubstr("past the origin"));
  put(2, {9, l.DataChunk(5), RecordState::kException});
  slots.clear();
  EXPECT_THAT(std::string(DecodeArea(area, l, 0, 5, 100, &slots).message()),
              HasSubstr("instead of its own chunk"));
  std::vector<Record> two = {{7, l.DataChunk(0), RecordState::kException},
                             {7, l.DataChunk(1), RecordState::kException}};
  EXPECT_THAT(std::string(CheckSlots(two, l, 100).message()), HasSubstr("two live exceptions"));
  two[0].state = RecordState::kMerged;  // merged, then copied again: fine
  EXPECT_TRUE(CheckSlots(two, l, 100).ok());
}

}  // namespace
}  // namespace ferry::volume::snapshot
