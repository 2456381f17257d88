// The initiator half of SCSI third-party copy: pure encoders of the commands Ferry sends to
// a remote array (SPC-4 6.4 EXTENDED COPY(LID1), SBC-3 POPULATE TOKEN, WRITE USING TOKEN,
// RECEIVE ROD TOKEN INFORMATION, SPC-4 6.3 COPY OPERATION ABORT, 6.18.5 RECEIVE COPY
// OPERATING PARAMETERS, 6.6 INQUIRY), decoders of what the array answers (VPD 83h, VPD 8Fh,
// operating parameters, RRTI), and the classification of a failed command.
//
// The array is outside input: every decoder is bounds-checked, never reads past its span,
// and turns a short, missing or nonsensical page into "not supported" with a reason
// (fuzz/iscsi_tpc_fuzz.cc). Nothing here does I/O; remote_copy.h runs the commands.
//
// This layer may not use src/scsi (the target side), so the byte layouts are written again
// here from the standards; tpc_codec_test.cc checks them against Ferry's target decoders.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backends/iscsi/scsi_channel.h"

namespace ferry::backends::iscsi {

// --- CDBs --------------------------------------------------------------------------------

struct Cdb {
  std::array<uint8_t, 16> bytes{};
  uint8_t len = 0;
};
// Copies `cdb` into `cmd` (cdb, cdb_len).
void SetCdb(ScsiCommand& cmd, const Cdb& cdb);

inline constexpr uint8_t kOpThirdPartyCopyOut = 0x83;
inline constexpr uint8_t kOpThirdPartyCopyIn = 0x84;
inline constexpr uint8_t kSaExtendedCopyLid1 = 0x00;
inline constexpr uint8_t kSaExtendedCopyLid4 = 0x01;
inline constexpr uint8_t kSaPopulateToken = 0x10;
inline constexpr uint8_t kSaWriteUsingToken = 0x11;
inline constexpr uint8_t kSaCopyOperationAbort = 0x1c;
inline constexpr uint8_t kSaOperatingParameters = 0x03;
inline constexpr uint8_t kSaReceiveRodTokenInfo = 0x07;
inline constexpr uint8_t kVpdDeviceIdentification = 0x83;
inline constexpr uint8_t kVpdThirdPartyCopy = 0x8f;

// SPC-4 6.6 INQUIRY with EVPD=1 for `page`.
Cdb VpdInquiryCdb(uint8_t page, uint16_t alloc_len);
// SPC-4 6.18.5 RECEIVE COPY RESULTS, service action 03h OPERATING PARAMETERS.
Cdb OperatingParametersCdb(uint32_t alloc_len);
// SPC-4 6.4.1 EXTENDED COPY(LID1) (83h/00h) or 6.5.1 EXTENDED COPY(LID4) (83h/01h), with
// PARAMETER LIST LENGTH.
Cdb ExtendedCopyCdb(bool lid4, uint32_t param_len);
// SBC-3 POPULATE TOKEN (83h/10h) and WRITE USING TOKEN (83h/11h): LIST IDENTIFIER and
// PARAMETER LIST LENGTH.
Cdb PopulateTokenCdb(uint32_t list_id, uint32_t param_len);
Cdb WriteUsingTokenCdb(uint32_t list_id, uint32_t param_len);
// SBC-3 RECEIVE ROD TOKEN INFORMATION (84h/07h).
Cdb ReceiveRodTokenInfoCdb(uint32_t list_id, uint32_t alloc_len);
// SPC-4 6.3 COPY OPERATION ABORT (83h/1Ch).
Cdb CopyOperationAbortCdb(uint32_t list_id);

// --- What the remote LU can do -----------------------------------------------------------

// A VPD 83h designator that names the LU in an E4h CSCD descriptor (SPC-4 6.4.5.6): it fills
// bytes 8-27 of the descriptor, so at most 20 bytes.
inline constexpr uint8_t kMaxCscdDesignatorBytes = 20;
struct LuDesignator {
  uint8_t code_set = 0;  // 1 binary (NAA, EUI-64), 2 ASCII (T10 vendor id)
  uint8_t type = 0;      // SPC-4 7.8.6 DESIGNATOR TYPE: 3 NAA, 2 EUI-64, 1 T10 vendor id
  uint8_t len = 0;       // 0: none usable
  std::array<uint8_t, kMaxCscdDesignatorBytes> bytes{};
  bool valid() const { return len != 0; }
  std::span<const uint8_t> value() const { return {bytes.data(), len}; }
};
// SPC-4 7.8.6 Device Identification VPD page: the best designator with association LU for an
// E4h CSCD (NAA > EUI-64 > T10 vendor id; binary code set for NAA/EUI-64, ASCII for T10).
// Invalid (len 0) when the page is short, malformed or has none.
LuDesignator DecodeLuDesignator(std::span<const uint8_t> vpd83);

// SPC-4 7.8.17 Third-party Copy VPD page, the descriptors the initiator uses.
struct TpcVpd {
  bool present = false;                 // a well-formed 8Fh page
  bool has_supported_commands = false;  // 0001h
  // 0001h: service actions listed under 83h and 84h (bit n = service action n).
  uint32_t copy_out_sas = 0;
  uint32_t copy_in_sas = 0;
  bool has_rod_limits = false;  // 0000h Block Device ROD Token Limits (SBC-3)
  uint16_t max_range_descriptors = 0;
  uint32_t max_inactivity_timeout_s = 0;
  uint32_t default_inactivity_timeout_s = 0;
  uint64_t max_token_transfer_blocks = 0;  // 0: no limit reported
  uint64_t optimal_transfer_blocks = 0;
  bool has_parameter_data = false;  // 0004h
  uint16_t max_cscd_descriptors = 0;
  uint16_t max_segment_descriptors = 0;
  uint32_t max_descriptor_list_bytes = 0;
  bool has_supported_descriptors = false;  // 0008h
  std::vector<uint8_t> descriptor_codes;
  bool has_general_copy = false;  // 8001h General Copy Operations
  uint32_t max_segment_bytes = 0;
};
TpcVpd DecodeTpcVpd(std::span<const uint8_t> vpd8f);

// SPC-4 6.18.5 RECEIVE COPY OPERATING PARAMETERS data.
struct OperatingParameters {
  bool present = false;
  bool snlid = false;  // LIST ID USAGE 11b supported
  uint16_t max_cscd_descriptors = 0;
  uint16_t max_segment_descriptors = 0;
  uint32_t max_descriptor_list_bytes = 0;
  uint32_t max_segment_bytes = 0;  // 0: no limit
  uint32_t max_inline_bytes = 0;
  uint32_t held_data_limit = 0;
  std::vector<uint8_t> descriptor_codes;  // implemented segment and CSCD descriptor types
};
OperatingParameters DecodeOperatingParameters(std::span<const uint8_t> data);

// What one remote LU offers for copy offload, decided from VPD 83h, VPD 8Fh and the
// operating parameters (never from REPORT SUPPORTED OPERATION CODES, which some arrays lack).
struct CopyCapabilities {
  LuDesignator designator;
  // EXTENDED COPY(LID1) with E4h CSCDs and 02h segments. Arrays without a VPD 8Fh page (Linux
  // LIO, SCST) still qualify through a well-formed operating parameters answer listing 02h and
  // E4h; an 8Fh page that lists supported commands must then list 83h/00h too.
  bool lid1 = false;
  bool lid4 = false;  // also EXTENDED COPY(LID4): 8Fh lists 83h/01h
  // POPULATE TOKEN, WRITE USING TOKEN and RECEIVE ROD TOKEN INFORMATION listed in 8Fh 0001h,
  // with a Block Device ROD Token Limits descriptor (0000h).
  bool odx = false;
  // EXTENDED COPY limits (operating parameters, else 8Fh 0004h / 8001h).
  bool snlid = false;
  uint16_t max_cscd_descriptors = 0;
  uint16_t max_segment_descriptors = 0;
  uint32_t max_descriptor_list_bytes = 0;
  uint32_t max_segment_bytes = 0;  // 0: no limit (segments still carry <= 65535 blocks)
  uint32_t held_data_limit = 0;
  // ROD token limits (8Fh 0000h), in this LU's logical blocks.
  uint16_t max_range_descriptors = 0;
  uint32_t max_inactivity_timeout_s = 0;
  uint32_t default_inactivity_timeout_s = 0;
  uint64_t max_token_transfer_blocks = 0;  // 0: no limit
  uint64_t optimal_transfer_blocks = 0;
  std::string why_no_xcopy;  // set when !lid1
  std::string why_no_odx;    // set when !odx
};
// Any span may be empty (the page could not be read): that mechanism is then unsupported.
CopyCapabilities DecodeCopyCapabilities(std::span<const uint8_t> vpd83,
                                        std::span<const uint8_t> vpd8f,
                                        std::span<const uint8_t> operating_parameters);

// --- EXTENDED COPY parameter lists (SPC-4 6.4.3 LID1, 6.5.3 LID4) ----------------------

inline constexpr size_t kXcopyLid1HeaderBytes = 16;
inline constexpr size_t kXcopyLid4HeaderBytes = 48;
inline constexpr size_t kCscdDescriptorBytes = 32;
inline constexpr size_t kB2BSegmentBytes = 28;
inline constexpr uint32_t kMaxB2BSegmentBlocks = 0xffff;  // 16-bit NUMBER OF BLOCKS
// LID4's SEGMENT DESCRIPTOR LIST LENGTH is a 16-bit field (LID1's is 32 bits).
inline constexpr size_t kMaxLid4Segments = 0xffff / kB2BSegmentBytes;

// SPC-4 6.4.3.2 LIST ID USAGE.
enum class ListIdUsage : uint8_t { kHold = 0, kDiscard = 2, kDisable = 3 };

struct XcopyTarget {  // one E4h CSCD descriptor
  LuDesignator id;
  uint32_t block_size = 0;  // DISK BLOCK LENGTH (bytes 29-31)
};
struct B2BSegment {  // one 02h segment descriptor, CSCD 0 -> CSCD 1, counted in source blocks
  uint16_t blocks = 0;
  uint64_t src_lba = 0;
  uint64_t dst_lba = 0;
};
struct XcopyList {
  // LID1: 16-byte header and an 8-bit LIST IDENTIFIER; LID4: 48-byte header (LIST FORMAT 01h,
  // IMMED 0, G_SENSE 0) and a 32-bit one, which COPY OPERATION ABORT can name.
  bool lid4 = false;
  uint32_t list_id = 0;  // LID1 keeps the low 8 bits
  ListIdUsage usage = ListIdUsage::kDisable;
  XcopyTarget src;                       // CSCD index 0
  XcopyTarget dst;                       // CSCD index 1
  std::span<const B2BSegment> segments;  // LID4: at most kMaxLid4Segments
};
size_t XcopyListBytes(bool lid4, size_t segments);
// Replaces `out` with the parameter list (reusing its capacity).
void EncodeXcopy(const XcopyList& list, std::vector<uint8_t>* out);

// --- ROD token commands (SBC-3) ----------------------------------------------------------

inline constexpr size_t kRodTokenBytes = 512;
inline constexpr size_t kRangeDescriptorBytes = 16;
using RodToken = std::array<uint8_t, kRodTokenBytes>;

struct BlockRange {  // block device range descriptor
  uint64_t lba = 0;
  uint32_t blocks = 0;
};
// POPULATE TOKEN parameter data, IMMED 0, ROD TYPE 0 (the array's default point-in-time
// copy), `timeout_s` 0 for the array's default inactivity timeout.
void EncodePopulateToken(std::span<const BlockRange> ranges, uint32_t timeout_s,
                         std::vector<uint8_t>* out);
// WRITE USING TOKEN parameter data, IMMED 0, DEL_TKN 0; `offset_into_rod` in destination
// logical blocks.
void EncodeWriteUsingToken(const RodToken& token, uint64_t offset_into_rod,
                           std::span<const BlockRange> ranges, std::vector<uint8_t>* out);

// SPC-4 6.18.3 COPY OPERATION STATUS values the initiator looks at.
inline constexpr uint8_t kCopyStatusCompleted = 0x01;
inline constexpr uint8_t kCopyStatusFailed = 0x02;
inline constexpr uint8_t kCopyStatusPartialRod = 0x03;
inline constexpr uint8_t kCopyStatusResidual = 0x04;

// SBC-3 RECEIVE ROD TOKEN INFORMATION data (the RECEIVE COPY STATUS(LID4) header plus the ROD
// token descriptor).
struct RodTokenInfo {
  uint8_t response_to_sa = 0;
  uint8_t copy_status = 0;  // bits 6-0 of byte 5
  uint8_t units = 0;        // TRANSFER COUNT UNITS
  uint64_t transfer_count = 0;
  uint16_t segments_processed = 0;
  bool has_token = false;
  RodToken token{};
};
// Nullopt with *why set when the data is too short for what it declares.
std::optional<RodTokenInfo> DecodeRodTokenInfo(std::span<const uint8_t> data, std::string* why);
// SPC-4 6.18.3 TRANSFER COUNT UNITS: the count in bytes (00h bytes, 01h-05h KiB..EiB, F1h
// logical blocks of `block_size`); nullopt for other units or on overflow.
std::optional<uint64_t> TransferBytes(uint8_t units, uint64_t count, uint32_t block_size);

// --- What a failed command means ---------------------------------------------------------

enum class RefusalKind : uint8_t {
  kNone,            // GOOD (or RECOVERED ERROR): the command did its work
  kNotOffloadable,  // the array will not offload this: copy the rest in software
  kTransient,       // BUSY, TASK SET FULL, UNIT ATTENTION, ...: the same command may succeed
  kIoError,         // the medium or the array failed: the copy fails
  kTransport,       // the command never got an answer (connection, timeout, abort)
};
std::string_view RefusalKindName(RefusalKind k);

struct Refusal {
  RefusalKind kind = RefusalKind::kNone;
  IoStatus status = IoStatus::kOk;  // what the copy completes with, for kIoError/kTransport
  std::string reason;               // e.g. "CHECK CONDITION ILLEGAL REQUEST 20/00 (invalid opcode)"
};
// Classifies a completed command by transport result, SCSI status and sense.
Refusal Classify(const ScsiCommand& cmd);

}  // namespace ferry::backends::iscsi
