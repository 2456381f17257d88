// Fuzz target: the iSCSI header decoder (DecodeInitiatorBhs) and CRC32C.
// Input: any bytes; the first 48 form the header (zero-padded when shorter), the rest is
// treated as the data segment. Invariants: never crashes; a rejected header names a reason;
// an accepted one re-reads the same opcode.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "iscsi/pdu.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry::iscsi;  // NOLINT: fuzz harness
  Bhs bhs{};
  std::copy(data, data + std::min(size, kBhsBytes), bhs.begin());
  Decoded d = DecodeInitiatorBhs(bhs);
  if (!d.ok && d.why.empty()) std::abort();
  if (d.ok && DecodeCommon(bhs).opcode != (bhs[0] & 0x3f)) std::abort();
  if (size > kBhsBytes) (void)Crc32c(std::span(data + kBhsBytes, size - kBhsBytes));
  return 0;
}
