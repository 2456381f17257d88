// Who may use a target, and what they see: ACL entries that match initiators by iSCSI name
// and by network, their CHAP credentials, and the LUN map each presents.
//
// Pure values and matching; the login code asks Target::Authorize() with the initiator's
// name and address, and builds the session's LUN view from the entry it gets back.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ferry::iscsi {

// An IPv4 or IPv6 address; IPv4 is kept as an IPv4-mapped IPv6 address so that one
// network matches both spellings of a peer (127.0.0.1 and ::ffff:127.0.0.1).
struct IpAddress {
  std::array<uint8_t, 16> bytes{};
  bool operator==(const IpAddress&) const = default;
};

// "192.0.2.1", "2001:db8::1"; false when `s` is neither.
bool ParseIpAddress(std::string_view s, IpAddress* out);
// The address part of "ip:port" or "[ip]:port" (what TcpListener reports as the peer).
bool ParsePeerAddress(std::string_view peer, IpAddress* out);

// "10.0.0.0/8", "2001:db8::/32", or one address (a /32 or /128).
struct Network {
  IpAddress base;
  int prefix_bits = 128;  // in IPv6 terms: an IPv4 /8 is stored as /104
  bool Contains(const IpAddress& a) const;
  bool operator==(const Network&) const = default;
};
Result<Network> ParseNetwork(std::string_view cidr);

// CHAP secrets (RFC 7143 12.1.3): the initiator proves `secret` under `user`; with a
// mutual user the target proves `mutual_secret` back when the initiator asks.
struct ChapCredentials {
  std::string user;
  std::string secret;
  std::string mutual_user;  // empty: one-way only
  std::string mutual_secret;
};

struct LunMapping {
  uint64_t target_lun = 0;  // the target's LUN this initiator-visible LUN shows
  bool write_protect = false;
};

struct Acl {
  // Matches when the initiator name is listed (or the list is empty or holds "*") and the
  // peer is in one of the networks (or the list is empty).
  std::vector<std::string> initiators;
  std::vector<Network> networks;
  // Non-null: CHAP is required with these credentials.
  std::shared_ptr<const ChapCredentials> chap;
  bool write_protect = false;           // every LUN this entry presents is write-protected
  bool map_all_luns = true;             // present the target's LUNs under their own numbers
  std::map<uint64_t, LunMapping> luns;  // else: initiator-visible LUN -> target LUN

  bool Matches(std::string_view initiator, const IpAddress& peer) const;
};

// iSCSI name syntax (RFC 7143 4.2.7.2): iqn./eui./naa. forms, at most 223 bytes, lower
// case. Returns what is wrong, or an empty string.
std::string CheckIscsiName(std::string_view name);

}  // namespace ferry::iscsi
