#include "iscsi/pdu.h"

#include <isa-l/crc.h>

#include <algorithm>

#include "base/endian.h"

namespace ferry::iscsi {
namespace {

Decoded Reject(RejectReason r, std::string_view why) {
  Decoded d;
  d.reject = r;
  d.why = why;
  return d;
}

template <typename T>
Decoded Ok(T pdu) {
  Decoded d;
  d.ok = true;
  d.pdu = pdu;
  return d;
}

void PutCommon(Bhs* out, Opcode op, uint8_t flags, uint32_t data_bytes) {
  out->fill(0);
  (*out)[0] = static_cast<uint8_t>(op);
  (*out)[1] = flags;
  StoreBe24(out->data() + 5, data_bytes);
}

void PutSeq(Bhs* out, const SeqNums& s) {
  StoreBe32(out->data() + 24, s.statsn);
  StoreBe32(out->data() + 28, s.expcmdsn);
  StoreBe32(out->data() + 32, s.maxcmdsn);
}

Decoded DecodeScsiCommand(const Bhs& b, const CommonHeader& c) {
  ScsiCommandPdu p;
  p.immediate = c.immediate;
  p.final = b[1] & 0x80;
  p.read = b[1] & 0x40;
  p.write = b[1] & 0x20;
  p.attr = b[1] & 0x07;
  p.lun = c.lun;
  p.itt = c.itt;
  p.expected_data_length = LoadBe32(&b[20]);
  p.cmdsn = LoadBe32(&b[24]);
  p.expstatsn = LoadBe32(&b[28]);
  std::copy(b.begin() + 32, b.end(), p.cdb.begin());
  p.ahs_bytes = c.ahs_bytes;
  p.data_bytes = c.data_bytes;
  if (p.itt == kReservedTag) return Reject(RejectReason::kInvalidPduField, "ITT 0xffffffff");
  if (p.attr > 4) return Reject(RejectReason::kInvalidPduField, "task attribute above 4");
  if (!p.read && !p.write && p.expected_data_length != 0) {
    return Reject(RejectReason::kInvalidPduField, "data length without R or W");
  }
  if (p.data_bytes > 0 && !p.write) {
    return Reject(RejectReason::kProtocolError, "immediate data on a command without W");
  }
  if (!p.final && !p.write) {
    return Reject(RejectReason::kProtocolError, "F=0 (unsolicited data) without W");
  }
  return Ok(p);
}

Decoded DecodeDataOut(const Bhs& b, const CommonHeader& c) {
  DataOutPdu p;
  p.final = c.final;
  p.lun = c.lun;
  p.itt = c.itt;
  p.ttt = LoadBe32(&b[20]);
  p.expstatsn = LoadBe32(&b[28]);
  p.datasn = LoadBe32(&b[36]);
  p.buffer_offset = LoadBe32(&b[40]);
  p.data_bytes = c.data_bytes;
  if (c.ahs_bytes != 0) return Reject(RejectReason::kProtocolError, "AHS on Data-Out");
  return Ok(p);
}

Decoded DecodeLogin(const Bhs& b, const CommonHeader& c) {
  LoginRequestPdu p;
  p.transit = b[1] & 0x80;
  p.cont = b[1] & 0x40;
  p.csg = (b[1] >> 2) & 0x3;
  p.nsg = b[1] & 0x3;
  p.version_max = b[2];
  p.version_min = b[3];
  std::copy(b.begin() + 8, b.begin() + 14, p.isid.begin());
  p.tsih = LoadBe16(&b[14]);
  p.itt = c.itt;
  p.cid = LoadBe16(&b[20]);
  p.cmdsn = LoadBe32(&b[24]);
  p.expstatsn = LoadBe32(&b[28]);
  p.data_bytes = c.data_bytes;
  if (c.ahs_bytes != 0) return Reject(RejectReason::kProtocolError, "AHS on Login");
  if (p.csg == 2) return Reject(RejectReason::kInvalidPduField, "login CSG 2 is reserved");
  if (p.transit && p.cont) return Reject(RejectReason::kProtocolError, "login with T and C");
  if (p.transit && (p.nsg == 2 || p.nsg <= p.csg)) {
    return Reject(RejectReason::kInvalidPduField, "login NSG is not after CSG");
  }
  return Ok(p);
}

Decoded DecodeText(const Bhs& b, const CommonHeader& c) {
  TextRequestPdu p;
  p.immediate = c.immediate;
  p.final = c.final;
  p.cont = b[1] & 0x40;
  p.lun = c.lun;
  p.itt = c.itt;
  p.ttt = LoadBe32(&b[20]);
  p.cmdsn = LoadBe32(&b[24]);
  p.expstatsn = LoadBe32(&b[28]);
  p.data_bytes = c.data_bytes;
  if (c.ahs_bytes != 0) return Reject(RejectReason::kProtocolError, "AHS on Text");
  if (p.final && p.cont) return Reject(RejectReason::kProtocolError, "text with F and C");
  if (p.itt == kReservedTag) return Reject(RejectReason::kInvalidPduField, "ITT 0xffffffff");
  return Ok(p);
}

Decoded DecodeNopOut(const Bhs& b, const CommonHeader& c) {
  NopOutPdu p;
  p.immediate = c.immediate;
  p.lun = c.lun;
  p.itt = c.itt;
  p.ttt = LoadBe32(&b[20]);
  p.cmdsn = LoadBe32(&b[24]);
  p.expstatsn = LoadBe32(&b[28]);
  p.data_bytes = c.data_bytes;
  if (c.ahs_bytes != 0) return Reject(RejectReason::kProtocolError, "AHS on NOP-Out");
  if (p.itt == kReservedTag && !p.immediate) {
    return Reject(RejectReason::kProtocolError, "NOP-Out with ITT 0xffffffff needs I=1");
  }
  if (p.itt == kReservedTag && p.ttt == kReservedTag) {
    return Reject(RejectReason::kProtocolError, "NOP-Out with neither ITT nor TTT");
  }
  return Ok(p);
}

Decoded DecodeTmf(const Bhs& b, const CommonHeader& c) {
  TaskMgmtRequestPdu p;
  p.immediate = c.immediate;
  p.function = b[1] & 0x7f;
  p.lun = c.lun;
  p.itt = c.itt;
  p.referenced_task_tag = LoadBe32(&b[20]);
  p.cmdsn = LoadBe32(&b[24]);
  p.expstatsn = LoadBe32(&b[28]);
  p.refcmdsn = LoadBe32(&b[32]);
  p.expdatasn = LoadBe32(&b[36]);
  if (c.ahs_bytes != 0 || c.data_bytes != 0) {
    return Reject(RejectReason::kProtocolError, "AHS or data on a task management request");
  }
  if (p.itt == kReservedTag) return Reject(RejectReason::kInvalidPduField, "ITT 0xffffffff");
  return Ok(p);
}

Decoded DecodeLogout(const Bhs& b, const CommonHeader& c) {
  LogoutRequestPdu p;
  p.immediate = c.immediate;
  p.reason = b[1] & 0x7f;
  p.itt = c.itt;
  p.cid = LoadBe16(&b[20]);
  p.cmdsn = LoadBe32(&b[24]);
  p.expstatsn = LoadBe32(&b[28]);
  if (c.ahs_bytes != 0 || c.data_bytes != 0) {
    return Reject(RejectReason::kProtocolError, "AHS or data on Logout");
  }
  if (p.reason > 2) return Reject(RejectReason::kInvalidPduField, "logout reason above 2");
  return Ok(p);
}

Decoded DecodeSnack(const Bhs& b, const CommonHeader& c) {
  SnackRequestPdu p;
  p.type = b[1] & 0x0f;
  p.lun = c.lun;
  p.itt = c.itt;
  p.ttt = LoadBe32(&b[20]);
  p.expstatsn = LoadBe32(&b[28]);
  p.begrun = LoadBe32(&b[40]);
  p.runlength = LoadBe32(&b[44]);
  return Ok(p);
}

}  // namespace

std::string_view OpcodeName(uint8_t op) {
  switch (static_cast<Opcode>(op & 0x3f)) {
    case Opcode::kNopOut: return "NOP-Out";
    case Opcode::kScsiCommand: return "SCSI Command";
    case Opcode::kTaskMgmtRequest: return "Task Management Request";
    case Opcode::kLoginRequest: return "Login Request";
    case Opcode::kTextRequest: return "Text Request";
    case Opcode::kDataOut: return "SCSI Data-Out";
    case Opcode::kLogoutRequest: return "Logout Request";
    case Opcode::kSnackRequest: return "SNACK Request";
    case Opcode::kNopIn: return "NOP-In";
    case Opcode::kScsiResponse: return "SCSI Response";
    case Opcode::kTaskMgmtResponse: return "Task Management Response";
    case Opcode::kLoginResponse: return "Login Response";
    case Opcode::kTextResponse: return "Text Response";
    case Opcode::kDataIn: return "SCSI Data-In";
    case Opcode::kLogoutResponse: return "Logout Response";
    case Opcode::kR2t: return "R2T";
    case Opcode::kAsyncMessage: return "Asynchronous Message";
    case Opcode::kReject: return "Reject";
  }
  return "unknown";
}

CommonHeader DecodeCommon(const Bhs& b) {
  CommonHeader c;
  c.opcode = b[0] & 0x3f;
  c.immediate = b[0] & 0x40;
  c.final = b[1] & 0x80;
  c.ahs_bytes = static_cast<uint32_t>(b[4]) * 4;
  c.data_bytes = LoadBe24(&b[5]);
  c.lun = LoadBe64(&b[8]);
  c.itt = LoadBe32(&b[16]);
  return c;
}

Decoded DecodeInitiatorBhs(const Bhs& b) {
  const CommonHeader c = DecodeCommon(b);
  switch (static_cast<Opcode>(c.opcode)) {
    case Opcode::kScsiCommand: return DecodeScsiCommand(b, c);
    case Opcode::kDataOut: return DecodeDataOut(b, c);
    case Opcode::kLoginRequest: return DecodeLogin(b, c);
    case Opcode::kTextRequest: return DecodeText(b, c);
    case Opcode::kNopOut: return DecodeNopOut(b, c);
    case Opcode::kTaskMgmtRequest: return DecodeTmf(b, c);
    case Opcode::kLogoutRequest: return DecodeLogout(b, c);
    case Opcode::kSnackRequest: return DecodeSnack(b, c);
    case Opcode::kNopIn:
    case Opcode::kScsiResponse:
    case Opcode::kTaskMgmtResponse:
    case Opcode::kLoginResponse:
    case Opcode::kTextResponse:
    case Opcode::kDataIn:
    case Opcode::kLogoutResponse:
    case Opcode::kR2t:
    case Opcode::kAsyncMessage:
    case Opcode::kReject:
      return Reject(RejectReason::kProtocolError, "a target opcode sent by the initiator");
  }
  return Reject(RejectReason::kCommandNotSupported, "unknown opcode");
}

void Encode(const LoginResponsePdu& p, Bhs* out) {
  uint8_t flags = static_cast<uint8_t>((p.transit ? 0x80 : 0) | (p.cont ? 0x40 : 0) |
                                       (p.csg & 3) << 2 | (p.nsg & 3));
  PutCommon(out, Opcode::kLoginResponse, flags, p.data_bytes);
  (*out)[2] = p.version_max;
  (*out)[3] = p.version_active;
  std::copy(p.isid.begin(), p.isid.end(), out->begin() + 8);
  StoreBe16(out->data() + 14, p.tsih);
  StoreBe32(out->data() + 16, p.itt);
  PutSeq(out, p.seq);
  (*out)[36] = p.status_class;
  (*out)[37] = p.status_detail;
}

void Encode(const TextResponsePdu& p, Bhs* out) {
  PutCommon(out, Opcode::kTextResponse,
            static_cast<uint8_t>((p.final ? 0x80 : 0) | (p.cont ? 0x40 : 0)), p.data_bytes);
  StoreBe64(out->data() + 8, p.lun);
  StoreBe32(out->data() + 16, p.itt);
  StoreBe32(out->data() + 20, p.ttt);
  PutSeq(out, p.seq);
}

void Encode(const ScsiResponsePdu& p, Bhs* out) {
  uint8_t flags = static_cast<uint8_t>(0x80 | (p.overflow ? 0x04 : 0) | (p.underflow ? 0x02 : 0));
  PutCommon(out, Opcode::kScsiResponse, flags, p.data_bytes);
  (*out)[2] = p.response;
  (*out)[3] = p.status;
  StoreBe32(out->data() + 16, p.itt);
  PutSeq(out, p.seq);
  StoreBe32(out->data() + 36, p.expdatasn);
  StoreBe32(out->data() + 44, p.residual_count);
}

void Encode(const DataInPdu& p, Bhs* out) {
  uint8_t flags = static_cast<uint8_t>((p.final ? 0x80 : 0) | (p.status_present ? 0x01 : 0));
  if (p.status_present) flags |= (p.overflow ? 0x04 : 0) | (p.underflow ? 0x02 : 0);
  PutCommon(out, Opcode::kDataIn, flags, p.data_bytes);
  if (p.status_present) (*out)[3] = p.status;
  StoreBe64(out->data() + 8, p.lun);
  StoreBe32(out->data() + 16, p.itt);
  StoreBe32(out->data() + 20, p.ttt);
  PutSeq(out, p.seq);
  if (!p.status_present) StoreBe32(out->data() + 24, 0);  // StatSN reserved without S
  StoreBe32(out->data() + 36, p.datasn);
  StoreBe32(out->data() + 40, p.buffer_offset);
  if (p.status_present) StoreBe32(out->data() + 44, p.residual_count);
}

void Encode(const R2tPdu& p, Bhs* out) {
  PutCommon(out, Opcode::kR2t, 0x80, 0);
  StoreBe64(out->data() + 8, p.lun);
  StoreBe32(out->data() + 16, p.itt);
  StoreBe32(out->data() + 20, p.ttt);
  PutSeq(out, p.seq);
  StoreBe32(out->data() + 36, p.r2tsn);
  StoreBe32(out->data() + 40, p.buffer_offset);
  StoreBe32(out->data() + 44, p.desired_length);
}

void Encode(const NopInPdu& p, Bhs* out) {
  PutCommon(out, Opcode::kNopIn, 0x80, p.data_bytes);
  StoreBe64(out->data() + 8, p.lun);
  StoreBe32(out->data() + 16, p.itt);
  StoreBe32(out->data() + 20, p.ttt);
  PutSeq(out, p.seq);
}

void Encode(const TaskMgmtResponsePdu& p, Bhs* out) {
  PutCommon(out, Opcode::kTaskMgmtResponse, 0x80, 0);
  (*out)[2] = p.response;
  StoreBe32(out->data() + 16, p.itt);
  PutSeq(out, p.seq);
}

void Encode(const LogoutResponsePdu& p, Bhs* out) {
  PutCommon(out, Opcode::kLogoutResponse, 0x80, 0);
  (*out)[2] = p.response;
  StoreBe32(out->data() + 16, p.itt);
  PutSeq(out, p.seq);
  StoreBe16(out->data() + 40, p.time2wait);
  StoreBe16(out->data() + 42, p.time2retain);
}

void Encode(const RejectPdu& p, Bhs* out) {
  PutCommon(out, Opcode::kReject, 0x80, p.data_bytes);
  (*out)[2] = static_cast<uint8_t>(p.reason);
  StoreBe32(out->data() + 16, kReservedTag);
  PutSeq(out, p.seq);
  StoreBe32(out->data() + 36, p.datasn);
}

void Encode(const AsyncMessagePdu& p, Bhs* out) {
  PutCommon(out, Opcode::kAsyncMessage, 0x80, p.data_bytes);
  StoreBe64(out->data() + 8, p.lun);
  StoreBe32(out->data() + 16, kReservedTag);
  PutSeq(out, p.seq);
  (*out)[36] = p.event;
  (*out)[37] = p.vcode;
  StoreBe16(out->data() + 38, p.param1);
  StoreBe16(out->data() + 40, p.param2);
  StoreBe16(out->data() + 42, p.param3);
}

uint32_t Crc32cUpdate(uint32_t state, std::span<const uint8_t> data) {
  if (data.empty()) return state;
  return crc32_iscsi(const_cast<uint8_t*>(data.data()), static_cast<int>(data.size()), state);
}

uint32_t Crc32c(std::span<const uint8_t> data) {
  return Crc32cFinish(Crc32cUpdate(kCrc32cInit, data));
}

}  // namespace ferry::iscsi
