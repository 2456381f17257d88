// The "file" entry of the backend registry (backends/builtin.cc).
//
// Parameters: path (required; relative to the context's base_dir), size, create, direct,
// block_size, read_only, byte_addressed (a buffered regular file addressed in bytes, for
// copies of files of any length: docs/adr/0002). URIs: "file:PATH", "file:///ABSOLUTE/PATH", or a
// plain path.
#pragma once

#include "backends/backend_type.h"

namespace ferry::backends {

const BackendType& FileBackendType();

}  // namespace ferry::backends
