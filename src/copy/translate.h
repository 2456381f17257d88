// The translate step of the copy path (DESIGN.md, "The copy path", step 1): pieces on the
// devices a client named become pieces on leaf devices (backend instances), which are what
// the engine offloads, reads and writes, and what RangeError reports.
//
// Backends are leaves, so today translation is the identity. Volumes (issue 6) replace it
// with a walk down their tables: a piece is cut wherever a table entry ends on the source
// or on any destination, each part names the leaf device and byte where it lands, and the
// volumes passed record their generation and count the copy in flight (step 2, "Pin").
// Offload and emulation only ever see the output, so that is the one place to change.
#pragma once

#include <vector>

#include "base/status.h"
#include "copy/plan.h"

namespace ferry::copy {

// Maps `pieces` (in stream order, on the descriptor's devices) to pieces on leaf devices,
// still in stream order and covering the same stream bytes. `num_dsts` destinations.
Result<std::vector<Piece>> TranslateToLeaves(std::vector<Piece> pieces, size_t num_dsts);

}  // namespace ferry::copy
