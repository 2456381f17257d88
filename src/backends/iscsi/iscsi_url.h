// iSCSI URLs, as libiscsi and QEMU write them: iscsi://host[:port]/IQN/LUN.
//
// Pure: no I/O, no libiscsi. The host is a name, an IPv4 address, or an IPv6 address in
// brackets; the port defaults to 3260 (RFC 7143 13.1); the LUN is decimal, 0..16383 (SAM-5
// flat addressing). Credentials never travel in the URL (they come from files).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace ferry::backends::iscsi {

inline constexpr uint16_t kDefaultIscsiPort = 3260;

struct IscsiUrl {
  std::string host;  // without brackets
  uint16_t port = kDefaultIscsiPort;
  std::string target_iqn;
  uint64_t lun = 0;
  // "host:port" for libiscsi, IPv6 in brackets: "[::1]:3260".
  std::string portal() const;
};

// InvalidArgument naming the URL and what is wrong with it.
Result<IscsiUrl> ParseIscsiUrl(std::string_view url);

}  // namespace ferry::backends::iscsi
