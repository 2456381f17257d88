// SANITIZE (overwrite, block erase, exit failure mode), its in-progress and failure-mode
// states, and the software write protect that refuses it.
#include <gtest/gtest.h>

#include <vector>

#include "base/endian.h"
#include "scsi/logical_unit_test.h"

namespace ferry::scsi {
namespace {

class SanitizeTest : public LuTest {
 protected:
  static constexpr uint64_t kBlocks = (8 << 20) / kBs;

  Task Sanitize(uint8_t b1, std::span<const uint8_t> list) {
    std::array<uint8_t, 16> c{kSanitize, b1};
    StoreBe16(&c[7], static_cast<uint16_t>(list.size()));
    Task t = Make(c, list);
    Run(t);
    return t;
  }
  static std::vector<uint8_t> Overwrite(uint8_t b0, const std::vector<uint8_t>& pattern) {
    std::vector<uint8_t> l(4 + pattern.size(), 0);
    l[0] = b0;
    StoreBe16(&l[2], static_cast<uint16_t>(pattern.size()));
    for (size_t i = 0; i < pattern.size(); ++i) l[4 + i] = pattern[i];
    return l;
  }
  Task Tur() {
    Task t = Cdb({kTestUnitReady});
    Run(t);
    return t;
  }
};

TEST_F(SanitizeTest, OverwriteRepeatsThePatternOverEveryBlock) {
  Write(0, std::vector<uint8_t>(4 * kBs, 0x11));
  Write(kBlocks - 4, std::vector<uint8_t>(4 * kBs, 0x11));
  Task t = Sanitize(0x01, Overwrite(0x01, {'A', 'B', 'C'}));
  ASSERT_EQ(t.status, Status::kGood);
  for (uint64_t lba : {uint64_t{0}, kBlocks / 2, kBlocks - 1}) {
    std::vector<uint8_t> b = Read(lba, 1);
    for (uint32_t i = 0; i < kBs; ++i) ASSERT_EQ(b[i], "ABC"[i % 3]) << lba << " " << i;
  }
  // Two passes with INVERT: the last pass writes the inverted pattern.
  Task inv = Sanitize(0x01, Overwrite(0x82, {0x0f}));
  ASSERT_EQ(inv.status, Status::kGood);
  EXPECT_EQ(Read(7, 1), std::vector<uint8_t>(kBs, 0xf0));
}

TEST_F(SanitizeTest, ImmedRunsInTheBackgroundAndTheLuSaysSo) {
  lu_->set_sanitize_rate(32 << 20);  // 8 MiB: about a quarter of a second
  Task t = Sanitize(0x81, Overwrite(0x01, {0x5a}));
  ASSERT_EQ(t.status, Status::kGood);
  Task tur = Tur();
  ExpectSense(tur, SenseKey::kNotReady, Asc::kLogicalUnitNotReadySanitizeInProgress);
  EXPECT_TRUE(tur.sense.progress.has_value());
  Task inq = Cdb({kInquiry, 0, 0, 0, 96, 0});
  Run(inq);
  EXPECT_EQ(inq.status, Status::kGood);
  Task rs = Cdb({kRequestSense, 0, 0, 0, 18, 0});
  Run(rs);
  EXPECT_EQ(rs.status, Status::kGood);
  EXPECT_EQ(in_[2] & 0x0f, 0x02);  // NOT READY
  EXPECT_EQ(in_[12], 0x04);
  EXPECT_EQ(in_[13], 0x1b);
  EXPECT_EQ(in_[15] & 0x80, 0x80);  // SKSV: progress indication
  Task again = Sanitize(0x01, Overwrite(0x01, {0x5a}));
  ExpectSense(again, SenseKey::kNotReady, Asc::kLogicalUnitNotReadySanitizeInProgress);
  reactor_->RunUntil([&] { return !lu_->SanitizeInProgress().has_value(); });
  EXPECT_EQ(Tur().status, Status::kGood);
  EXPECT_EQ(Read(kBlocks - 1, 1), std::vector<uint8_t>(kBs, 0x5a));
}

TEST_F(SanitizeTest, BlockEraseDeallocatesEverything) {
  Write(0, std::vector<uint8_t>(256 * kBs, 0x33));
  ASSERT_GT(ram_->allocated_bytes(), 0u);
  Task t = Sanitize(0x02, {});
  ASSERT_EQ(t.status, Status::kGood);
  EXPECT_EQ(ram_->allocated_bytes(), 0u);
  EXPECT_EQ(Read(0, 256), std::vector<uint8_t>(256 * kBs, 0));
  std::vector<uint8_t> list(8, 0);
  Task with_list = Sanitize(0x02, list);
  ExpectSense(with_list, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
}

TEST_F(SanitizeTest, BadRequestsChangeNothing) {
  Write(0, std::vector<uint8_t>(kBs, 0x44));
  std::vector<uint8_t> ok = Overwrite(0x01, std::vector<uint8_t>(kBs, 0xaa));
  struct Case {
    const char* what;
    uint8_t b1;
    std::vector<uint8_t> list;
    Asc asc;
  };
  std::vector<uint8_t> too_long = Overwrite(0x01, std::vector<uint8_t>(kBs + 1, 0xaa));
  std::vector<uint8_t> short_list(ok.begin(), ok.begin() + 4);
  std::vector<uint8_t> mismatch = ok;
  StoreBe16(&mismatch[2], 16);
  std::vector<uint8_t> owcount0 = Overwrite(0x00, {0xaa});
  std::vector<uint8_t> test_bits = Overwrite(0x21, {0xaa});
  for (const Case& c : std::vector<Case>{
           {"pattern longer than a block", 0x01, too_long, Asc::kInvalidFieldInCdb},
           {"no pattern", 0x01, short_list, Asc::kInvalidFieldInCdb},
           {"pattern length not the list's", 0x01, mismatch, Asc::kInvalidFieldInCdb},
           {"OWCOUNT 0", 0x01, owcount0, Asc::kInvalidFieldInParameterList},
           {"TEST set", 0x01, test_bits, Asc::kInvalidFieldInParameterList},
           {"reserved bit", 0x41, ok, Asc::kInvalidFieldInCdb},
           {"CRYPTO ERASE", 0x03, {}, Asc::kInvalidFieldInCdb},
           {"EXIT FAILURE MODE with a list", 0x1f, owcount0, Asc::kInvalidFieldInCdb},
       }) {
    Task t = Sanitize(c.b1, c.list);
    ExpectSense(t, SenseKey::kIllegalRequest, c.asc);
    EXPECT_TRUE(t.status == Status::kCheckCondition) << c.what;
  }
  EXPECT_EQ(Read(0, 1), std::vector<uint8_t>(kBs, 0x44));
}

TEST_F(SanitizeTest, SoftwareWriteProtectRefusesSanitizeAndWrites) {
  // MODE SELECT(6) of the control page with SWP set.
  std::vector<uint8_t> ms = {0, 0, 0, 0, 0x0a, 0x0a, 0, 0x10, 0x08, 0x40, 0, 0, 0xff, 0xff, 0, 0};
  Task sel = Make({kModeSelect6, 0x10, 0, 0, static_cast<uint8_t>(ms.size())}, ms);
  Run(sel);
  ASSERT_EQ(sel.status, Status::kGood);
  EXPECT_TRUE(lu_->write_protected());
  Task t = Sanitize(0x01, Overwrite(0x01, {1}));
  ExpectSense(t, SenseKey::kDataProtect, Asc::kWriteProtected);
  Task w = Make(Cdb16(kWrite16, 0, 0, 1), std::vector<uint8_t>(kBs, 1));
  Run(w);
  ExpectSense(w, SenseKey::kDataProtect, Asc::kWriteProtected);
  ms[8] = 0;
  Task clear = Make({kModeSelect6, 0x10, 0, 0, static_cast<uint8_t>(ms.size())}, ms);
  Run(clear);
  ASSERT_EQ(clear.status, Status::kGood);
  EXPECT_FALSE(lu_->write_protected());
}

TEST_F(SanitizeTest, FailureModeUntilExitFailureMode) {
  faulty_->AddErrorRange({.lba = Lba(100), .blocks = BlockCount(1), .on_read = false});
  Task t = Sanitize(0x21, Overwrite(0x01, {0x77}));  // AUSE
  ExpectSense(t, SenseKey::kMediumError, Asc::kWriteError);
  faulty_->ClearFaults();
  Task r = Make(Cdb16(kRead16, 0, 0, 1));
  Run(r);
  ExpectSense(r, SenseKey::kMediumError, Asc::kSanitizeCommandFailed);
  Task exit = Sanitize(0x1f, {});
  EXPECT_EQ(exit.status, Status::kGood);
  EXPECT_EQ(Tur().status, Status::kGood);
  // Without AUSE only a new SANITIZE ends failure mode.
  faulty_->AddErrorRange({.lba = Lba(100), .blocks = BlockCount(1), .on_read = false});
  Task t2 = Sanitize(0x01, Overwrite(0x01, {0x77}));
  ExpectSense(t2, SenseKey::kMediumError, Asc::kWriteError);
  faulty_->ClearFaults();
  Task exit2 = Sanitize(0x1f, {});
  ExpectSense(exit2, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
  Task t3 = Sanitize(0x01, Overwrite(0x01, {0x77}));
  EXPECT_EQ(t3.status, Status::kGood);
  EXPECT_EQ(Tur().status, Status::kGood);
}

}  // namespace
}  // namespace ferry::scsi
