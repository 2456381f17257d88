// Fuzz target: the third-party copy parameter-list decoders (EXTENDED COPY LID1 and LID4,
// POPULATE TOKEN, WRITE USING TOKEN).
//
// Input: byte 0 bit 0 picks LID4 (else LID1) for EXTENDED COPY; the rest is the parameter
// list, handed to all three decoders, ending where the input ends (so ASan sees any read
// past it).
//
// Invariants, checked with abort(): an error is ILLEGAL REQUEST with one of the sense codes
// the decoders document and, when it has a field pointer, a parameter-list pointer inside the
// list; fixed and descriptor sense encode. A decoded EXTENDED COPY list stays within the
// descriptor limits, every CSCD and segment lies inside the list at the offset it records
// and has the type the bytes there say, and every CSCD id is a list index or FFFFh. Decoded
// range lists are within kMaxRangeDescriptors, hold no empty range, and the WRITE USING
// TOKEN token is the bytes at 16-527. Triage: TPC_PARAMS_FUZZ_VERBOSE=1 tpc_params_replay FILE.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <variant>
#include <vector>

#include "base/endian.h"
#include "scsi/sense.h"
#include "scsi/tpc_params.h"

namespace ferry::scsi {
namespace {

// TPC_PARAMS_FUZZ_VERBOSE=1 prints each decoder's outcome (for triage and for checking what a
// corpus file exercises).
bool Verbose() {
  static const bool verbose = std::getenv("TPC_PARAMS_FUZZ_VERBOSE") != nullptr;
  return verbose;
}

template <typename T>
void Print(const char* decoder, const std::variant<T, Sense>& r) {
  if (!Verbose()) return;
  if (const auto* s = std::get_if<Sense>(&r)) {
    std::fprintf(stderr, "  %s: key %x asc %04x", decoder, static_cast<unsigned>(s->key),
                 static_cast<unsigned>(s->asc));
    if (s->has_field_pointer) {
      std::fprintf(stderr, " byte %u bit %d", s->field_byte, s->field_bit ? *s->field_bit : -1);
    }
    std::fprintf(stderr, "\n");
  } else {
    std::fprintf(stderr, "  %s: decoded\n", decoder);
  }
}

void Expect(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "tpc_params_fuzz: invariant broken: %s\n", what);
  std::abort();
}

bool KnownAsc(Asc a) {
  switch (a) {
    case Asc::kParameterListLengthError:
    case Asc::kInvalidFieldInParameterList:
    case Asc::kInlineDataLengthExceeded:
    case Asc::kTooManyTargetDescriptors:
    case Asc::kTooManySegmentDescriptors:
    case Asc::kUnsupportedTargetDescriptorTypeCode:
    case Asc::kUnsupportedSegmentDescriptorTypeCode: return true;
    default: return false;
  }
}

void CheckSense(const Sense& s, std::span<const uint8_t> params) {
  Expect(s.key == SenseKey::kIllegalRequest, "sense key is ILLEGAL REQUEST");
  Expect(KnownAsc(s.asc), "sense code is one the decoders document");
  Expect(s.has_field_pointer != (s.asc == Asc::kParameterListLengthError),
         "a field pointer exactly when the error is not a length error");
  if (s.has_field_pointer) {
    Expect(!s.in_cdb, "field pointer into the parameter list");
    Expect(s.field_byte < params.size(), "field pointer inside the list");
    Expect(!s.field_bit || *s.field_bit < 8, "field pointer bit");
  }
  uint8_t buf[kMaxSenseBytes];
  Expect(EncodeSense(s, false, buf) == 18, "fixed sense encodes");
  const size_t n = EncodeSense(s, true, buf);
  Expect(n >= 8 && n <= kMaxSenseBytes, "descriptor sense encodes");
}

bool ValidCscdId(uint16_t id) { return id <= 0x07ff || id == kCscdIdReceivingLu; }

size_t SegmentBytes(SegmentType t) {
  switch (t) {
    case SegmentType::kBlockToBlock: return 28;
    case SegmentType::kVerifyCscd: return 12;
    case SegmentType::kBlockToBlockOffset: return 32;
  }
  return 0;
}

void CheckList(const ExtendedCopyList& l, std::span<const uint8_t> p, bool lid4) {
  const size_t header = lid4 ? 48 : 16;
  Expect(l.lid4 == lid4, "lid4 flag");
  Expect(l.cscds.size() <= kMaxCscdDescriptors, "CSCD count within the limit");
  Expect(l.segments.size() <= kMaxSegmentDescriptors, "segment count within the limit");
  Expect(l.usage != ListIdUsage::kReserved, "LIST ID USAGE 01b refused");
  Expect(l.usage != ListIdUsage::kDisable || l.list_id == 0, "no list id when disabled");
  for (size_t i = 0; i < l.cscds.size(); ++i) {
    const CscdId& c = l.cscds[i];
    Expect(c.offset == header + 32 * i, "CSCDs are consecutive after the header");
    Expect(c.offset + size_t{32} <= p.size(), "CSCD inside the list");
    Expect(p[c.offset] == 0xe4, "CSCD type E4h");
    const uint8_t* d = &p[c.offset];
    Expect(c.designator_len == d[7] && c.designator_len >= 1 && c.designator_len <= 20,
           "designator length");
    Expect(c.code_set == (d[4] & 0x0f) && c.designator_type == (d[5] & 0x0f),
           "code set and designator type");
    Expect(c.pad == ((d[28] & 0x04) != 0) && c.block_length == LoadBe24(d + 29),
           "PAD and DISK BLOCK LENGTH");
    Expect(std::equal(c.designator_bytes().begin(), c.designator_bytes().end(),
                      p.begin() + c.offset + 8),
           "designator is the bytes at 8");
    Expect(c.association == 0 && c.device_type == 0, "LU association, disk");
  }
  size_t next = header + 32 * l.cscds.size();
  for (const Segment& s : l.segments) {
    Expect(s.offset == next, "segments follow each other");
    const size_t bytes = SegmentBytes(s.type);
    Expect(bytes != 0 && s.offset + bytes <= p.size(), "segment inside the list");
    Expect(p[s.offset] == static_cast<uint8_t>(s.type), "segment type is the byte at 0");
    Expect(LoadBe16(&p[s.offset + 2]) + size_t{4} == bytes, "segment descriptor length");
    Expect(ValidCscdId(s.src_cscd) && ValidCscdId(s.dst_cscd), "CSCD ids");
    Expect(s.src_cscd == LoadBe16(&p[s.offset + 4]), "source CSCD id is bytes 4-5");
    if (s.type != SegmentType::kVerifyCscd) {
      Expect(s.dst_cscd == LoadBe16(&p[s.offset + 6]) && s.src_lba == LoadBe64(&p[s.offset + 12]) &&
                 s.dst_lba == LoadBe64(&p[s.offset + 20]),
             "CSCD ids and LBAs are bytes 6-7, 12-19, 20-27");
    }
    next += bytes;
  }
}

void CheckRanges(const std::vector<BlockRange>& ranges) {
  Expect(ranges.size() <= kMaxRangeDescriptors, "range count within the limit");
  uint64_t sum = 0;
  for (const BlockRange& r : ranges) {
    Expect(r.blocks != 0, "no empty ranges");
    sum += r.blocks;
  }
  Expect(sum == TotalBlocks(ranges), "TotalBlocks");
}

void Run(std::span<const uint8_t> p, bool lid4) {
  const ExtendedCopyResult x = DecodeExtendedCopy(p, lid4);
  Print(lid4 ? "EXTENDED COPY(LID4)" : "EXTENDED COPY(LID1)", x);
  if (const auto* s = std::get_if<Sense>(&x)) {
    CheckSense(*s, p);
  } else {
    CheckList(std::get<ExtendedCopyList>(x), p, lid4);
  }
  const PopulateTokenResult pt = DecodePopulateToken(p);
  Print("POPULATE TOKEN", pt);
  if (const auto* s = std::get_if<Sense>(&pt)) {
    CheckSense(*s, p);
  } else {
    CheckRanges(std::get<PopulateTokenParams>(pt).ranges);
  }
  const WriteUsingTokenResult wut = DecodeWriteUsingToken(p);
  Print("WRITE USING TOKEN", wut);
  if (const auto* s = std::get_if<Sense>(&wut)) {
    CheckSense(*s, p);
  } else {
    const auto& w = std::get<WriteUsingTokenParams>(wut);
    CheckRanges(w.ranges);
    Expect(std::equal(w.token.begin(), w.token.end(), p.begin() + 16), "token is bytes 16-527");
  }
}

}  // namespace
}  // namespace ferry::scsi

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  ferry::scsi::Run({data + 1, size - 1}, data[0] & 1);
  return 0;
}
