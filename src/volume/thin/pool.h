// Pool: the runtime of one thin pool, shared by its thin-pool target and every thin target
// over it (docs/targets/thin-pool.md, docs/targets/thin.md).
//
// It owns the PoolMetadata and decides when to commit (flush/FUA, every second, suspend),
// serialises the writes that provision or copy a block (cells), queues writes while the pool
// is out of data space, and passes blocks freed by a commit down to the data device.
//
// Threads. The metadata is single-threaded: every call below marked "pool reactor" runs on
// reactor() only. Message, Status and RunSync may be called from any thread; from another
// thread they post to the pool reactor and wait (control path only).
//
// Lifetime. Shared: the thin-pool target, thin targets and every operation in flight hold a
// std::shared_ptr, so the metadata and the devices outlive commits and I/O in flight. One live
// pool per metadata device: a reloaded pool table over the same devices reuses it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/inline_function.h"
#include "base/status.h"
#include "ferry/block_device.h"
#include "io/reactor.h"
#include "volume/data_mover.h"
#include "volume/thin/pool_metadata.h"

namespace ferry::volume::thin {

struct PoolOptions {
  uint32_t data_block_bytes = 65536;
  uint64_t low_water_blocks = 0;
  bool skip_block_zeroing = false;
  bool ignore_discard = false;
  bool no_discard_passdown = false;
  bool read_only = false;
  bool error_if_no_space = false;
};

// Thin devices get this many virtual bytes in the metadata; the thin table line sets the size
// the volume shows (dm-thin devices have no size in the metadata either).
inline constexpr uint64_t kThinVirtualBytes = uint64_t{1} << 50;

// Thin device ids are 24 bits, as in dm-thin.
inline constexpr uint64_t kMaxThinId = (uint64_t{1} << 24) - 1;
Result<uint32_t> ParseThinId(std::string_view token);

class Pool : public std::enable_shared_from_this<Pool> {
 public:
  using OpenDone = std::function<void(Result<std::shared_ptr<Pool>>)>;
  using IoDone = InlineFunction<void(IoStatus), 48>;
  // A queued step: true to retry, false when it must fail (no-space timeout).
  using Retry = InlineFunction<void(bool), 48>;

  // Opens the metadata on env.reactor, or formats it when its superblock slots are all zero;
  // reuses the live pool of `meta` when there is one over the same data device and block
  // size. `done` runs once, on the pool reactor.
  static void Open(std::shared_ptr<block::BlockDevice> meta,
                   std::shared_ptr<block::BlockDevice> data, PoolOptions options, TargetEnv env,
                   OpenDone done);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  io::Reactor* reactor() const { return env_.reactor; }
  DataMover* mover() const { return env_.mover; }
  block::BlockDevice& data() const { return *data_; }
  block::BlockDevice& meta_device() const { return *meta_dev_; }
  const PoolOptions& options() const { return options_; }
  // The `read_only` feature, or a commit failed (needs_check): the metadata must not change.
  // Pool reactor.
  bool metadata_read_only() const { return options_.read_only || metadata_error_; }
  uint32_t block_bytes() const { return options_.data_block_bytes; }
  // A zeroed buffer of one data block (write-zeroes, zero-filled provisioning).
  std::span<const uint8_t> zeroes() const { return zeroes_; }

  // ---- pool reactor ----
  PoolMetadata& meta() { return *meta_; }
  // Flushes the data device, then commits the metadata; `done` gets kOk once both are
  // durable. Calls that arrive while a commit runs are served by the next one.
  void FlushAndCommit(IoDone done);
  // Cells: a (device, vblock) whose block is being provisioned or copied. Other I/O to it
  // waits (WaitCell) until Unlock.
  bool Locked(uint32_t dev, uint64_t vblock) const;
  void Lock(uint32_t dev, uint64_t vblock);
  void Unlock(uint32_t dev, uint64_t vblock);
  void WaitCell(uint32_t dev, uint64_t vblock, Retry retry);
  // Data blocks whose discard passdown is in flight: a write to one waits for it.
  bool Discarding(uint64_t dblock) const;
  void WaitDiscard(Retry retry);
  // Out of data space (queue_if_no_space): `retry(true)` once a commit frees blocks,
  // `retry(false)` after the no-space timeout.
  void WaitForSpace(Retry retry);
  void NoteOutOfSpace() { out_of_space_ = true; }
  // A discard released blocks: commits at once when writes wait for space.
  void BlocksReleased();

  // ---- any thread ----
  // dmsetup status of the thin-pool line (see docs/targets/thin-pool.md).
  std::string Status();
  Result<std::string> Message(std::span<const std::string> args);
  // Runs `fn` on the pool reactor (inline when called there) and waits for it.
  void RunSync(const std::function<void()>& fn);
  // Commits in the background (suspend).
  void CommitSoon();
  void set_options(const PoolOptions& o) { options_ = o; }

 private:
  struct Waiter {
    Retry retry;
    std::chrono::steady_clock::time_point deadline;
  };
  Pool(std::shared_ptr<block::BlockDevice> meta, std::shared_ptr<block::BlockDevice> data,
       PoolOptions options, TargetEnv env);
  static void OpenOnReactor(std::shared_ptr<Pool> pool, OpenDone done);
  static void OpenMetadata(std::shared_ptr<Pool> pool, bool blank, OpenDone done);
  ferry::Status CheckOpened() const;
  void StartCommit();
  void CommitDone(IoStatus st);
  void WakeSpaceWaiters();
  // Grows the metadata to the data device's size when it grew (a reloaded pool table).
  ferry::Status MaybeGrow();
  void PassDown(uint64_t first, uint64_t count);
  void Tick();
  Result<std::string> MessageOnReactor(std::span<const std::string> args);

  std::shared_ptr<block::BlockDevice> meta_dev_;
  std::shared_ptr<block::BlockDevice> data_;
  PoolOptions options_;
  TargetEnv env_;
  std::unique_ptr<PoolMetadata> meta_;
  std::vector<OpenDone> open_waiters_;  // tables prepared while the metadata opens
  std::vector<uint8_t> zeroes_;

  // Commits.
  bool committing_ = false;
  std::vector<IoDone> commit_waiters_;  // served by the next commit
  std::vector<IoDone> in_commit_;       // served by the commit in flight
  block::IoRequest flush_req_;
  // Cells and their waiters.
  std::map<std::pair<uint32_t, uint64_t>, std::vector<Retry>> cells_;
  // Discard passdown in flight: first block -> count.
  std::map<uint64_t, uint64_t> discarding_;
  std::vector<Retry> discard_waiters_;
  // Out of space.
  std::vector<Waiter> space_waiters_;
  bool out_of_space_ = false;
  std::chrono::seconds no_space_timeout_{60};
  bool metadata_error_ = false;  // a commit failed: the pool is read-only until reloaded
};

}  // namespace ferry::volume::thin
