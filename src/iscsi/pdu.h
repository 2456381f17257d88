// iSCSI PDU codec (RFC 7143 section 11): the 48-byte Basic Header Segment of every PDU,
// decoded for the PDUs an initiator sends and encoded for the PDUs a target sends, plus
// data-segment padding and the CRC32C digest.
//
// Pure: no I/O, no allocation, depends only on src/base. Decoding checks every field the
// RFC constrains and says which Reject reason (RFC 7143 11.17.1) the PDU deserves; it never
// reads past the 48 bytes it is given. Fuzzed by fuzz/iscsi_pdu_fuzz.cc.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <variant>

namespace ferry::iscsi {

inline constexpr size_t kBhsBytes = 48;
inline constexpr size_t kDigestBytes = 4;
inline constexpr uint32_t kReservedTag = 0xffffffff;  // "no task tag" (ITT/TTT)
inline constexpr uint32_t kMaxDataSegmentBytes = (1u << 24) - 1;

enum class Opcode : uint8_t {
  // Initiator opcodes.
  kNopOut = 0x00,
  kScsiCommand = 0x01,
  kTaskMgmtRequest = 0x02,
  kLoginRequest = 0x03,
  kTextRequest = 0x04,
  kDataOut = 0x05,
  kLogoutRequest = 0x06,
  kSnackRequest = 0x10,
  // Target opcodes.
  kNopIn = 0x20,
  kScsiResponse = 0x21,
  kTaskMgmtResponse = 0x22,
  kLoginResponse = 0x23,
  kTextResponse = 0x24,
  kDataIn = 0x25,
  kLogoutResponse = 0x26,
  kR2t = 0x31,
  kAsyncMessage = 0x32,
  kReject = 0x3f,
};
std::string_view OpcodeName(uint8_t opcode);

// RFC 7143 11.17.1.
enum class RejectReason : uint8_t {
  kDataDigestError = 0x02,
  kSnackReject = 0x03,
  kProtocolError = 0x04,
  kCommandNotSupported = 0x05,
  kImmediateCommandReject = 0x06,
  kTaskInProgress = 0x07,
  kInvalidDataAck = 0x08,
  kInvalidPduField = 0x09,
  kLongOpReject = 0x0a,
  kWaitingForLogout = 0x0c,
};

using Bhs = std::array<uint8_t, kBhsBytes>;

// Fields every BHS has (RFC 7143 11.2.1).
struct CommonHeader {
  uint8_t opcode = 0;
  bool immediate = false;
  bool final = false;       // byte 1 bit 7 (meaning depends on the opcode)
  uint32_t ahs_bytes = 0;   // TotalAHSLength * 4
  uint32_t data_bytes = 0;  // DataSegmentLength, before padding
  uint64_t lun = 0;         // bytes 8..15 (the LUN field where the opcode has one)
  uint32_t itt = 0;         // Initiator Task Tag
};
CommonHeader DecodeCommon(const Bhs& bhs);

// Data segment and AHS lengths on the wire: padded to 4 bytes.
constexpr uint32_t Padded(uint32_t n) { return (n + 3) & ~3u; }

// RFC 7143 11.3 SCSI Command.
struct ScsiCommandPdu {
  bool immediate = false;
  bool final = false;  // no unsolicited Data-Out follows
  bool read = false;
  bool write = false;
  uint8_t attr = 0;  // task attribute (0 untagged, 1 simple, 2 ordered, 3 head of queue, 4 ACA)
  uint64_t lun = 0;
  uint32_t itt = 0;
  uint32_t expected_data_length = 0;
  uint32_t cmdsn = 0;
  uint32_t expstatsn = 0;
  std::array<uint8_t, 16> cdb{};
  uint32_t ahs_bytes = 0;   // extended CDB / bidirectional read length AHS
  uint32_t data_bytes = 0;  // immediate data
};

// RFC 7143 11.7 SCSI Data-Out.
struct DataOutPdu {
  bool final = false;
  uint64_t lun = 0;
  uint32_t itt = 0;
  uint32_t ttt = 0;
  uint32_t expstatsn = 0;
  uint32_t datasn = 0;
  uint32_t buffer_offset = 0;
  uint32_t data_bytes = 0;
};

// RFC 7143 11.12 Login Request.
struct LoginRequestPdu {
  bool transit = false;
  bool cont = false;
  uint8_t csg = 0;  // 0 security negotiation, 1 operational negotiation, 3 full feature
  uint8_t nsg = 0;
  uint8_t version_max = 0;
  uint8_t version_min = 0;
  std::array<uint8_t, 6> isid{};
  uint16_t tsih = 0;
  uint32_t itt = 0;
  uint16_t cid = 0;
  uint32_t cmdsn = 0;
  uint32_t expstatsn = 0;
  uint32_t data_bytes = 0;
};

// RFC 7143 11.10 Text Request.
struct TextRequestPdu {
  bool immediate = false;
  bool final = false;
  bool cont = false;
  uint64_t lun = 0;
  uint32_t itt = 0;
  uint32_t ttt = 0;
  uint32_t cmdsn = 0;
  uint32_t expstatsn = 0;
  uint32_t data_bytes = 0;
};

// RFC 7143 11.18 NOP-Out.
struct NopOutPdu {
  bool immediate = false;
  uint64_t lun = 0;
  uint32_t itt = 0;  // kReservedTag: an answer to a NOP-In, no response wanted
  uint32_t ttt = 0;  // the NOP-In's TTT when answering one, else kReservedTag
  uint32_t cmdsn = 0;
  uint32_t expstatsn = 0;
  uint32_t data_bytes = 0;  // ping data, echoed back
};

// RFC 7143 11.5 Task Management Function Request.
enum class TmfFunction : uint8_t {
  kAbortTask = 1,
  kAbortTaskSet = 2,
  kClearAca = 3,
  kClearTaskSet = 4,
  kLogicalUnitReset = 5,
  kTargetWarmReset = 6,
  kTargetColdReset = 7,
  kTaskReassign = 8,
};
struct TaskMgmtRequestPdu {
  bool immediate = false;
  uint8_t function = 0;  // a TmfFunction; others are answered "function not supported"
  uint64_t lun = 0;
  uint32_t itt = 0;
  uint32_t referenced_task_tag = 0;
  uint32_t cmdsn = 0;
  uint32_t expstatsn = 0;
  uint32_t refcmdsn = 0;
  uint32_t expdatasn = 0;
};

// RFC 7143 11.14 Logout Request.
struct LogoutRequestPdu {
  bool immediate = false;
  uint8_t reason = 0;  // 0 close the session, 1 close the connection, 2 remove for recovery
  uint32_t itt = 0;
  uint16_t cid = 0;
  uint32_t cmdsn = 0;
  uint32_t expstatsn = 0;
};

// RFC 7143 11.16 SNACK Request.
struct SnackRequestPdu {
  uint8_t type = 0;
  uint64_t lun = 0;
  uint32_t itt = 0;
  uint32_t ttt = 0;
  uint32_t expstatsn = 0;
  uint32_t begrun = 0;
  uint32_t runlength = 0;
};

using InitiatorPdu = std::variant<ScsiCommandPdu, DataOutPdu, LoginRequestPdu, TextRequestPdu,
                                  NopOutPdu, TaskMgmtRequestPdu, LogoutRequestPdu, SnackRequestPdu>;

// The result of decoding a header from an initiator: a PDU, or the Reject reason it earns
// with a short explanation for the log.
struct Decoded {
  bool ok = false;
  InitiatorPdu pdu;
  RejectReason reject = RejectReason::kProtocolError;
  std::string_view why;
};
Decoded DecodeInitiatorBhs(const Bhs& bhs);

// Sequence numbers every target response carries.
struct SeqNums {
  uint32_t statsn = 0;
  uint32_t expcmdsn = 0;
  uint32_t maxcmdsn = 0;
};

// RFC 7143 11.13 Login Response.
struct LoginResponsePdu {
  bool transit = false;
  bool cont = false;
  uint8_t csg = 0;
  uint8_t nsg = 0;
  uint8_t version_max = 0;
  uint8_t version_active = 0;
  std::array<uint8_t, 6> isid{};
  uint16_t tsih = 0;
  uint32_t itt = 0;
  SeqNums seq;
  uint8_t status_class = 0;
  uint8_t status_detail = 0;
  uint32_t data_bytes = 0;
};
void Encode(const LoginResponsePdu& p, Bhs* out);

// RFC 7143 11.11 Text Response.
struct TextResponsePdu {
  bool final = false;
  bool cont = false;
  uint64_t lun = 0;
  uint32_t itt = 0;
  uint32_t ttt = kReservedTag;
  SeqNums seq;
  uint32_t data_bytes = 0;
};
void Encode(const TextResponsePdu& p, Bhs* out);

// RFC 7143 11.4 SCSI Response.
struct ScsiResponsePdu {
  bool overflow = false;   // O: residual_count is an overflow
  bool underflow = false;  // U: residual_count is an underflow
  uint8_t response = 0;    // 0 command completed at target, 1 target failure
  uint8_t status = 0;      // SCSI status
  uint32_t itt = 0;
  SeqNums seq;
  uint32_t expdatasn = 0;
  uint32_t residual_count = 0;
  uint32_t data_bytes = 0;  // sense data (with its 2-byte length) when present
};
void Encode(const ScsiResponsePdu& p, Bhs* out);

// RFC 7143 11.7 SCSI Data-In (with status when `status_present`, the phase collapse).
struct DataInPdu {
  bool final = false;
  bool status_present = false;
  bool overflow = false;
  bool underflow = false;
  uint8_t status = 0;
  uint64_t lun = 0;
  uint32_t itt = 0;
  uint32_t ttt = kReservedTag;
  SeqNums seq;  // statsn only meaningful with status_present
  uint32_t datasn = 0;
  uint32_t buffer_offset = 0;
  uint32_t residual_count = 0;
  uint32_t data_bytes = 0;
};
void Encode(const DataInPdu& p, Bhs* out);

// RFC 7143 11.8 Ready To Transfer.
struct R2tPdu {
  uint64_t lun = 0;
  uint32_t itt = 0;
  uint32_t ttt = 0;
  SeqNums seq;  // statsn is the next StatSN, not advanced
  uint32_t r2tsn = 0;
  uint32_t buffer_offset = 0;
  uint32_t desired_length = 0;
};
void Encode(const R2tPdu& p, Bhs* out);

// RFC 7143 11.19 NOP-In.
struct NopInPdu {
  uint64_t lun = 0;
  uint32_t itt = kReservedTag;
  uint32_t ttt = kReservedTag;
  SeqNums seq;
  uint32_t data_bytes = 0;
};
void Encode(const NopInPdu& p, Bhs* out);

// RFC 7143 11.6 Task Management Function Response.
struct TaskMgmtResponsePdu {
  uint8_t response = 0;  // 0 complete, 1 task does not exist, 2 LUN does not exist, ...
  uint32_t itt = 0;
  SeqNums seq;
};
void Encode(const TaskMgmtResponsePdu& p, Bhs* out);

// RFC 7143 11.15 Logout Response.
struct LogoutResponsePdu {
  uint8_t response = 0;  // 0 closed, 1 CID not found, 2 recovery not supported, 3 failed
  uint32_t itt = 0;
  SeqNums seq;
  uint16_t time2wait = 0;
  uint16_t time2retain = 0;
};
void Encode(const LogoutResponsePdu& p, Bhs* out);

// RFC 7143 11.17 Reject; its data segment is the rejected header.
struct RejectPdu {
  RejectReason reason = RejectReason::kProtocolError;
  SeqNums seq;
  uint32_t datasn = 0;
  uint32_t data_bytes = kBhsBytes;
};
void Encode(const RejectPdu& p, Bhs* out);

// RFC 7143 11.9 Asynchronous Message.
struct AsyncMessagePdu {
  uint64_t lun = 0;
  SeqNums seq;
  uint8_t event = 0;  // 1 logout requested, 2 dropping connection, 3 dropping all, 4 renegotiate
  uint8_t vcode = 0;
  uint16_t param1 = 0;
  uint16_t param2 = 0;
  uint16_t param3 = 0;
  uint32_t data_bytes = 0;
};
void Encode(const AsyncMessagePdu& p, Bhs* out);

// CRC32C (Castagnoli) as iSCSI header and data digests use it (RFC 7143 13.1, the value
// as sent on the wire in little-endian byte order). Uses ISA-L.
uint32_t Crc32c(std::span<const uint8_t> data);
// Continues a digest over more bytes (for data spread over several buffers): start with
// kCrc32cInit, feed every piece with Crc32cUpdate, finish with Crc32cFinish.
inline constexpr uint32_t kCrc32cInit = 0xffffffff;
uint32_t Crc32cUpdate(uint32_t state, std::span<const uint8_t> data);
inline uint32_t Crc32cFinish(uint32_t state) { return state ^ 0xffffffff; }

}  // namespace ferry::iscsi
