// Planning a copy: pure functions from a descriptor to the pieces the engine executes.
//
// The copy stream is the concatenation of the source extents. A piece is a run of the
// stream that is contiguous on the source and on every destination: the stream is cut at
// every extent boundary of the source and of each destination (and nowhere else). Offload
// legs and emulated chunks are made of pieces and parts of pieces.
//
// Nothing here does I/O or touches a reactor.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "base/status.h"
#include "ferry/copy.h"

namespace ferry::copy {

// A byte position on a device.
struct Place {
  block::BlockDevice* dev = nullptr;
  uint64_t byte = 0;
};

struct Piece {
  uint64_t stream_offset = 0;
  uint64_t len = 0;
  Place src;
  std::array<Place, kMaxDestinations> dst{};  // [0, number of destinations)
  // Some place was mapped through a pinned volume (translate.h): the job checks its pins
  // before it issues the piece and finishes it on the descriptor's devices otherwise.
  bool translated = false;
};

// `len` bytes of `p` starting `offset` bytes into it.
Piece SubPiece(const Piece& p, uint64_t offset, uint64_t len);

// Checks a descriptor against the rules of CopyEngine::Submit. InvalidArgument or
// FailedPrecondition; the message names the device and the extent and says what to fix.
Status ValidateDescriptor(const CopyDescriptor& d);

// The largest block size of the source and destinations. Every extent of a valid
// descriptor is a multiple of it, so every piece boundary is aligned on every device.
uint32_t MaxBlockSize(const CopyDescriptor& d);

// Total bytes of the source extents (equal to every destination's after validation).
uint64_t StreamBytes(const CopyDescriptor& d);

// The pieces of a valid descriptor, in stream order, covering the stream exactly once.
// Neighbouring pieces that continue each other on every device are merged, so a piece is
// cut only where some list really jumps.
std::vector<Piece> MakePieces(const CopyDescriptor& d);

// Pieces that must run in stream order, one chunk at a time: a piece whose destination
// range overlaps a source range (or another destination range) on the same device, or
// whose source range overlaps a destination range. Every other piece reads bytes that no
// piece writes and writes bytes that no piece reads or writes, so it commutes with the
// rest and may run in parallel and be offloaded. O(n log n) in the number of pieces.
std::vector<bool> FindHazards(const std::vector<Piece>& pieces, size_t num_dsts);

// True when piece `p` of a single device must be copied from its end (memmove towards
// higher addresses): some destination is on the source device, above the source and
// overlapping it.
bool CopyBackward(const Piece& p, size_t num_dsts);

// The part of piece `p` that destination `k` may copy natively: `middle` bytes starting
// `head` bytes into the piece, with both offsets and the length multiples of `align` on the
// source and on the destination and `head` a multiple of `unit` (so the emulated head and
// tail stay whole blocks on every device). middle == 0: emulate the whole piece.
struct OffloadSpan {
  uint64_t head = 0;
  uint64_t middle = 0;
};
OffloadSpan SplitForOffload(const Piece& p, size_t k, uint64_t align, uint64_t unit);

// Largest multiple of `align` not above `want`; 0 when `want` < `align`.
uint64_t AlignDown(uint64_t want, uint64_t align);

}  // namespace ferry::copy
