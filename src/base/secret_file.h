// Secrets (CHAP) live in files, never in configurations, command lines or logs.
#pragma once

#include <string>

#include "base/status.h"

namespace ferry {

// Reads one CHAP secret: the file's first line. Refused when the file is readable by group
// or others, or the secret is not 12..255 printable characters without spaces (RFC 7143
// 12.1.3 wants at least 12 bytes without IPsec; some initiators break on spaces and '#').
// Errors name the file, never its contents.
Result<std::string> ReadSecretFile(const std::string& path);

}  // namespace ferry
