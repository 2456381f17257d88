#include "iscsi/text_keys.h"

#include <set>

namespace ferry::iscsi {
namespace {

bool KeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '+' || c == '@' || c == '_';
}

std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

}  // namespace

Result<std::vector<KeyValue>> ParseTextKeys(std::span<const uint8_t> data) {
  std::vector<KeyValue> out;
  std::set<std::string, std::less<>> seen;
  std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
  if (!text.empty() && text.back() != '\0') {
    return InvalidArgument("text data does not end with a NUL after '" +
                           Printable(text.substr(text.rfind('\0') + 1)) + "'");
  }
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\0', pos);
    std::string_view pair = text.substr(pos, end - pos);
    pos = end + 1;
    if (pair.empty()) continue;  // stray NUL padding some initiators send
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgument("text key '" + Printable(pair) + "' has no '='");
    }
    std::string_view key = pair.substr(0, eq);
    std::string_view value = pair.substr(eq + 1);
    if (key.empty() || key.size() > kMaxKeyBytes) {
      return InvalidArgument("text key '" + Printable(key) + "' is empty or longer than 63 bytes");
    }
    for (char c : key) {
      if (!KeyChar(c)) return InvalidArgument("text key '" + Printable(key) + "' has a bad byte");
    }
    if (value.size() > kMaxValueBytes) {
      return InvalidArgument("value of text key '" + std::string(key) + "' is too long");
    }
    if (!seen.insert(std::string(key)).second) {
      return InvalidArgument("text key '" + std::string(key) + "' sent twice");
    }
    out.push_back({std::string(key), std::string(value)});
  }
  return out;
}

const KeyValue* FindTextKey(const std::vector<KeyValue>& pairs, std::string_view key) {
  for (const KeyValue& kv : pairs) {
    if (kv.key == key) return &kv;
  }
  return nullptr;
}

std::string TextKeyValue(const std::vector<KeyValue>& pairs, std::string_view key) {
  const KeyValue* kv = FindTextKey(pairs, key);
  return kv ? kv->value : std::string();
}

void AppendTextKey(std::string* out, std::string_view key, std::string_view value) {
  out->append(key);
  out->push_back('=');
  out->append(value);
  out->push_back('\0');
}

std::string EncodeTextKeys(const std::vector<KeyValue>& pairs) {
  std::string out;
  for (const KeyValue& kv : pairs) AppendTextKey(&out, kv.key, kv.value);
  return out;
}

std::optional<uint64_t> ParseNumber(std::string_view v) {
  if (v.empty()) return std::nullopt;
  uint64_t base = 10;
  if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
    base = 16;
    v.remove_prefix(2);
  }
  uint64_t n = 0;
  for (char c : v) {
    uint64_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint64_t>(c - '0');
    } else if (base == 16 && c >= 'a' && c <= 'f') {
      d = static_cast<uint64_t>(c - 'a' + 10);
    } else if (base == 16 && c >= 'A' && c <= 'F') {
      d = static_cast<uint64_t>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    if (n > (UINT64_MAX - d) / base) return std::nullopt;
    n = n * base + d;
  }
  return n;
}

}  // namespace ferry::iscsi
