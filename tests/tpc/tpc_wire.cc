// Byte-level helpers of the third-party copy tests: sense decoding, CDBs, parameter lists,
// data patterns. Offsets follow ../shared/reference/scsi-third-party-copy.md section 3.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tpc_client.h"

namespace ferry::tpc_test {

void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Put32(uint8_t* p, uint32_t v) {
  Put16(p, static_cast<uint16_t>(v >> 16));
  Put16(p + 2, static_cast<uint16_t>(v));
}
void Put64(uint8_t* p, uint64_t v) {
  Put32(p, static_cast<uint32_t>(v >> 32));
  Put32(p + 4, static_cast<uint32_t>(v));
}
uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Get32(const uint8_t* p) { return uint32_t{Get16(p)} << 16 | Get16(p + 2); }
uint64_t Get64(const uint8_t* p) { return uint64_t{Get32(p)} << 32 | Get32(p + 4); }

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

namespace {

// SPC-4 4.5.2.4: sense-key specific bytes (SKSV in bit 7 of the first).
void TakeSks(const uint8_t* sks, Sense* s) {
  s->sksv = (sks[0] & 0x80) != 0;
  s->sks0 = sks[0];
  s->field_pointer = Get16(sks + 1);
}

// SPC-4 4.5.2 descriptor format: walks the descriptors after the 8-byte header.
void DecodeDescriptors(std::span<const uint8_t> b, Sense* s) {
  size_t end = std::min(b.size(), size_t{8} + b[7]);
  for (size_t i = 8; i + 2 <= end;) {
    const uint8_t type = b[i];
    const size_t len = size_t{2} + b[i + 1];
    if (i + len > end) break;
    if (type == 0x01 && len >= 12) s->command_specific = Get64(&b[i + 4]);  // 4.5.2.3
    if (type == 0x02 && len >= 8) TakeSks(&b[i + 4], s);                    // 4.5.2.4
    i += len;
  }
}

}  // namespace

Sense DecodeSense(std::span<const uint8_t> raw) {
  Sense s;
  s.raw.assign(raw.begin(), raw.end());
  if (raw.size() < 8) return s;
  s.response_code = raw[0] & 0x7f;
  if (s.response_code == 0x72 || s.response_code == 0x73) {
    s.key = raw[1] & 0x0f;
    s.asc = raw[2];
    s.ascq = raw[3];
    DecodeDescriptors(raw, &s);
  } else if ((s.response_code == 0x70 || s.response_code == 0x71) && raw.size() >= 14) {
    s.key = raw[2] & 0x0f;
    s.command_specific = Get32(&raw[8]);  // fixed format bytes 8-11
    s.asc = raw[12];
    s.ascq = raw[13];
    if (raw.size() >= 18) TakeSks(&raw[15], &s);
  }
  return s;
}

std::string Describe(const Reply& r) {
  if (r.status < 0) return "transport error: " + r.transport_error;
  if (r.status == SCSI_STATUS_GOOD) return "GOOD";
  char buf[160];
  if (r.status != SCSI_STATUS_CHECK_CONDITION) {
    std::snprintf(buf, sizeof(buf), "status %02Xh", r.status);
    return buf;
  }
  const Sense& s = r.sense;
  std::snprintf(buf, sizeof(buf), "CHECK CONDITION %02X/%02X/%02X (format %02Xh", s.key, s.asc,
                s.ascq, s.response_code);
  std::string out = buf;
  if (s.command_specific) out += ", csi " + std::to_string(*s.command_specific);
  if (s.sksv) {
    out += std::string(", field ") + (s.in_cdb() ? "cdb " : "param ") +
           std::to_string(s.field_pointer);
  }
  return out + ")";
}

testing::AssertionResult IsGood(const Reply& r) {
  if (r.good()) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "expected GOOD, got " << Describe(r);
}

testing::AssertionResult IsCheck(const Reply& r, uint8_t key,
                                 std::initializer_list<uint16_t> codes) {
  bool ok = r.status == SCSI_STATUS_CHECK_CONDITION && r.sense.key == key;
  if (ok && codes.size() > 0) {
    ok = std::find(codes.begin(), codes.end(), r.sense.code()) != codes.end();
  }
  // FERRY_TPC_VERBOSE=1: show what each refusal carried (sense key, codes, CSI, pointer).
  static const bool verbose = !Env("FERRY_TPC_VERBOSE").empty();
  if (verbose) std::fprintf(stderr, "  sense: %s\n", Describe(r).c_str());
  if (ok) return testing::AssertionSuccess();
  char want[64];
  std::snprintf(want, sizeof(want), "CHECK CONDITION %02X/", key);
  std::string w = want;
  for (uint16_t c : codes) {
    char one[16];
    std::snprintf(one, sizeof(one), "%s%02X/%02X", c == *codes.begin() ? "" : " or ", c >> 8,
                  c & 0xff);
    w += one;
  }
  return testing::AssertionFailure() << "expected " << w << ", got " << Describe(r);
}

// --- patterns ------------------------------------------------------------------------------

namespace {
uint64_t Mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

Bytes Pattern(uint64_t seed, uint64_t offset, size_t len) {
  Bytes out(len);
  const uint64_t salt = Mix(seed);
  for (size_t i = 0; i < len;) {
    const uint64_t at = offset + i;
    const uint64_t word = Mix(salt ^ (at / 8));
    const size_t in_word = at % 8;
    const size_t n = std::min(len - i, 8 - in_word);
    for (size_t k = 0; k < n; ++k) out[i + k] = static_cast<uint8_t>(word >> (8 * (in_word + k)));
    i += n;
  }
  return out;
}

uint64_t NewSeed() {
  static std::atomic<uint64_t> next{0x5eed0000};
  return next++;
}

testing::AssertionResult SameBytes(std::span<const uint8_t> got, std::span<const uint8_t> want) {
  if (got.size() == want.size() && std::equal(got.begin(), got.end(), want.begin())) {
    return testing::AssertionSuccess();
  }
  const size_t n = std::min(got.size(), want.size());
  size_t i = 0;
  while (i < n && got[i] == want[i]) ++i;
  size_t differing = 0;
  for (size_t k = i; k < n; ++k) differing += got[k] != want[k];
  return testing::AssertionFailure()
         << "data differ: " << got.size() << " bytes read, " << want.size() << " expected, first "
         << "difference at byte " << i << " (block " << i / 512 << " of 512 B), " << differing
         << " bytes differ";
}

// --- CDBs ----------------------------------------------------------------------------------

Cdb ThirdPartyCopyOut(uint8_t sa, uint32_t param_len) {
  Cdb c{};
  c[0] = 0x83;
  c[1] = sa;
  Put32(&c[10], param_len);
  return c;
}

Cdb PopulateToken(uint32_t list_id, uint32_t param_len) {
  Cdb c = ThirdPartyCopyOut(kSaPopulateToken, param_len);
  Put32(&c[6], list_id);
  return c;
}

Cdb WriteUsingToken(uint32_t list_id, uint32_t param_len) {
  Cdb c = ThirdPartyCopyOut(kSaWriteUsingToken, param_len);
  Put32(&c[6], list_id);
  return c;
}

Cdb CopyOperationAbort(uint32_t list_id) {
  Cdb c{};
  c[0] = 0x83;
  c[1] = kSaCopyOperationAbort;
  Put32(&c[2], list_id);
  return c;
}

Cdb ThirdPartyCopyIn(uint8_t sa, uint32_t list_id, uint32_t alloc) {
  Cdb c{};
  c[0] = 0x84;
  c[1] = sa;
  if (sa <= kSaFailureDetails) {
    c[2] = static_cast<uint8_t>(list_id);
  } else if (sa <= kSaRrti) {
    Put32(&c[2], list_id);
  }
  Put32(&c[10], alloc);
  return c;
}

// --- EXTENDED COPY -------------------------------------------------------------------------

Cscd CscdE4(const Designator& d, uint32_t block_size) {
  Cscd c{};
  c[0] = 0xe4;
  c[1] = 0x00;  // LU ID TYPE 00b (LUN), NUL 0, peripheral device type 00h
  c[4] = d.code_set & 0x0f;
  c[5] = d.type & 0x0f;  // association 00b: the LU
  EXPECT_LE(d.value.size(), 20u) << "a designator of type " << int{d.type} << " is "
                                 << d.value.size() << " bytes: an E4h CSCD holds at most 20";
  const size_t n = std::min<size_t>(d.value.size(), 20);
  c[7] = static_cast<uint8_t>(n);
  std::copy_n(d.value.begin(), n, c.begin() + 8);
  c[29] = static_cast<uint8_t>(block_size >> 16);
  c[30] = static_cast<uint8_t>(block_size >> 8);
  c[31] = static_cast<uint8_t>(block_size);
  return c;
}

Bytes SegmentB2B(uint16_t src, uint16_t dst, uint16_t blocks, uint64_t src_lba, uint64_t dst_lba,
                 bool dc) {
  Bytes s(28, 0);
  s[0] = 0x02;
  s[1] = dc ? 0x02 : 0x00;
  Put16(&s[2], 0x0018);
  Put16(&s[4], src);
  Put16(&s[6], dst);
  Put16(&s[10], blocks);
  Put64(&s[12], src_lba);
  Put64(&s[20], dst_lba);
  return s;
}

Bytes SegmentB2BOffset(uint16_t src, uint16_t dst, uint32_t bytes, uint64_t src_lba,
                       uint64_t dst_lba, uint16_t src_off, uint16_t dst_off) {
  Bytes s(32, 0);
  s[0] = 0x0a;
  Put16(&s[2], 0x001c);
  Put16(&s[4], src);
  Put16(&s[6], dst);
  Put32(&s[8], bytes);
  Put64(&s[12], src_lba);
  Put64(&s[20], dst_lba);
  Put16(&s[28], src_off);
  Put16(&s[30], dst_off);
  return s;
}

Bytes SegmentVerify(uint16_t cscd, bool tur) {
  Bytes s(12, 0);
  s[0] = 0x07;
  Put16(&s[2], 0x0008);
  Put16(&s[4], cscd);
  s[8] = tur ? 0x01 : 0x00;
  return s;
}

namespace {
void AppendDescriptors(const CopyList& l, Bytes* out) {
  for (const Cscd& c : l.cscds) out->insert(out->end(), c.begin(), c.end());
  for (const Bytes& s : l.segments) out->insert(out->end(), s.begin(), s.end());
}
size_t SegmentBytes(const CopyList& l) {
  size_t n = 0;
  for (const Bytes& s : l.segments) n += s.size();
  return n;
}
}  // namespace

Bytes EncodeLid1(const CopyList& l) {
  Bytes out(16, 0);
  out[0] = static_cast<uint8_t>(l.list_id);
  out[1] = static_cast<uint8_t>((l.usage & 3) << 3);
  Put16(&out[2], static_cast<uint16_t>(32 * l.cscds.size()));
  Put32(&out[8], static_cast<uint32_t>(SegmentBytes(l)));
  AppendDescriptors(l, &out);
  return out;
}

Bytes EncodeLid4(const CopyList& l) {
  Bytes out(48, 0);
  out[0] = 0x01;  // LIST FORMAT
  out[1] = static_cast<uint8_t>((l.usage & 3) << 3);
  out[15] = l.immed ? 0x01 : 0x00;
  Put32(&out[20], l.list_id);
  Put16(&out[42], static_cast<uint16_t>(32 * l.cscds.size()));
  Put16(&out[44], static_cast<uint16_t>(SegmentBytes(l)));
  AppendDescriptors(l, &out);
  return out;
}

// --- ROD tokens ----------------------------------------------------------------------------

namespace {
void PutRanges(std::span<const Range> ranges, uint8_t* p) {
  for (const Range& r : ranges) {
    Put64(p, r.lba);
    Put32(p + 8, r.blocks);
    p += 16;
  }
}
}  // namespace

Bytes PopulateTokenParams(std::span<const Range> ranges, uint32_t timeout_s, bool immed) {
  Bytes p(16 + 16 * ranges.size(), 0);
  Put16(&p[0], static_cast<uint16_t>(p.size() - 2));
  p[2] = immed ? 0x01 : 0x00;
  Put32(&p[4], timeout_s);
  Put16(&p[14], static_cast<uint16_t>(16 * ranges.size()));
  PutRanges(ranges, &p[16]);
  return p;
}

Bytes WriteUsingTokenParams(const Token& token, std::span<const Range> ranges,
                            uint64_t offset_into_rod, bool del_tkn) {
  Bytes p(536 + 16 * ranges.size(), 0);
  Put16(&p[0], static_cast<uint16_t>(p.size() - 2));
  p[2] = del_tkn ? 0x02 : 0x00;
  Put64(&p[8], offset_into_rod);
  std::copy(token.begin(), token.end(), p.begin() + 16);
  Put16(&p[534], static_cast<uint16_t>(16 * ranges.size()));
  PutRanges(ranges, &p[536]);
  return p;
}

Token ZeroToken() {
  Token t{};
  Put32(&t[0], 0xffff0001);
  Put16(&t[6], 0x01f8);
  return t;
}

std::optional<CopyStatus4> ParseCopyStatus4(std::span<const uint8_t> d) {
  if (d.size() < 32) {
    ADD_FAILURE() << "copy status response of " << d.size() << " bytes, at least 32 expected";
    return std::nullopt;
  }
  CopyStatus4 s;
  const size_t available = size_t{4} + Get32(&d[0]);
  s.response_to_sa = d[4] & 0x1f;
  s.status = d[5] & 0x7f;
  s.estimated_delay_ms = Get32(&d[8]);
  s.completion_status = d[12];
  const size_t x = d[13];
  s.units = d[15];
  s.transfer_count = Get64(&d[16]);
  s.segments_processed = Get16(&d[24]);
  const size_t end = std::min(available, d.size());
  if (32 + x > end) {
    ADD_FAILURE() << "sense field of " << x << " bytes runs past the " << end << " returned";
    return std::nullopt;
  }
  s.sense.assign(d.begin() + 32, d.begin() + 32 + std::min<size_t>(x, d[14]));
  if (32 + x + 4 <= end) {
    s.token_descriptors_len = Get32(&d[32 + x]);
    const size_t at = 32 + x + 6;
    if (s.token_descriptors_len >= 2 + kTokenBytes && at + kTokenBytes <= end) {
      Token t;
      std::copy_n(d.begin() + at, kTokenBytes, t.begin());
      s.token = t;
    }
  }
  return s;
}

std::optional<uint64_t> TransferBytes(uint8_t units, uint64_t count, uint32_t block_size) {
  switch (units) {
    case 0x00: return count;
    case 0x01: return count << 10;
    case 0x02: return count << 20;
    case 0x03: return count << 30;
    case 0xf1: return count * block_size;
    default: return std::nullopt;
  }
}

uint8_t NewListId1() {
  static std::atomic<unsigned> next{0};
  return static_cast<uint8_t>(1 + next++ % 250);
}

uint32_t NewListId() {
  static std::atomic<uint32_t> next{0x1000};
  return next++;
}

}  // namespace ferry::tpc_test
