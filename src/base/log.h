// Logging through spdlog. One process-wide logger; FERRY_LOG_* macros compile to spdlog
// calls with fmt-style arguments. Secrets are never passed to these macros.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace ferry {

// Sets the level from a name ("trace", "debug", "info", "warn", "error", "off").
// Returns false for an unknown name and leaves the level unchanged.
bool SetLogLevel(std::string_view level);

}  // namespace ferry

#define FERRY_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define FERRY_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define FERRY_LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define FERRY_LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define FERRY_LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)
