#include "iscsi/acl.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

namespace ferry::iscsi {

bool ParseIpAddress(std::string_view s, IpAddress* out) {
  if (s.empty() || s.size() > 45) return false;
  const std::string z(s);
  in_addr v4{};
  if (inet_pton(AF_INET, z.c_str(), &v4) == 1) {
    *out = IpAddress{};
    out->bytes[10] = 0xff;
    out->bytes[11] = 0xff;
    std::memcpy(&out->bytes[12], &v4, 4);
    return true;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, z.c_str(), &v6) == 1) {
    std::memcpy(out->bytes.data(), &v6, 16);
    return true;
  }
  return false;
}

bool ParsePeerAddress(std::string_view peer, IpAddress* out) {
  if (!peer.empty() && peer.front() == '[') {
    const size_t close = peer.find(']');
    if (close == std::string_view::npos) return false;
    return ParseIpAddress(peer.substr(1, close - 1), out);
  }
  const size_t colon = peer.rfind(':');
  if (colon != std::string_view::npos && peer.find(':') == colon) peer = peer.substr(0, colon);
  return ParseIpAddress(peer, out);
}

bool Network::Contains(const IpAddress& a) const {
  int bits = prefix_bits;
  for (size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((a.bytes[i] & mask) != (base.bytes[i] & mask)) return false;
  }
  return true;
}

Result<Network> ParseNetwork(std::string_view cidr) {
  Network n;
  const size_t slash = cidr.find('/');
  const std::string_view addr = cidr.substr(0, slash);
  if (!ParseIpAddress(addr, &n.base)) {
    return InvalidArgument("'" + std::string(cidr) + "' is not an IP address or network");
  }
  const bool v4 = addr.find(':') == std::string_view::npos;
  const int max_bits = v4 ? 32 : 128;
  int bits = max_bits;
  if (slash != std::string_view::npos) {
    const std::string_view p = cidr.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), bits);
    if (ec != std::errc() || end != p.data() + p.size() || p.empty() || bits < 0 ||
        bits > max_bits) {
      return InvalidArgument("'" + std::string(cidr) + "': prefix length must be 0.." +
                             std::to_string(max_bits));
    }
  }
  n.prefix_bits = v4 ? bits + 96 : bits;
  // Host bits set in the base address usually mean a typo (10.1.2.3/8): refuse.
  for (int i = n.prefix_bits; i < 128; ++i) {
    if (n.base.bytes[i / 8] & (0x80 >> (i % 8))) {
      return InvalidArgument("'" + std::string(cidr) + "' has host bits set after the prefix");
    }
  }
  return n;
}

bool Acl::Matches(std::string_view initiator, const IpAddress& peer) const {
  const bool name_ok = initiators.empty() ||
                       std::any_of(initiators.begin(), initiators.end(), [&](const std::string& i) {
                         return i == "*" || i == initiator;
                       });
  if (!name_ok) return false;
  return networks.empty() || std::any_of(networks.begin(), networks.end(),
                                         [&](const Network& n) { return n.Contains(peer); });
}

std::string CheckIscsiName(std::string_view name) {
  if (name.empty()) return "empty iSCSI name";
  if (name.size() > 223) return "iSCSI names are at most 223 bytes";
  for (char c : name) {
    if (std::isupper(static_cast<unsigned char>(c))) return "iSCSI names are lower case";
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != ':') {
      return std::string("character '") + c + "' is not allowed in an iSCSI name";
    }
  }
  if (name.starts_with("iqn.")) {
    // iqn.yyyy-mm.reversed.domain[:anything]
    if (name.size() < 12 || !std::isdigit(static_cast<unsigned char>(name[4])) || name[8] != '-' ||
        name[11] != '.') {
      return "an iqn name looks like iqn.yyyy-mm.com.example[:id]";
    }
    return {};
  }
  if (name.starts_with("eui.")) {
    return name.size() == 20 ? "" : "an eui name is eui. and 16 hex digits";
  }
  if (name.starts_with("naa.")) {
    return name.size() == 20 || name.size() == 36 ? ""
                                                  : "an naa name is naa. and 16 or 32 hex digits";
  }
  return "iSCSI names start with iqn., eui. or naa.";
}

}  // namespace ferry::iscsi
