#include "base/io_status.h"

#include <cerrno>
#include <cstdlib>

namespace ferry {

std::string_view IoStatusName(IoStatus s) {
  switch (s) {
    case IoStatus::kOk: return "ok";
    case IoStatus::kIoError: return "io-error";
    case IoStatus::kNoSpace: return "no-space";
    case IoStatus::kNoResources: return "no-resources";
    case IoStatus::kInvalid: return "invalid";
    case IoStatus::kNotSupported: return "not-supported";
    case IoStatus::kAborted: return "aborted";
    case IoStatus::kReadOnly: return "read-only";
    case IoStatus::kTimeout: return "timeout";
    case IoStatus::kMiscompare: return "miscompare";
  }
  return "unknown";
}

IoStatus IoStatusFromErrno(int err) {
  switch (std::abs(err)) {
    case 0: return IoStatus::kOk;
    case ENOSPC:
    case EDQUOT:
    case EFBIG: return IoStatus::kNoSpace;
    case EAGAIN:
    case ENOMEM:
    case EBUSY: return IoStatus::kNoResources;
    case EINVAL:
    case ERANGE: return IoStatus::kInvalid;
    case EOPNOTSUPP:
    case ENOSYS:
    case EXDEV:
    case ENOTTY: return IoStatus::kNotSupported;
    case ECANCELED:
    case EINTR: return IoStatus::kAborted;
    case EROFS:
    case EPERM:
    case EACCES:
    case EBADF: return IoStatus::kReadOnly;
    case ETIMEDOUT: return IoStatus::kTimeout;
    default: return IoStatus::kIoError;
  }
}

}  // namespace ferry
