#include "base/size_parse.h"

#include <cctype>
#include <cstdio>

namespace ferry {
namespace {

constexpr std::string_view kAccepted =
    "expected a number with an optional suffix: B, K/KiB, M/MiB, G/GiB, T/TiB, P/PiB, E/EiB "
    "(x1024) or kB, MB, GB, TB, PB, EB (x1000)";

Status Bad(std::string_view text, std::string_view why) {
  return InvalidArgument("invalid size '" + std::string(text) + "': " + std::string(why) + "; " +
                         std::string(kAccepted));
}

// Index of `c` in "KMGTPE" (1-based power), or 0.
int PowerOf(char c) {
  static constexpr std::string_view kLetters = "KMGTPE";
  size_t i = kLetters.find(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return i == std::string_view::npos ? 0 : static_cast<int>(i) + 1;
}

// Parses the suffix into a multiplier; false when it is not one we accept.
bool ParseSuffix(std::string_view s, uint64_t* mult) {
  if (s.empty() || s == "B" || s == "b") {
    *mult = 1;
    return true;
  }
  int power = PowerOf(s[0]);
  if (power == 0) return false;
  uint64_t base = 1024;
  std::string_view rest = s.substr(1);
  if (rest.empty() || rest == "iB" || rest == "ib") {
    base = 1024;
  } else if (rest == "B") {
    base = 1000;  // kB, MB, GB: decimal, as disk vendors and dd print them
  } else {
    return false;
  }
  uint64_t m = 1;
  for (int i = 0; i < power; ++i) m *= base;
  *mult = m;
  return true;
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  if (text.empty()) return Bad(text, "empty");
  size_t i = 0;
  unsigned __int128 whole = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    whole = whole * 10 + static_cast<unsigned>(text[i] - '0');
    if (whole > UINT64_MAX) return Bad(text, "too large");
    ++i;
  }
  if (i == 0) return Bad(text, "does not start with a digit");
  // Fraction: numerator / 10^digits.
  unsigned __int128 frac = 0, frac_den = 1;
  bool has_fraction = false;
  if (i < text.size() && text[i] == '.') {
    has_fraction = true;
    ++i;
    size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (frac_den > UINT64_MAX) return Bad(text, "too many decimals");
      frac = frac * 10 + static_cast<unsigned>(text[i] - '0');
      frac_den *= 10;
      ++i;
    }
    if (i == start) return Bad(text, "no digits after the decimal point");
  }
  uint64_t mult = 1;
  if (!ParseSuffix(text.substr(i), &mult)) {
    return Bad(text, "unknown suffix '" + std::string(text.substr(i)) + "'");
  }
  unsigned __int128 bytes = whole * mult;
  if (bytes > UINT64_MAX) return Bad(text, "too large (more than 2^64-1 bytes)");
  if (has_fraction) {
    if (mult == 1) return Bad(text, "a fraction needs a unit (bytes are whole)");
    unsigned __int128 part = frac * mult;
    if (part % frac_den != 0) return Bad(text, "not a whole number of bytes");
    bytes += part / frac_den;
    if (bytes > UINT64_MAX) return Bad(text, "too large (more than 2^64-1 bytes)");
  }
  return static_cast<uint64_t>(bytes);
}

std::string FormatSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  uint64_t div = 1;
  while (u < 6 && bytes / div >= 1024) {
    div *= 1024;
    ++u;
  }
  char buf[48];
  if (u == 0 || bytes % div == 0) {
    std::snprintf(buf, sizeof(buf), "%llu %s", static_cast<unsigned long long>(bytes / div),
                  kUnits[u]);
  } else {
    std::snprintf(buf, sizeof(buf), "%.2f %s", static_cast<double>(bytes) / div, kUnits[u]);
  }
  return buf;
}

}  // namespace ferry
