// The "ram" entry of the backend registry (backends/builtin.cc).
//
// Parameters: size (required), block_size (512), read_only (false). URI: "ram:SIZE".
#pragma once

#include "backends/backend_type.h"

namespace ferry::backends {

const BackendType& RamBackendType();

}  // namespace ferry::backends
