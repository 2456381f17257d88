#include "backends/iscsi/tpc_codec.h"

#include <algorithm>
#include <limits>

#include "base/endian.h"

namespace ferry::backends::iscsi {
namespace {

Cdb Cdb16(uint8_t op, uint8_t sa) {
  Cdb c;
  c.len = 16;
  c.bytes[0] = op;
  c.bytes[1] = sa;
  return c;
}

// A VPD page's body: bytes 4 .. 4 + PAGE LENGTH, cut to what was returned. Empty when the
// header is short or names another page.
std::span<const uint8_t> VpdBody(std::span<const uint8_t> page, uint8_t code) {
  if (page.size() < 4 || page[1] != code) return {};
  const size_t len = std::min<size_t>(LoadBe16(&page[2]), page.size() - 4);
  return page.subspan(4, len);
}

// SPC-4 7.8.6 designator types usable in an E4h CSCD, best first.
constexpr uint8_t kDesignatorT10 = 1;
constexpr uint8_t kDesignatorEui64 = 2;
constexpr uint8_t kDesignatorNaa = 3;
constexpr uint8_t kCodeSetBinary = 1;
constexpr uint8_t kCodeSetAscii = 2;

int DesignatorRank(uint8_t type) {
  switch (type) {
    case kDesignatorNaa: return 3;
    case kDesignatorEui64: return 2;
    case kDesignatorT10: return 1;
    default: return 0;
  }
}

void AddSas(std::span<const uint8_t> sas, uint32_t* bits) {
  for (uint8_t sa : sas) {
    if (sa < 32) *bits |= 1u << sa;
  }
}

// SPC-4 7.8.17.3 Supported Commands descriptor body (after the 4-byte descriptor header).
void DecodeSupportedCommands(std::span<const uint8_t> b, TpcVpd* v) {
  if (b.empty()) return;
  v->has_supported_commands = true;
  const size_t end = std::min<size_t>(b.size(), size_t{1} + b[0]);
  size_t pos = 1;
  while (pos + 2 <= end) {
    const uint8_t op = b[pos];
    const size_t n = std::min<size_t>(b[pos + 1], end - pos - 2);
    const auto sas = b.subspan(pos + 2, n);
    if (op == kOpThirdPartyCopyOut) AddSas(sas, &v->copy_out_sas);
    if (op == kOpThirdPartyCopyIn) AddSas(sas, &v->copy_in_sas);
    pos += 2 + n;
  }
}

// SBC-3 Block Device ROD Token Limits descriptor; offsets are of the whole descriptor.
void DecodeRodLimits(std::span<const uint8_t> d, TpcVpd* v) {
  if (d.size() < 36) return;
  v->has_rod_limits = true;
  v->max_range_descriptors = LoadBe16(&d[10]);
  v->max_inactivity_timeout_s = LoadBe32(&d[12]);
  v->default_inactivity_timeout_s = LoadBe32(&d[16]);
  v->max_token_transfer_blocks = LoadBe64(&d[20]);
  v->optimal_transfer_blocks = LoadBe64(&d[28]);
}

void DecodeTpcDescriptor(uint16_t type, std::span<const uint8_t> d, TpcVpd* v) {
  switch (type) {
    case 0x0000: DecodeRodLimits(d, v); break;
    case 0x0001: DecodeSupportedCommands(d.subspan(4), v); break;
    case 0x0004:  // SPC-4 7.8.17.4 Parameter Data
      if (d.size() < 16) break;
      v->has_parameter_data = true;
      v->max_cscd_descriptors = LoadBe16(&d[8]);
      v->max_segment_descriptors = LoadBe16(&d[10]);
      v->max_descriptor_list_bytes = LoadBe32(&d[12]);
      break;
    case 0x0008: {  // SPC-4 7.8.17.5 Supported Descriptors
      if (d.size() < 5) break;
      v->has_supported_descriptors = true;
      const size_t n = std::min<size_t>(d[4], d.size() - 5);
      v->descriptor_codes.assign(d.begin() + 5, d.begin() + 5 + static_cast<ptrdiff_t>(n));
      break;
    }
    case 0x8001:  // SPC-4 7.8.17.12 General Copy Operations
      if (d.size() < 16) break;
      v->has_general_copy = true;
      v->max_segment_bytes = LoadBe32(&d[12]);
      break;
    default: break;
  }
}

bool Lists(const std::vector<uint8_t>& codes, uint8_t code) {
  return std::find(codes.begin(), codes.end(), code) != codes.end();
}

// Fills the EXTENDED COPY fields of `c` and says whether LID1 is usable.
bool DecideLid1(const TpcVpd& v, const OperatingParameters& op, CopyCapabilities* c) {
  if (!c->designator.valid()) {
    c->why_no_xcopy = "VPD 83h has no NAA, EUI-64 or T10 designator of the LU (<= 20 bytes)";
    return false;
  }
  if (v.has_supported_commands && (v.copy_out_sas & (1u << kSaExtendedCopyLid1)) == 0) {
    c->why_no_xcopy = "the array does not list EXTENDED COPY(LID1) in VPD 8Fh";
    return false;
  }
  if (op.present) {
    c->snlid = op.snlid;
    c->max_cscd_descriptors = op.max_cscd_descriptors;
    c->max_segment_descriptors = op.max_segment_descriptors;
    c->max_descriptor_list_bytes = op.max_descriptor_list_bytes;
    c->max_segment_bytes = op.max_segment_bytes;
    c->held_data_limit = op.held_data_limit;
  } else if (v.has_supported_commands && v.has_parameter_data) {
    c->snlid = true;  // SPC-4 7.8.17: no SNLID bit in the page; assume the SPC-4 default
    c->max_cscd_descriptors = v.max_cscd_descriptors;
    c->max_segment_descriptors = v.max_segment_descriptors;
    c->max_descriptor_list_bytes = v.max_descriptor_list_bytes;
    c->max_segment_bytes = v.has_general_copy ? v.max_segment_bytes : 0;
  } else {
    c->why_no_xcopy =
        "the array answered neither RECEIVE COPY OPERATING PARAMETERS nor a VPD 8Fh "
        "page with supported commands and parameter data";
    return false;
  }
  const std::vector<uint8_t>& codes = op.present ? op.descriptor_codes : v.descriptor_codes;
  if (!Lists(codes, 0x02) || !Lists(codes, 0xe4)) {
    c->why_no_xcopy = "the array does not implement both the E4h CSCD and the 02h segment";
    return false;
  }
  if (c->max_cscd_descriptors < 2 || c->max_segment_descriptors < 1 ||
      c->max_descriptor_list_bytes < 2 * kCscdDescriptorBytes + kB2BSegmentBytes) {
    c->why_no_xcopy = "the array takes fewer than 2 CSCDs and 1 segment per EXTENDED COPY";
    return false;
  }
  return true;
}

bool DecideOdx(const TpcVpd& v, CopyCapabilities* c) {
  if (!v.present) {
    c->why_no_odx = "the array has no VPD 8Fh (Third-party Copy) page";
    return false;
  }
  const bool pt = v.copy_out_sas & (1u << kSaPopulateToken);
  const bool wut = v.copy_out_sas & (1u << kSaWriteUsingToken);
  const bool rrti = v.copy_in_sas & (1u << kSaReceiveRodTokenInfo);
  if (!pt || !wut || !rrti) {
    c->why_no_odx =
        "the array does not list POPULATE TOKEN, WRITE USING TOKEN and RECEIVE ROD "
        "TOKEN INFORMATION in VPD 8Fh";
    return false;
  }
  if (!v.has_rod_limits) {
    c->why_no_odx = "VPD 8Fh has no Block Device ROD Token Limits descriptor";
    return false;
  }
  c->max_range_descriptors = v.max_range_descriptors;
  c->max_inactivity_timeout_s = v.max_inactivity_timeout_s;
  c->default_inactivity_timeout_s = v.default_inactivity_timeout_s;
  c->max_token_transfer_blocks = v.max_token_transfer_blocks;
  c->optimal_transfer_blocks = v.optimal_transfer_blocks;
  if (c->max_range_descriptors == 0) {
    c->why_no_odx = "the ROD token limits allow no range descriptors";
    return false;
  }
  return true;
}

void PutRanges(std::span<const BlockRange> ranges, uint8_t* p) {
  for (const BlockRange& r : ranges) {
    StoreBe64(p, r.lba);
    StoreBe32(p + 8, r.blocks);
    p += kRangeDescriptorBytes;
  }
}

void PutCscd(const XcopyTarget& t, uint8_t* d) {
  d[0] = 0xe4;  // identification descriptor CSCD, LU ID TYPE 00b, NUL 0, PDT 00h
  d[4] = t.id.code_set & 0x0f;
  d[5] = t.id.type & 0x0f;  // association 00b: the LU
  d[7] = t.id.len;
  std::copy(t.id.bytes.begin(), t.id.bytes.begin() + t.id.len, d + 8);
  StoreBe24(d + 29, t.block_size);  // device type specific: DISK BLOCK LENGTH, PAD 0
}

struct SenseName {
  uint16_t code;
  const char* text;
};
constexpr SenseName kSenseNames[] = {
    {0x0400, "not ready"},
    {0x0804, "unreachable copy target"},
    {0x0d02, "copy target device not reachable"},
    {0x0d01, "third-party device failure"},
    {0x0d03, "incorrect copy target device type"},
    {0x1100, "unrecovered read error"},
    {0x0c00, "write error"},
    {0x1a00, "parameter list length error"},
    {0x2000, "invalid command operation code"},
    {0x2100, "LBA out of range"},
    {0x2400, "invalid field in CDB"},
    {0x2600, "invalid field in parameter list"},
    {0x2606, "too many target descriptors"},
    {0x2607, "unsupported target descriptor type code"},
    {0x2608, "too many segment descriptors"},
    {0x2609, "unsupported segment descriptor type code"},
    {0x2900, "power on, reset or bus device reset"},
    {0x2a01, "mode parameters changed"},
    {0x2a09, "capacity data has changed"},
    {0x3f0e, "reported LUNs data has changed"},
    {0x2700, "write protected"},
    {0x2300, "invalid token operation, cause not reportable"},
    {0x2306, "invalid token operation, token unknown"},
    {0x230a, "invalid token operation, token expired"},
    {0x230c, "invalid token operation, remote ROD token usage not supported"},
    {0x5503, "insufficient resources"},
    {0x550c, "insufficient resources to create ROD token"},
};

const char* KeyName(uint8_t key) {
  static constexpr const char* kNames[16] = {
      "NO SENSE",       "RECOVERED ERROR", "NOT READY",      "MEDIUM ERROR",
      "HARDWARE ERROR", "ILLEGAL REQUEST", "UNIT ATTENTION", "DATA PROTECT",
      "BLANK CHECK",    "VENDOR SPECIFIC", "COPY ABORTED",   "ABORTED COMMAND",
      "RESERVED",       "VOLUME OVERFLOW", "MISCOMPARE",     "COMPLETED"};
  return kNames[key & 0x0f];
}

std::string Hex2(uint8_t v) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  return {kDigits[v >> 4], kDigits[v & 0x0f]};
}

// "CHECK CONDITION ILLEGAL REQUEST 20/00 (invalid command operation code)".
std::string DescribeSense(const SenseView& s) {
  std::string r = "CHECK CONDITION ";
  r += KeyName(s.key);
  r += " " + Hex2(s.asc) + "/" + Hex2(s.ascq);
  const uint16_t code = static_cast<uint16_t>(s.asc << 8 | s.ascq);
  for (const SenseName& n : kSenseNames) {
    if (n.code == code) return r + " (" + n.text + ")";
  }
  return r;
}

Refusal Make(RefusalKind k, IoStatus st, std::string why) { return {k, st, std::move(why)}; }

Refusal ClassifySense(const ScsiCommand& cmd) {
  const SenseView& s = cmd.sense;
  std::string why = DescribeSense(s);
  switch (s.key) {
    case 0x0:  // NO SENSE with CHECK CONDITION: nothing said; try again
      return Make(RefusalKind::kTransient, IoStatus::kIoError, std::move(why));
    case 0x1: return Make(RefusalKind::kNone, IoStatus::kOk, std::move(why));  // RECOVERED ERROR
    case 0x2:  // NOT READY: 04h (becoming ready, operation in progress) passes
      if (s.asc == 0x04) return Make(RefusalKind::kTransient, IoStatus::kIoError, std::move(why));
      return Make(RefusalKind::kIoError, IoStatus::kIoError, std::move(why));
    case 0x3:
    case 0x4: return Make(RefusalKind::kIoError, IoStatus::kIoError, std::move(why));
    case 0x6:
    case 0xb:  // UNIT ATTENTION, ABORTED COMMAND: the next try may pass
      return Make(RefusalKind::kTransient, IoStatus::kIoError, std::move(why));
    case 0x7: return Make(RefusalKind::kIoError, IoStatus::kReadOnly, std::move(why));
    case 0xe: return Make(RefusalKind::kIoError, IoStatus::kMiscompare, std::move(why));
    // ILLEGAL REQUEST (opcode, CDB, parameter list, token, LBA range) and COPY ABORTED
    // (unreachable copy target 08/04, 0D/02, a device failure behind the copy manager):
    // the offload is refused; the software copy reaches the devices itself and reports a
    // real error if there is one.
    default: return Make(RefusalKind::kNotOffloadable, IoStatus::kNotSupported, std::move(why));
  }
}

}  // namespace

void SetCdb(ScsiCommand& cmd, const Cdb& cdb) {
  std::copy(cdb.bytes.begin(), cdb.bytes.end(), cmd.cdb);
  cmd.cdb_len = cdb.len;
}

Cdb VpdInquiryCdb(uint8_t page, uint16_t alloc_len) {
  Cdb c;
  c.len = 6;
  c.bytes[0] = 0x12;
  c.bytes[1] = 0x01;  // EVPD
  c.bytes[2] = page;
  StoreBe16(&c.bytes[3], alloc_len);
  return c;
}

Cdb OperatingParametersCdb(uint32_t alloc_len) {
  Cdb c = Cdb16(kOpThirdPartyCopyIn, kSaOperatingParameters);
  StoreBe32(&c.bytes[10], alloc_len);  // LIST IDENTIFIER (byte 2) 0
  return c;
}

Cdb ExtendedCopyCdb(bool lid4, uint32_t param_len) {
  Cdb c = Cdb16(kOpThirdPartyCopyOut, lid4 ? kSaExtendedCopyLid4 : kSaExtendedCopyLid1);
  StoreBe32(&c.bytes[10], param_len);
  return c;
}

Cdb PopulateTokenCdb(uint32_t list_id, uint32_t param_len) {
  Cdb c = Cdb16(kOpThirdPartyCopyOut, kSaPopulateToken);
  StoreBe32(&c.bytes[6], list_id);
  StoreBe32(&c.bytes[10], param_len);
  return c;
}

Cdb WriteUsingTokenCdb(uint32_t list_id, uint32_t param_len) {
  Cdb c = PopulateTokenCdb(list_id, param_len);
  c.bytes[1] = kSaWriteUsingToken;
  return c;
}

Cdb ReceiveRodTokenInfoCdb(uint32_t list_id, uint32_t alloc_len) {
  Cdb c = Cdb16(kOpThirdPartyCopyIn, kSaReceiveRodTokenInfo);
  StoreBe32(&c.bytes[2], list_id);
  StoreBe32(&c.bytes[10], alloc_len);
  return c;
}

Cdb CopyOperationAbortCdb(uint32_t list_id) {
  Cdb c = Cdb16(kOpThirdPartyCopyOut, kSaCopyOperationAbort);
  StoreBe32(&c.bytes[2], list_id);
  return c;
}

LuDesignator DecodeLuDesignator(std::span<const uint8_t> vpd83) {
  const std::span<const uint8_t> body = VpdBody(vpd83, kVpdDeviceIdentification);
  LuDesignator best;
  int best_rank = 0;
  size_t pos = 0;
  while (pos + 4 <= body.size()) {
    const uint8_t* d = &body[pos];
    const size_t len = d[3];
    if (len > body.size() - pos - 4) break;  // truncated: nothing after it is trustworthy
    pos += 4 + len;
    const uint8_t code_set = d[0] & 0x0f;
    const uint8_t association = (d[1] >> 4) & 3;
    const uint8_t type = d[1] & 0x0f;
    const int rank = DesignatorRank(type);
    if (association != 0 || rank <= best_rank || len == 0 || len > kMaxCscdDesignatorBytes) {
      continue;
    }
    if (code_set != (type == kDesignatorT10 ? kCodeSetAscii : kCodeSetBinary)) continue;
    best = LuDesignator{.code_set = code_set, .type = type, .len = static_cast<uint8_t>(len)};
    std::copy(d + 4, d + 4 + len, best.bytes.begin());
    best_rank = rank;
  }
  return best;
}

TpcVpd DecodeTpcVpd(std::span<const uint8_t> vpd8f) {
  TpcVpd v;
  const std::span<const uint8_t> body = VpdBody(vpd8f, kVpdThirdPartyCopy);
  if (body.empty()) return v;
  v.present = true;
  size_t pos = 0;
  while (pos + 4 <= body.size()) {
    const uint16_t type = LoadBe16(&body[pos]);
    const size_t len = std::min<size_t>(LoadBe16(&body[pos + 2]), body.size() - pos - 4);
    DecodeTpcDescriptor(type, body.subspan(pos, 4 + len), &v);
    pos += 4 + len;
  }
  return v;
}

OperatingParameters DecodeOperatingParameters(std::span<const uint8_t> data) {
  OperatingParameters op;
  if (data.size() < 44) return op;
  const size_t avail = std::min<size_t>(LoadBe32(data.data()), data.size() - 4) + 4;
  if (avail < 44) return op;
  op.present = true;
  op.snlid = data[4] & 0x01;
  op.max_cscd_descriptors = LoadBe16(&data[8]);
  op.max_segment_descriptors = LoadBe16(&data[10]);
  op.max_descriptor_list_bytes = LoadBe32(&data[12]);
  op.max_segment_bytes = LoadBe32(&data[16]);
  op.max_inline_bytes = LoadBe32(&data[20]);
  op.held_data_limit = LoadBe32(&data[24]);
  const size_t n = std::min<size_t>(data[43], avail - 44);
  op.descriptor_codes.assign(data.begin() + 44, data.begin() + 44 + static_cast<ptrdiff_t>(n));
  return op;
}

CopyCapabilities DecodeCopyCapabilities(std::span<const uint8_t> vpd83,
                                        std::span<const uint8_t> vpd8f,
                                        std::span<const uint8_t> operating_parameters) {
  CopyCapabilities c;
  c.designator = DecodeLuDesignator(vpd83);
  const TpcVpd v = DecodeTpcVpd(vpd8f);
  const OperatingParameters op = DecodeOperatingParameters(operating_parameters);
  c.lid1 = DecideLid1(v, op, &c);
  c.lid4 = c.lid1 && v.has_supported_commands && (v.copy_out_sas & (1u << kSaExtendedCopyLid4));
  c.odx = DecideOdx(v, &c);
  return c;
}

size_t XcopyListBytes(bool lid4, size_t segments) {
  return (lid4 ? kXcopyLid4HeaderBytes : kXcopyLid1HeaderBytes) + 2 * kCscdDescriptorBytes +
         segments * kB2BSegmentBytes;
}

// SPC-4 6.4.3 (LID1 header), 6.5.3 (LID4 header), 6.4.5.6 (E4h CSCD), 6.4.6.5 (02h segment).
void EncodeXcopy(const XcopyList& list, std::vector<uint8_t>* out) {
  out->assign(XcopyListBytes(list.lid4, list.segments.size()), 0);
  uint8_t* p = out->data();
  const size_t seg_bytes = list.segments.size() * kB2BSegmentBytes;
  p[1] = static_cast<uint8_t>(static_cast<uint8_t>(list.usage) << 3);  // STR 0, PRIORITY 0
  size_t header = kXcopyLid1HeaderBytes;
  if (list.lid4) {
    header = kXcopyLid4HeaderBytes;
    p[0] = 0x01;  // LIST FORMAT; no header CSCD descriptors (bytes 2-3); IMMED 0, G_SENSE 0
    StoreBe32(p + 20, list.list_id);
    StoreBe16(p + 42, 2 * kCscdDescriptorBytes);
    StoreBe16(p + 44, static_cast<uint16_t>(seg_bytes));  // callers keep it <= 0xffff
  } else {
    p[0] = static_cast<uint8_t>(list.list_id);
    StoreBe16(p + 2, 2 * kCscdDescriptorBytes);
    StoreBe32(p + 8, static_cast<uint32_t>(seg_bytes));
  }
  PutCscd(list.src, p + header);
  PutCscd(list.dst, p + header + kCscdDescriptorBytes);
  uint8_t* s = p + header + 2 * kCscdDescriptorBytes;
  for (const B2BSegment& seg : list.segments) {
    s[0] = 0x02;
    s[1] = 0;  // DC 0: NUMBER OF BLOCKS counts source blocks; CAT 0
    StoreBe16(s + 2, kB2BSegmentBytes - 4);
    StoreBe16(s + 4, 0);  // source CSCD index
    StoreBe16(s + 6, 1);  // destination CSCD index
    StoreBe16(s + 10, seg.blocks);
    StoreBe64(s + 12, seg.src_lba);
    StoreBe64(s + 20, seg.dst_lba);
    s += kB2BSegmentBytes;
  }
}

// SBC-3 POPULATE TOKEN parameter data: 16-byte header, ranges from byte 16.
void EncodePopulateToken(std::span<const BlockRange> ranges, uint32_t timeout_s,
                         std::vector<uint8_t>* out) {
  const size_t list = ranges.size() * kRangeDescriptorBytes;
  out->assign(16 + list, 0);
  uint8_t* p = out->data();
  StoreBe16(p, static_cast<uint16_t>(out->size() - 2));  // RTV 0, IMMED 0, ROD TYPE 0
  StoreBe32(p + 4, timeout_s);
  StoreBe16(p + 14, static_cast<uint16_t>(list));
  PutRanges(ranges, p + 16);
}

// SBC-3 WRITE USING TOKEN parameter data: header, token at 16, range list length at 534.
void EncodeWriteUsingToken(const RodToken& token, uint64_t offset_into_rod,
                           std::span<const BlockRange> ranges, std::vector<uint8_t>* out) {
  const size_t list = ranges.size() * kRangeDescriptorBytes;
  out->assign(536 + list, 0);
  uint8_t* p = out->data();
  StoreBe16(p, static_cast<uint16_t>(out->size() - 2));
  StoreBe64(p + 8, offset_into_rod);
  std::copy(token.begin(), token.end(), p + 16);
  StoreBe16(p + 534, static_cast<uint16_t>(list));
  PutRanges(ranges, p + 536);
}

// SPC-4 6.18.3 header (32 bytes), sense, then SBC-3 ROD TOKEN DESCRIPTORS LENGTH (4 bytes),
// 2 reserved bytes and the token.
std::optional<RodTokenInfo> DecodeRodTokenInfo(std::span<const uint8_t> data, std::string* why) {
  if (data.size() < 32) {
    *why = "RECEIVE ROD TOKEN INFORMATION returned " + std::to_string(data.size()) + " bytes";
    return std::nullopt;
  }
  const size_t avail = std::min<size_t>(LoadBe32(data.data()), data.size() - 4) + 4;
  RodTokenInfo info;
  info.response_to_sa = data[4];
  info.copy_status = data[5] & 0x7f;
  info.units = data[15];
  info.transfer_count = LoadBe64(&data[16]);
  info.segments_processed = LoadBe16(&data[24]);
  const size_t at = 32 + size_t{data[13]};
  if (at + 4 > avail) return info;  // no ROD token descriptor (a copy that made none)
  const uint32_t tokens_len = LoadBe32(&data[at]);
  if (tokens_len == 0) return info;
  if (tokens_len < 2 + kRodTokenBytes || at + 6 + kRodTokenBytes > avail) {
    *why = "RECEIVE ROD TOKEN INFORMATION: ROD token descriptor cut short";
    return std::nullopt;
  }
  info.has_token = true;
  std::copy(&data[at + 6], &data[at + 6 + kRodTokenBytes], info.token.begin());
  return info;
}

std::optional<uint64_t> TransferBytes(uint8_t units, uint64_t count, uint32_t block_size) {
  uint64_t unit = 0;
  if (units == 0xf1) {
    unit = block_size;
  } else if (units <= 5) {
    unit = uint64_t{1} << (10 * units);
  }
  if (unit == 0 || count > std::numeric_limits<uint64_t>::max() / unit) return std::nullopt;
  return count * unit;
}

std::string_view RefusalKindName(RefusalKind k) {
  switch (k) {
    case RefusalKind::kNone: return "none";
    case RefusalKind::kNotOffloadable: return "not offloadable";
    case RefusalKind::kTransient: return "transient";
    case RefusalKind::kIoError: return "I/O error";
    case RefusalKind::kTransport: return "transport";
  }
  return "unknown";
}

Refusal Classify(const ScsiCommand& cmd) {
  if (cmd.transport != IoStatus::kOk) {
    return Make(RefusalKind::kTransport, cmd.transport,
                "no answer from the array: " + std::string(IoStatusName(cmd.transport)));
  }
  switch (cmd.scsi_status) {
    case kScsiStatusGood: return {};
    case kScsiStatusCheckCondition: return ClassifySense(cmd);
    case kScsiStatusBusy: return Make(RefusalKind::kTransient, IoStatus::kIoError, "BUSY");
    case kScsiStatusTaskSetFull:
      return Make(RefusalKind::kTransient, IoStatus::kIoError, "TASK SET FULL");
    case 0x40:  // TASK ABORTED: someone (a TMF, another initiator's PREEMPT AND ABORT) ended it
      return Make(RefusalKind::kTransport, IoStatus::kAborted, "TASK ABORTED");
    case kScsiStatusReservationConflict:
      // The software copy hits the same reservation with ordinary commands and reports it.
      return Make(RefusalKind::kNotOffloadable, IoStatus::kNotSupported, "RESERVATION CONFLICT");
    default:
      return Make(RefusalKind::kNotOffloadable, IoStatus::kNotSupported,
                  "SCSI status " + Hex2(cmd.scsi_status) + "h");
  }
}

}  // namespace ferry::backends::iscsi
