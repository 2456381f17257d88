#include "scsi/nexus.h"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <vector>

#include "backends/ram/ram_device.h"
#include "base/endian.h"
#include "scsi/logical_unit.h"
#include "scsi/opcodes.h"
#include "scsi/task.h"

namespace ferry::scsi {
namespace {

TEST(LunFieldTest, PeripheralAndFlatAddressingRoundTrip) {
  EXPECT_EQ(EncodeLun(0), 0u);
  EXPECT_EQ(EncodeLun(7), 0x0007000000000000ull);
  EXPECT_EQ(EncodeLun(300), 0x412c000000000000ull);  // flat space: 01b, then 14 bits
  for (uint64_t lun : {0ull, 1ull, 255ull, 256ull, 16383ull}) {
    uint64_t back = ~0ull;
    ASSERT_TRUE(DecodeLun(EncodeLun(lun), &back)) << lun;
    EXPECT_EQ(back, lun);
  }
  uint64_t lun = 0;
  EXPECT_FALSE(DecodeLun(0x0001000000000001ull, &lun));  // a second level
  EXPECT_FALSE(DecodeLun(0x0107000000000000ull, &lun));  // peripheral, bus 1
  EXPECT_FALSE(DecodeLun(0x8000000000000000ull, &lun));  // logical unit addressing
  EXPECT_FALSE(DecodeLun(0xc100000000000000ull, &lun));  // extended addressing
}

class NexusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ram = *backends::RamDevice::Create({.name = "r", .size_bytes = 1 << 20});
    auto view = std::make_shared<NexusView>();
    for (uint64_t lun : {0u, 7u, 300u}) {
      view->lus.push_back({.lu = std::make_shared<LogicalUnit>(ram, LuIdentity{}, false),
                           .lun = lun,
                           .write_protect = lun == 7});
    }
    view_ = std::move(view);
  }
  Task Cdb(std::initializer_list<uint8_t> bytes) {
    Task t;
    std::copy(bytes.begin(), bytes.end(), t.cdb.begin());
    t.allocation_length = AllocationLength(t.cdb.data());
    in_.assign(256, 0xee);
    t.data_in = in_;
    return t;
  }
  // REPORT LUNS with this SELECT REPORT and allocation length, sent to `lu`: the nexus
  // answers it.
  Task ReportLuns(const NexusView* view, uint8_t select, uint8_t alloc,
                  const LogicalUnit* lu = nullptr) {
    Task t = Cdb({kReportLuns, 0, select, 0, 0, 0, 0, 0, 0, alloc});
    EXPECT_TRUE(AnswerForNexus(view, lu, t));
    return t;
  }
  static void ExpectSense(const Task& t, SenseKey k, Asc a) {
    EXPECT_EQ(t.status, Status::kCheckCondition);
    EXPECT_TRUE(t.has_sense);
    EXPECT_EQ(t.sense.key, k);
    EXPECT_EQ(t.sense.asc, a);
  }

  std::shared_ptr<const NexusView> view_;
  std::vector<uint8_t> in_;
};

TEST_F(NexusTest, AddressTaskFindsTheLuAndItsWriteProtection) {
  Task t;
  EXPECT_EQ(AddressTask(view_, 7, t), view_->lus[1].lu.get());
  EXPECT_EQ(t.view, view_);
  EXPECT_TRUE(t.write_protected);
  EXPECT_EQ(AddressTask(view_, 300, t), view_->lus[2].lu.get());
  EXPECT_FALSE(t.write_protected);
  EXPECT_EQ(AddressTask(view_, 8, t), nullptr);
  EXPECT_FALSE(t.write_protected);
  EXPECT_EQ(t.view, view_);  // absent LUNs keep the nexus's view
  EXPECT_EQ(AddressTask(view_, std::nullopt, t), nullptr);
  EXPECT_EQ(AddressTask(nullptr, 0, t), nullptr);
  EXPECT_EQ(t.view, nullptr);
}

// SPC-4 6.33: the LUN list, 8 bytes a LUN in SAM-5 4.7 form, after an 8-byte header.
TEST_F(NexusTest, ReportLunsListsTheLunMap) {
  Task t = ReportLuns(view_.get(), 0, 64);
  EXPECT_EQ(t.status, Status::kGood);
  ASSERT_EQ(t.data_in_bytes, 32u);
  EXPECT_EQ(LoadBe32(&in_[0]), 24u);
  EXPECT_EQ(LoadBe32(&in_[4]), 0u);
  EXPECT_EQ(LoadBe64(&in_[8]), 0u);
  EXPECT_EQ(LoadBe64(&in_[16]), EncodeLun(7));
  EXPECT_EQ(LoadBe64(&in_[24]), EncodeLun(300));

  // To a mapped LUN too, and cut to the allocation length (the list length stays whole).
  Task cut = ReportLuns(view_.get(), 0, 16, view_->lus[0].lu.get());
  EXPECT_EQ(cut.data_in_bytes, 16u);
  EXPECT_EQ(cut.data_in_wanted, 16u);
  EXPECT_EQ(LoadBe32(&in_[0]), 24u);
}

TEST_F(NexusTest, ReportLunsWellKnownOnlyAndNoLunsAreEmpty) {
  for (const NexusView* view : {view_.get(), static_cast<const NexusView*>(nullptr)}) {
    Task t = ReportLuns(view, view != nullptr ? 0x01 : 0x00, 64);  // select 1: well-known only
    EXPECT_EQ(t.status, Status::kGood);
    EXPECT_EQ(t.data_in_bytes, 8u);
    EXPECT_EQ(LoadBe32(&in_[0]), 0u);
  }
}

TEST_F(NexusTest, ReportLunsRefusesAnUnknownSelectAndAShortAllocation) {
  for (uint8_t select : {0x00, 0x02, 0x10, 0x11, 0x12}) {
    EXPECT_EQ(ReportLuns(view_.get(), select, 64).status, Status::kGood) << int{select};
  }
  Task select = ReportLuns(view_.get(), 0x03, 64);
  ExpectSense(select, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
  EXPECT_EQ(select.sense.field_byte, 2);
  Task shrt = ReportLuns(view_.get(), 0, 15);
  ExpectSense(shrt, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
  EXPECT_EQ(shrt.sense.field_byte, 6);
}

// SPC-4 6.6.2: peripheral qualifier 011b, device type 1Fh: no logical unit at this LUN.
TEST_F(NexusTest, AbsentLunInquiryIsNotConnected) {
  Task t = Cdb({kInquiry, 0, 0, 0, 96, 0});
  ASSERT_TRUE(AnswerForNexus(view_.get(), nullptr, t));
  EXPECT_EQ(t.status, Status::kGood);
  ASSERT_EQ(t.data_in_bytes, 36u);
  const std::array<uint8_t, 5> head = {0x7f, 0, 0x06, 0x12, 31};
  EXPECT_TRUE(std::equal(head.begin(), head.end(), in_.begin()));
  EXPECT_TRUE(std::all_of(in_.begin() + 5, in_.begin() + 36, [](uint8_t b) { return b == 0; }));
}

// SPC-4 4.6.4 / 6.39: REQUEST SENSE to an absent LUN returns LOGICAL UNIT NOT SUPPORTED as
// data, in the format DESC asks for; any other command fails with it.
TEST_F(NexusTest, AbsentLunRequestSenseAndOtherCommands) {
  Task fixed = Cdb({kRequestSense, 0, 0, 0, 252, 0});
  ASSERT_TRUE(AnswerForNexus(view_.get(), nullptr, fixed));
  EXPECT_EQ(fixed.status, Status::kGood);
  EXPECT_EQ(fixed.data_in_bytes, 18u);
  EXPECT_EQ(in_[0], 0x70);
  EXPECT_EQ(in_[2] & 0x0f, 0x05);
  EXPECT_EQ(in_[12], 0x25);
  EXPECT_EQ(in_[13], 0x00);
  Task desc = Cdb({kRequestSense, 1, 0, 0, 252, 0});
  ASSERT_TRUE(AnswerForNexus(view_.get(), nullptr, desc));
  EXPECT_EQ(in_[0], 0x72);
  EXPECT_EQ(in_[1], 0x05);
  EXPECT_EQ(in_[2], 0x25);
  Task tur = Cdb({kTestUnitReady});
  ASSERT_TRUE(AnswerForNexus(view_.get(), nullptr, tur));
  ExpectSense(tur, SenseKey::kIllegalRequest, Asc::kLogicalUnitNotSupported);
  EXPECT_EQ(tur.data_in_bytes, 0u);
}

TEST_F(NexusTest, CommandsToAMappedLunAreLeftToIt) {
  Task t = Cdb({kInquiry, 0, 0, 0, 96, 0});
  EXPECT_FALSE(AnswerForNexus(view_.get(), view_->lus[0].lu.get(), t));
  EXPECT_EQ(t.status, Status::kGood);
  EXPECT_FALSE(t.has_sense);
  EXPECT_EQ(t.data_in_bytes, 0u);
}

}  // namespace
}  // namespace ferry::scsi
