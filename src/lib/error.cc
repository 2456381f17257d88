#include "lib/error.h"

#include <cerrno>

namespace ferry::api {
namespace {

thread_local std::string t_message;

}  // namespace

int Fail(int neg_errno, std::string message) {
  t_message = std::move(message);
  return neg_errno;
}

int Fail(const Status& status) { return Fail(ErrnoOf(status), std::string(status.message())); }

const char* LastMessage() { return t_message.c_str(); }

int ErrnoOf(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return 0;
    case StatusCode::kCancelled:
    case StatusCode::kAborted: return -ECANCELED;
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kOutOfRange: return -EINVAL;
    case StatusCode::kDeadlineExceeded: return -ETIMEDOUT;
    case StatusCode::kNotFound: return -ENOENT;
    case StatusCode::kAlreadyExists: return -EEXIST;
    case StatusCode::kPermissionDenied: return -EACCES;
    case StatusCode::kResourceExhausted: return -ENOMEM;
    case StatusCode::kUnimplemented: return -EOPNOTSUPP;
    case StatusCode::kUnavailable: return -EAGAIN;
    case StatusCode::kUnknown:
    case StatusCode::kInternal:
    case StatusCode::kDataLoss: return -EIO;
  }
  return -EIO;
}

int ErrnoOf(IoStatus status) {
  switch (status) {
    case IoStatus::kOk: return 0;
    case IoStatus::kIoError: return -EIO;
    case IoStatus::kNoSpace: return -ENOSPC;
    case IoStatus::kNoResources: return -EAGAIN;
    case IoStatus::kInvalid: return -EINVAL;
    case IoStatus::kNotSupported: return -EOPNOTSUPP;
    case IoStatus::kAborted: return -ECANCELED;
    case IoStatus::kReadOnly: return -EROFS;
    case IoStatus::kTimeout: return -ETIMEDOUT;
    case IoStatus::kMiscompare: return -EILSEQ;
  }
  return -EIO;
}

}  // namespace ferry::api
