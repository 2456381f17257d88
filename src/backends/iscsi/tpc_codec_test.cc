// The initiator's third-party copy codecs: every encoder decodes with Ferry's own target-side
// decoders (src/scsi/tpc_params.h) into what was meant, the page decoders pick the right
// designator and limits and refuse short or odd pages with a reason, and Classify sorts
// sense data into its four kinds. Pages produced by a live Ferry LU: remote_copy_test.cc.
#include "backends/iscsi/tpc_codec.h"

#include <gtest/gtest.h>

#include <variant>

#include "base/endian.h"
#include "scsi/tpc_params.h"

namespace ferry::backends::iscsi {
namespace {

using Bytes = std::vector<uint8_t>;

LuDesignator Naa(uint8_t tag) {
  LuDesignator d{.code_set = 1, .type = 3, .len = 16};
  for (uint8_t i = 0; i < 16; ++i) d.bytes[i] = static_cast<uint8_t>(0x60 + i + tag);
  return d;
}

TEST(TpcCodecTest, ExtendedCopyLid1DecodesWithFerrysTargetDecoder) {
  const B2BSegment segs[] = {{.blocks = 65535, .src_lba = 7, .dst_lba = 1ull << 40},
                             {.blocks = 1, .src_lba = 0, .dst_lba = 9}};
  LuDesignator t10{.code_set = 2, .type = 1, .len = 20};
  for (uint8_t i = 0; i < 20; ++i) t10.bytes[i] = static_cast<uint8_t>('A' + i);
  const XcopyList list{.src = {Naa(1), 512}, .dst = {t10, 4096}, .segments = segs};
  Bytes p;
  EncodeXcopy(list, &p);
  ASSERT_EQ(p.size(), XcopyListBytes(false, 2));
  const auto r = scsi::DecodeExtendedCopy(p, /*lid4=*/false);
  ASSERT_TRUE(std::holds_alternative<scsi::ExtendedCopyList>(r));
  const auto& l = std::get<scsi::ExtendedCopyList>(r);
  EXPECT_EQ(l.usage, scsi::ListIdUsage::kDisable);
  EXPECT_EQ(l.list_id, 0u);
  ASSERT_EQ(l.cscds.size(), 2u);
  EXPECT_EQ(l.cscds[0].designator_type, 3);
  EXPECT_EQ(l.cscds[0].code_set, 1);
  EXPECT_TRUE(std::ranges::equal(l.cscds[0].designator_bytes(), Naa(1).value()));
  EXPECT_EQ(l.cscds[0].block_length, 512u);
  EXPECT_EQ(l.cscds[1].designator_type, 1);
  EXPECT_TRUE(std::ranges::equal(l.cscds[1].designator_bytes(), t10.value()));
  EXPECT_EQ(l.cscds[1].block_length, 4096u);
  ASSERT_EQ(l.segments.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const scsi::Segment& s = l.segments[i];
    EXPECT_EQ(s.type, scsi::SegmentType::kBlockToBlock);
    EXPECT_FALSE(s.dc);
    EXPECT_EQ(s.src_cscd, 0);
    EXPECT_EQ(s.dst_cscd, 1);
    EXPECT_EQ(s.blocks, segs[i].blocks);
    EXPECT_EQ(s.src_lba, segs[i].src_lba);
    EXPECT_EQ(s.dst_lba, segs[i].dst_lba);
  }
}

TEST(TpcCodecTest, ExtendedCopyLid1WithAListIdentifier) {
  const B2BSegment seg{.blocks = 8};
  const XcopyList list{.list_id = 0x5a,
                       .usage = ListIdUsage::kDiscard,
                       .src = {Naa(1), 512},
                       .dst = {Naa(2), 512},
                       .segments = {&seg, 1}};
  Bytes p;
  EncodeXcopy(list, &p);
  const auto r = scsi::DecodeExtendedCopy(p, false);
  ASSERT_TRUE(std::holds_alternative<scsi::ExtendedCopyList>(r));
  EXPECT_EQ(std::get<scsi::ExtendedCopyList>(r).usage, scsi::ListIdUsage::kDiscard);
  EXPECT_EQ(std::get<scsi::ExtendedCopyList>(r).list_id, 0x5au);
}

TEST(TpcCodecTest, ExtendedCopyLid4DecodesWithFerrysTargetDecoder) {
  const B2BSegment segs[] = {{.blocks = 100, .src_lba = 3, .dst_lba = 1ull << 35},
                             {.blocks = 65535, .src_lba = 1u << 20, .dst_lba = 0}};
  const XcopyList list{.lid4 = true,
                       .list_id = 0xfedcba98,
                       .usage = ListIdUsage::kDiscard,
                       .src = {Naa(1), 512},
                       .dst = {Naa(2), 4096},
                       .segments = segs};
  Bytes p;
  EncodeXcopy(list, &p);
  ASSERT_EQ(p.size(), XcopyListBytes(true, 2));
  EXPECT_EQ(p.size(), 48u + 64u + 56u);
  const auto r = scsi::DecodeExtendedCopy(p, /*lid4=*/true);
  ASSERT_TRUE(std::holds_alternative<scsi::ExtendedCopyList>(r));
  const auto& l = std::get<scsi::ExtendedCopyList>(r);
  EXPECT_TRUE(l.lid4);
  EXPECT_FALSE(l.immed);
  EXPECT_FALSE(l.g_sense);
  EXPECT_EQ(l.usage, scsi::ListIdUsage::kDiscard);
  EXPECT_EQ(l.list_id, 0xfedcba98u);
  ASSERT_EQ(l.cscds.size(), 2u);
  EXPECT_EQ(l.cscds[1].block_length, 4096u);
  ASSERT_EQ(l.segments.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(l.segments[i].blocks, segs[i].blocks);
    EXPECT_EQ(l.segments[i].src_lba, segs[i].src_lba);
    EXPECT_EQ(l.segments[i].dst_lba, segs[i].dst_lba);
  }
}

TEST(TpcCodecTest, PopulateTokenDecodesWithFerrysTargetDecoder) {
  const BlockRange ranges[] = {{.lba = 5, .blocks = 100}, {.lba = 1ull << 33, .blocks = 7}};
  Bytes p;
  EncodePopulateToken(ranges, 30, &p);
  const auto r = scsi::DecodePopulateToken(p);
  ASSERT_TRUE(std::holds_alternative<scsi::PopulateTokenParams>(r));
  const auto& pt = std::get<scsi::PopulateTokenParams>(r);
  EXPECT_FALSE(pt.immed);
  EXPECT_FALSE(pt.rtv);
  EXPECT_EQ(pt.rod_type, 0u);
  EXPECT_EQ(pt.inactivity_timeout_s, 30u);
  ASSERT_EQ(pt.ranges.size(), 2u);
  EXPECT_EQ(pt.ranges[1].lba, 1ull << 33);
  EXPECT_EQ(pt.ranges[1].blocks, 7u);
}

TEST(TpcCodecTest, WriteUsingTokenDecodesWithFerrysTargetDecoder) {
  RodToken token;
  for (size_t i = 0; i < token.size(); ++i) token[i] = static_cast<uint8_t>(i * 7);
  const BlockRange ranges[] = {{.lba = 1000, .blocks = 16}};
  Bytes p;
  EncodeWriteUsingToken(token, 48, ranges, &p);
  const auto r = scsi::DecodeWriteUsingToken(p);
  ASSERT_TRUE(std::holds_alternative<scsi::WriteUsingTokenParams>(r));
  const auto& w = std::get<scsi::WriteUsingTokenParams>(r);
  EXPECT_FALSE(w.immed);
  EXPECT_FALSE(w.del_tkn);
  EXPECT_EQ(w.offset_into_rod, 48u);
  EXPECT_TRUE(std::ranges::equal(w.token, token));
  ASSERT_EQ(w.ranges.size(), 1u);
  EXPECT_EQ(w.ranges[0].lba, 1000u);
  EXPECT_EQ(w.ranges[0].blocks, 16u);
}

TEST(TpcCodecTest, CdbLayouts) {
  Cdb c = ExtendedCopyCdb(false, 92);
  EXPECT_EQ(c.len, 16);
  EXPECT_EQ(c.bytes[0], 0x83);
  EXPECT_EQ(c.bytes[1], 0x00);
  EXPECT_EQ(LoadBe32(&c.bytes[10]), 92u);
  c = ExtendedCopyCdb(true, 140);
  EXPECT_EQ(c.bytes[0], 0x83);
  EXPECT_EQ(c.bytes[1], 0x01);
  EXPECT_EQ(LoadBe32(&c.bytes[10]), 140u);
  c = PopulateTokenCdb(0x01020304, 48);
  EXPECT_EQ(c.bytes[1], 0x10);
  EXPECT_EQ(LoadBe32(&c.bytes[6]), 0x01020304u);
  EXPECT_EQ(LoadBe32(&c.bytes[10]), 48u);
  c = WriteUsingTokenCdb(9, 552);
  EXPECT_EQ(c.bytes[1], 0x11);
  EXPECT_EQ(LoadBe32(&c.bytes[6]), 9u);
  c = ReceiveRodTokenInfoCdb(0xa0b0c0d0, 1024);
  EXPECT_EQ(c.bytes[0], 0x84);
  EXPECT_EQ(c.bytes[1], 0x07);
  EXPECT_EQ(LoadBe32(&c.bytes[2]), 0xa0b0c0d0u);
  EXPECT_EQ(LoadBe32(&c.bytes[10]), 1024u);
  c = CopyOperationAbortCdb(77);
  EXPECT_EQ(c.bytes[1], 0x1c);
  EXPECT_EQ(LoadBe32(&c.bytes[2]), 77u);
  c = OperatingParametersCdb(1024);
  EXPECT_EQ(c.bytes[0], 0x84);
  EXPECT_EQ(c.bytes[1], 0x03);
  EXPECT_EQ(c.bytes[2], 0);
  EXPECT_EQ(LoadBe32(&c.bytes[10]), 1024u);
  c = VpdInquiryCdb(0x8f, 4096);
  EXPECT_EQ(c.len, 6);
  EXPECT_EQ(c.bytes[0], 0x12);
  EXPECT_EQ(c.bytes[1], 0x01);
  EXPECT_EQ(c.bytes[2], 0x8f);
  EXPECT_EQ(LoadBe16(&c.bytes[3]), 4096u);
  ScsiCommand cmd;
  SetCdb(cmd, c);
  EXPECT_EQ(cmd.cdb_len, 6);
  EXPECT_EQ(cmd.cdb[2], 0x8f);
}

// --- VPD 83h ------------------------------------------------------------------------------

void AddDesignator(Bytes* page, uint8_t code_set, uint8_t assoc_type, Bytes value) {
  page->push_back(code_set);
  page->push_back(assoc_type);
  page->push_back(0);
  page->push_back(static_cast<uint8_t>(value.size()));
  page->insert(page->end(), value.begin(), value.end());
  StoreBe16(&(*page)[2], static_cast<uint16_t>(page->size() - 4));
}

TEST(TpcCodecTest, DesignatorPrefersNaaThenEui64ThenT10OfTheLu) {
  Bytes page = {0x00, 0x83, 0, 0};
  AddDesignator(&page, 0x02, 0x01, Bytes(12, 'T'));   // T10, LU
  AddDesignator(&page, 0x51, 0x93, Bytes(16, 0x61));  // NAA of the target port: skipped
  AddDesignator(&page, 0x01, 0x02, Bytes(8, 0xe1));   // EUI-64, LU
  AddDesignator(&page, 0x01, 0x03, Bytes(24, 0x62));  // NAA too long for a CSCD
  LuDesignator d = DecodeLuDesignator(page);
  EXPECT_EQ(d.type, 2);
  EXPECT_EQ(d.len, 8);
  AddDesignator(&page, 0x01, 0x03, Bytes(16, 0x63));  // NAA, LU
  d = DecodeLuDesignator(page);
  EXPECT_EQ(d.type, 3);
  EXPECT_EQ(d.code_set, 1);
  EXPECT_TRUE(std::ranges::equal(d.value(), Bytes(16, 0x63)));

  Bytes t10 = {0x00, 0x83, 0, 0};
  AddDesignator(&t10, 0x01, 0x01, Bytes(8, 'x'));  // T10 in binary: not usable
  EXPECT_FALSE(DecodeLuDesignator(t10).valid());
  AddDesignator(&t10, 0x02, 0x01, Bytes(8, 'y'));
  EXPECT_EQ(DecodeLuDesignator(t10).type, 1);
}

TEST(TpcCodecTest, DesignatorOfShortOrForeignPagesIsInvalid) {
  Bytes page = {0x00, 0x83, 0, 0};
  AddDesignator(&page, 0x01, 0x03, Bytes(16, 0x60));
  EXPECT_TRUE(DecodeLuDesignator(page).valid());
  Bytes cut(page.begin(), page.end() - 1);  // the descriptor runs past the data
  EXPECT_FALSE(DecodeLuDesignator(cut).valid());
  page[1] = 0x80;  // another page
  EXPECT_FALSE(DecodeLuDesignator(page).valid());
  EXPECT_FALSE(DecodeLuDesignator({}).valid());
  EXPECT_FALSE(DecodeLuDesignator(Bytes{0, 0x83, 0}).valid());
}

// --- Capabilities ---------------------------------------------------------------------------

Bytes Vpd83() {
  Bytes page = {0x00, 0x83, 0, 0};
  AddDesignator(&page, 0x01, 0x03, Bytes(16, 0x60));
  return page;
}

// RECEIVE COPY OPERATING PARAMETERS as a Linux LIO target answers (2 CSCDs, 1 segment).
Bytes LioOperatingParameters(std::initializer_list<uint8_t> codes) {
  Bytes d(44, 0);
  d[4] = 0x01;
  StoreBe16(&d[8], 2);
  StoreBe16(&d[10], 1);
  StoreBe32(&d[12], 1024);
  StoreBe32(&d[16], 256u << 20);
  d[43] = static_cast<uint8_t>(codes.size());
  for (uint8_t c : codes) d.push_back(c);
  StoreBe32(&d[0], static_cast<uint32_t>(d.size() - 4));
  return d;
}

TEST(TpcCodecTest, LioStyleArrayDoesLid1WithoutVpd8f) {
  const CopyCapabilities c = DecodeCopyCapabilities(Vpd83(), {}, LioOperatingParameters({2, 0xe4}));
  EXPECT_TRUE(c.lid1) << c.why_no_xcopy;
  EXPECT_FALSE(c.lid4);
  EXPECT_FALSE(c.odx);
  EXPECT_NE(c.why_no_odx.find("8Fh"), std::string::npos) << c.why_no_odx;
  EXPECT_TRUE(c.snlid);
  EXPECT_EQ(c.max_cscd_descriptors, 2);
  EXPECT_EQ(c.max_segment_descriptors, 1);
  EXPECT_EQ(c.max_descriptor_list_bytes, 1024u);
  EXPECT_EQ(c.max_segment_bytes, 256u << 20);
}

TEST(TpcCodecTest, MissingPiecesGiveReasons) {
  CopyCapabilities c = DecodeCopyCapabilities(Vpd83(), {}, LioOperatingParameters({2}));
  EXPECT_FALSE(c.lid1);
  EXPECT_NE(c.why_no_xcopy.find("E4h"), std::string::npos) << c.why_no_xcopy;
  c = DecodeCopyCapabilities({}, {}, LioOperatingParameters({2, 0xe4}));
  EXPECT_FALSE(c.lid1);
  EXPECT_NE(c.why_no_xcopy.find("83h"), std::string::npos) << c.why_no_xcopy;
  c = DecodeCopyCapabilities(Vpd83(), {}, {});
  EXPECT_FALSE(c.lid1);
  EXPECT_FALSE(c.why_no_xcopy.empty());
  Bytes op = LioOperatingParameters({2, 0xe4});
  op.resize(40);  // short
  EXPECT_FALSE(DecodeCopyCapabilities(Vpd83(), {}, op).lid1);
  // An 8Fh page whose supported-commands list lacks EXTENDED COPY(LID1) vetoes it.
  Bytes vpd = {0x00, 0x8f, 0, 0, 0x00, 0x01, 0x00, 0x04, 0x03, 0x83, 0x01, 0x10};
  StoreBe16(&vpd[2], static_cast<uint16_t>(vpd.size() - 4));
  c = DecodeCopyCapabilities(Vpd83(), vpd, LioOperatingParameters({2, 0xe4}));
  EXPECT_FALSE(c.lid1);
  EXPECT_NE(c.why_no_xcopy.find("EXTENDED COPY"), std::string::npos) << c.why_no_xcopy;
  EXPECT_FALSE(c.odx);
  EXPECT_NE(c.why_no_odx.find("WRITE USING TOKEN"), std::string::npos) << c.why_no_odx;
}

// --- RECEIVE ROD TOKEN INFORMATION --------------------------------------------------------

Bytes Rrti(uint8_t units, uint64_t count, bool token, uint8_t sense_len = 0) {
  Bytes d(32 + sense_len, 0);
  d[4] = 0x10;
  d[5] = kCopyStatusCompleted;
  d[13] = sense_len;
  d[15] = units;
  StoreBe64(&d[16], count);
  d.resize(d.size() + 6, 0);
  if (token) {
    StoreBe32(&d[32 + sense_len], 2 + 512);
    for (int i = 0; i < 512; ++i) d.push_back(static_cast<uint8_t>(i));
  }
  StoreBe32(&d[0], static_cast<uint32_t>(d.size() - 4));
  return d;
}

TEST(TpcCodecTest, RodTokenInformation) {
  std::string why;
  auto info = DecodeRodTokenInfo(Rrti(0xf1, 64, true, 18), &why);
  ASSERT_TRUE(info) << why;
  EXPECT_EQ(info->response_to_sa, 0x10);
  EXPECT_EQ(info->copy_status, kCopyStatusCompleted);
  EXPECT_TRUE(info->has_token);
  EXPECT_EQ(info->token[5], 5);
  EXPECT_EQ(TransferBytes(info->units, info->transfer_count, 512), 64u * 512);
  info = DecodeRodTokenInfo(Rrti(0, 4096, false), &why);
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->has_token);
  Bytes cut = Rrti(0, 1, true);
  cut.resize(cut.size() - 1);
  EXPECT_FALSE(DecodeRodTokenInfo(cut, &why));
  EXPECT_FALSE(why.empty());
  EXPECT_FALSE(DecodeRodTokenInfo(Bytes(31, 0), &why));
  EXPECT_EQ(TransferBytes(0x01, 3, 512), 3072u);
  EXPECT_EQ(TransferBytes(0x02, 1, 512), 1u << 20);
  EXPECT_FALSE(TransferBytes(0x07, 1, 512));
  EXPECT_FALSE(TransferBytes(0x05, 1ull << 60, 512));
}

// --- Classify --------------------------------------------------------------------------------

ScsiCommand Check(uint8_t key, uint8_t asc, uint8_t ascq) {
  ScsiCommand c;
  c.scsi_status = kScsiStatusCheckCondition;
  c.sense = {.key = key, .asc = asc, .ascq = ascq};
  return c;
}

TEST(TpcCodecTest, ClassifiesRefusalsTransientsErrorsAndTransport) {
  struct Case {
    ScsiCommand cmd;
    RefusalKind kind;
    const char* in_reason;
  };
  ScsiCommand busy;
  busy.scsi_status = kScsiStatusBusy;
  ScsiCommand full;
  full.scsi_status = kScsiStatusTaskSetFull;
  ScsiCommand lost;
  lost.transport = IoStatus::kTimeout;
  const Case cases[] = {
      {ScsiCommand{}, RefusalKind::kNone, ""},
      {Check(0x05, 0x20, 0x00), RefusalKind::kNotOffloadable, "ILLEGAL REQUEST"},
      {Check(0x05, 0x20, 0x00), RefusalKind::kNotOffloadable, "invalid command operation code"},
      {Check(0x05, 0x24, 0x00), RefusalKind::kNotOffloadable, "24/00"},
      {Check(0x05, 0x26, 0x09), RefusalKind::kNotOffloadable, "26/09"},
      {Check(0x0a, 0x08, 0x04), RefusalKind::kNotOffloadable, "unreachable copy target"},
      {Check(0x0a, 0x0d, 0x02), RefusalKind::kNotOffloadable, "COPY ABORTED 0D/02"},
      {Check(0x0a, 0x0d, 0x01), RefusalKind::kNotOffloadable, "0D/01"},
      {Check(0x06, 0x29, 0x00), RefusalKind::kTransient, "UNIT ATTENTION"},
      {Check(0x02, 0x04, 0x01), RefusalKind::kTransient, "NOT READY"},
      {Check(0x0b, 0x00, 0x00), RefusalKind::kTransient, "ABORTED COMMAND"},
      {busy, RefusalKind::kTransient, "BUSY"},
      {full, RefusalKind::kTransient, "TASK SET FULL"},
      {Check(0x03, 0x11, 0x00), RefusalKind::kIoError, "MEDIUM ERROR 11/00"},
      {Check(0x04, 0x44, 0x00), RefusalKind::kIoError, "HARDWARE ERROR"},
      {lost, RefusalKind::kTransport, "timeout"},
  };
  for (const Case& c : cases) {
    const Refusal r = Classify(c.cmd);
    EXPECT_EQ(r.kind, c.kind) << r.reason;
    EXPECT_NE(r.reason.find(c.in_reason), std::string::npos) << r.reason;
  }
  EXPECT_EQ(Classify(Check(0x03, 0x11, 0x00)).status, IoStatus::kIoError);
  EXPECT_EQ(Classify(Check(0x07, 0x27, 0x00)).status, IoStatus::kReadOnly);
  EXPECT_EQ(Classify(lost).status, IoStatus::kTimeout);
}

}  // namespace
}  // namespace ferry::backends::iscsi
