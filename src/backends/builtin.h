// The explicit list of built-in backends (no static registration).
//
// Adding a backend = one folder under src/backends/, one line in builtin.cc, one CMake line,
// one page under docs/backends/. Parameters are key=value strings, as they come from a
// config file or a command line; every backend rejects unknown keys with the list of the
// keys it knows.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"
#include "ferry/block_device.h"

namespace ferry::backends {

using BackendParams = std::map<std::string, std::string, std::less<>>;

struct BackendType {
  std::string_view name;     // "ram", "file"
  std::string_view summary;  // one line for --help
  std::string_view params;   // "size=SIZE [block_size=N] ..." for --help and errors
  Result<std::shared_ptr<block::BlockDevice>> (*create)(std::string name,
                                                        const BackendParams& params);
};

std::span<const BackendType> BuiltinBackends();

// Creates a device of backend `type` named `name`. Errors name the backend, the parameter
// and what is wrong with it.
Result<std::shared_ptr<block::BlockDevice>> CreateBackend(std::string_view type, std::string name,
                                                          const BackendParams& params);

}  // namespace ferry::backends
