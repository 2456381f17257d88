// iSCSI text keys (RFC 7143 6.1): the key=value<NUL> pairs of Login and Text data segments.
//
// Pure decoder of outside input; fuzzed by fuzz/iscsi_text_fuzz.cc. A data segment that is
// split across PDUs with the C bit is concatenated by the caller before parsing.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ferry::iscsi {

inline constexpr size_t kMaxKeyBytes = 63;      // RFC 7143 6.1
inline constexpr size_t kMaxValueBytes = 8192;  // binary CHAP values; others are checked
                                                // against 255 by the negotiator

struct KeyValue {
  std::string key;
  std::string value;
  bool operator==(const KeyValue&) const = default;
};

// Parses a text data segment. Errors (a pair without '=', an empty or too long key, a key
// with characters outside [A-Za-z0-9.-+@_], a value too long, text after the last NUL, the
// same key twice) are InvalidArgument with a message naming the key; the login answers
// them with status 0207 (initiator error) or the text request with a Reject.
Result<std::vector<KeyValue>> ParseTextKeys(std::span<const uint8_t> data);

// The pair with key `key`, or nullptr (parsed lists hold each key once).
const KeyValue* FindTextKey(const std::vector<KeyValue>& pairs, std::string_view key);
// Its value, or "" when the key is absent.
std::string TextKeyValue(const std::vector<KeyValue>& pairs, std::string_view key);

// Appends "key=value\0".
void AppendTextKey(std::string* out, std::string_view key, std::string_view value);
std::string EncodeTextKeys(const std::vector<KeyValue>& pairs);

// Numbers of text values (RFC 7143 6.1): decimal or 0x-hexadecimal, up to 2^64-1.
std::optional<uint64_t> ParseNumber(std::string_view v);

}  // namespace ferry::iscsi
