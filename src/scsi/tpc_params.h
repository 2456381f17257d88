// Third-party copy parameter lists (SPC-4 6.4 EXTENDED COPY, SBC-3 POPULATE TOKEN and
// WRITE USING TOKEN): pure decoders from the bytes an initiator sent to plain structs.
//
// Decoders never resolve anything (which LU a CSCD names, whether an LBA exists): they
// check only what the bytes alone decide, in the order the standards and the clients
// expect (../shared/reference/scsi-third-party-copy.md 4.1/4.2): lengths first (PARAMETER
// LIST LENGTH ERROR), then descriptor counts (TOO MANY ...), then types and fields. An
// error is the Sense to return, with a field pointer into the parameter list.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "scsi/sense.h"

namespace ferry::scsi {

// What this copy manager accepts (reported by RECEIVE COPY RESULTS OPERATING PARAMETERS
// and VPD 8Fh; enforced by the decoders, and MAXIMUM SEGMENT LENGTH, which needs block
// sizes, by the copy manager).
inline constexpr uint16_t kMaxCscdDescriptors = 128;
inline constexpr uint16_t kMaxSegmentDescriptors = 256;
inline constexpr uint32_t kMaxDescriptorListBytes = 16384;
inline constexpr uint32_t kMaxSegmentBytes = 1u << 30;  // MAXIMUM SEGMENT LENGTH
inline constexpr uint16_t kMaxRangeDescriptors = 64;    // POPULATE TOKEN / WRITE USING TOKEN
// The most one ROD token represents, and one WRITE USING TOKEN writes (VPD 8Fh 0000h MAXIMUM
// TOKEN TRANSFER SIZE, in bytes here): large enough for Windows' chunks, small enough that an
// emulated copy finishes well inside an initiator's command timeout.
inline constexpr uint64_t kMaxTokenTransferBytes = 1ull << 30;
// SPC-4 6.4.6.1 CSCD descriptor ID FFFFh: the LU that got the command.
inline constexpr uint16_t kCscdIdReceivingLu = 0xffff;

// SPC-4 6.4.3.2 LIST ID USAGE.
enum class ListIdUsage : uint8_t { kHold = 0, kReserved = 1, kDiscard = 2, kDisable = 3 };

// CSCD descriptor E4h (SPC-4 6.4.5.6 Identification descriptor CSCD descriptor): names an
// LU by a designator of its VPD 83h page.
struct CscdId {
  uint16_t offset = 0;          // of the descriptor in the parameter list (field pointers)
  uint8_t code_set = 0;         // byte 4 bits 3-0
  uint8_t association = 0;      // byte 5 bits 5-4 (0: LU)
  uint8_t designator_type = 0;  // byte 5 bits 3-0 (1 T10, 2 EUI-64, 3 NAA)
  uint8_t designator_len = 0;   // <= 20
  std::array<uint8_t, 20> designator{};
  uint8_t device_type = 0;    // byte 1 bits 4-0 (00h: direct access block)
  bool pad = false;           // byte 28 bit 2
  uint32_t block_length = 0;  // bytes 29-31 (0: not given)
  std::span<const uint8_t> designator_bytes() const { return {designator.data(), designator_len}; }
};

// SPC-4 6.4.6 segment descriptors Ferry implements.
enum class SegmentType : uint8_t {
  kBlockToBlock = 0x02,        // 6.4.6.5
  kVerifyCscd = 0x07,          // 6.4.6.8
  kBlockToBlockOffset = 0x0a,  // 6.4.6.11 (byte counts and byte offsets)
};

struct Segment {
  uint16_t offset = 0;  // of the descriptor in the parameter list
  SegmentType type = SegmentType::kBlockToBlock;
  bool dc = false;   // 02h: NUMBER OF BLOCKS counts destination blocks
  bool cat = false;  // residue handling; meaningful only for inexact segments
  bool tur = false;  // 07h: check the CSCD is ready
  uint16_t src_cscd = 0;
  uint16_t dst_cscd = 0;
  uint32_t blocks = 0;  // 02h
  uint32_t bytes = 0;   // 0Ah
  uint64_t src_lba = 0;
  uint64_t dst_lba = 0;
  uint16_t src_byte_offset = 0;  // 0Ah
  uint16_t dst_byte_offset = 0;  // 0Ah
};

struct ExtendedCopyList {
  bool lid4 = false;
  uint32_t list_id = 0;  // LID1: one byte
  ListIdUsage usage = ListIdUsage::kHold;
  uint8_t priority = 0;
  bool immed = false;    // LID4 only
  bool g_sense = false;  // LID4 only
  std::vector<CscdId> cscds;
  std::vector<Segment> segments;
};

// The decoded list, or the sense to fail the command with. An empty parameter list
// (PARAMETER LIST LENGTH 0) is not an error: the caller completes GOOD without decoding.
using ExtendedCopyResult = std::variant<ExtendedCopyList, Sense>;
// SPC-4 6.4.3 (LID1, 16-byte header) and 6.5.3 (LID4, 48-byte header).
ExtendedCopyResult DecodeExtendedCopy(std::span<const uint8_t> params, bool lid4);

// SBC-3 block device range descriptor.
struct BlockRange {
  uint64_t lba = 0;
  uint32_t blocks = 0;
};

// SBC-3 POPULATE TOKEN parameter data.
struct PopulateTokenParams {
  bool immed = false;
  bool rtv = false;                   // ROD type given
  uint32_t inactivity_timeout_s = 0;  // 0: the default
  uint32_t rod_type = 0;
  // At most kMaxRangeDescriptors; descriptors with 0 blocks are dropped (SBC-3: they
  // specify no blocks), so this may be empty.
  std::vector<BlockRange> ranges;
};
using PopulateTokenResult = std::variant<PopulateTokenParams, Sense>;
PopulateTokenResult DecodePopulateToken(std::span<const uint8_t> params);

inline constexpr size_t kRodTokenBytes = 512;

// SBC-3 WRITE USING TOKEN parameter data.
struct WriteUsingTokenParams {
  bool immed = false;
  bool del_tkn = false;
  uint64_t offset_into_rod = 0;  // in logical blocks
  std::array<uint8_t, kRodTokenBytes> token{};
  std::vector<BlockRange> ranges;
};
using WriteUsingTokenResult = std::variant<WriteUsingTokenParams, Sense>;
WriteUsingTokenResult DecodeWriteUsingToken(std::span<const uint8_t> params);

// Total blocks of a range list (ranges are checked against overflow by the decoders).
uint64_t TotalBlocks(std::span<const BlockRange> ranges);

}  // namespace ferry::scsi
