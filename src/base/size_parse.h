// Parsing and printing of sizes given by users ("4GiB", "512", "1.5M", "100kB").
//
// Grammar: DIGITS [ "." DIGITS ] [ SUFFIX ], no spaces, no sign. Suffixes, case-insensitive
// in the first letter:
//   (none) or "B"             bytes
//   "K" "KiB" "M" "MiB" ...   binary multiples (1024^n) up to "E"/"EiB"
//   "kB" "MB" "GB" "TB" ...   decimal multiples (1000^n), as printed by disks and dd
// A fraction is allowed only with a multiplier and must give a whole number of bytes
// ("1.5K" = 1536, "0.1K" is refused). Overflow past 2^64-1 is refused. Error messages quote
// the input and say what is accepted.
//
// A pure decoder of outside input (config, command line): fuzzed by fuzz/size_parse_fuzz.cc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace ferry {

Result<uint64_t> ParseSize(std::string_view text);

// "1 GiB", "512 B", "1.50 MiB": binary units with up to two decimals, for humans.
std::string FormatSize(uint64_t bytes);

}  // namespace ferry
