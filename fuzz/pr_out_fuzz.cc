// Fuzz target: the PERSISTENT RESERVE OUT decoders (CDB, basic and REGISTER AND MOVE
// parameter lists, iSCSI TransportIDs) and the reservation access classes of CDBs.
//
// Input: byte 0 is CDB byte 1 (SERVICE ACTION), byte 1 is CDB byte 2 (SCOPE, TYPE); the rest
// is the parameter list, its length the CDB's PARAMETER LIST LENGTH, ending where the input
// ends (so ASan sees any read past it). The list goes to the decoder the CDB picks and, for
// coverage, to the REGISTER and the REGISTER AND MOVE decoders and a TransportID walk too.
//
// Invariants, checked with abort(): an error is ILLEGAL REQUEST with PARAMETER LIST LENGTH
// ERROR (no field pointer) or INVALID FIELD IN PARAMETER LIST / CDB (a pointer inside the
// list / CDB); sense encodes. A decoded list has the length its fields announce, its
// TransportIDs tile the space after the header, each is an iSCSI TransportID whose name is
// the bytes at offset 4 and which re-encodes to a TransportID that decodes the same.
// Triage: PR_OUT_FUZZ_VERBOSE=1 pr_out_replay FILE.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <variant>
#include <vector>

#include "base/endian.h"
#include "scsi/pr_params.h"
#include "scsi/sense.h"

namespace ferry::scsi {
namespace {

bool Verbose() {
  static const bool verbose = std::getenv("PR_OUT_FUZZ_VERBOSE") != nullptr;
  return verbose;
}

void Expect(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "pr_out_fuzz: invariant broken: %s\n", what);
  std::abort();
}

template <typename T>
bool Failed(const char* decoder, const std::variant<T, Sense>& r) {
  const Sense* s = std::get_if<Sense>(&r);
  if (Verbose()) {
    if (s == nullptr) {
      std::fprintf(stderr, "  %s: decoded\n", decoder);
    } else {
      std::fprintf(stderr, "  %s: asc %04x byte %u bit %d\n", decoder,
                   static_cast<unsigned>(s->asc), s->field_byte, s->field_bit ? *s->field_bit : -1);
    }
  }
  return s != nullptr;
}

void CheckSense(const Sense& s, size_t bytes, bool cdb) {
  Expect(s.key == SenseKey::kIllegalRequest, "sense key is ILLEGAL REQUEST");
  const bool length = s.asc == Asc::kParameterListLengthError;
  Expect(length || s.asc == (cdb ? Asc::kInvalidFieldInCdb : Asc::kInvalidFieldInParameterList),
         "sense code is one the decoders document");
  Expect(s.has_field_pointer != length, "a field pointer exactly when not a length error");
  if (s.has_field_pointer) {
    Expect(s.in_cdb == cdb, "field pointer into the CDB or the list");
    Expect(s.field_byte < bytes, "field pointer inside");
    Expect(!s.field_bit || *s.field_bit < 8, "field pointer bit");
  }
  uint8_t buf[kMaxSenseBytes];
  Expect(EncodeSense(s, false, buf) == 18, "fixed sense encodes");
  Expect(EncodeSense(s, true, buf) >= 8, "descriptor sense encodes");
}

template <typename T>
const T* Check(const std::variant<T, Sense>& r, size_t bytes, bool cdb = false) {
  if (const Sense* s = std::get_if<Sense>(&r)) {
    CheckSense(*s, bytes, cdb);
    return nullptr;
  }
  return &std::get<T>(r);
}

void CheckTransportId(const IscsiTransportId& t, std::span<const uint8_t> p) {
  Expect(t.bytes >= 24 && t.bytes % 4 == 0, "TransportID length");
  Expect(size_t{t.offset} + t.bytes <= p.size(), "TransportID inside the list");
  const uint8_t* b = p.data() + t.offset;
  Expect((b[0] & 0x0f) == kProtocolIdIscsi, "protocol identifier 5h");
  Expect((b[0] >> 6) == (t.isid ? 1 : 0), "format code matches the ISID");
  Expect(LoadBe16(b + 2) + 4u == t.bytes, "ADDITIONAL LENGTH");
  Expect(IsValidIscsiName(t.name), "a valid name");
  Expect(std::equal(t.name.begin(), t.name.end(), b + 4,
                    [](char c, uint8_t u) { return static_cast<uint8_t>(c) == u; }),
         "the name is the bytes at 4");
  if (!t.isid) return;
  std::vector<uint8_t> again;
  EncodeIscsiTransportId(t.name, *t.isid, &again);
  const auto d = DecodeIscsiTransportId(again, 0, again.size());
  const IscsiTransportId* u = std::get_if<IscsiTransportId>(&d);
  Expect(u != nullptr && u->name == t.name && u->isid == t.isid && u->bytes == again.size(),
         "an encoded TransportID decodes the same");
}

void CheckBasic(const PrOutParams& p, std::span<const uint8_t> list, PrOutAction a) {
  Expect(p.reservation_key == LoadBe64(&list[0]) && p.sa_reservation_key == LoadBe64(&list[8]),
         "keys are bytes 0-15");
  if (!p.spec_i_pt) {
    Expect(list.size() == 24 && p.transport_ids.empty(), "24 bytes without SPEC_I_PT");
    return;
  }
  Expect(a == PrOutAction::kRegister, "SPEC_I_PT only with REGISTER");
  Expect(list.size() == 28 + size_t{LoadBe32(&list[24])}, "TRANSPORTID PARAMETER DATA LENGTH");
  size_t next = 28;
  for (const IscsiTransportId& t : p.transport_ids) {
    Expect(t.offset == next, "TransportIDs follow each other");
    CheckTransportId(t, list);
    next += t.bytes;
  }
  Expect(next == list.size(), "TransportIDs fill the list");
}

void CheckMove(const RegisterAndMoveParams& p, std::span<const uint8_t> list) {
  Expect(list.size() == 24 + size_t{LoadBe32(&list[20])}, "TRANSPORTID PARAMETER DATA LENGTH");
  Expect(p.relative_target_port == LoadBe16(&list[18]), "RELATIVE TARGET PORT IDENTIFIER");
  Expect(p.transport_id.offset == 24 && p.transport_id.bytes == list.size() - 24,
         "one TransportID after the header");
  CheckTransportId(p.transport_id, list);
}

void Run(uint8_t sa_byte, uint8_t type_byte, std::span<const uint8_t> list) {
  uint8_t cdb[16] = {0x5f, sa_byte, type_byte};
  StoreBe32(&cdb[5], static_cast<uint32_t>(list.size()));
  const auto c = DecodePrOutCdb(cdb);
  Failed("CDB", c);
  if (const PrOutCdb* cmd = Check(c, 10, /*cdb=*/true)) {
    Expect(static_cast<uint8_t>(cmd->action) == (sa_byte & 0x1f) && cmd->param_len == list.size(),
           "service action and length");
    if (cmd->action == PrOutAction::kRegisterAndMove) {
      const auto m = DecodeRegisterAndMoveParams(list);
      Failed("REGISTER AND MOVE", m);
      if (const auto* p = Check(m, list.size())) CheckMove(*p, list);
    } else {
      const auto b = DecodePrOutParams(cmd->action, list);
      Failed("basic", b);
      if (const auto* p = Check(b, list.size())) CheckBasic(*p, list, cmd->action);
    }
  }
  const auto r = DecodePrOutParams(PrOutAction::kRegister, list);
  if (const auto* p = Check(r, list.size())) CheckBasic(*p, list, PrOutAction::kRegister);
  const auto m = DecodeRegisterAndMoveParams(list);
  if (const auto* p = Check(m, list.size())) CheckMove(*p, list);
  // A walk over TransportIDs from the start of the list.
  for (size_t off = 0; off < list.size();) {
    const auto t = DecodeIscsiTransportId(list, off, list.size());
    const IscsiTransportId* id = Check(t, list.size());
    if (id == nullptr) break;
    CheckTransportId(*id, list);
    off += id->bytes;
  }
  // The access class of the list's first bytes as a CDB (any value is fine; no crash).
  uint8_t as_cdb[16] = {};
  std::copy_n(list.begin(), std::min<size_t>(16, list.size()), as_cdb);
  const PrAccess access = ClassifyForReservations(as_cdb);
  Expect(access == PrAccess::kAllowed || access == PrAccess::kRead || access == PrAccess::kWrite,
         "an access class");
}

}  // namespace
}  // namespace ferry::scsi

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  ferry::scsi::Run(data[0], data[1], {data + 2, size - 2});
  return 0;
}
