// What ferryd's copy manager advertises, read the way initiators read it: the 3PC bit, the
// Third-party Copy VPD page (SPC-4 7.8.17), REPORT SUPPORTED OPERATION CODES (SPC-4 6.35),
// RECEIVE COPY RESULTS OPERATING PARAMETERS (SPC-4 6.18.4), and the copy counters ferryctl
// shows.
#include <algorithm>
#include <map>
#include <set>

#include "tpc_client.h"

namespace ferry::tpc_test {
namespace {

class AdvertiseTest : public TpcTest {
 protected:
  Bytes Inquiry(bool evpd, uint8_t page) {
    const uint8_t cdb[6] = {0x12, static_cast<uint8_t>(evpd ? 1 : 0), page, 0x10, 0x00, 0x00};
    const Reply r = c().In(0, cdb, 4096);
    EXPECT_TRUE(IsGood(r)) << "INQUIRY evpd " << evpd << " page " << std::hex << int{page};
    return r.data;
  }

  // VPD 8Fh as {descriptor type -> whole descriptor (type and length included)}.
  std::map<uint16_t, Bytes> ThirdPartyCopyDescriptors() {
    const Bytes page = Inquiry(true, 0x8f);
    std::map<uint16_t, Bytes> out;
    if (page.size() < 4) {
      ADD_FAILURE() << "VPD 8Fh: " << page.size() << " bytes";
      return out;
    }
    EXPECT_EQ(page[1], 0x8f);
    const size_t end = std::min<size_t>(page.size(), 4 + Get16(&page[2]));
    for (size_t i = 4; i + 4 <= end;) {
      const size_t len = 4 + Get16(&page[i + 2]);
      if (i + len > end) {
        ADD_FAILURE() << "VPD 8Fh descriptor at " << i << " runs past the page";
        break;
      }
      // SPC-4 7.8.17.1: descriptors are padded to a multiple of four bytes.
      EXPECT_EQ(len % 4, 0u) << "descriptor " << std::hex << Get16(&page[i]) << " length";
      out.emplace(Get16(&page[i]), Bytes(page.begin() + i, page.begin() + i + len));
      i += len;
    }
    return out;
  }
};

TEST_F(AdvertiseTest, StandardInquiryHasThe3pcBit) {
  const Bytes std_inq = Inquiry(false, 0);
  ASSERT_GE(std_inq.size(), 6u);
  EXPECT_TRUE(std_inq[5] & 0x08) << "INQUIRY byte 5 bit 3 (3PC)";
}

TEST_F(AdvertiseTest, SupportedVpdPagesListThirdPartyCopy) {
  const Bytes p = Inquiry(true, 0x00);
  ASSERT_GE(p.size(), 4u);
  const auto end = p.begin() + std::min<size_t>(p.size(), 4 + Get16(&p[2]));
  EXPECT_NE(std::find(p.begin() + 4, end, 0x8f), end) << "VPD 00h does not list 8Fh";
}

TEST_F(AdvertiseTest, ThirdPartyCopyPageHasEveryDescriptor) {
  const auto d = ThirdPartyCopyDescriptors();
  for (uint16_t t : {0x0000, 0x0001, 0x0004, 0x0008, 0x000c, 0x0106, 0x0108, 0x8001}) {
    EXPECT_TRUE(d.count(t)) << "VPD 8Fh has no descriptor " << std::hex << t;
  }
}

// 0000h Block Device ROD Token Limits: what Windows reads before it tries ODX.
TEST_F(AdvertiseTest, BlockDeviceRodTokenLimits) {
  const auto all = ThirdPartyCopyDescriptors();
  ASSERT_TRUE(all.count(0x0000));
  const Bytes& d = all.at(0x0000);
  ASSERT_EQ(d.size(), 36u);
  EXPECT_EQ(Get16(&d[2]), 0x0020);
  EXPECT_EQ(Get16(&d[10]), 64) << "MAXIMUM RANGE DESCRIPTORS";
  EXPECT_EQ(Get32(&d[12]), 600u) << "MAXIMUM INACTIVITY TIMEOUT";
  EXPECT_EQ(Get32(&d[16]), 60u) << "DEFAULT INACTIVITY TIMEOUT";
}

// 0001h Supported Commands: {opcode, n, n service actions}...
TEST_F(AdvertiseTest, SupportedCommandsListEveryServiceAction) {
  const auto all = ThirdPartyCopyDescriptors();
  ASSERT_TRUE(all.count(0x0001));
  const Bytes& d = all.at(0x0001);
  ASSERT_GE(d.size(), 5u);
  std::map<uint8_t, std::set<uint8_t>> sas;
  const size_t end = std::min<size_t>(d.size(), 5 + d[4]);
  for (size_t i = 5; i + 2 <= end;) {
    const uint8_t op = d[i], n = d[i + 1];
    ASSERT_LE(i + 2 + n, end) << "command entry at " << i << " runs past the list";
    sas[op].insert(d.begin() + i + 2, d.begin() + i + 2 + n);
    i += 2 + n;
  }
  for (uint8_t sa : {0x00, 0x01, 0x10, 0x11, 0x1c}) {
    EXPECT_TRUE(sas[0x83].count(sa)) << "83h service action " << std::hex << int{sa};
  }
  for (uint8_t sa : {0x00, 0x03, 0x04, 0x05, 0x07, 0x08}) {
    EXPECT_TRUE(sas[0x84].count(sa)) << "84h service action " << std::hex << int{sa};
  }
}

TEST_F(AdvertiseTest, ParameterDataMatchesOperatingParameters) {
  const auto all = ThirdPartyCopyDescriptors();
  ASSERT_TRUE(all.count(0x0004));
  const Bytes& d = all.at(0x0004);
  ASSERT_GE(d.size(), 20u);
  EXPECT_EQ(Get16(&d[8]), 128) << "MAXIMUM CSCD DESCRIPTOR COUNT";
  EXPECT_EQ(Get16(&d[10]), 256) << "MAXIMUM SEGMENT DESCRIPTOR COUNT";
  EXPECT_EQ(Get32(&d[12]), 16384u) << "MAXIMUM DESCRIPTOR LIST LENGTH";
  EXPECT_EQ(Get32(&d[16]), 0u) << "MAXIMUM INLINE DATA LENGTH";
}

TEST_F(AdvertiseTest, SupportedDescriptorsAndCscdIds) {
  const auto all = ThirdPartyCopyDescriptors();
  ASSERT_TRUE(all.count(0x0008));
  ASSERT_TRUE(all.count(0x000c));
  const Bytes& d = all.at(0x0008);
  ASSERT_GE(d.size(), 5u);
  const auto codes_end = d.begin() + std::min<size_t>(d.size(), 5 + d[4]);
  for (uint8_t code : {0x02, 0x07, 0x0a, 0xe4}) {
    EXPECT_NE(std::find(d.begin() + 5, codes_end, code), codes_end)
        << "0008h does not list descriptor " << std::hex << int{code};
  }
  const Bytes& ids = all.at(0x000c);
  ASSERT_GE(ids.size(), 6u);
  bool this_lu = false;
  const size_t end = std::min<size_t>(ids.size(), 6 + Get16(&ids[4]));
  for (size_t i = 6; i + 2 <= end; i += 2) this_lu |= Get16(&ids[i]) == 0xffff;
  EXPECT_TRUE(this_lu) << "000Ch does not list CSCD id FFFFh";
}

TEST_F(AdvertiseTest, GeneralCopyOperations) {
  const auto all = ThirdPartyCopyDescriptors();
  ASSERT_TRUE(all.count(0x8001));
  const Bytes& d = all.at(0x8001);
  ASSERT_EQ(d.size(), 36u);
  EXPECT_EQ(Get16(&d[2]), 0x0020);
  EXPECT_EQ(Get32(&d[12]), 1u << 30) << "MAXIMUM SEGMENT LENGTH";
}

// REPORT SUPPORTED OPERATION CODES, reporting options 010b: one opcode and service action.
TEST_F(AdvertiseTest, ReportSupportedOperationCodesKnowsEveryServiceAction) {
  const std::pair<uint8_t, uint8_t> all[] = {{0x83, 0x00}, {0x83, 0x01}, {0x83, 0x10}, {0x83, 0x11},
                                             {0x83, 0x1c}, {0x84, 0x00}, {0x84, 0x03}, {0x84, 0x04},
                                             {0x84, 0x05}, {0x84, 0x07}, {0x84, 0x08}};
  for (const auto& [op, sa] : all) {
    uint8_t cdb[12] = {0xa3, 0x0c, 0x02, op, 0x00, sa, 0, 0, 0x01, 0x00, 0, 0};
    const Reply r = c().In(0, cdb, 256);
    ASSERT_TRUE(IsGood(r)) << std::hex << int{op} << "h/" << int{sa} << "h";
    ASSERT_GE(r.data.size(), 4u);
    const uint8_t support = r.data[1] & 0x07;
    EXPECT_TRUE(support == 3 || support == 5)
        << std::hex << int{op} << "h/" << int{sa} << "h SUPPORT " << int{support};
    EXPECT_EQ(Get16(&r.data[2]), 16) << std::hex << int{op} << "h/" << int{sa} << "h CDB SIZE";
  }
}

TEST_F(AdvertiseTest, OperatingParameters) {
  const Reply r = c().In(0, ThirdPartyCopyIn(kSaOperatingParameters, 0, 1024), 1024);
  ASSERT_TRUE(IsGood(r));
  const Bytes& d = r.data;
  ASSERT_GE(d.size(), 44u);
  EXPECT_GE(Get32(&d[0]), 40u) << "AVAILABLE DATA";
  EXPECT_EQ(d[4] & 1, 1) << "SNLID";
  EXPECT_EQ(Get16(&d[8]), 128) << "MAXIMUM CSCD DESCRIPTOR COUNT";
  EXPECT_EQ(Get16(&d[10]), 256) << "MAXIMUM SEGMENT DESCRIPTOR COUNT";
  EXPECT_EQ(Get32(&d[12]), 16384u) << "MAXIMUM DESCRIPTOR LIST LENGTH";
  EXPECT_EQ(Get32(&d[16]), 1u << 30) << "MAXIMUM SEGMENT LENGTH";
  EXPECT_EQ(Get32(&d[20]), 0u) << "MAXIMUM INLINE DATA LENGTH";
  EXPECT_EQ(Get32(&d[24]), 0u) << "HELD DATA LIMIT";
  const size_t n = d[43];
  ASSERT_LE(44 + n, d.size()) << "IMPLEMENTED DESCRIPTOR LIST LENGTH";
  for (uint8_t code : {0x02, 0x07, 0x0a, 0xe4}) {
    EXPECT_NE(std::find(d.begin() + 44, d.begin() + 44 + n, code), d.begin() + 44 + n)
        << "descriptor code " << std::hex << int{code} << " not implemented";
  }
}

// A RAM-to-RAM EXTENDED COPY is offloaded by the RAM backend: the "ram" mechanism counts
// exactly the copied bytes and nothing is emulated.
TEST_F(AdvertiseTest, CopyCountersCountARamOffload) {
  Session& s = c();
  const uint64_t seed = NewSeed();
  s.Fill(0, 60000, 8192, seed);
  const auto before = ReadCopyCounters();
  ASSERT_TRUE(before);
  CopyList l{.cscds = {s.CscdOf(0), s.CscdOf(1)},
             .segments = {SegmentB2B(0, 1, 8192, 60000, 60000)}};
  ASSERT_TRUE(IsGood(s.Xcopy1(0, l)));
  const auto after = ReadCopyCounters();
  ASSERT_TRUE(after);
  const uint64_t bytes = 8192 * 512;
  if (after->commands_by_name.empty()) {
    EXPECT_EQ(after->commands - before->commands, 1u);
  } else {
    ASSERT_TRUE(after->commands_by_name.count("extended_copy"));
    EXPECT_EQ(
        after->commands_by_name.at("extended_copy") - before->commands_by_name.at("extended_copy"),
        1u);
  }
  EXPECT_EQ(after->bytes_offloaded - before->bytes_offloaded, bytes);
  EXPECT_EQ(after->bytes_emulated - before->bytes_emulated, 0u);
  auto mech = [](const CopyCounters& c, const char* m) {
    auto it = c.mechanisms.find(m);
    return it == c.mechanisms.end() ? uint64_t{0} : it->second;
  };
  EXPECT_EQ(mech(*after, "ram") - mech(*before, "ram"), bytes);
  for (const char* m : {"ram", "reflink", "copy_file_range", "emulated"}) {
    EXPECT_TRUE(after->mechanisms.count(m)) << "no mechanism \"" << m << "\" in the counters";
  }
  EXPECT_TRUE(SameBytes(s.Read(1, 60000, 8192), Session::Expected(seed, 60000, 8192, 512)));
}

}  // namespace
}  // namespace ferry::tpc_test
