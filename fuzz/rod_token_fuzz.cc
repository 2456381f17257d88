// Fuzz target: the ROD token decoder.
//
// Input: the token, zero-padded or truncated to 512 bytes.
//
// Invariants, checked with abort(): an error is ILLEGAL REQUEST / INVALID TOKEN OPERATION,
// INVALID TOKEN LENGTH pointing at ROD TOKEN LENGTH in the WRITE USING TOKEN parameter list,
// and only for a token whose ROD TOKEN LENGTH is not 01F8h and that is not the block device
// zero token. A decoded token re-encodes to the same bytes in every field Ferry reads, and
// decodes again to the same fields.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <variant>

#include "base/endian.h"
#include "scsi/rod_token.h"

namespace ferry::scsi {
namespace {

using Token = std::array<uint8_t, kRodTokenBytes>;

void Expect(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "rod_token_fuzz: invariant broken: %s\n", what);
  std::abort();
}

bool Same(const RodToken& a, const RodToken& b) {
  return a.rod_type == b.rod_type && a.id == b.id && a.creator == b.creator &&
         a.bytes_represented == b.bytes_represented && a.capacity_data == b.capacity_data &&
         a.nonce == b.nonce && a.mac == b.mac;
}

// The byte ranges of a token that DecodeRodToken reads (rod_token.h layout).
bool SameReadBytes(const Token& a, const Token& b) {
  constexpr std::pair<size_t, size_t> kRead[] = {{0, 4},   {6, 8},    {8, 48},
                                                 {56, 64}, {96, 120}, {448, 512}};
  for (auto [from, to] : kRead) {
    if (!std::equal(a.begin() + from, a.begin() + to, b.begin() + from)) return false;
  }
  return true;
}

void Run(const Token& in) {
  const RodTokenResult r = DecodeRodToken(in);
  const bool zero = LoadBe32(in.data()) == kRodTypeBlockDeviceZero;
  if (const auto* s = std::get_if<Sense>(&r)) {
    Expect(!zero && LoadBe16(&in[6]) != kRodTokenLengthField, "only a bad length fails");
    Expect(s->key == SenseKey::kIllegalRequest &&
               s->asc == Asc::kInvalidTokenOperationInvalidTokenLength,
           "INVALID TOKEN LENGTH");
    Expect(s->has_field_pointer && !s->in_cdb && s->field_byte == 22, "field pointer at 22");
    return;
  }
  const RodToken& t = std::get<RodToken>(r);
  Token out;
  EncodeRodToken(t, out);
  if (!zero) Expect(SameReadBytes(in, out), "re-encoding keeps every field read");
  const RodTokenResult again = DecodeRodToken(out);
  Expect(std::holds_alternative<RodToken>(again), "a re-encoded token decodes");
  Expect(Same(std::get<RodToken>(again), t), "decode(encode(t)) == t");
}

}  // namespace
}  // namespace ferry::scsi

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ferry::scsi::Token in{};
  std::copy(data, data + std::min(size, in.size()), in.begin());
  ferry::scsi::Run(in);
  return 0;
}
