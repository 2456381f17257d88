#include "iscsi/session_stats.h"

#include "scsi/lu_stats.h"

namespace ferry::iscsi {

namespace {

// One writer: a plain load and store, no locked read-modify-write.
void Bump(std::atomic<uint64_t>& a, uint64_t n) {
  a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

}  // namespace

void SessionIo::Count(const scsi::Task& t, uint32_t block_size) {
  const scsi::IoCount io = scsi::CountIo(t, block_size);
  if (io.read) {
    Bump(read_ops, 1);
    Bump(read_bytes, io.bytes);
  } else if (io.write) {
    Bump(write_ops, 1);
    Bump(write_bytes, io.bytes);
  }
}

LoginRefusal LoginRefusalOf(uint8_t status_class, uint8_t detail) {
  if (status_class == 0x03) {
    return detail == 0x02 ? LoginRefusal::kOutOfResources : LoginRefusal::kTargetError;
  }
  switch (detail) {
    case 0x01: return LoginRefusal::kAuthFailure;
    case 0x02: return LoginRefusal::kForbidden;
    case 0x03: return LoginRefusal::kNotFound;
    case 0x05: return LoginRefusal::kUnsupportedVersion;
    case 0x07: return LoginRefusal::kMissingParameter;
    case 0x0a: return LoginRefusal::kSessionDoesNotExist;
    default: return LoginRefusal::kInitiatorError;
  }
}

std::string_view LoginRefusalName(LoginRefusal r) {
  switch (r) {
    case LoginRefusal::kInitiatorError: return "initiator_error";
    case LoginRefusal::kAuthFailure: return "auth_failure";
    case LoginRefusal::kForbidden: return "forbidden";
    case LoginRefusal::kNotFound: return "not_found";
    case LoginRefusal::kUnsupportedVersion: return "unsupported_version";
    case LoginRefusal::kMissingParameter: return "missing_parameter";
    case LoginRefusal::kSessionDoesNotExist: return "session_does_not_exist";
    case LoginRefusal::kOutOfResources: return "out_of_resources";
    case LoginRefusal::kTargetError: return "target_error";
  }
  return "other";
}

}  // namespace ferry::iscsi
