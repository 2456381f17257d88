// Logging through spdlog. One process-wide logger; FERRY_LOG_* macros compile to spdlog
// calls with fmt-style arguments. Secrets are never passed to these macros.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace ferry {

// Sets the level from a name ("trace", "debug", "info", "warn", "error", "off").
// Returns false for an unknown name and leaves the level unchanged.
bool SetLogLevel(std::string_view level);

enum class LogFormat : uint8_t {
  kText,  // spdlog's default pattern
  kJson,  // one JSON object a line: ts (UTC, RFC 3339), level, thread, src, msg
};

// Decodes "text" or "json"; false for anything else.
bool ParseLogFormat(std::string_view name, LogFormat* out);

// Replaces the process-wide logger's sinks: `file` empty logs to stderr, else appends to
// that file (created 0640 if missing). Keeps the level. Not for the data path: call it at
// startup, before reactors run. Fails when the file cannot be opened.
Status ConfigureLogging(LogFormat format, const std::string& file);

// Reopens the log file by name, for logrotate (`postrotate`: SIGHUP ferryd). A no-op when
// logging to stderr. Thread-safe: may run while other threads log; lines logged while it
// runs go to the old or the new file, never nowhere.
void ReopenLogs();

}  // namespace ferry

#define FERRY_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define FERRY_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define FERRY_LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define FERRY_LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define FERRY_LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)
