// Planning a copy: pure functions from a descriptor to the pieces the engine executes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "ferry/copy.h"

namespace ferry::copy {

// A run of the copy stream that is contiguous on the source and on every destination, in
// bytes. Pieces are cut at every extent boundary of the source and of each destination.
struct Piece {
  uint64_t stream_offset = 0;
  uint64_t src_byte = 0;
  std::array<uint64_t, kMaxDestinations> dst_byte{};
  uint64_t len = 0;
};

// Checks a descriptor against the rules of CopyEngine::Submit; the message says what is
// wrong and where ("destination 1 extent 3 ...").
Status ValidateDescriptor(const CopyDescriptor& d);

// The largest block size of the source and destinations (non-null devices).
uint64_t MaxBlockSize(const CopyDescriptor& d);

// Total bytes of the source extents (equal to every destination's after validation).
uint64_t StreamBytes(const CopyDescriptor& d);

// The pieces of a valid descriptor, in stream order, covering the stream exactly once.
std::vector<Piece> MakePieces(const CopyDescriptor& d);

// The translate step of DESIGN.md ("map both lists down their volume stacks to leaf
// extents"). Backends are leaves, so today it is the identity; volumes (issue 6) replace it
// with a walk down their tables that also pins the generations it passed.
CopyDescriptor TranslateToLeaves(CopyDescriptor d);

// True when, on one device, a destination range of the copy overlaps a source range: the
// engine then copies serially in stream order with memmove semantics per piece.
bool HasSelfOverlap(const CopyDescriptor& d, size_t dst_index);

// Largest multiple of `align` not above `want` (at least `align`).
uint64_t AlignDown(uint64_t want, uint64_t align);

}  // namespace ferry::copy
