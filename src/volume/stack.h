// The stacking capability: what is asked of a device built on other devices by a table of
// targets (a Volume, volume.h), through block::BlockDevice::stack() rather than by its type.
//
// Who asks what:
// - Tables hold the devices they name open (DeviceRef, target.h: Open, Close), and a volume
//   refuses to load a table that would stack it on itself (tables()).
// - The copy engine's translate step (src/copy/translate.h) walks a copy's ranges down the
//   active table and pins every stack it walks (PinForCopy, generation, shared_stack).
// - Thin lines find the pool a pool volume runs, and the thin device of a copy's source, by
//   asking the lines of the active table (Target::pool_line, thin/pool_line.h).
//
// Threads. Every call is thread-safe and may come from any thread.
#pragma once

#include <cstdint>
#include <memory>

#include "base/inline_function.h"
#include "base/status.h"
#include "ferry/block_device.h"

namespace ferry::volume {

class Table;

class Stack {
 public:
  using ReleaseRequest = InlineFunction<void(), 48>;

  // A copy's hold on a stack (DESIGN.md, "The copy path", step 2). While it lives it counts
  // as in flight, so a suspend waits for it; generation() is the table generation the copy
  // translated its ranges with. Destroying or Release()-ing it ends the hold.
  class CopyPin {
   public:
    CopyPin() = default;
    CopyPin(CopyPin&& o) noexcept : stack_(o.stack_), id_(o.id_), generation_(o.generation_) {
      o.stack_ = nullptr;
    }
    CopyPin& operator=(CopyPin&& o) noexcept;
    CopyPin(const CopyPin&) = delete;
    CopyPin& operator=(const CopyPin&) = delete;
    ~CopyPin() { Release(); }
    void Release();
    bool held() const { return stack_ != nullptr; }
    uint64_t generation() const { return generation_; }

   private:
    friend class Stack;
    CopyPin(Stack* stack, uint64_t id, uint64_t gen) : stack_(stack), id_(id), generation_(gen) {}
    Stack* stack_ = nullptr;
    uint64_t id_ = 0;
    uint64_t generation_ = 0;
  };

  // The active table and the loaded (inactive) one, read at one instant; nullptr where there
  // is none.
  struct Tables {
    std::shared_ptr<Table> active;
    std::shared_ptr<Table> inactive;
  };

  virtual ~Stack() = default;

  // Holders (a LUN, a table of another volume) keep the stack open; removing it is refused
  // while it is.
  virtual void Open() = 0;
  virtual void Close() = 0;

  // The table reads, writes and copies are mapped with (nullptr once removed).
  virtual std::shared_ptr<Table> active_table() const = 0;
  // Both tables: what the stack maps to now and what it may map to after its next resume.
  virtual Tables tables() const = 0;

  // Pins the stack for a copy, which then maps its ranges with active_table()->Map() and
  // checks generation() against the pin's before it executes, so a stale mapping is never
  // written through. Fails with kUnavailable while the stack is suspended (the copy then
  // runs as ordinary reads and writes, which queue). `on_release` runs once if a suspend's
  // deadline passes while the pin is held, on the reactor that suspended; the copy should
  // then finish its ranges as ordinary I/O and drop the pin.
  virtual Result<CopyPin> PinForCopy(ReleaseRequest on_release) = 0;
  // Bumped each time a resume swaps in a new table; starts at 1.
  virtual uint64_t generation() const = 0;
  // An owning reference, for a copy that keeps the stack alive while it may issue to the
  // devices beneath it.
  virtual std::shared_ptr<Stack> shared_stack() = 0;

 protected:
  // The pin PinForCopy returns for hold `id`, taken at table generation `generation`.
  CopyPin NewPin(uint64_t id, uint64_t generation) { return CopyPin(this, id, generation); }

 private:
  // Ends hold `id` (CopyPin::Release).
  virtual void Unpin(uint64_t id) = 0;
};

// The active table of `dev` when it is a stack, else nullptr.
std::shared_ptr<Table> ActiveTableOf(const block::BlockDevice& dev);

}  // namespace ferry::volume
