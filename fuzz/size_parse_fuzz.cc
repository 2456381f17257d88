// Fuzz target: ParseSize (sizes from the command line and config files).
// Invariants: never crashes; a parsed value formats and re-parses to itself when the
// format is exact (whole units).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "base/size_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = ferry::ParseSize(text);
  if (!r.ok()) {
    if (r.status().message().empty()) std::abort();
    return 0;
  }
  std::string s = ferry::FormatSize(*r);
  if (s.find('.') == std::string::npos) {
    s.erase(s.find(' '), 1);
    auto again = ferry::ParseSize(s);
    if (!again.ok() || *again != *r) std::abort();
  }
  return 0;
}
