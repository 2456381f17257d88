#include "scsi/opcodes.h"

#include <gtest/gtest.h>

#include <array>

#include "base/endian.h"

namespace ferry::scsi {
namespace {

constexpr uint32_t kBs = 512;

// WRITE(10) of `blocks` blocks at LBA 0.
std::array<uint8_t, 16> Write10(uint16_t blocks) {
  std::array<uint8_t, 16> c{};
  c[0] = kWrite10;
  StoreBe16(&c[7], blocks);
  return c;
}

// SAM-5 5.4.3: less data-out than the transfer length, in whole blocks: the CDB is cut.
TEST(FitWriteToDataOutTest, ShortDataInWholeBlocksCutsTheCdb) {
  auto c = Write10(8);
  bool partial = false;
  EXPECT_EQ(FitWriteToDataOut(c.data(), kBs, 3 * kBs, &partial), 8u * kBs);
  EXPECT_FALSE(partial);
  EXPECT_EQ(LoadBe16(&c[7]), 3);
  // As much as the CDB says, or more: the CDB stays.
  for (uint32_t bytes : {3 * kBs, 5 * kBs}) {
    EXPECT_EQ(FitWriteToDataOut(c.data(), kBs, bytes, &partial), 3u * kBs);
    EXPECT_EQ(LoadBe16(&c[7]), 3);
  }
  // No data at all: a WRITE(10) of no blocks.
  EXPECT_EQ(FitWriteToDataOut(c.data(), kBs, 0, &partial), 3u * kBs);
  EXPECT_EQ(LoadBe16(&c[7]), 0);
  EXPECT_FALSE(partial);
}

TEST(FitWriteToDataOutTest, PartialBlocksAndEmptyWrite6AreRefused) {
  auto c = Write10(8);
  bool partial = false;
  EXPECT_EQ(FitWriteToDataOut(c.data(), kBs, 3 * kBs + 1, &partial), 8u * kBs);
  EXPECT_TRUE(partial);
  EXPECT_EQ(LoadBe16(&c[7]), 8);
  // WRITE(6): a transfer length of 0 means 256 blocks, so no data cannot be said.
  std::array<uint8_t, 16> w6{kWrite6, 0, 0, 0, 4, 0};
  partial = false;
  EXPECT_EQ(FitWriteToDataOut(w6.data(), kBs, 0, &partial), 4u * kBs);
  EXPECT_TRUE(partial);
  EXPECT_EQ(w6[4], 4);
  partial = false;
  EXPECT_EQ(FitWriteToDataOut(w6.data(), kBs, kBs, &partial), 4u * kBs);
  EXPECT_FALSE(partial);
  EXPECT_EQ(w6[4], 1);
}

TEST(FitWriteToDataOutTest, OtherCommandsAreLeftAlone) {
  std::array<uint8_t, 16> read10{kRead10, 0, 0, 0, 0, 0, 0, 0, 8, 0};
  bool partial = false;
  EXPECT_EQ(FitWriteToDataOut(read10.data(), kBs, 0, &partial), std::nullopt);
  std::array<uint8_t, 16> tur{kTestUnitReady};
  EXPECT_EQ(FitWriteToDataOut(tur.data(), kBs, 0, &partial), std::nullopt);
  EXPECT_FALSE(partial);
  EXPECT_EQ(read10[8], 8);
}

}  // namespace
}  // namespace ferry::scsi
