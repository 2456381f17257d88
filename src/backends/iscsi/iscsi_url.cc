#include "backends/iscsi/iscsi_url.h"

#include <charconv>

namespace ferry::backends::iscsi {
namespace {

constexpr std::string_view kScheme = "iscsi://";
constexpr uint64_t kMaxLun = 16383;

Status Bad(std::string_view url, std::string_view what) {
  return InvalidArgument("iSCSI URL '" + std::string(url) + "': " + std::string(what));
}

bool ParseDecimal(std::string_view s, uint64_t max, uint64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && *out <= max;
}

// "host[:port]" or "[v6][:port]" into `u`.
Status ParseAuthority(std::string_view url, std::string_view auth, IscsiUrl* u) {
  if (auth.empty()) return Bad(url, "no host");
  if (auth.find('@') != std::string_view::npos) {
    return Bad(url, "credentials in the URL are not accepted (use the CHAP options)");
  }
  std::string_view port;
  if (auth.front() == '[') {
    size_t close = auth.find(']');
    if (close == std::string_view::npos) return Bad(url, "IPv6 address without ']'");
    u->host = std::string(auth.substr(1, close - 1));
    if (u->host.empty() || u->host.find(':') == std::string::npos) {
      return Bad(url, "'" + std::string(auth.substr(0, close + 1)) + "' is not an IPv6 address");
    }
    std::string_view rest = auth.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Bad(url, "junk after the IPv6 address");
      port = rest.substr(1);
      if (port.empty()) return Bad(url, "empty port");
    }
  } else {
    size_t colon = auth.find(':');
    if (colon != std::string_view::npos) {
      if (auth.find(':', colon + 1) != std::string_view::npos) {
        return Bad(url, "IPv6 addresses must be in brackets: iscsi://[addr]:port/...");
      }
      port = auth.substr(colon + 1);
      if (port.empty()) return Bad(url, "empty port");
    }
    u->host = std::string(auth.substr(0, colon));
    if (u->host.empty()) return Bad(url, "no host");
  }
  if (!port.empty()) {
    uint64_t p = 0;
    if (!ParseDecimal(port, 65535, &p) || p == 0) {
      return Bad(url, "port '" + std::string(port) + "' is not a number in 1..65535");
    }
    u->port = static_cast<uint16_t>(p);
  }
  return Status::Ok();
}

}  // namespace

std::string IscsiUrl::portal() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

Result<IscsiUrl> ParseIscsiUrl(std::string_view url) {
  if (url.substr(0, kScheme.size()) != kScheme) return Bad(url, "does not start with iscsi://");
  std::string_view rest = url.substr(kScheme.size());
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return Bad(url, "query strings and fragments are not supported");
  }
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return Bad(url, "no target IQN (iscsi://host/IQN/LUN)");
  IscsiUrl u;
  FERRY_RETURN_IF_ERROR(ParseAuthority(url, rest.substr(0, slash), &u));
  rest = rest.substr(slash + 1);
  size_t lun_slash = rest.find('/');
  if (lun_slash == std::string_view::npos) return Bad(url, "no LUN (iscsi://host/IQN/LUN)");
  u.target_iqn = std::string(rest.substr(0, lun_slash));
  if (u.target_iqn.empty()) return Bad(url, "empty target IQN");
  if (u.target_iqn.find_first_of(" \t") != std::string::npos) {
    return Bad(url, "the target name contains white space");
  }
  std::string_view lun = rest.substr(lun_slash + 1);
  if (lun.empty()) return Bad(url, "empty LUN");
  if (lun.find('/') != std::string_view::npos) return Bad(url, "junk after the LUN");
  if (!ParseDecimal(lun, kMaxLun, &u.lun)) {
    return Bad(url, "LUN '" + std::string(lun) + "' is not a number in 0..16383");
  }
  return u;
}

}  // namespace ferry::backends::iscsi
