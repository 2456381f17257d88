// The translate and pin steps of the copy path (DESIGN.md, "The copy path", steps 1 and 2):
// pieces on the devices a client named become pieces on leaf devices (backend instances),
// which are what the engine offloads, reads and writes.
//
// Translate walks every Place that lies on a volume (a device whose stack() capability
// answers, volume/stack.h) down the volume's active table, recursively, through targets
// that are transparent for copies (Target::copy_transparent: linear, striped). A piece is
// cut wherever a mapping of the source or of any destination changes. Every volume walked
// is pinned once (volume::Stack::PinForCopy). Only leaf ranges are translated: a range on
// another target (zero, error, flakey, delay, ...), or on a volume that refuses its pin
// (suspended), stays where it lies on the descriptor's device, so the engine copies it as
// ordinary I/O through the volumes' own Submit, which applies the target's behaviour and
// queues while a volume is suspended. (Keeping such a range on the lower volume instead
// could deadlock: a request the copy waits for would queue on a volume whose suspend waits
// for the copy's pin.)
//
// Pieces are left as they are (on the descriptor's devices) when translating them is not
// safe or not exact: a piece whose source device is also one of its destination devices
// (memmove order is defined on that device, not on its leaves), and a piece whose cuts would
// not be whole multiples of the copy's block unit.
//
// The job (job.h) keeps the PinSet until it completes and checks it before it issues any
// translated work; see PinSet.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "base/status.h"
#include "copy/plan.h"
#include "volume/stack.h"
#include "volume/table.h"

namespace ferry::io {
class Reactor;
}

namespace ferry::copy {

// The pins of one copy. Owned by the job; used on the engine's reactor thread, except the
// release request, which a volume's Suspend deadline raises from its own reactor.
class PinSet {
 public:
  static std::shared_ptr<PinSet> Create(io::Reactor* reactor);
  PinSet(const PinSet&) = delete;
  PinSet& operator=(const PinSet&) = delete;

  // True while translated work may be issued: no release was asked, and every pin is
  // still held with its volume at the generation it was taken at. A false answer stays
  // false (the job then finishes on the descriptor's devices).
  bool Valid() const;
  // Drops every pin (a suspend waiting for them may then complete). Idempotent.
  void ReleaseAll();
  bool release_requested() const { return release_requested_.load(std::memory_order_acquire); }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  // Runs on the engine's reactor after a volume asked the copy to release its pins. Set by
  // the engine once the job exists (before the reactor runs again).
  std::function<void()> on_release;

  // Translate's side: pins `vol` (once per volume) and returns the table it is pinned at,
  // or nullptr when the volume refused the pin (its ranges stay on it).
  const volume::Table* Pin(volume::Stack* vol);

 private:
  struct Entry {
    std::shared_ptr<volume::Stack> vol;    // alive while the copy may issue to its leaves
    std::shared_ptr<volume::Table> table;  // keeps the leaves the pieces name alive
    volume::Stack::CopyPin pin;
  };
  explicit PinSet(io::Reactor* reactor) : reactor_(reactor) {}
  static void RequestRelease(const std::weak_ptr<PinSet>& weak);

  io::Reactor* const reactor_;
  std::weak_ptr<PinSet> self_;
  std::vector<Entry> entries_;
  std::vector<const volume::Stack*> refused_;  // suspended (or removed) when asked
  std::atomic<bool> release_requested_{false};
};

struct Translation {
  std::vector<Piece> pieces;     // in stream order, covering the same stream bytes
  std::shared_ptr<PinSet> pins;  // never null; empty when no volume was walked
};

// Maps `pieces` (in stream order, on the descriptor's devices) to pieces on leaf devices.
// `num_dsts` destinations; `unit` is MaxBlockSize of the descriptor. Pieces that passed
// through a pinned volume have Piece::translated set. `reactor` is the engine's.
Result<Translation> Translate(std::vector<Piece> pieces, size_t num_dsts, uint64_t unit,
                              io::Reactor* reactor);

}  // namespace ferry::copy
