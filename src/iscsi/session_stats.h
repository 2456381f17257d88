// Statistics of the iSCSI layer that the metrics endpoint shows (docs/metrics.md): the
// READ/WRITE commands and bytes of one session, and why logins were refused.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "scsi/task.h"

namespace ferry::iscsi {

// One session's block I/O. Written by the connection's reactor only, read by any thread
// (relaxed: no ordering between the counters is promised).
struct SessionIo {
  std::atomic<uint64_t> read_ops{0}, read_bytes{0}, write_ops{0}, write_bytes{0};
  // A command of this session completed (before its response is sent).
  void Count(const scsi::Task& t, uint32_t block_size);
};

// Why a login was refused: the login response's status class and detail (RFC 7143
// 11.13.5), folded into a few kinds for a bounded metrics label.
enum class LoginRefusal : uint8_t {
  kInitiatorError,       // 0200 and other initiator errors: bad keys, protocol
  kAuthFailure,          // 0201: CHAP failed or missing
  kForbidden,            // 0202: no ACL entry admits the initiator
  kNotFound,             // 0203: no such target on this portal
  kUnsupportedVersion,   // 0205
  kMissingParameter,     // 0207: no InitiatorName or TargetName
  kSessionDoesNotExist,  // 020a: a TSIH of an old session
  kOutOfResources,       // 0302: max_connections sessions exist
  kTargetError,          // other target errors
};
inline constexpr size_t kLoginRefusalKinds = 9;
LoginRefusal LoginRefusalOf(uint8_t status_class, uint8_t detail);
// Label values: "initiator_error", "auth_failure", ...
std::string_view LoginRefusalName(LoginRefusal r);

using LoginRefusalCounts = std::array<std::atomic<uint64_t>, kLoginRefusalKinds>;

}  // namespace ferry::iscsi
