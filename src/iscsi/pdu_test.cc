#include "iscsi/pdu.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "base/endian.h"

namespace ferry::iscsi {
namespace {

Bhs Header(Opcode op, uint8_t flags, bool immediate = false) {
  Bhs b{};
  b[0] = static_cast<uint8_t>(op) | (immediate ? 0x40 : 0);
  b[1] = flags;
  return b;
}

template <typename T>
T Get(const Decoded& d) {
  EXPECT_TRUE(d.ok) << d.why;
  return std::get<T>(d.pdu);
}

TEST(Crc32c, Rfc3720Examples) {
  // RFC 3720 B.4: the digests of 32 bytes of zeroes, of ones, and of 0..31.
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xff), inc(32);
  std::iota(inc.begin(), inc.end(), 0);
  EXPECT_EQ(Crc32c(zeros), 0x8a9136aau);
  EXPECT_EQ(Crc32c(ones), 0x62a8ab43u);
  EXPECT_EQ(Crc32c(inc), 0x46dd794eu);
  // In pieces.
  uint32_t s = kCrc32cInit;
  s = Crc32cUpdate(s, std::span(inc).first(5));
  s = Crc32cUpdate(s, std::span(inc).subspan(5));
  EXPECT_EQ(Crc32cFinish(s), 0x46dd794eu);
}

TEST(Pdu, ScsiCommand) {
  Bhs b = Header(Opcode::kScsiCommand, 0x80 | 0x20 | 0x01);
  b[4] = 0;
  StoreBe24(&b[5], 512);
  StoreBe64(&b[8], 0x0001000000000000ull);
  StoreBe32(&b[16], 7);
  StoreBe32(&b[20], 4096);
  StoreBe32(&b[24], 10);
  StoreBe32(&b[28], 3);
  b[32] = 0x2a;
  auto p = Get<ScsiCommandPdu>(DecodeInitiatorBhs(b));
  EXPECT_TRUE(p.final);
  EXPECT_TRUE(p.write);
  EXPECT_FALSE(p.read);
  EXPECT_EQ(p.attr, 1);
  EXPECT_EQ(p.lun, 0x0001000000000000ull);
  EXPECT_EQ(p.itt, 7u);
  EXPECT_EQ(p.expected_data_length, 4096u);
  EXPECT_EQ(p.cmdsn, 10u);
  EXPECT_EQ(p.expstatsn, 3u);
  EXPECT_EQ(p.cdb[0], 0x2a);
  EXPECT_EQ(p.data_bytes, 512u);
}

TEST(Pdu, ScsiCommandErrors) {
  Bhs b = Header(Opcode::kScsiCommand, 0x80 | 0x40);
  StoreBe32(&b[16], kReservedTag);
  EXPECT_EQ(DecodeInitiatorBhs(b).reject, RejectReason::kInvalidPduField);
  StoreBe32(&b[16], 1);
  b[1] = 0x80;  // neither R nor W but a data length
  StoreBe32(&b[20], 512);
  EXPECT_EQ(DecodeInitiatorBhs(b).reject, RejectReason::kInvalidPduField);
  b[1] = 0x80 | 0x40;  // read with immediate data
  StoreBe24(&b[5], 100);
  EXPECT_EQ(DecodeInitiatorBhs(b).reject, RejectReason::kProtocolError);
  b[1] = 0x80 | 0x07;  // task attribute 7
  StoreBe24(&b[5], 0);
  StoreBe32(&b[20], 0);
  EXPECT_EQ(DecodeInitiatorBhs(b).reject, RejectReason::kInvalidPduField);
}

TEST(Pdu, LoginRequest) {
  Bhs b = Header(Opcode::kLoginRequest, 0x80 | (1 << 2) | 3, true);
  b[2] = 0;
  b[3] = 0;
  for (int i = 0; i < 6; ++i) b[8 + i] = static_cast<uint8_t>(0x80 + i);
  StoreBe16(&b[14], 0);
  StoreBe32(&b[16], 0x11223344);
  StoreBe16(&b[20], 1);
  StoreBe32(&b[24], 5);
  StoreBe24(&b[5], 300);
  auto p = Get<LoginRequestPdu>(DecodeInitiatorBhs(b));
  EXPECT_TRUE(p.transit);
  EXPECT_EQ(p.csg, 1);
  EXPECT_EQ(p.nsg, 3);
  EXPECT_EQ(p.isid[0], 0x80);
  EXPECT_EQ(p.itt, 0x11223344u);
  EXPECT_EQ(p.cid, 1);
  EXPECT_EQ(p.cmdsn, 5u);
  EXPECT_EQ(p.data_bytes, 300u);
  b[1] = 0x80 | 0x40 | (1 << 2) | 3;  // T and C
  EXPECT_EQ(DecodeInitiatorBhs(b).reject, RejectReason::kProtocolError);
  b[1] = 0x80 | (1 << 2) | 1;  // NSG == CSG
  EXPECT_EQ(DecodeInitiatorBhs(b).reject, RejectReason::kInvalidPduField);
  b[1] = (2 << 2);  // CSG 2
  EXPECT_EQ(DecodeInitiatorBhs(b).reject, RejectReason::kInvalidPduField);
  b[1] = 0x80 | 1;  // security -> operational
  b[4] = 1;         // AHS
  EXPECT_EQ(DecodeInitiatorBhs(b).reject, RejectReason::kProtocolError);
}

TEST(Pdu, OtherInitiatorPdus) {
  Bhs d = Header(Opcode::kDataOut, 0x80);
  StoreBe32(&d[20], 9);
  StoreBe32(&d[36], 2);
  StoreBe32(&d[40], 8192);
  auto dout = Get<DataOutPdu>(DecodeInitiatorBhs(d));
  EXPECT_TRUE(dout.final);
  EXPECT_EQ(dout.ttt, 9u);
  EXPECT_EQ(dout.datasn, 2u);
  EXPECT_EQ(dout.buffer_offset, 8192u);

  Bhs t = Header(Opcode::kTextRequest, 0x80 | 0x40);
  EXPECT_EQ(DecodeInitiatorBhs(t).reject, RejectReason::kProtocolError);
  t[1] = 0x80;
  StoreBe32(&t[20], kReservedTag);
  EXPECT_TRUE(Get<TextRequestPdu>(DecodeInitiatorBhs(t)).final);

  Bhs n = Header(Opcode::kNopOut, 0x80);
  StoreBe32(&n[16], kReservedTag);
  StoreBe32(&n[20], 5);
  EXPECT_EQ(DecodeInitiatorBhs(n).reject, RejectReason::kProtocolError);  // needs I=1
  n[0] |= 0x40;
  EXPECT_EQ(Get<NopOutPdu>(DecodeInitiatorBhs(n)).ttt, 5u);
  StoreBe32(&n[20], kReservedTag);
  EXPECT_FALSE(DecodeInitiatorBhs(n).ok);

  Bhs m = Header(Opcode::kTaskMgmtRequest, 0x80 | 5, true);
  StoreBe32(&m[16], 3);
  StoreBe32(&m[20], 77);
  auto tmf = Get<TaskMgmtRequestPdu>(DecodeInitiatorBhs(m));
  EXPECT_EQ(tmf.function, static_cast<uint8_t>(TmfFunction::kLogicalUnitReset));
  EXPECT_EQ(tmf.referenced_task_tag, 77u);

  Bhs l = Header(Opcode::kLogoutRequest, 0x80 | 1, true);
  StoreBe16(&l[20], 4);
  auto lo = Get<LogoutRequestPdu>(DecodeInitiatorBhs(l));
  EXPECT_EQ(lo.reason, 1);
  EXPECT_EQ(lo.cid, 4);
  l[1] = 0x80 | 3;
  EXPECT_EQ(DecodeInitiatorBhs(l).reject, RejectReason::kInvalidPduField);

  Bhs target = Header(Opcode::kDataIn, 0x80);
  EXPECT_EQ(DecodeInitiatorBhs(target).reject, RejectReason::kProtocolError);
  Bhs unknown = Header(static_cast<Opcode>(0x1c), 0);
  EXPECT_EQ(DecodeInitiatorBhs(unknown).reject, RejectReason::kCommandNotSupported);
}

TEST(Pdu, EncodeTargetPdus) {
  Bhs b;
  Encode(LoginResponsePdu{.transit = true,
                          .csg = 1,
                          .nsg = 3,
                          .isid = {1, 2, 3, 4, 5, 6},
                          .tsih = 9,
                          .itt = 0x42,
                          .seq = {1, 2, 3},
                          .status_class = 2,
                          .status_detail = 1,
                          .data_bytes = 100},
         &b);
  EXPECT_EQ(b[0], 0x23);
  EXPECT_EQ(b[1], 0x80 | (1 << 2) | 3);
  EXPECT_EQ(LoadBe24(&b[5]), 100u);
  EXPECT_EQ(b[8], 1);
  EXPECT_EQ(LoadBe16(&b[14]), 9);
  EXPECT_EQ(LoadBe32(&b[16]), 0x42u);
  EXPECT_EQ(LoadBe32(&b[24]), 1u);
  EXPECT_EQ(LoadBe32(&b[28]), 2u);
  EXPECT_EQ(LoadBe32(&b[32]), 3u);
  EXPECT_EQ(b[36], 2);
  EXPECT_EQ(b[37], 1);

  Encode(DataInPdu{.final = true,
                   .status_present = true,
                   .underflow = true,
                   .status = 0,
                   .lun = 1,
                   .itt = 5,
                   .seq = {10, 11, 12},
                   .datasn = 3,
                   .buffer_offset = 65536,
                   .residual_count = 512,
                   .data_bytes = 8192},
         &b);
  EXPECT_EQ(b[0], 0x25);
  EXPECT_EQ(b[1], 0x80 | 0x02 | 0x01);
  EXPECT_EQ(LoadBe24(&b[5]), 8192u);
  EXPECT_EQ(LoadBe32(&b[20]), kReservedTag);
  EXPECT_EQ(LoadBe32(&b[24]), 10u);
  EXPECT_EQ(LoadBe32(&b[36]), 3u);
  EXPECT_EQ(LoadBe32(&b[40]), 65536u);
  EXPECT_EQ(LoadBe32(&b[44]), 512u);

  Encode(ScsiResponsePdu{.overflow = true,
                         .status = 2,
                         .itt = 8,
                         .seq = {4, 5, 6},
                         .residual_count = 10,
                         .data_bytes = 20},
         &b);
  EXPECT_EQ(b[0], 0x21);
  EXPECT_EQ(b[1], 0x80 | 0x04);
  EXPECT_EQ(b[3], 2);
  EXPECT_EQ(LoadBe32(&b[44]), 10u);

  Encode(R2tPdu{.itt = 1, .ttt = 2, .r2tsn = 3, .buffer_offset = 4, .desired_length = 5}, &b);
  EXPECT_EQ(b[0], 0x31);
  EXPECT_EQ(LoadBe32(&b[36]), 3u);
  EXPECT_EQ(LoadBe32(&b[44]), 5u);

  Encode(RejectPdu{.reason = RejectReason::kInvalidPduField}, &b);
  EXPECT_EQ(b[0], 0x3f);
  EXPECT_EQ(b[2], 0x09);
  EXPECT_EQ(LoadBe24(&b[5]), 48u);
  EXPECT_EQ(LoadBe32(&b[16]), kReservedTag);

  Encode(LogoutResponsePdu{.itt = 3, .time2wait = 2, .time2retain = 20}, &b);
  EXPECT_EQ(b[0], 0x26);
  EXPECT_EQ(LoadBe16(&b[40]), 2);
  EXPECT_EQ(LoadBe16(&b[42]), 20);

  Encode(AsyncMessagePdu{.event = 1, .param3 = 5}, &b);
  EXPECT_EQ(b[0], 0x32);
  EXPECT_EQ(b[36], 1);
  EXPECT_EQ(LoadBe16(&b[42]), 5);
}

TEST(Pdu, Padding) {
  EXPECT_EQ(Padded(0), 0u);
  EXPECT_EQ(Padded(1), 4u);
  EXPECT_EQ(Padded(4), 4u);
  EXPECT_EQ(Padded(5), 8u);
}

}  // namespace
}  // namespace ferry::iscsi
