// LBA range locks of one logical unit: what makes COMPARE AND WRITE, ORWRITE and WRITE
// ATOMIC atomic against every other write to their blocks, from any session (SBC-3 5.3,
// 5.11, SBC-4 5.48).
//
// Every write-type command holds the range it changes from before its first device
// request until its last completes (a copy step: from its first to its last destination
// block, copy_runner.cc); the read-modify-write commands hold theirs across the
// read, the compare or merge, and the write. Reads take no lock. Grants are FIFO among
// overlapping requests, so a stream of small writes cannot starve a COMPARE AND WRITE.
//
// Threads: Acquire and Release from any reactor thread. A request granted at once runs its
// callback inside Acquire; one that waited runs it on the reactor that called Acquire,
// posted by whoever released the range that blocked it.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>

#include "base/inline_function.h"

namespace ferry::io {
class Reactor;
}

namespace ferry::scsi {

class RangeLock {
 public:
  using Granted = InlineFunction<void(), 48>;
  struct Holder;  // opaque: one acquired or waiting range

  // Calls `granted` once [lba, lba + blocks) overlaps no held range and no range that
  // asked earlier and still waits. Returns the handle to pass to Release.
  Holder* Acquire(uint64_t lba, uint64_t blocks, Granted granted);
  // Releases a granted range and grants the waiters it was blocking.
  void Release(Holder* h);

  size_t held_for_testing() const;
  size_t waiting_for_testing() const;

 private:
  mutable std::mutex mu_;
  std::list<Holder*> held_;     // guarded by mu_
  std::list<Holder*> waiting_;  // guarded by mu_, in arrival order
};

}  // namespace ferry::scsi
