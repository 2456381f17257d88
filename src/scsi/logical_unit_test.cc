#include "scsi/logical_unit.h"

#include <gtest/gtest.h>

#include <vector>

#include "base/endian.h"
#include "scsi/logical_unit_test.h"
#include "scsi/opcodes.h"

namespace ferry::scsi {
namespace {

TEST_F(LuTest, WriteThenReadEveryCdbSize) {
  std::vector<uint8_t> data(4096);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  struct Form {
    std::vector<uint8_t> write, read;
  };
  std::vector<Form> forms = {
      {{kWrite6, 0, 0, 10, 8, 0}, {kRead6, 0, 0, 10, 8, 0}},
      {{kWrite10, 0x08, 0, 0, 0, 20, 0, 0, 8, 0}, {kRead10, 0, 0, 0, 0, 20, 0, 0, 8, 0}},
      {{kWrite12, 0, 0, 0, 0, 30, 0, 0, 0, 8, 0, 0}, {kRead12, 0, 0, 0, 0, 30, 0, 0, 0, 8, 0, 0}},
      {{kWrite16, 0, 0, 0, 0, 0, 0, 0, 0, 40, 0, 0, 0, 8, 0, 0},
       {kRead16, 0, 0, 0, 0, 0, 0, 0, 0, 40, 0, 0, 0, 8, 0, 0}},
  };
  for (auto& f : forms) {
    Task w;
    std::copy(f.write.begin(), f.write.end(), w.cdb.begin());
    w.nexus = 1;
    w.data_out = data;
    Run(w);
    EXPECT_EQ(w.status, Status::kGood) << std::hex << int(f.write[0]);
    Task r;
    std::copy(f.read.begin(), f.read.end(), r.cdb.begin());
    std::vector<uint8_t> in(4096);
    r.data_in = in;
    r.nexus = 1;
    Run(r);
    EXPECT_EQ(r.status, Status::kGood);
    EXPECT_EQ(r.data_in_bytes, 4096u);
    EXPECT_EQ(in, data) << std::hex << int(f.read[0]);
  }
}

TEST_F(LuTest, RangeAndFieldErrors) {
  Task t = Cdb({kRead10, 0, 0, 0, 0x40, 0, 0, 0, 1, 0});  // LBA 16384 == capacity
  Run(t);
  ExpectSense(t, SenseKey::kIllegalRequest, Asc::kLbaOutOfRange);
  Task p = Cdb({kRead10, 0x20, 0, 0, 0, 0, 0, 0, 1, 0});  // RDPROTECT
  Run(p);
  ExpectSense(p, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
  EXPECT_EQ(p.sense.field_byte, 1);
  Task naca = Cdb({kTestUnitReady, 0, 0, 0, 0, 0x04});
  Run(naca);
  ExpectSense(naca, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
  EXPECT_EQ(naca.sense.field_byte, 5);
  Task unknown = Cdb({0xc7});
  Run(unknown);
  ExpectSense(unknown, SenseKey::kIllegalRequest, Asc::kInvalidCommandOperationCode);
  Task zero = Cdb({kRead10, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  Run(zero);
  EXPECT_EQ(zero.status, Status::kGood);
  EXPECT_EQ(zero.data_in_bytes, 0u);
  Task short_write = Cdb({kWrite10, 0, 0, 0, 0, 0, 0, 0, 2, 0});
  std::vector<uint8_t> half(512);
  short_write.data_out = half;
  Run(short_write);
  ExpectSense(short_write, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
}

TEST_F(LuTest, MediumErrorsBecomeSense) {
  faulty_->AddErrorRange({.lba = Lba(100), .blocks = BlockCount(1)});
  Task r = Cdb({kRead10, 0, 0, 0, 0, 96, 0, 0, 8, 0});
  Run(r);
  ExpectSense(r, SenseKey::kMediumError, Asc::kUnrecoveredReadError);
  Task w = Cdb({kWrite10, 0, 0, 0, 0, 96, 0, 0, 8, 0});
  std::vector<uint8_t> d(4096);
  w.data_out = d;
  Run(w);
  ExpectSense(w, SenseKey::kMediumError, Asc::kWriteError);
}

TEST_F(LuTest, VerifyComparesWithBytchk) {
  std::vector<uint8_t> d(512, 0x5a);
  Task w = Cdb({kWriteAndVerify10, 0x02, 0, 0, 0, 5, 0, 0, 1, 0});
  w.data_out = d;
  Run(w);
  EXPECT_EQ(w.status, Status::kGood);
  Task v = Cdb({kVerify16, 0x02, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0});
  v.data_out = d;
  Run(v);
  EXPECT_EQ(v.status, Status::kGood);
  std::vector<uint8_t> other = d;
  other[300] = 0;
  Task m = Cdb({kVerify10, 0x02, 0, 0, 0, 5, 0, 0, 1, 0});
  m.data_out = other;
  Run(m);
  ExpectSense(m, SenseKey::kMiscompare, Asc::kMiscompareDuringVerify);
  EXPECT_EQ(m.sense.information, 300u);
  Task medium = Cdb({kVerify10, 0, 0, 0, 0, 5, 0, 0, 1, 0});
  Run(medium);
  EXPECT_EQ(medium.status, Status::kGood);
  EXPECT_EQ(medium.data_in_bytes, 0u);
}

TEST_F(LuTest, InquiryStandardAndVpd) {
  Task t = Cdb({kInquiry, 0, 0, 0, 96, 0});
  Run(t);
  ASSERT_EQ(t.status, Status::kGood);
  EXPECT_EQ(t.data_in_bytes, 96u);
  EXPECT_EQ(in_[0], 0);
  EXPECT_EQ(in_[2], 6);
  EXPECT_EQ(std::string(in_.begin() + 8, in_.begin() + 13), "FERRY");
  Task short_alloc = Cdb({kInquiry, 0, 0, 0, 36, 0}, 36);
  Run(short_alloc);
  EXPECT_EQ(short_alloc.data_in_bytes, 36u);
  Task pages = Cdb({kInquiry, 1, 0, 0, 255, 0});
  Run(pages);
  EXPECT_EQ(std::vector<uint8_t>(in_.begin() + 4, in_.begin() + 4 + in_[3]),
            (std::vector<uint8_t>{0x00, 0x80, 0x83, 0x86, 0xb0, 0xb1, 0xb2}));
  Task serial = Cdb({kInquiry, 1, 0x80, 0, 255, 0});
  Run(serial);
  EXPECT_EQ(std::string(in_.begin() + 4, in_.begin() + 10), "abc123");
  Task id = Cdb({kInquiry, 1, 0x83, 0, 255, 0});
  Run(id);
  EXPECT_EQ(in_[4], 0x01);  // binary
  EXPECT_EQ(in_[5], 0x03);  // LU, NAA
  EXPECT_EQ(in_[7], 16);
  EXPECT_EQ(in_[8], 0x60);
  for (uint8_t bad_page : {uint8_t{0x81}, uint8_t{0xc0}}) {
    Task b = Cdb({kInquiry, 1, bad_page, 0, 255, 0});
    Run(b);
    ExpectSense(b, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
  }
  Task page_without_evpd = Cdb({kInquiry, 0, 0x80, 0, 255, 0});
  Run(page_without_evpd);
  ExpectSense(page_without_evpd, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
}

TEST_F(LuTest, ReadCapacity) {
  Task t = Cdb({kReadCapacity10, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  Run(t);
  EXPECT_EQ(LoadBe32(in_.data()), 16383u);
  EXPECT_EQ(LoadBe32(in_.data() + 4), 512u);
  Task t16 =
      Cdb({kServiceActionIn16, kSaReadCapacity16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0});
  Run(t16);
  EXPECT_EQ(t16.data_in_bytes, 32u);
  EXPECT_EQ(LoadBe64(in_.data()), 16383u);
  Task bad_sa = Cdb({kServiceActionIn16, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0});
  Run(bad_sa);
  ExpectSense(bad_sa, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
}

TEST_F(LuTest, ModeSenseAndSelect) {
  Task all = Cdb({kModeSense10, 0, 0x3f, 0, 0, 0, 0, 0x10, 0, 0});
  Run(all);
  ASSERT_EQ(all.status, Status::kGood);
  EXPECT_EQ(LoadBe16(in_.data()) + 2u, all.data_in_bytes);
  EXPECT_EQ(LoadBe16(in_.data() + 6), 8);  // short block descriptor
  Task caching = Cdb({kModeSense6, 0x08, 0x08, 0, 255, 0});
  Run(caching);
  ASSERT_EQ(caching.status, Status::kGood);
  EXPECT_EQ(in_[4], 0x08);
  EXPECT_EQ(in_[6] & 0x04, 0x04);  // WCE
  // Turn the write cache off with MODE SELECT(6) and read it back.
  std::vector<uint8_t> sel = {0, 0, 0, 0};
  std::vector<uint8_t> page(in_.begin() + 4, in_.begin() + 4 + 20);
  page[2] &= ~0x04;
  sel.insert(sel.end(), page.begin(), page.end());
  Task s = Cdb({kModeSelect6, 0x10, 0, 0, static_cast<uint8_t>(sel.size()), 0});
  s.data_out = sel;
  Run(s);
  EXPECT_EQ(s.status, Status::kGood) << int(s.sense.field_byte);
  EXPECT_FALSE(lu_->mode().write_cache_enabled);
  // Changing a bit that is not changeable is refused with a pointer to it.
  sel[4 + 3] = 0xff;
  Task bad = Cdb({kModeSelect6, 0x10, 0, 0, static_cast<uint8_t>(sel.size()), 0});
  bad.data_out = sel;
  Run(bad);
  ExpectSense(bad, SenseKey::kIllegalRequest, Asc::kInvalidFieldInParameterList);
  EXPECT_EQ(bad.sense.field_byte, 7);
  Task saved = Cdb({kModeSense6, 0, 0xc8, 0, 255, 0});
  Run(saved);
  ExpectSense(saved, SenseKey::kIllegalRequest, Asc::kSavingParametersNotSupported);
}

TEST_F(LuTest, ModeSelectBlockDescriptorOnlyRestatesTheGeometry) {
  // 8 MiB of 512-byte blocks: 16384 blocks. A short block descriptor that restates them
  // (or says 0 blocks, "no change") is accepted; another block length or count is not.
  auto select = [&](uint32_t blocks, uint32_t block_len, uint8_t bd_len = 8) {
    std::vector<uint8_t> sel(4 + bd_len, 0);
    sel[3] = bd_len;
    StoreBe32(&sel[4], blocks);
    if (bd_len == 8) StoreBe24(&sel[4 + 5], block_len);
    Task t = Cdb({kModeSelect6, 0x10, 0, 0, static_cast<uint8_t>(sel.size()), 0});
    t.data_out = sel;
    Run(t);
    return t;
  };
  EXPECT_EQ(select(16384, 512).status, Status::kGood);
  EXPECT_EQ(select(0, 512).status, Status::kGood);
  Task size = select(16384, 4096);
  ExpectSense(size, SenseKey::kIllegalRequest, Asc::kInvalidFieldInParameterList);
  EXPECT_EQ(size.sense.field_byte, 4);
  ExpectSense(select(100, 512), SenseKey::kIllegalRequest, Asc::kInvalidFieldInParameterList);
  ExpectSense(select(0, 512, 4), SenseKey::kIllegalRequest, Asc::kInvalidFieldInParameterList);
}

TEST_F(LuTest, ReportOneCommandWithAWideServiceAction) {
  // REPORT SUPPORTED OPERATION CODES, option 3, opcode A3h with service action 010Ch: the
  // low byte names REPORT SUPPORTED OPERATION CODES itself, but 010Ch is not supported.
  Task t = Cdb({kMaintenanceIn, 0x0c, 0x03, kMaintenanceIn, 0x01, 0x0c, 0, 0, 0, 0x40, 0, 0});
  Run(t);
  ASSERT_EQ(t.status, Status::kGood);
  EXPECT_EQ(in_[1] & 0x07, 0x01);  // SUPPORT 001b: not supported
  Task ok = Cdb({kMaintenanceIn, 0x0c, 0x03, kMaintenanceIn, 0x00, 0x0c, 0, 0, 0, 0x40, 0, 0});
  Run(ok);
  ASSERT_EQ(ok.status, Status::kGood);
  EXPECT_EQ(in_[1] & 0x07, 0x03);  // supported, as the standard says
}

TEST_F(LuTest, UnitAttentionsPerNexus) {
  Task other = Cdb({kTestUnitReady});
  other.nexus = 2;
  Run(other);
  EXPECT_EQ(other.status, Status::kGood);
  lu_->RaiseUnitAttention(Asc::kCapacityDataHasChanged);
  Task seen_by_2 = Cdb({kTestUnitReady});
  seen_by_2.nexus = 2;
  Run(seen_by_2);
  ExpectSense(seen_by_2, SenseKey::kUnitAttention, Asc::kCapacityDataHasChanged);
  Task inq = Cdb({kInquiry, 0, 0, 0, 36, 0});  // INQUIRY does not consume it
  Run(inq);
  EXPECT_EQ(inq.status, Status::kGood);
  Task rs = Cdb({kRequestSense, 0, 0, 0, 18, 0});
  Run(rs);
  EXPECT_EQ(rs.status, Status::kGood);
  EXPECT_EQ(in_[2], 0x06);
  EXPECT_EQ(in_[12], 0x2a);
  EXPECT_EQ(in_[13], 0x09);
  Task tur = Cdb({kTestUnitReady});
  Run(tur);
  EXPECT_EQ(tur.status, Status::kGood);
}

// SBC-3 4.10: the device grew or shrank underneath (FaultyDevice::SetCapacity stands in for a
// resized remote LU or image): every nexus that knew the old size gets CAPACITY DATA HAS
// CHANGED once, and READ CAPACITY then reports the new size.
TEST_F(LuTest, ResizedDeviceRaisesCapacityDataHasChanged) {
  Task other = Cdb({kTestUnitReady});
  other.nexus = 2;
  Run(other);
  faulty_->SetCapacity(BlockCount(8192));  // 8 MiB of 512-byte blocks shrunk to 4 MiB
  for (uint64_t nexus : {1, 2}) {
    Task t = Cdb({kTestUnitReady});
    t.nexus = nexus;
    Run(t);
    ExpectSense(t, SenseKey::kUnitAttention, Asc::kCapacityDataHasChanged);
    Task again = Cdb({kTestUnitReady});
    again.nexus = nexus;
    Run(again);
    EXPECT_EQ(again.status, Status::kGood) << "raised once per nexus";
  }
  Task fresh = Cdb({kTestUnitReady});  // a nexus that never knew the old size
  fresh.nexus = 3;
  Run(fresh);
  EXPECT_EQ(fresh.status, Status::kGood);
  Task cap = Cdb({kReadCapacity10, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  Run(cap);
  ASSERT_EQ(cap.status, Status::kGood);
  EXPECT_EQ(LoadBe32(in_.data()), 8191u);
  Task past = Cdb({kRead10, 0, 0, 0, 0x20, 0, 0, 0, 1, 0});  // LBA 8192
  Run(past);
  ExpectSense(past, SenseKey::kIllegalRequest, Asc::kLbaOutOfRange);
}

TEST_F(LuTest, ReportSupportedOpcodesAndTmfs) {
  Task all =
      Cdb({kMaintenanceIn, kSaReportSupportedOpcodes, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0}, 4096);
  Run(all);
  ASSERT_EQ(all.status, Status::kGood);
  EXPECT_EQ(LoadBe32(in_.data()) % 8, 0u);
  EXPECT_GE(LoadBe32(in_.data()) / 8, 25u);
  Task one = Cdb({kMaintenanceIn, kSaReportSupportedOpcodes, 1, kRead10, 0, 0, 0, 0, 1, 0, 0, 0});
  Run(one);
  EXPECT_EQ(in_[1] & 0x07, 3);
  EXPECT_EQ(LoadBe16(in_.data() + 2), 10);
  EXPECT_EQ(in_[4], kRead10);
  Task sa = Cdb({kMaintenanceIn, kSaReportSupportedOpcodes, 2, kServiceActionIn16, 0, 0x10, 0, 0, 1,
                 0, 0, 0});
  Run(sa);
  EXPECT_EQ(in_[1] & 0x07, 3);
  EXPECT_EQ(in_[5], 0x10);
  Task wrong = Cdb(
      {kMaintenanceIn, kSaReportSupportedOpcodes, 1, kServiceActionIn16, 0, 0, 0, 0, 1, 0, 0, 0});
  Run(wrong);
  ExpectSense(wrong, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
  Task tmf = Cdb({kMaintenanceIn, kSaReportSupportedTmfs, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0});
  Run(tmf);
  EXPECT_EQ(tmf.data_in_bytes, 4u);
  EXPECT_EQ(in_[0], 0xda);
}

TEST_F(LuTest, WriteProtectedRefusesWrites) {
  LogicalUnit ro(ram_, LuIdentity{}, true);
  Task w = Cdb({kWrite10, 0, 0, 0, 0, 0, 0, 0, 1, 0});
  w.nexus = 9;
  std::vector<uint8_t> d(512);
  w.data_out = d;
  Run(w, &ro);
  ExpectSense(w, SenseKey::kDataProtect, Asc::kWriteProtected);
  Task ms = Cdb({kModeSense6, 0, 0x3f, 0, 255, 0});
  ms.nexus = 9;
  Run(ms, &ro);
  EXPECT_EQ(in_[2] & 0x80, 0x80);
}

TEST_F(LuTest, SynchronizeCache) {
  Task s = Cdb({kSynchronizeCache10, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  Run(s);
  EXPECT_EQ(s.status, Status::kGood);
  Task bad = Cdb({kSynchronizeCache16, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, 1, 0, 0});
  Run(bad);
  ExpectSense(bad, SenseKey::kIllegalRequest, Asc::kLbaOutOfRange);
}

}  // namespace
}  // namespace ferry::scsi
