// Fuzz target: the iSCSI backend's third-party copy decoders of what a remote array answers
// (src/backends/iscsi/tpc_codec.h): VPD 83h, VPD 8Fh, RECEIVE COPY OPERATING PARAMETERS,
// RECEIVE ROD TOKEN INFORMATION, and Classify.
//
// Input: byte 0 picks the decoder (mod 6): 0 VPD 83h, 1 VPD 8Fh, 2 operating parameters,
// 3 RRTI, 4 all three pages of DecodeCopyCapabilities (bytes 1-2 and 3-4 are the lengths of
// the first two pages, the rest is the third), 5 Classify (bytes 1-5: transport, status, sense
// key, ASC, ASCQ). The data ends where the input ends, so ASan sees any read past it.
//
// Invariants, checked with abort(): a usable designator is NAA, EUI-64 or T10 of 1..20 bytes
// with the code set its type needs; a mechanism is either supported with sane limits or
// unsupported with a reason; RRTI decodes to a token only when the data holds all of it;
// Classify gives a reason for every refusal.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

#include "backends/iscsi/tpc_codec.h"
#include "base/endian.h"

namespace ferry::backends::iscsi {
namespace {

void Expect(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "iscsi_tpc_fuzz: invariant broken: %s\n", what);
  std::abort();
}

void CheckDesignator(const LuDesignator& d) {
  if (!d.valid()) return;
  Expect(d.len <= kMaxCscdDesignatorBytes, "designator fits an E4h CSCD");
  Expect(d.type >= 1 && d.type <= 3, "designator type NAA, EUI-64 or T10");
  Expect(d.code_set == (d.type == 1 ? 2 : 1), "designator code set");
}

void CheckCapabilities(const CopyCapabilities& c) {
  CheckDesignator(c.designator);
  if (c.lid1) {
    Expect(c.designator.valid(), "LID1 needs a designator");
    Expect(c.max_cscd_descriptors >= 2 && c.max_segment_descriptors >= 1, "LID1 counts");
    Expect(c.max_descriptor_list_bytes >= 2 * kCscdDescriptorBytes + kB2BSegmentBytes,
           "LID1 descriptor list length");
  } else {
    Expect(!c.why_no_xcopy.empty(), "a reason when LID1 is unsupported");
  }
  Expect(c.lid1 || !c.lid4, "LID4 only with LID1");
  if (c.odx) {
    Expect(c.max_range_descriptors >= 1, "ODX range descriptors");
  } else {
    Expect(!c.why_no_odx.empty(), "a reason when ODX is unsupported");
  }
}

void RunRrti(std::span<const uint8_t> d) {
  std::string why;
  const auto info = DecodeRodTokenInfo(d, &why);
  if (!info) {
    Expect(!why.empty(), "a reason for undecodable RRTI data");
    return;
  }
  Expect(d.size() >= 32, "RRTI header present");
  if (info->has_token) Expect(d.size() >= 32 + size_t{d[13]} + 6 + kRodTokenBytes, "token held");
  (void)TransferBytes(info->units, info->transfer_count, 4096);
}

void RunClassify(std::span<const uint8_t> d) {
  if (d.size() < 5) return;
  ScsiCommand c;
  c.transport = static_cast<IoStatus>(d[0] % 10);
  c.scsi_status = d[1];
  c.sense = {.key = static_cast<uint8_t>(d[2] & 0x0f), .asc = d[3], .ascq = d[4]};
  const Refusal r = Classify(c);
  Expect(r.kind == RefusalKind::kNone || !r.reason.empty(), "a reason for every refusal");
  Expect(!RefusalKindName(r.kind).empty(), "refusal kind name");
}

void Run(uint8_t mode, std::span<const uint8_t> d) {
  switch (mode % 6) {
    case 0: CheckDesignator(DecodeLuDesignator(d)); break;
    case 1: (void)DecodeTpcVpd(d); break;
    case 2: {
      const OperatingParameters op = DecodeOperatingParameters(d);
      Expect(op.descriptor_codes.size() <= 255, "at most 255 descriptor codes");
      break;
    }
    case 3: RunRrti(d); break;
    case 4: {
      if (d.size() < 4) return;
      const size_t a = std::min<size_t>(LoadBe16(&d[0]), d.size() - 4);
      const size_t b = std::min<size_t>(LoadBe16(&d[2]), d.size() - 4 - a);
      const auto rest = d.subspan(4);
      CheckCapabilities(
          DecodeCopyCapabilities(rest.subspan(0, a), rest.subspan(a, b), rest.subspan(a + b)));
      break;
    }
    default: RunClassify(d); break;
  }
}

}  // namespace
}  // namespace ferry::backends::iscsi

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  ferry::backends::iscsi::Run(data[0], {data + 1, size - 1});
  return 0;
}
