#include "scsi/tpc_params.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "base/endian.h"
#include "scsi/rod_token.h"
#include "scsi/tpc_test_builders.h"

namespace ferry::scsi {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr std::array<uint8_t, 16> kNaa = {0x60, 0x01, 0x40, 0x50, 0x11, 0x22, 0x33, 0x44,
                                          0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc};

Bytes NaaCscd(uint32_t block_length = 512) {
  auto d = CscdForNaa(kNaa, block_length);
  return Bytes(d.begin(), d.end());
}

// Segment descriptors as libiscsi's populate_seg_desc_* build them (reference 6.1).
Bytes B2b(uint16_t src, uint16_t dst, uint16_t blocks, uint64_t src_lba, uint64_t dst_lba,
          uint8_t flags = 0) {
  return tpc_testing::SegmentB2b(src, dst, blocks, src_lba, dst_lba, flags);
}

Bytes B2bOffset(uint16_t src, uint16_t dst, uint32_t bytes, uint64_t src_lba, uint64_t dst_lba,
                uint16_t src_off, uint16_t dst_off) {
  return tpc_testing::SegmentB2bOffset(src, dst, bytes, src_lba, dst_lba, src_off, dst_off,
                                       0x01);  // CAT, as libiscsi's helper sets it
}

Bytes Verify(uint16_t src, bool tur) { return tpc_testing::SegmentVerify(src, tur); }

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes Repeat(const Bytes& b, size_t n) {
  Bytes out;
  for (size_t i = 0; i < n; ++i) out.insert(out.end(), b.begin(), b.end());
  return out;
}

struct Header {
  uint32_t list_id = 1;
  uint8_t usage = 2;  // discard, as QEMU and libiscsi send
  uint8_t priority = 0;
  std::optional<uint32_t> cscd_len;  // default: the CSCD bytes given
  std::optional<uint32_t> seg_len;
  uint32_t inline_len = 0;
};

// A whole EXTENDED COPY parameter list (SPC-4 6.4.3 / 6.5.3).
Bytes List(bool lid4, const Bytes& cscds, const Bytes& segs, const Header& h = {}) {
  const uint32_t cscd_len = h.cscd_len.value_or(static_cast<uint32_t>(cscds.size()));
  const uint32_t seg_len = h.seg_len.value_or(static_cast<uint32_t>(segs.size()));
  Bytes p(lid4 ? 48 : 16);
  p[1] = static_cast<uint8_t>(h.usage << 3 | h.priority);
  if (lid4) {
    p[0] = 0x01;
    StoreBe32(&p[20], h.list_id);
    StoreBe16(&p[42], static_cast<uint16_t>(cscd_len));
    StoreBe16(&p[44], static_cast<uint16_t>(seg_len));
    StoreBe16(&p[46], static_cast<uint16_t>(h.inline_len));
  } else {
    p[0] = static_cast<uint8_t>(h.list_id);
    StoreBe16(&p[2], static_cast<uint16_t>(cscd_len));
    StoreBe32(&p[8], seg_len);
    StoreBe32(&p[12], h.inline_len);
  }
  return Cat({p, cscds, segs});
}

// Checks `r` failed with ILLEGAL REQUEST / `asc`, a parameter-list field pointer at `byte`
// (and `bit`), or no field pointer when `byte` is empty.
template <typename R>
void ExpectSense(const R& r, Asc asc, std::optional<uint16_t> byte,
                 std::optional<uint8_t> bit = std::nullopt) {
  ASSERT_TRUE(std::holds_alternative<Sense>(r)) << "decoded, expected an error";
  const Sense& s = std::get<Sense>(r);
  EXPECT_EQ(s.key, SenseKey::kIllegalRequest);
  EXPECT_EQ(static_cast<uint16_t>(s.asc), static_cast<uint16_t>(asc))
      << std::hex << static_cast<int>(s.asc);
  ASSERT_EQ(s.has_field_pointer, byte.has_value());
  if (!byte) return;
  EXPECT_FALSE(s.in_cdb);
  EXPECT_EQ(s.field_byte, *byte);
  EXPECT_EQ(s.field_bit, bit);
}

// The decoded value (a copy: results are temporaries), or an empty one and a failure.
template <typename T, typename R>
T Ok(const R& r) {
  if (const Sense* s = std::get_if<Sense>(&r)) {
    ADD_FAILURE() << "sense asc " << std::hex << static_cast<int>(s->asc) << " byte " << std::dec
                  << s->field_byte;
    return T{};
  }
  return std::get<T>(r);
}

ExtendedCopyList Xcopy(const ExtendedCopyResult& r) { return Ok<ExtendedCopyList>(r); }

const Asc kLenErr = Asc::kParameterListLengthError;
const Asc kInvalid = Asc::kInvalidFieldInParameterList;

// --- round trips ---

// A LID1 list with one CSCD of each designator type and one segment of each type.
Bytes Lid1Sample() {
  Bytes eui(32);
  eui[0] = 0xe4;
  eui[4] = 0x51;  // PROTOCOL IDENTIFIER 5 (iSCSI), binary: the protocol nibble is ignored
  eui[5] = 0x82;  // PIV, LU, EUI-64
  eui[7] = 8;
  for (int i = 0; i < 8; ++i) eui[8 + i] = static_cast<uint8_t>(0xa0 + i);
  eui[28] = 0x04;  // PAD
  StoreBe24(&eui[29], 4096);
  Bytes t10(32);
  t10[0] = 0xe4;
  t10[4] = 0x02;  // ASCII
  t10[5] = 0x01;  // T10 vendor id
  t10[7] = 20;
  std::fill(t10.begin() + 8, t10.begin() + 28, 'F');
  const Bytes segs = Cat({B2b(0, 1, 2048, 7, 0x1122334455667788ull, 0x03),
                          B2bOffset(2, 0xffff, 1u << 20, 9, 10, 100, 200), Verify(1, true)});
  return List(false, Cat({NaaCscd(512), eui, t10}), segs,
              {.list_id = 0x42, .usage = 0, .priority = 5});
}

TEST(ExtendedCopy, Lid1RoundTripHeaderAndCscds) {
  const ExtendedCopyList& l = Xcopy(DecodeExtendedCopy(Lid1Sample(), false));
  EXPECT_FALSE(l.lid4);
  EXPECT_EQ(l.list_id, 0x42u);
  EXPECT_EQ(l.usage, ListIdUsage::kHold);
  EXPECT_EQ(l.priority, 5);
  ASSERT_EQ(l.cscds.size(), 3u);
  EXPECT_EQ(l.cscds[0].offset, 16);
  EXPECT_EQ(l.cscds[0].designator_type, 3);
  EXPECT_EQ(l.cscds[0].code_set, 1);
  EXPECT_EQ(l.cscds[0].association, 0);
  ASSERT_EQ(l.cscds[0].designator_len, 16);
  EXPECT_TRUE(std::equal(kNaa.begin(), kNaa.end(), l.cscds[0].designator_bytes().begin()));
  EXPECT_EQ(l.cscds[0].block_length, 512u);
  EXPECT_FALSE(l.cscds[0].pad);
  EXPECT_EQ(l.cscds[1].offset, 48);
  EXPECT_EQ(l.cscds[1].code_set, 1);
  EXPECT_EQ(l.cscds[1].designator_type, 2);
  EXPECT_EQ(l.cscds[1].designator_len, 8);
  EXPECT_EQ(l.cscds[1].designator[7], 0xa7);
  EXPECT_EQ(l.cscds[1].designator[8], 0);
  EXPECT_TRUE(l.cscds[1].pad);
  EXPECT_EQ(l.cscds[1].block_length, 4096u);
  EXPECT_EQ(l.cscds[2].offset, 80);
  EXPECT_EQ(l.cscds[2].designator_type, 1);
  EXPECT_EQ(l.cscds[2].designator_len, 20);
}

TEST(ExtendedCopy, Lid1RoundTripSegments) {
  const ExtendedCopyList& l = Xcopy(DecodeExtendedCopy(Lid1Sample(), false));
  ASSERT_EQ(l.segments.size(), 3u);
  const Segment& a = l.segments[0];
  EXPECT_EQ(a.offset, 112);
  EXPECT_EQ(a.type, SegmentType::kBlockToBlock);
  EXPECT_TRUE(a.dc);
  EXPECT_TRUE(a.cat);
  EXPECT_EQ(a.src_cscd, 0);
  EXPECT_EQ(a.dst_cscd, 1);
  EXPECT_EQ(a.blocks, 2048u);
  EXPECT_EQ(a.src_lba, 7u);
  EXPECT_EQ(a.dst_lba, 0x1122334455667788ull);
  const Segment& b = l.segments[1];
  EXPECT_EQ(b.offset, 140);
  EXPECT_EQ(b.type, SegmentType::kBlockToBlockOffset);
  EXPECT_FALSE(b.dc);
  EXPECT_TRUE(b.cat);
  EXPECT_EQ(b.src_cscd, 2);
  EXPECT_EQ(b.dst_cscd, kCscdIdReceivingLu);
  EXPECT_EQ(b.bytes, 1u << 20);
  EXPECT_EQ(b.src_lba, 9u);
  EXPECT_EQ(b.dst_lba, 10u);
  EXPECT_EQ(b.src_byte_offset, 100);
  EXPECT_EQ(b.dst_byte_offset, 200);
  const Segment& c = l.segments[2];
  EXPECT_EQ(c.offset, 172);
  EXPECT_EQ(c.type, SegmentType::kVerifyCscd);
  EXPECT_EQ(c.src_cscd, 1);
  EXPECT_TRUE(c.tur);
}

TEST(ExtendedCopy, Lid4RoundTrip) {
  Bytes p = List(true, NaaCscd(), Cat({B2b(0, 0, 8, 0, 100), Verify(0, false)}),
                 {.list_id = 0xdeadbeef, .usage = 0, .priority = 3});
  p[15] = 0x03;  // G_SENSE, IMMED
  const ExtendedCopyList& l = Xcopy(DecodeExtendedCopy(p, true));
  EXPECT_TRUE(l.lid4);
  EXPECT_EQ(l.list_id, 0xdeadbeefu);
  EXPECT_EQ(l.priority, 3);
  EXPECT_TRUE(l.immed);
  EXPECT_TRUE(l.g_sense);
  ASSERT_EQ(l.cscds.size(), 1u);
  EXPECT_EQ(l.cscds[0].offset, 48);
  ASSERT_EQ(l.segments.size(), 2u);
  EXPECT_EQ(l.segments[0].offset, 80);
  EXPECT_EQ(l.segments[0].blocks, 8u);
  EXPECT_EQ(l.segments[1].offset, 108);
  EXPECT_FALSE(l.segments[1].tur);
}

TEST(ExtendedCopy, EmptyListsAndTrailingBytesDecode) {
  Bytes p = List(false, {}, {});
  const ExtendedCopyList& l = Xcopy(DecodeExtendedCopy(p, false));
  EXPECT_TRUE(l.cscds.empty());
  EXPECT_TRUE(l.segments.empty());
  // A PARAMETER LIST LENGTH longer than the lists: the bytes past them are not read.
  p = List(false, NaaCscd(), B2b(0, 0, 1, 0, 1));
  p.resize(p.size() + 100, 0xff);
  EXPECT_EQ(Xcopy(DecodeExtendedCopy(p, false)).segments.size(), 1u);
}

TEST(ExtendedCopy, DiscardAndDisableUsages) {
  const Bytes segs = B2b(0, 0, 1, 0, 1);
  const auto l = Xcopy(DecodeExtendedCopy(List(false, NaaCscd(), segs), false));
  EXPECT_EQ(l.usage, ListIdUsage::kDiscard);
  const Bytes disable = List(false, NaaCscd(), segs, {.list_id = 0, .usage = 3});
  EXPECT_EQ(Xcopy(DecodeExtendedCopy(disable, false)).usage, ListIdUsage::kDisable);
  const Bytes disable4 = List(true, NaaCscd(), segs, {.list_id = 0, .usage = 3});
  EXPECT_EQ(Xcopy(DecodeExtendedCopy(disable4, true)).usage, ListIdUsage::kDisable);
}

// --- header ---

TEST(ExtendedCopy, ShortHeaderIsLengthError) {
  ExpectSense(DecodeExtendedCopy({}, false), kLenErr, std::nullopt);
  ExpectSense(DecodeExtendedCopy({}, true), kLenErr, std::nullopt);
  const Bytes p1 = List(false, {}, {});
  ExpectSense(DecodeExtendedCopy(std::span(p1).first(15), false), kLenErr, std::nullopt);
  const Bytes p4 = List(true, {}, {});
  ExpectSense(DecodeExtendedCopy(std::span(p4).first(47), true), kLenErr, std::nullopt);
  // A LID1-sized list sent as LID4.
  ExpectSense(DecodeExtendedCopy(p1, true), kLenErr, std::nullopt);
}

TEST(ExtendedCopy, Lid4ListFormatAndHeaderCscd) {
  Bytes p = List(true, NaaCscd(), B2b(0, 0, 1, 0, 1));
  p[0] = 0x00;
  ExpectSense(DecodeExtendedCopy(p, true), kInvalid, 0);
  p[0] = 0x01;
  p[3] = 32;  // HEADER CSCD DESCRIPTOR LIST LENGTH
  ExpectSense(DecodeExtendedCopy(p, true), kInvalid, 2);
}

TEST(ExtendedCopy, InlineDataRefusedBeforeLengths) {
  const Bytes segs = B2b(0, 0, 1, 0, 1);
  Bytes p = List(false, NaaCscd(), segs, {.inline_len = 4});
  ExpectSense(DecodeExtendedCopy(p, false), Asc::kInlineDataLengthExceeded, 12);
  // Even when the lists do not fit what was sent.
  p.resize(40);
  ExpectSense(DecodeExtendedCopy(p, false), Asc::kInlineDataLengthExceeded, 12);
  p = List(true, NaaCscd(), segs, {.inline_len = 1});
  ExpectSense(DecodeExtendedCopy(p, true), Asc::kInlineDataLengthExceeded, 46);
}

// libiscsi ExtendedCopy.ParamHdr: PARAMETER LIST LENGTH one byte short of the CSCD list, then
// one byte short of the segment list.
TEST(ExtendedCopy, LibiscsiParamHdrTruncations) {
  const Bytes p = List(false, NaaCscd(), B2b(0, 0, 2048, 0, 1000), {.usage = 0});
  ASSERT_EQ(p.size(), 16u + 32 + 28);
  ExpectSense(DecodeExtendedCopy(std::span(p).first(16 + 32 - 1), false), kLenErr, std::nullopt);
  ExpectSense(DecodeExtendedCopy(std::span(p).first(16 + 32 + 28 - 1), false), kLenErr,
              std::nullopt);
  const Bytes p4 = List(true, NaaCscd(), B2b(0, 0, 2048, 0, 1000), {.usage = 0});
  ExpectSense(DecodeExtendedCopy(std::span(p4).first(p4.size() - 1), true), kLenErr, std::nullopt);
}

TEST(ExtendedCopy, HugeSegmentListLengthIsLengthError) {
  // LID1 SEGMENT DESCRIPTOR LIST LENGTH is 32 bits: sums must not wrap.
  const Bytes p = List(false, NaaCscd(), B2b(0, 0, 1, 0, 1), {.seg_len = 0xffffffff});
  ExpectSense(DecodeExtendedCopy(p, false), kLenErr, std::nullopt);
}

TEST(ExtendedCopy, MaxDescriptorListBytesBoundary) {
  // One segment descriptor that makes the lists exactly kMaxDescriptorListBytes long passes
  // every length check and fails only on its own DESCRIPTOR LENGTH.
  Bytes seg = B2b(0, 0, 1, 0, 1);
  seg.resize(kMaxDescriptorListBytes);
  StoreBe16(&seg[2], static_cast<uint16_t>(kMaxDescriptorListBytes - 4));
  ExpectSense(DecodeExtendedCopy(List(false, {}, seg), false), kInvalid, 18);
  seg.push_back(0);
  StoreBe16(&seg[2], static_cast<uint16_t>(kMaxDescriptorListBytes - 3));
  ExpectSense(DecodeExtendedCopy(List(false, {}, seg), false), kLenErr, std::nullopt);
}

TEST(ExtendedCopy, CscdListLengthNotMultipleOf32) {
  Bytes cscds = NaaCscd();
  cscds.resize(33);
  ExpectSense(DecodeExtendedCopy(List(false, cscds, {}), false), kInvalid, 2);
  ExpectSense(DecodeExtendedCopy(List(true, cscds, {}), true), kInvalid, 42);
}

// --- counts (libiscsi ExtendedCopy.DescrLimits) ---

TEST(ExtendedCopy, CscdCountLimit) {
  const Bytes seg = B2b(0, 0, 1, 0, 1);
  const Bytes ok = List(false, Repeat(NaaCscd(), kMaxCscdDescriptors), seg);
  EXPECT_EQ(Xcopy(DecodeExtendedCopy(ok, false)).cscds.size(), kMaxCscdDescriptors);
  // (a) one CSCD too many.
  const Bytes over = List(false, Repeat(NaaCscd(), kMaxCscdDescriptors + 1), seg);
  ExpectSense(DecodeExtendedCopy(over, false), Asc::kTooManyTargetDescriptors, 2);
  const Bytes over4 = List(true, Repeat(NaaCscd(), kMaxCscdDescriptors + 1), seg);
  ExpectSense(DecodeExtendedCopy(over4, true), Asc::kTooManyTargetDescriptors, 42);
}

TEST(ExtendedCopy, SegmentCountLimit) {
  const Bytes seg = B2b(0, 0, 1, 0, 1);
  const Bytes ok = List(false, NaaCscd(), Repeat(seg, kMaxSegmentDescriptors));
  const ExtendedCopyList& l = Xcopy(DecodeExtendedCopy(ok, false));
  ASSERT_EQ(l.segments.size(), kMaxSegmentDescriptors);
  EXPECT_EQ(l.segments.back().offset, 48 + 28 * (kMaxSegmentDescriptors - 1));
  // (b) one segment too many.
  const Bytes over = List(false, NaaCscd(), Repeat(seg, kMaxSegmentDescriptors + 1));
  ExpectSense(DecodeExtendedCopy(over, false), Asc::kTooManySegmentDescriptors, 8);
  const Bytes over4 = List(true, NaaCscd(), Repeat(seg, kMaxSegmentDescriptors + 1));
  ExpectSense(DecodeExtendedCopy(over4, true), Asc::kTooManySegmentDescriptors, 44);
}

TEST(ExtendedCopy, SegmentCountStopsAtTheFirstOverTheLimit) {
  // The descriptor past the limit is cut short: the count decides, not its length.
  Bytes segs = Repeat(Verify(0, false), kMaxSegmentDescriptors);
  segs.push_back(0x07);
  ExpectSense(DecodeExtendedCopy(List(false, NaaCscd(), segs), false),
              Asc::kTooManySegmentDescriptors, 8);
}

// (c) one CSCD too many and segments past MAXIMUM DESCRIPTOR LIST LENGTH: the length wins.
TEST(ExtendedCopy, LibiscsiDescrLimitsListTooLong) {
  const Bytes cscds = Repeat(NaaCscd(), kMaxCscdDescriptors + 1);
  const size_t nseg = (kMaxDescriptorListBytes - cscds.size()) / 28 + 1;
  const Bytes p = List(false, cscds, Repeat(B2b(0, 0, 1, 0, 1), nseg));
  ExpectSense(DecodeExtendedCopy(p, false), kLenErr, std::nullopt);
}

TEST(ExtendedCopy, CountsBeforeDescriptorFields) {
  Bytes cscds = Repeat(NaaCscd(), kMaxCscdDescriptors + 1);
  cscds[0] = 0xe0;
  ExpectSense(DecodeExtendedCopy(List(false, cscds, {}), false), Asc::kTooManyTargetDescriptors, 2);
  Bytes bad = NaaCscd();
  bad[0] = 0xe0;
  const Bytes segs = Repeat(B2b(0, 0, 1, 0, 1), kMaxSegmentDescriptors + 1);
  ExpectSense(DecodeExtendedCopy(List(false, bad, segs), false), Asc::kTooManySegmentDescriptors,
              8);
}

// --- segment walk ---

TEST(ExtendedCopy, SegmentRunningPastTheListIsLengthError) {
  const Bytes seg = B2b(0, 0, 1, 0, 1);
  // Two bytes after a whole descriptor: not even a descriptor header.
  Bytes segs = Cat({seg, Bytes{0x02, 0x00}});
  ExpectSense(DecodeExtendedCopy(List(false, NaaCscd(), segs), false), kLenErr, std::nullopt);
  // SEGMENT DESCRIPTOR LIST LENGTH cuts the last descriptor short.
  segs = Cat({seg, seg});
  Bytes p = List(false, NaaCscd(), segs, {.seg_len = 28 + 27});
  ExpectSense(DecodeExtendedCopy(p, false), kLenErr, std::nullopt);
  // A DESCRIPTOR LENGTH running past the list.
  segs = seg;
  StoreBe16(&segs[2], 0x100);
  ExpectSense(DecodeExtendedCopy(List(false, NaaCscd(), segs), false), kLenErr, std::nullopt);
}

// --- CSCD descriptors ---

// libiscsi ExtendedCopy.DescrType (a): CSCD type E0h.
TEST(ExtendedCopy, UnsupportedCscdType) {
  Bytes second = NaaCscd();
  second[0] = 0xe0;
  const Bytes p = List(false, Cat({NaaCscd(), second}), B2b(0, 1, 1, 0, 1));
  ExpectSense(DecodeExtendedCopy(p, false), Asc::kUnsupportedTargetDescriptorTypeCode, 48);
  const Bytes p4 = List(true, Cat({NaaCscd(), second}), B2b(0, 1, 1, 0, 1));
  ExpectSense(DecodeExtendedCopy(p4, true), Asc::kUnsupportedTargetDescriptorTypeCode, 80);
}

// libiscsi ExtendedCopy.ValidTgtDescr: a reserved LU ID TYPE (10b) is ignored on SPC-4, and so
// is the obsolete NUL bit.
TEST(ExtendedCopy, LuIdTypeAndNulIgnored) {
  for (uint8_t byte1 : {0x80, 0x40, 0xc0, 0x20, 0xa0}) {
    Bytes c = NaaCscd();
    c[1] = byte1;
    const Bytes p = List(false, c, B2b(0, 0, 2048, 0, 4096));
    EXPECT_EQ(Xcopy(DecodeExtendedCopy(p, false)).cscds.size(), 1u) << int{byte1};
  }
}

TEST(ExtendedCopy, CscdPeripheralTypeMustBeDisk) {
  Bytes c = NaaCscd();
  c[1] = 0x01;  // sequential access
  ExpectSense(DecodeExtendedCopy(List(false, c, {}), false), kInvalid, 17, 4);
}

// Each case changes one byte of the NAA CSCD (at list offset 16) and names the field pointer.
struct CscdCase {
  size_t byte;
  uint8_t value;
  std::optional<uint16_t> field;  // empty: decodes
  std::optional<uint8_t> bit;
};

TEST(ExtendedCopy, CscdDesignatorFields) {
  const CscdCase cases[] = {
      {5, 0x13, 16 + 5, 5},         // association 01b (target port)
      {5, 0x23, 16 + 5, 5},         // association 10b (target device)
      {5, 0x00, 16 + 5, 3},         // designator type 0 (vendor specific)
      {5, 0x08, 16 + 5, 3},         // designator type 8 (SCSI name)
      {5, 0x83, std::nullopt, {}},  // PIV set: masked
      {5, 0x43, std::nullopt, {}},  // reserved bit 6: not checked
      {4, 0x51, std::nullopt, {}},  // PROTOCOL IDENTIFIER nibble: masked
      {4, 0x02, 16 + 4, 3},         // NAA in ASCII
      {4, 0x03, 16 + 4, 3},         // NAA in UTF-8
      {7, 0, 16 + 7, {}},           // no designator
      {7, 20, std::nullopt, {}},    // 20 bytes fit
      {7, 21, 16 + 7, {}},          // 21 do not
      {7, 0xff, 16 + 7, {}},
  };
  for (const CscdCase& c : cases) {
    SCOPED_TRACE(testing::Message() << "byte " << c.byte << " = " << int{c.value});
    Bytes d = NaaCscd();
    d[c.byte] = c.value;
    const auto r = DecodeExtendedCopy(List(false, d, {}), false);
    if (c.field) {
      ExpectSense(r, kInvalid, c.field, c.bit);
    } else {
      EXPECT_TRUE(std::holds_alternative<ExtendedCopyList>(r));
    }
  }
}

TEST(ExtendedCopy, T10DesignatorMustBeAscii) {
  Bytes d = NaaCscd();
  d[5] = 0x01;  // T10 vendor id, still binary
  ExpectSense(DecodeExtendedCopy(List(false, d, {}), false), kInvalid, 20, 3);
  d[4] = 0x02;
  EXPECT_TRUE(
      std::holds_alternative<ExtendedCopyList>(DecodeExtendedCopy(List(false, d, {}), false)));
  d[5] = 0x02;  // EUI-64 in ASCII
  ExpectSense(DecodeExtendedCopy(List(false, d, {}), false), kInvalid, 20, 3);
}

TEST(ExtendedCopy, CscdErrorsBeforeSegmentErrors) {
  Bytes c = NaaCscd();
  c[0] = 0xe9;
  Bytes s = B2b(0, 0, 1, 0, 1);
  s[0] = 0x03;
  ExpectSense(DecodeExtendedCopy(List(false, c, s), false),
              Asc::kUnsupportedTargetDescriptorTypeCode, 16);
}

// --- segment descriptors ---

// libiscsi ExtendedCopy.DescrType (b): segment type 03h (stream to stream, 20 bytes).
TEST(ExtendedCopy, UnsupportedSegmentType) {
  Bytes s03(20);
  s03[0] = 0x03;
  StoreBe16(&s03[2], 16);
  const Bytes p = List(false, NaaCscd(), Cat({B2b(0, 0, 1, 0, 1), s03}));
  ExpectSense(DecodeExtendedCopy(p, false), Asc::kUnsupportedSegmentDescriptorTypeCode, 76);
  for (uint8_t type : {0x00, 0x01, 0x0b, 0x0d, 0x14, 0xbe, 0xbf, 0xff}) {
    Bytes s = B2b(0, 0, 1, 0, 1);
    s[0] = type;
    ExpectSense(DecodeExtendedCopy(List(true, NaaCscd(), s), true),
                Asc::kUnsupportedSegmentDescriptorTypeCode, 80);
  }
}

TEST(ExtendedCopy, SegmentDescriptorLengthMustMatchType) {
  const Bytes good[] = {B2b(0, 0, 1, 0, 1), B2bOffset(0, 0, 512, 0, 1, 0, 0), Verify(0, true)};
  for (const Bytes& g : good) {
    for (int delta : {-4, 4}) {
      Bytes s = g;
      s.resize(s.size() + delta);
      StoreBe16(&s[2], static_cast<uint16_t>(s.size() - 4));
      SCOPED_TRACE(testing::Message() << "type " << int{s[0]} << " size " << s.size());
      const Bytes p = List(false, NaaCscd(), Cat({B2b(0, 0, 1, 0, 1), s}));
      ExpectSense(DecodeExtendedCopy(p, false), kInvalid, 48 + 28 + 2);
    }
  }
}

TEST(ExtendedCopy, CscdIdValues) {
  struct IdCase {
    uint16_t src, dst;
    std::optional<uint16_t> field;
  };
  const IdCase cases[] = {
      {0x0000, 0x07ff, std::nullopt},
      {0xffff, 0xffff, std::nullopt},
      {0x0800, 0, 48 + 4},
      {0, 0x0800, 48 + 6},
      {0xfffe, 0, 48 + 4},
      {0, 0xfffe, 48 + 6},
      {0x1234, 0xfffe, 48 + 4},
  };
  for (const IdCase& c : cases) {
    SCOPED_TRACE(testing::Message() << std::hex << c.src << " -> " << c.dst);
    const auto b2b = DecodeExtendedCopy(List(false, NaaCscd(), B2b(c.src, c.dst, 1, 0, 1)), false);
    const auto off =
        DecodeExtendedCopy(List(false, NaaCscd(), B2bOffset(c.src, c.dst, 512, 0, 1, 0, 0)), false);
    if (c.field) {
      ExpectSense(b2b, kInvalid, c.field);
      ExpectSense(off, kInvalid, c.field);
    } else {
      // An index past the CSCD list is the executor's COPY ABORTED, not a decode error.
      const ExtendedCopyList a = Xcopy(b2b);
      const ExtendedCopyList b = Xcopy(off);
      ASSERT_EQ(a.segments.size(), 1u);
      ASSERT_EQ(b.segments.size(), 1u);
      EXPECT_EQ(a.segments[0].src_cscd, c.src);
      EXPECT_EQ(a.segments[0].dst_cscd, c.dst);
      EXPECT_EQ(b.segments[0].src_cscd, c.src);
      EXPECT_EQ(b.segments[0].dst_cscd, c.dst);
    }
  }
  ExpectSense(DecodeExtendedCopy(List(false, NaaCscd(), Verify(0x0800, true)), false), kInvalid,
              52);
  // A verify segment has no destination: bytes 6-7 are not read.
  Bytes v = Verify(0, false);
  StoreBe16(&v[6], 0x0900);
  EXPECT_TRUE(std::holds_alternative<ExtendedCopyList>(
      DecodeExtendedCopy(List(false, NaaCscd(), v), false)));
}

// --- LIST ID USAGE, checked last ---

TEST(ExtendedCopy, ListIdUsage) {
  const Bytes seg = B2b(0, 0, 1, 0, 1);
  ExpectSense(DecodeExtendedCopy(List(false, NaaCscd(), seg, {.usage = 1}), false), kInvalid, 1, 4);
  ExpectSense(DecodeExtendedCopy(List(true, NaaCscd(), seg, {.usage = 1}), true), kInvalid, 1, 4);
  ExpectSense(DecodeExtendedCopy(List(false, NaaCscd(), seg, {.list_id = 1, .usage = 3}), false),
              kInvalid, 0);
  ExpectSense(DecodeExtendedCopy(List(true, NaaCscd(), seg, {.list_id = 0x100, .usage = 3}), true),
              kInvalid, 20);
  Bytes bad_seg = seg;
  bad_seg[0] = 0x03;
  ExpectSense(DecodeExtendedCopy(List(false, NaaCscd(), bad_seg, {.usage = 1}), false),
              Asc::kUnsupportedSegmentDescriptorTypeCode, 48);
}

// --- POPULATE TOKEN ---

Bytes Range(uint64_t lba, uint32_t blocks) {
  Bytes r(16);
  StoreBe64(&r[0], lba);
  StoreBe32(&r[8], blocks);
  return r;
}

Bytes Populate(const Bytes& ranges, uint8_t flags = 0, uint32_t timeout = 0,
               uint32_t rod_type = 0) {
  Bytes p(16);
  StoreBe16(&p[0], static_cast<uint16_t>(14 + ranges.size()));
  p[2] = flags;
  StoreBe32(&p[4], timeout);
  StoreBe32(&p[8], rod_type);
  StoreBe16(&p[14], static_cast<uint16_t>(ranges.size()));
  return Cat({p, ranges});
}

TEST(PopulateToken, RoundTrip) {
  const Bytes p = Populate(Cat({Range(0x100000000ull, 8), Range(5, 0), Range(1, UINT32_MAX)}), 0x03,
                           30, 0x00800001);
  const auto& t = Ok<PopulateTokenParams>(DecodePopulateToken(p));
  EXPECT_TRUE(t.immed);
  EXPECT_TRUE(t.rtv);
  EXPECT_EQ(t.inactivity_timeout_s, 30u);
  EXPECT_EQ(t.rod_type, 0x00800001u);
  ASSERT_EQ(t.ranges.size(), 2u);  // the empty range is dropped
  EXPECT_EQ(t.ranges[0].lba, 0x100000000ull);
  EXPECT_EQ(t.ranges[0].blocks, 8u);
  EXPECT_EQ(t.ranges[1].lba, 1u);
  EXPECT_EQ(t.ranges[1].blocks, UINT32_MAX);
  EXPECT_EQ(TotalBlocks(t.ranges), 8ull + UINT32_MAX);
  const auto& f = Ok<PopulateTokenParams>(DecodePopulateToken(Populate(Range(0, 1), 0x00)));
  EXPECT_FALSE(f.immed);
  EXPECT_FALSE(f.rtv);
}

TEST(PopulateToken, Lengths) {
  const Bytes p = Populate(Cat({Range(0, 8), Range(8, 8)}));
  ExpectSense(DecodePopulateToken({}), kLenErr, std::nullopt);
  ExpectSense(DecodePopulateToken(std::span(p).first(15)), kLenErr, std::nullopt);
  // DATA LENGTH past what was sent.
  ExpectSense(DecodePopulateToken(std::span(p).first(p.size() - 1)), kLenErr, std::nullopt);
  // Range list past DATA LENGTH, though inside what was sent.
  Bytes q = p;
  StoreBe16(&q[0], static_cast<uint16_t>(q.size() - 2 - 16));
  ExpectSense(DecodePopulateToken(q), kLenErr, std::nullopt);
  // DATA LENGTH below the header.
  q = Populate({});
  StoreBe16(&q[0], 13);
  ExpectSense(DecodePopulateToken(q), kLenErr, std::nullopt);
  // More sent than declared: the rest is not read.
  q = p;
  q.resize(q.size() + 7, 0xee);
  EXPECT_EQ(Ok<PopulateTokenParams>(DecodePopulateToken(q)).ranges.size(), 2u);
}

TEST(PopulateToken, RangeListLengthField) {
  Bytes p = Populate(Range(0, 8));
  StoreBe16(&p[14], 8);
  ExpectSense(DecodePopulateToken(p), kInvalid, 14);
  ExpectSense(DecodePopulateToken(Populate({})), kInvalid, 14);
  // Zero-block ranges are allowed and dropped; a list of only those decodes to no ranges.
  EXPECT_TRUE(Ok<PopulateTokenParams>(DecodePopulateToken(Populate(Range(9, 0)))).ranges.empty());
}

TEST(PopulateToken, RangeCountLimit) {
  const auto& ok = DecodePopulateToken(Populate(Repeat(Range(0, 1), kMaxRangeDescriptors)));
  EXPECT_EQ(Ok<PopulateTokenParams>(ok).ranges.size(), kMaxRangeDescriptors);
  ExpectSense(DecodePopulateToken(Populate(Repeat(Range(0, 1), kMaxRangeDescriptors + 1))),
              Asc::kTooManySegmentDescriptors, 14);
}

TEST(PopulateToken, OverlapsAreNotTheDecodersBusiness) {
  const Bytes p = Populate(Cat({Range(0, 8), Range(4, 8)}));
  EXPECT_EQ(Ok<PopulateTokenParams>(DecodePopulateToken(p)).ranges.size(), 2u);
}

// --- WRITE USING TOKEN ---

Bytes WriteUsing(const Bytes& ranges, uint8_t flags = 0, uint64_t offset = 0) {
  Bytes p(536);
  StoreBe16(&p[0], static_cast<uint16_t>(534 + ranges.size()));
  p[2] = flags;
  StoreBe64(&p[8], offset);
  for (size_t i = 0; i < kRodTokenBytes; ++i) p[16 + i] = static_cast<uint8_t>(i * 7 + 1);
  StoreBe16(&p[534], static_cast<uint16_t>(ranges.size()));
  return Cat({p, ranges});
}

TEST(WriteUsingToken, RoundTrip) {
  const Bytes p = WriteUsing(Cat({Range(100, 0), Range(7, 9)}), 0x03, 0x123456789ull);
  const auto& w = Ok<WriteUsingTokenParams>(DecodeWriteUsingToken(p));
  EXPECT_TRUE(w.immed);
  EXPECT_TRUE(w.del_tkn);
  EXPECT_EQ(w.offset_into_rod, 0x123456789ull);
  EXPECT_TRUE(std::equal(w.token.begin(), w.token.end(), p.begin() + 16));
  ASSERT_EQ(w.ranges.size(), 1u);
  EXPECT_EQ(w.ranges[0].lba, 7u);
  EXPECT_EQ(w.ranges[0].blocks, 9u);
  EXPECT_EQ(TotalBlocks(w.ranges), 9u);
  const auto& f = Ok<WriteUsingTokenParams>(DecodeWriteUsingToken(WriteUsing(Range(0, 1))));
  EXPECT_FALSE(f.immed);
  EXPECT_FALSE(f.del_tkn);
}

TEST(WriteUsingToken, Errors) {
  const Bytes p = WriteUsing(Range(0, 1));
  ExpectSense(DecodeWriteUsingToken(std::span(p).first(535)), kLenErr, std::nullopt);
  ExpectSense(DecodeWriteUsingToken(std::span(p).first(p.size() - 1)), kLenErr, std::nullopt);
  Bytes q = p;
  StoreBe16(&q[0], 533);
  ExpectSense(DecodeWriteUsingToken(q), kLenErr, std::nullopt);
  ExpectSense(DecodeWriteUsingToken(WriteUsing({})), kInvalid, 534);
  q = p;
  StoreBe16(&q[534], 15);
  ExpectSense(DecodeWriteUsingToken(q), kInvalid, 534);
  EXPECT_EQ(Ok<WriteUsingTokenParams>(
                DecodeWriteUsingToken(WriteUsing(Repeat(Range(0, 1), kMaxRangeDescriptors))))
                .ranges.size(),
            kMaxRangeDescriptors);
  ExpectSense(DecodeWriteUsingToken(WriteUsing(Repeat(Range(0, 1), kMaxRangeDescriptors + 1))),
              Asc::kTooManySegmentDescriptors, 534);
}

TEST(TotalBlocks, SumsWithoutOverflow) {
  EXPECT_EQ(TotalBlocks({}), 0u);
  std::vector<BlockRange> r(kMaxRangeDescriptors, BlockRange{.lba = 0, .blocks = UINT32_MAX});
  EXPECT_EQ(TotalBlocks(r), uint64_t{kMaxRangeDescriptors} * UINT32_MAX);
}

}  // namespace
}  // namespace ferry::scsi
