#include "volume/thin/format.h"

#include <gtest/gtest.h>

#include <vector>

namespace ferry::volume::thin::format {
namespace {

Superblock SampleSuper() {
  return {.txn = 42,
          .meta_blocks = 256,
          .data_blocks = 65536,
          .data_block_bytes = 65536,
          .head_record = 17,
          .records = 3,
          .chain_blocks = 5};
}

TEST(ThinFormatTest, SuperblockRoundTrips) {
  std::vector<uint8_t> block(kBlockBytes);
  EncodeSuperblock(SampleSuper(), block);
  auto sb = DecodeSuperblock(block);
  ASSERT_TRUE(sb.ok()) << sb.status().ToString();
  EXPECT_EQ(sb->txn, 42u);
  EXPECT_EQ(sb->data_blocks, 65536u);
  EXPECT_EQ(sb->head_record, 17u);
  EXPECT_EQ(sb->chain_blocks, 5u);
}

TEST(ThinFormatTest, SuperblockDamageIsDetected) {
  std::vector<uint8_t> block(kBlockBytes);
  EncodeSuperblock(SampleSuper(), block);
  for (size_t off : {size_t{0}, size_t{5}, size_t{20}, size_t{4000}}) {
    std::vector<uint8_t> bad = block;
    bad[off] ^= 0x01;
    auto sb = DecodeSuperblock(bad);
    ASSERT_FALSE(sb.ok()) << off;
    EXPECT_EQ(sb.status().code(), StatusCode::kDataLoss);
  }
  std::vector<uint8_t> zero(kBlockBytes, 0);
  EXPECT_NE(DecodeSuperblock(zero).status().message().find("bad magic"), std::string::npos);
}

TEST(ThinFormatTest, SuperblockFieldsAreSanityChecked) {
  std::vector<uint8_t> block(kBlockBytes);
  Superblock sb = SampleSuper();
  sb.head_record = 1;  // a superblock slot
  EncodeSuperblock(sb, block);
  EXPECT_FALSE(DecodeSuperblock(block).ok());
  sb = SampleSuper();
  sb.chain_blocks = 1;  // fewer blocks than records
  EncodeSuperblock(sb, block);
  EXPECT_FALSE(DecodeSuperblock(block).ok());
}

TEST(ThinFormatTest, RecordBlockRoundTripsAndResealFixesChecksums) {
  std::vector<uint8_t> payload = {1, 2, 3, 4, 5};
  std::vector<uint8_t> block(kBlockBytes);
  EncodeRecordBlock(
      {.txn = 9, .prev_record = 4, .next_block = 6, .index = 2, .kind = RecordKind::kDelta},
      payload, block);
  auto h = DecodeRecordBlock(block);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->txn, 9u);
  EXPECT_EQ(h->prev_record, 4u);
  EXPECT_EQ(h->next_block, 6u);
  EXPECT_EQ(h->index, 2u);
  EXPECT_EQ(h->payload_bytes, 5u);
  block[kRecordHeaderBytes] = 0x99;
  EXPECT_FALSE(DecodeRecordBlock(block).ok());
  ResealImage(block);
  EXPECT_TRUE(DecodeRecordBlock(block).ok());
}

TEST(ThinFormatTest, EntriesRoundTrip) {
  EntryWriter w;
  w.Device(7, 1000, kNoOrigin, 3);
  w.Delete(8);
  w.MapRun(7, 10, 20, 5);
  w.UnmapRun(7, 30, 2);
  w.RefRun(20, 5, 2);
  EntryReader r(w.bytes());
  auto dev = r.Next();
  ASSERT_TRUE(dev.ok());
  EXPECT_EQ(dev->type, EntryType::kDevice);
  EXPECT_EQ(dev->dev, 7u);
  EXPECT_EQ(dev->vblock, 1000u);
  EXPECT_EQ(dev->len, kNoOrigin);
  EXPECT_EQ(r.Next()->type, EntryType::kDelete);
  auto map = r.Next();
  EXPECT_EQ(map->type, EntryType::kMapRun);
  EXPECT_EQ(map->dblock, 20u);
  EXPECT_EQ(map->len, 5u);
  EXPECT_EQ(r.Next()->type, EntryType::kUnmapRun);
  auto ref = r.Next();
  EXPECT_EQ(ref->count, 2u);
  EXPECT_TRUE(r.done());
}

TEST(ThinFormatTest, TruncatedAndUnknownEntriesAreDataLoss) {
  EntryWriter w;
  w.MapRun(1, 2, 3, 4);
  std::vector<uint8_t> bytes = w.bytes();
  bytes.pop_back();
  EntryReader truncated(bytes);
  EXPECT_EQ(truncated.Next().status().code(), StatusCode::kDataLoss);
  std::vector<uint8_t> unknown = {0x77, 0, 0};
  EntryReader bad(unknown);
  EXPECT_NE(bad.Next().status().message().find("unknown entry type"), std::string::npos);
}

TEST(ThinFormatTest, Crc32cMatchesTheStandardCheckValue) {
  const std::string s = "123456789";
  EXPECT_EQ(Crc32c({reinterpret_cast<const uint8_t*>(s.data()), s.size()}), 0xe3069283u);
}

}  // namespace
}  // namespace ferry::volume::thin::format
