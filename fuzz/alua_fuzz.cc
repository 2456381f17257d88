// Fuzz target: the SET TARGET PORT GROUPS parameter list decoder and the access-state gate.
//
// Input: byte 0 picks how many groups exist (1 + its low 2 bits: groups 1..4) and the state
// the gate is asked about (bits 2-3); the next 16 bytes, when present, are a CDB for the
// gate; the rest is the parameter list, ending where the input ends (so ASan sees any read
// past it).
//
// Invariants, checked with abort(): an error is ILLEGAL REQUEST with PARAMETER LIST LENGTH
// ERROR (no field pointer) or INVALID FIELD IN PARAMETER LIST pointing inside the list; a
// decoded list names only existing groups, each once, in supported states, one change per
// descriptor; applying it leaves every named group in its new state; the gate lets every
// command through active states and answers NOT READY otherwise; sense encodes.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <variant>
#include <vector>

#include "scsi/alua.h"
#include "scsi/sense.h"

namespace ferry::scsi {
namespace {

void Expect(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "alua_fuzz: invariant broken: %s\n", what);
  std::abort();
}

void CheckSense(const Sense& s, size_t list_len) {
  Expect(s.key == SenseKey::kIllegalRequest, "error is ILLEGAL REQUEST");
  if (s.asc == Asc::kParameterListLengthError) {
    Expect(!s.has_field_pointer, "length error has no field pointer");
  } else {
    Expect(s.asc == Asc::kInvalidFieldInParameterList, "error is a field of the list");
    Expect(s.has_field_pointer && !s.in_cdb && s.field_byte < list_len, "pointer inside list");
  }
  std::array<uint8_t, kMaxSenseBytes> buf{};
  Expect(EncodeSense(s, false, buf) == 18, "fixed sense is 18 bytes");
  Expect(EncodeSense(s, true, buf) <= kMaxSenseBytes, "descriptor sense fits");
}

void Run(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const size_t groups = 1 + (data[0] & 0x03);
  const auto state = static_cast<AluaState>((data[0] >> 2) & 0x03);
  std::vector<uint16_t> known;
  AluaGroups a;
  for (uint16_t g = 1; g <= groups; ++g) {
    known.push_back(g);
    a.AddPort(g, g, AluaState::kActiveOptimized, g == 1);
  }
  size_t off = 1;
  if (size >= off + 16) {
    const auto refusal = AluaRefusal(state, data + off);
    const bool active =
        state == AluaState::kActiveOptimized || state == AluaState::kActiveNonOptimized;
    Expect(!active || !refusal, "active states refuse nothing");
    if (refusal) Expect(refusal->key == SenseKey::kNotReady, "refusal is NOT READY");
    off += 16;
  }
  const std::vector<uint8_t> list(data + off, data + size);
  auto r = DecodeSetTargetPortGroups(list, known);
  if (const Sense* s = std::get_if<Sense>(&r)) return CheckSense(*s, list.size());
  const auto& changes = std::get<std::vector<TpgChange>>(r);
  Expect(list.empty() ? changes.empty() : changes.size() == (list.size() - 4) / 4,
         "one change per descriptor");
  for (size_t i = 0; i < changes.size(); ++i) {
    Expect(changes[i].group >= 1 && changes[i].group <= groups, "existing group");
    for (size_t k = 0; k < i; ++k) Expect(changes[k].group != changes[i].group, "each once");
  }
  a.Apply(changes);
  for (const TpgChange& c : changes) Expect(a.StateOf(c.group) == c.state, "state applied");
  const std::vector<uint8_t> report = EncodeTargetPortGroups(a.Snapshot(), data[0] & 0x10);
  Expect(report.size() >= 4 + 12 * groups, "every group reported");
}

}  // namespace
}  // namespace ferry::scsi

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ferry::scsi::Run(data, size);
  return 0;
}
