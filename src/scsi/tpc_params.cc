#include "scsi/tpc_params.h"

#include <algorithm>
#include <limits>
#include <optional>

#include "base/endian.h"

namespace ferry::scsi {
namespace {

// Every field pointer below is a parameter-list offset, and every descriptor lies inside
// the header plus kMaxDescriptorListBytes, so offsets fit the 16-bit SENSE KEY SPECIFIC
// field.
static_assert(48 + kMaxDescriptorListBytes <= std::numeric_limits<uint16_t>::max());

constexpr size_t kLid1HeaderBytes = 16;
constexpr size_t kLid4HeaderBytes = 48;
constexpr size_t kCscdBytes = 32;
constexpr size_t kSegmentHeaderBytes = 4;  // type, flags, DESCRIPTOR LENGTH
constexpr uint8_t kCscdIdentification = 0xe4;
constexpr uint16_t kMaxCscdListIndex = 0x07ff;  // SPC-4 6.4.6.1 Table 150
constexpr size_t kRangeBytes = 16;

// SPC-4 7.8.6 designator types and code sets an E4h CSCD may use to name an LU.
constexpr uint8_t kDesignatorT10 = 1;
constexpr uint8_t kDesignatorEui64 = 2;
constexpr uint8_t kDesignatorNaa = 3;
constexpr uint8_t kCodeSetBinary = 1;
constexpr uint8_t kCodeSetAscii = 2;
constexpr uint8_t kMaxDesignatorBytes = 20;

// Where the header fields sit: LID1 (SPC-4 6.4.3) and LID4 (6.5.3) differ in widths and
// offsets, and field pointers name the field the initiator actually sent.
struct HeaderLayout {
  size_t bytes;
  uint16_t list_id_field;
  uint16_t cscd_len_field;
  uint16_t seg_len_field;
  uint16_t inline_len_field;
};
constexpr HeaderLayout kLid1Layout{kLid1HeaderBytes, 0, 2, 8, 12};
constexpr HeaderLayout kLid4Layout{kLid4HeaderBytes, 20, 42, 44, 46};

struct Lengths {
  uint32_t cscd = 0;
  uint32_t seg = 0;
  uint32_t inline_data = 0;
};

// Header fields; checks only what the header alone decides and that LID4 fixes (LIST FORMAT,
// no header CSCD descriptor). `params` holds at least the header.
std::optional<Sense> DecodeHeader(std::span<const uint8_t> params, bool lid4,
                                  ExtendedCopyList* list, Lengths* len) {
  const uint8_t* p = params.data();
  list->lid4 = lid4;
  list->usage = static_cast<ListIdUsage>((p[1] >> 3) & 3);
  list->priority = p[1] & 7;
  if (!lid4) {
    list->list_id = p[0];
    *len = {LoadBe16(p + 2), LoadBe32(p + 8), LoadBe32(p + 12)};
    return std::nullopt;
  }
  if (p[0] != 0x01) return InvalidFieldInParameterList(0);  // LIST FORMAT
  // Ferry takes CSCD descriptors only from the CSCD descriptor list, not in the header.
  if (LoadBe16(p + 2) != 0) return InvalidFieldInParameterList(2);
  list->g_sense = p[15] & 0x02;
  list->immed = p[15] & 0x01;
  list->list_id = LoadBe32(p + 20);
  *len = {LoadBe16(p + 42), LoadBe16(p + 44), LoadBe16(p + 46)};
  return std::nullopt;
}

// Splits the segment list into descriptors by their own DESCRIPTOR LENGTH, so an unknown type
// can be skipped and reported later with its offset. Counting stops at the first descriptor
// over the limit: the rest of an over-long list is not worth parsing.
std::optional<Sense> WalkSegments(std::span<const uint8_t> params, size_t begin, size_t end,
                                  uint16_t seg_len_field, ExtendedCopyList* list) {
  size_t pos = begin;
  while (pos < end) {
    if (list->segments.size() == kMaxSegmentDescriptors) {
      return ParameterListError(Asc::kTooManySegmentDescriptors, seg_len_field);
    }
    if (end - pos < kSegmentHeaderBytes) return ParameterListLengthError();
    const size_t bytes = kSegmentHeaderBytes + LoadBe16(&params[pos + 2]);
    if (bytes > end - pos) return ParameterListLengthError();
    list->segments.push_back(Segment{.offset = static_cast<uint16_t>(pos)});
    pos += bytes;
  }
  return std::nullopt;
}

// SPC-4 7.8.6.1: the designator fields of an E4h descriptor name one LU (association 00b) by
// a T10 vendor id (ASCII), EUI-64 or NAA (binary) designator of at most 20 bytes (what fits
// in bytes 8-27). The PROTOCOL IDENTIFIER nibble and PIV bit are masked off, as ddpt sends
// them copied from VPD 83h.
std::optional<Sense> CheckDesignator(const uint8_t* d, uint16_t off) {
  const uint8_t code_set = d[4] & 0x0f;
  const uint8_t association = (d[5] >> 4) & 3;
  const uint8_t type = d[5] & 0x0f;
  const uint8_t len = d[7];
  if (association != 0) return InvalidFieldInParameterList(off + 5, 5);
  if (type != kDesignatorT10 && type != kDesignatorEui64 && type != kDesignatorNaa) {
    return InvalidFieldInParameterList(off + 5, 3);
  }
  if (len == 0 || len > kMaxDesignatorBytes) return InvalidFieldInParameterList(off + 7);
  const uint8_t want_code_set = type == kDesignatorT10 ? kCodeSetAscii : kCodeSetBinary;
  if (code_set != want_code_set) return InvalidFieldInParameterList(off + 4, 3);
  return std::nullopt;
}

// SPC-4 6.4.5.6 identification descriptor CSCD descriptor (E4h). LU ID TYPE and NUL are
// ignored: SPC-4 made NUL obsolete, and libiscsi's ValidTgtDescr expects a reserved LU ID
// TYPE to be ignored on an SPC-4 target.
std::optional<Sense> DecodeCscd(const uint8_t* d, uint16_t off, CscdId* c) {
  if (d[0] != kCscdIdentification) {
    return ParameterListError(Asc::kUnsupportedTargetDescriptorTypeCode, off);
  }
  if ((d[1] & 0x1f) != 0) return InvalidFieldInParameterList(off + 1, 4);  // disk only
  if (auto s = CheckDesignator(d, off)) return s;
  c->offset = off;
  c->code_set = d[4] & 0x0f;
  c->association = (d[5] >> 4) & 3;
  c->designator_type = d[5] & 0x0f;
  c->designator_len = d[7];
  std::copy(d + 8, d + 8 + c->designator_len, c->designator.begin());
  c->device_type = d[1] & 0x1f;
  c->pad = d[28] & 0x04;
  c->block_length = LoadBe24(d + 29);
  return std::nullopt;
}

// SPC-4 6.4.6.1 Table 150: 0000h-07FFh index the CSCD list, FFFFh is the LU that received
// the command; everything in between is reserved. Whether an index exists is the
// executor's question (COPY ABORTED), not a parameter-list error.
std::optional<Sense> CheckCscdId(uint16_t id, uint16_t field) {
  if (id > kMaxCscdListIndex && id != kCscdIdReceivingLu) return InvalidFieldInParameterList(field);
  return std::nullopt;
}

// SPC-4 6.4.6.5 (02h), 6.4.6.8 (07h), 6.4.6.11 (0Ah). `d` holds the whole descriptor as its
// DESCRIPTOR LENGTH declared it; the length is checked before any other field is read.
std::optional<Sense> DecodeSegment(const uint8_t* d, Segment* s) {
  const uint16_t off = s->offset;
  const uint16_t desc_len = LoadBe16(d + 2);
  uint16_t want_len = 0;
  switch (d[0]) {
    case 0x02: want_len = 0x18; break;
    case 0x07: want_len = 0x08; break;
    case 0x0a: want_len = 0x1c; break;
    default: return ParameterListError(Asc::kUnsupportedSegmentDescriptorTypeCode, off);
  }
  if (desc_len != want_len) return InvalidFieldInParameterList(off + 2);
  s->type = static_cast<SegmentType>(d[0]);
  s->src_cscd = LoadBe16(d + 4);
  if (auto e = CheckCscdId(s->src_cscd, off + 4)) return e;
  if (s->type == SegmentType::kVerifyCscd) {
    s->tur = d[8] & 0x01;
    return std::nullopt;
  }
  s->dst_cscd = LoadBe16(d + 6);
  if (auto e = CheckCscdId(s->dst_cscd, off + 6)) return e;
  s->cat = d[1] & 0x01;
  s->src_lba = LoadBe64(d + 12);
  s->dst_lba = LoadBe64(d + 20);
  if (s->type == SegmentType::kBlockToBlock) {
    s->dc = d[1] & 0x02;
    s->blocks = LoadBe16(d + 10);
  } else {
    s->bytes = LoadBe32(d + 8);
    s->src_byte_offset = LoadBe16(d + 28);
    s->dst_byte_offset = LoadBe16(d + 30);
  }
  return std::nullopt;
}

// SPC-4 6.4.3.2: LIST ID USAGE 01b is reserved, and 11b (no list identifier) requires LIST
// IDENTIFIER 0.
std::optional<Sense> CheckListIdUsage(const ExtendedCopyList& list, uint16_t list_id_field) {
  if (list.usage == ListIdUsage::kReserved) return InvalidFieldInParameterList(1, 4);
  if (list.usage == ListIdUsage::kDisable && list.list_id != 0) {
    return InvalidFieldInParameterList(list_id_field);
  }
  return std::nullopt;
}

// Checks in the order of the client expectations (scsi-third-party-copy.md 4.1, 6.2
// DescrLimits): every length before any count, every count before any descriptor field.
std::optional<Sense> DecodeLists(std::span<const uint8_t> params, const HeaderLayout& h,
                                 const Lengths& len, ExtendedCopyList* list) {
  if (len.inline_data != 0) {  // Ferry takes no inline data (VPD 8Fh, RCR OPERATING PARAMETERS)
    return ParameterListError(Asc::kInlineDataLengthExceeded, h.inline_len_field);
  }
  const uint64_t lists = uint64_t{len.cscd} + len.seg;
  if (h.bytes + lists > params.size()) return ParameterListLengthError();
  if (lists > kMaxDescriptorListBytes) return ParameterListLengthError();
  if (len.cscd % kCscdBytes != 0) return InvalidFieldInParameterList(h.cscd_len_field);
  if (len.cscd / kCscdBytes > kMaxCscdDescriptors) {
    return ParameterListError(Asc::kTooManyTargetDescriptors, h.cscd_len_field);
  }
  const size_t seg_begin = h.bytes + len.cscd;
  if (auto s = WalkSegments(params, seg_begin, seg_begin + len.seg, h.seg_len_field, list)) {
    return s;
  }
  list->cscds.resize(len.cscd / kCscdBytes);
  for (size_t i = 0; i < list->cscds.size(); ++i) {
    const size_t off = h.bytes + i * kCscdBytes;
    if (auto s = DecodeCscd(&params[off], static_cast<uint16_t>(off), &list->cscds[i])) return s;
  }
  for (Segment& seg : list->segments) {
    if (auto s = DecodeSegment(&params[seg.offset], &seg)) return s;
  }
  return CheckListIdUsage(*list, h.list_id_field);
}

// SBC-3 block device range descriptors, shared by POPULATE TOKEN and WRITE USING TOKEN:
// `len_field` is the offset of the 2-byte BLOCK DEVICE RANGE DESCRIPTOR LIST LENGTH and the
// descriptors follow it directly. Lengths first (the list must fit both the span and the
// DATA LENGTH the initiator declared), then the count, then the contents. Ranges of zero
// blocks are dropped (SBC-3: they specify no blocks); overlaps are the executor's check.
std::optional<Sense> DecodeRanges(std::span<const uint8_t> params, size_t len_field,
                                  std::vector<BlockRange>* out) {
  const size_t begin = len_field + 2;
  if (params.size() < begin) return ParameterListLengthError();
  const size_t declared = size_t{LoadBe16(&params[0])} + 2;
  if (declared > params.size()) return ParameterListLengthError();
  const size_t list_len = LoadBe16(&params[len_field]);
  if (begin + list_len > declared) return ParameterListLengthError();
  const uint16_t field = static_cast<uint16_t>(len_field);
  if (list_len % kRangeBytes != 0 || list_len == 0) return InvalidFieldInParameterList(field);
  if (list_len / kRangeBytes > kMaxRangeDescriptors) {
    return ParameterListError(Asc::kTooManySegmentDescriptors, field);
  }
  for (size_t off = begin; off < begin + list_len; off += kRangeBytes) {
    const BlockRange r{.lba = LoadBe64(&params[off]), .blocks = LoadBe32(&params[off + 8])};
    if (r.blocks != 0) out->push_back(r);
  }
  return std::nullopt;
}

}  // namespace

ExtendedCopyResult DecodeExtendedCopy(std::span<const uint8_t> params, bool lid4) {
  const HeaderLayout& h = lid4 ? kLid4Layout : kLid1Layout;
  if (params.size() < h.bytes) return ParameterListLengthError();
  ExtendedCopyList list;
  Lengths len;
  if (auto s = DecodeHeader(params, lid4, &list, &len)) return *s;
  if (auto s = DecodeLists(params, h, len, &list)) return *s;
  return list;
}

// SBC-3 POPULATE TOKEN parameter data: header 16 bytes, ranges from byte 16.
PopulateTokenResult DecodePopulateToken(std::span<const uint8_t> params) {
  PopulateTokenParams out;
  if (auto s = DecodeRanges(params, 14, &out.ranges)) return *s;
  out.rtv = params[2] & 0x02;
  out.immed = params[2] & 0x01;
  out.inactivity_timeout_s = LoadBe32(&params[4]);
  out.rod_type = LoadBe32(&params[8]);
  return out;
}

// SBC-3 WRITE USING TOKEN parameter data: header 16 bytes, the 512-byte token, 8 bytes to
// the range list length at 534, ranges from byte 536.
WriteUsingTokenResult DecodeWriteUsingToken(std::span<const uint8_t> params) {
  WriteUsingTokenParams out;
  if (auto s = DecodeRanges(params, 534, &out.ranges)) return *s;
  out.del_tkn = params[2] & 0x02;
  out.immed = params[2] & 0x01;
  out.offset_into_rod = LoadBe64(&params[8]);
  std::copy(&params[16], &params[16 + kRodTokenBytes], out.token.begin());
  return out;
}

// A range list length is a 16-bit field, so a decoded list holds at most 4095 ranges of at
// most 2^32 - 1 blocks: the sum fits in 44 bits and cannot overflow.
uint64_t TotalBlocks(std::span<const BlockRange> ranges) {
  uint64_t total = 0;
  for (const BlockRange& r : ranges) total += r.blocks;
  return total;
}

}  // namespace ferry::scsi
