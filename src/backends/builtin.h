// The backend registry: the explicit list of built-in backends (no static registration),
// and the only way production code opens a device by type or by URI.
//
// Adding a backend = one folder under src/backends/ exporting a BackendType
// (backend_type.h), one line in builtin.cc, one CMake line, one page under docs/backends/.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "backends/backend_type.h"
#include "base/status.h"
#include "ferry/block_device.h"

namespace ferry::backends {

std::span<const BackendType* const> BuiltinBackends();

// nullptr when no backend has that name.
const BackendType* FindBackend(std::string_view type);

// A device named by type and parameters.
struct BackendSpec {
  std::string type;
  BackendParams params;
};

// Pure. "ram:1G", "file:PATH", "file:///PATH", "iscsi://host/IQN/LUN", or a plain path (a
// file). URIs of other backends than files may end in "?KEY=VALUE&KEY=VALUE": more of the
// backend's parameters ("ram:1G?block_size=4096"). Errors name the URI and what is wrong.
Result<BackendSpec> ParseDeviceUri(std::string_view uri);

// Pure: checks `params` for backend `type` without opening anything. Unknown types and
// parameter errors ("KEY: reason") are InvalidArgument.
Status CheckBackend(std::string_view type, const BackendParams& params);

// Opens a device of backend `type` named `name`. Errors name the backend, the parameter
// or the path / URL and what to fix.
Result<std::shared_ptr<block::BlockDevice>> CreateBackend(std::string_view type, std::string name,
                                                          const BackendParams& params,
                                                          const BackendContext& context = {});

// ParseDeviceUri, `extra` parameters added (e.g. read_only=true), then CreateBackend.
// The device is named `name`, or the URI when `name` is empty. Errors start with the URI
// unless they already name it.
Result<std::shared_ptr<block::BlockDevice>> OpenDeviceUri(std::string_view uri,
                                                          std::string name = {},
                                                          const BackendParams& extra = {},
                                                          const BackendContext& context = {});

}  // namespace ferry::backends
