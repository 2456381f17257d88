// Fuzz target: iSCSI text keys (ParseTextKeys) and operational negotiation.
// Invariants: never crashes; parsed pairs re-encode to text that parses to the same pairs;
// negotiated values stay inside RFC 7143's ranges.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "iscsi/negotiation.h"
#include "iscsi/text_keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry::iscsi;  // NOLINT: fuzz harness
  auto pairs = ParseTextKeys(std::span(data, size));
  if (!pairs.ok()) return 0;
  std::string again = EncodeTextKeys(*pairs);
  auto reparsed =
      ParseTextKeys(std::span(reinterpret_cast<const uint8_t*>(again.data()), again.size()));
  if (!reparsed.ok() || *reparsed != *pairs) std::abort();
  Negotiator n(TargetPolicy{});
  std::vector<KeyValue> reply;
  if (n.Process(*pairs, &reply).ok()) n.Finish(&reply);
  const SessionParams& p = n.params();
  if (p.max_burst_length < 512 || p.first_burst_length > p.max_burst_length ||
      p.error_recovery_level != 0 || p.max_connections != 1 ||
      p.max_send_data_segment_length < 512) {
    std::abort();
  }
  return 0;
}
