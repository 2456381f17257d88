// libferry's errors: the thread-local message behind ferry_errmsg() and the translation of
// Ferry's Status and IoStatus into the negative errno values the C API returns.
#pragma once

#include <string>

#include "base/io_status.h"
#include "base/status.h"

namespace ferry::api {

// Sets the calling thread's message and returns `neg_errno` (negative), for
// `return Fail(-EINVAL, "...")`.
int Fail(int neg_errno, std::string message);
// The same for a Status: its errno (ErrnoOf) and its message.
int Fail(const Status& status);
// "" after a success is not promised: the message stays until the next failure.
const char* LastMessage();

// Negative errno of a failed Status (EINVAL, ENOENT, EACCES...); 0 for OK.
int ErrnoOf(const Status& status);
// Negative errno of an I/O status; 0 for kOk, -ECANCELED for kAborted.
int ErrnoOf(IoStatus status);

}  // namespace ferry::api
