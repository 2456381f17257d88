// Data-path status: one byte, no allocation, no message.
//
// Every block request and copy leg completes with an IoStatus. The SCSI layer maps each
// value to sense data in exactly one table; nothing else builds sense bytes.
#pragma once

#include <cstdint>
#include <string_view>

namespace ferry {

enum class IoStatus : uint8_t {
  kOk = 0,
  kIoError,       // the medium or backing store failed (EIO and unexpected errors)
  kNoSpace,       // backing store is full (ENOSPC, EDQUOT)
  kNoResources,   // transient: queue full, no buffers; the block layer retries it
  kInvalid,       // request outside the device or misaligned (a caller bug or bad input)
  kNotSupported,  // the device cannot do this operation (e.g. a native copy it can't offload)
  kAborted,       // cancelled by the caller or by a task-management function
  kReadOnly,      // write to a read-only device
  kTimeout,       // the backend did not answer in time
  kMiscompare,    // verify or compare-and-write found different data
};

std::string_view IoStatusName(IoStatus s);

// Converts a negative errno (io_uring cqe->res style) or a positive errno into an IoStatus.
// The only place errno becomes an IoStatus.
IoStatus IoStatusFromErrno(int err);

}  // namespace ferry
