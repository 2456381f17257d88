// A volume: a block device whose blocks are mapped by a table of targets (table.h), with
// device-mapper's lifecycle.
//
// Tables. A volume has an active table and at most one inactive (loaded) table. Load()
// parses nothing: it takes a built Table and keeps it inactive. Resume() swaps it in.
//
// Lifecycle (dm's suspend / resume):
// - Suspend(deadline, done): new requests are queued (not failed) from now on; `done` runs
//   with OK once every request and copy pin in flight has finished (drained). If pins still
//   hold the volume `deadline` after the call, their release callbacks run (see PinForCopy).
//   Suspending a suspended volume waits for the same drain.
// - Resume(): only after the drain (FailedPrecondition while draining). Swaps in the
//   inactive table if there is one and then bumps generation(); restarts the queued
//   requests, each on the reactor that submitted it, against the new table (they are
//   checked again against the new geometry).
// - Remove(): refuses while the volume is open (Open/Close, or a table of another volume
//   names it), has requests or pins in flight, or holds queued requests. A removed volume
//   drops its tables and fails new requests with kInvalid.
//
// Geometry. The size is the active table's length; the block size is the largest block size
// of its devices (512 without devices). Both change only at Resume; callers on other
// threads read them again after a resume.
//
// I/O. Submit follows include/ferry/block_device.h: any reactor thread; the request is cut
// into the pieces Table::Map gives (at every line, device and stripe-chunk boundary), each
// run by its target on the submitting reactor (leaf devices through block::SubmitSplit),
// and completes once when every piece has: with the first error a piece reported, else kOk.
// A flush goes to every device of every line (zero and error lines get none).
//
// Threads. Everything is thread-safe; the control calls (Load, Suspend, Resume, Remove,
// Message, PinForCopy) may come from any reactor thread. Suspend needs a reactor (its
// completion and deadline run there).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/inline_function.h"
#include "base/status.h"
#include "ferry/block_device.h"
#include "volume/stack.h"
#include "volume/table.h"

namespace ferry::io {
class Reactor;
}

namespace ferry::volume {

// "volume 'NAME'", for messages.
std::string VolumeLabel(std::string_view name);

// A volume is its own stacking capability (stack.h): stack() answers this.
class Volume : public block::BlockDevice,
               public block::CopyOffload,
               public Stack,
               public std::enable_shared_from_this<Volume> {
 public:
  using SuspendDone = InlineFunction<void(Status), 48>;

  // A volume with `table` active. InvalidArgument for an empty name or no table.
  static Result<std::shared_ptr<Volume>> Create(std::string name, std::shared_ptr<Table> table);
  ~Volume() override;

  // BlockDevice.
  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "volume"; }
  const block::Geometry& geometry() const override { return geometry_; }
  const block::QueueLimits& limits() const override { return limits_; }
  void Submit(block::IoRequest& req) override;
  // Delegates to the device under `lba` (zero lines are unmapped, error lines mapped).
  block::ProvisioningExtent Provisioning(Lba lba, BlockCount max) const override;

  // Native copies (block::CopyOffload), offered when a line of the active table copies
  // natively (Target::copy_granularity_bytes): then limits() carry that granularity. A leg
  // whose segments all lie inside one such line goes to its target's SubmitCopy and counts
  // as in flight (Suspend drains it); any other leg, or one submitted while suspended,
  // completes kNotSupported and the copy engine emulates it with ordinary I/O.
  block::CopyOffload* copy_offload() override;
  bool CanCopyFrom(const block::BlockDevice& src, std::string* why_not) const override;
  void SubmitCopy(block::CopyLegRequest& req) override;
  Stack* stack() override { return this; }
  const Stack* stack() const override { return this; }

  // Lifecycle (see the header comment).
  Status Load(std::shared_ptr<Table> table);
  void ClearInactive();
  void Suspend(std::chrono::nanoseconds deadline, SuspendDone done);
  Status Resume();
  Status Remove();
  // Holders (a LUN, a table of another volume) keep the volume open; Remove refuses then.
  void Open() override;
  void Close() override;

  // The hook for the copy engine's translate step (src/copy/translate.h), which pins every
  // volume a copy passes through (Stack::PinForCopy). The release request comes from a
  // Suspend's deadline, on the reactor that called Suspend.
  Result<CopyPin> PinForCopy(ReleaseRequest on_release) override;
  // Bumped each time Resume swaps in a new table; starts at 1.
  uint64_t generation() const override;
  std::shared_ptr<Stack> shared_stack() override { return shared_from_this(); }

  // dmsetup message: to the line with index `target_index`, or holding `sector`.
  Result<std::string> Message(size_t target_index, std::span<const std::string> args);
  Result<std::string> MessageAtSector(uint64_t sector, std::span<const std::string> args);

  // dmsetup table / table --inactive / status ("" without such a table).
  std::string TableText() const;
  std::string InactiveTableText() const;
  std::string StatusText() const;

  std::shared_ptr<Table> active_table() const override;
  Tables tables() const override;
  bool suspended() const;
  size_t in_flight() const;  // requests and pins
  size_t queued() const;
  int open_count() const;

 private:
  struct Fanout;
  struct LegCopy;
  struct Queued {
    block::IoRequest* req;
    io::Reactor* reactor;
  };
  struct Pin {
    ReleaseRequest on_release;
    bool asked = false;
  };
  struct Waiter {
    io::Reactor* reactor;
    SuspendDone done;
  };

  Volume(std::string name, std::shared_ptr<Table> table);
  static std::vector<std::unique_ptr<Fanout>>& FreeList();  // per thread
  void ApplyTableLocked();
  void Dispatch(block::IoRequest& req, std::shared_ptr<Table> table);
  void PieceDone(Fanout* f, size_t i, IoStatus st);
  void Finish(Fanout* f);
  void CopyDone(LegCopy* c, IoStatus st);
  // Drops one in-flight count (request or pin) and posts the drain waiters when it was
  // the last one of a suspend.
  void Drained(std::unique_lock<std::mutex>& lock);
  void DeadlinePassed(uint64_t epoch);
  void Unpin(uint64_t id) override;
  bool References(const Table& table, int depth) const;

  const std::string name_;
  mutable std::mutex mu_;
  block::Geometry geometry_;  // written under mu_ (Create, Resume)
  block::QueueLimits limits_;
  std::shared_ptr<Table> active_;    // guarded by mu_
  std::shared_ptr<Table> inactive_;  // guarded by mu_
  uint64_t generation_ = 1;          // guarded by mu_
  bool suspended_ = false;           // guarded by mu_
  uint64_t suspend_epoch_ = 0;       // guarded by mu_: bumped by each Suspend of a live volume
  bool removed_ = false;             // guarded by mu_
  int open_ = 0;                     // guarded by mu_
  size_t in_flight_ = 0;             // guarded by mu_: requests being dispatched
  std::vector<Queued> queued_;       // guarded by mu_
  std::vector<Waiter> waiters_;      // guarded by mu_
  std::unordered_map<uint64_t, Pin> pins_;  // guarded by mu_
  uint64_t next_pin_ = 1;                   // guarded by mu_
};

}  // namespace ferry::volume
