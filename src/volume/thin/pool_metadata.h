// Thin-pool metadata: which data block backs each block of each thin device, how many
// references each data block has, and crash-consistent commits of both to a metadata
// device (on-disk format and the reasons for it: format.h, docs/targets/thin-metadata.md).
//
// Model
// - The pool has `data_blocks` data blocks of `data_block_bytes` each, on a data device
//   this class never touches. A thin device (id chosen by the caller, any u32 but
//   format::kNoOrigin) has a virtual size in data blocks and maps some of its virtual
//   blocks ("vblocks") to data blocks ("dblocks").
// - refcount(d) is the number of mappings, over all thin devices, that point at d. A
//   block with refcount 0 is free. Snapshots and ShareRange make several mappings share
//   a block; a write to a shared block must copy it first (PrepareWrite says when).
//
// Transactions
// - Every mutation changes the in-memory state at once (lookups see it) and is durable
//   only after the next successful Commit(). A power cut at any point loses exactly the
//   changes since the last successful commit: Open() then finds the last committed state.
// - A data block freed by a mutation is not handed out again until the commit that
//   frees it has completed: until then the committed metadata still maps it, and a crash
//   must find its old contents there. So a pool whose free blocks were all freed in the
//   current transaction reports out-of-space until Commit().
// - Likewise a write goes in place only to a block whose single reference has been its
//   only one in every state a crash could bring back; otherwise PrepareWrite copies it.
//   A block shared with a snapshot (or by ShareRange) in the committed state is never
//   overwritten, even after the sharing device was deleted, until that is committed.
// - Before Commit(), the caller (the thin target) makes the data written to newly
//   provisioned blocks durable (flushes the data device): a committed mapping must never
//   point at data that a crash can still lose.
// - After a commit completes, the blocks it freed are passed to the discard hook (if set)
//   and become allocatable. A target that passes discards down keeps writes to a block
//   ordered after the discard it issued for it.
//
// Errors
// - PrepareWrite() fails with kResourceExhausted when no data block can be allocated
//   (out of data space); nothing else in the mapping API allocates. Commit() fails with
//   kResourceExhausted when the metadata device has no room for the record.
// - kNotFound: no such thin device; kAlreadyExists: the id is taken; kOutOfRange: a vblock
//   outside the device; kDataLoss: corrupt metadata on Open(), a broken invariant in Check().
//
// Threads: one reactor thread. Open(), Format() and Commit() do I/O on the calling
// reactor and complete through a callback, never inside the call; everything else is
// synchronous and in memory. Mutations may continue while a commit is in flight (they go
// into the next transaction); a second Commit() while one is in flight fails with
// kFailedPrecondition. The PoolMetadata and the device outlive every callback.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "base/inline_function.h"
#include "base/status.h"
#include "ferry/block_device.h"
#include "volume/thin/format.h"
#include "volume/thin/meta_io.h"

namespace ferry::volume::thin {

struct ThinDevice {
  uint64_t virtual_blocks = 0;
  uint32_t origin = format::kNoOrigin;  // the device this one is a snapshot of
  uint64_t created_txn = 0;             // the transaction that created it
  std::map<uint64_t, uint64_t> map;     // vblock -> dblock
  bool operator==(const ThinDevice&) const = default;
};

// What a commit makes durable and Open() loads.
struct PoolState {
  std::map<uint32_t, ThinDevice> devices;
  std::vector<uint32_t> refcount;  // one per data block
  bool operator==(const PoolState&) const = default;
};

// The invariants Check() verifies: every mapping inside its device and the pool, and for
// every data block refcount == the number of mappings that reach it (no leaked block, no
// block owned more times than counted). kDataLoss lists the first problems found.
Status CheckState(const PoolState& state);

enum class WriteAction : uint8_t {
  kOverwrite,    // the block is mapped and not shared: write it in place
  kProvision,    // a new block was mapped: the caller writes the whole block (zero-fill)
  kCopyOnWrite,  // the block was shared: a new block was mapped, the caller copies
                 // copy_from into it before writing
};

struct WritePlan {
  uint64_t data_block = 0;
  WriteAction action = WriteAction::kOverwrite;
  uint64_t copy_from = 0;  // kCopyOnWrite only
};

struct Lookup {
  uint64_t data_block = 0;
  // A write must copy the block first (PrepareWrite): it is shared now, or a state a
  // crash could bring back maps it elsewhere.
  bool shared = false;
};

struct FormatOptions {
  uint64_t data_blocks = 0;           // > 0
  uint32_t data_block_bytes = 65536;  // recorded for the thin target; > 0
};

struct OpenOptions {
  // Limits on what a (possibly corrupt) metadata device may make Open() allocate: data
  // blocks (4 bytes of memory each) and mappings (one map node each).
  uint64_t max_data_blocks = uint64_t{1} << 32;
  uint64_t max_mappings = uint64_t{1} << 32;
};

class PoolMetadata {
 public:
  using OpenDone = InlineFunction<void(Result<std::unique_ptr<PoolMetadata>>), 64>;
  using CommitDone = InlineFunction<void(Status), 64>;
  // Called after a commit with runs of data blocks it freed: [first, first + count).
  using DiscardHook = std::function<void(uint64_t first, uint64_t count)>;

  // Writes empty pool metadata (transaction 1, no thin devices) over the whole device and
  // completes with the opened pool.
  static void Format(block::BlockDevice& meta, FormatOptions options, OpenDone done);
  // Loads the newest committed state. kDataLoss when there is no valid thin metadata or
  // it is corrupt (the message says where); does not run Check().
  static void Open(block::BlockDevice& meta, OpenOptions options, OpenDone done);

  ~PoolMetadata();
  PoolMetadata(const PoolMetadata&) = delete;
  PoolMetadata& operator=(const PoolMetadata&) = delete;

  // Thin devices.
  Status CreateThin(uint32_t dev, uint64_t virtual_blocks);
  // A new device `snap` of origin's size that shares every mapped block of `origin`.
  Status CreateSnapshot(uint32_t origin, uint32_t snap);
  // Removes the device and releases all its blocks.
  Status DeleteThin(uint32_t dev);
  const ThinDevice* FindDevice(uint32_t dev) const;

  // Mappings.
  // std::nullopt: the vblock is unmapped (reads as zeroes).
  Result<std::optional<Lookup>> Find(uint32_t dev, uint64_t vblock) const;
  // The copy-on-write decision for a write to (dev, vblock); maps a new block when the
  // vblock is unmapped or its block is shared.
  Result<WritePlan> PrepareWrite(uint32_t dev, uint64_t vblock);
  // Undoes `plan` (from PrepareWrite) after the write it planned failed, so a failed write
  // never leaves the vblock mapped to a block holding someone else's old data: kProvision
  // unmaps it again; kCopyOnWrite maps the block it was copied from back when that block
  // still holds its data (freed by PrepareWrite and not yet reusable), else unmaps it
  // (it then reads zeroes). Nothing when the vblock no longer maps plan.data_block.
  Status AbortWrite(uint32_t dev, uint64_t vblock, const WritePlan& plan);
  // Unmaps [vblock, vblock + count) and releases the blocks (unmapped ones are skipped).
  Status Discard(uint32_t dev, uint64_t vblock, uint64_t count);
  // Makes dst's [dst_vblock, +count) map whatever src's [src_vblock, +count) maps (unmapped
  // stays unmapped), taking a reference on each shared block and releasing dst's old
  // blocks: a copy between two thin devices of the pool without moving data. The ranges
  // may overlap on the same device (memmove semantics).
  Status ShareRange(uint32_t src_dev, uint64_t src_vblock, uint32_t dst_dev, uint64_t dst_vblock,
                    uint64_t count);

  // Grows the pool to `data_blocks` data blocks (the data device grew): the new blocks are
  // free at once; the next commit records the new count. kInvalidArgument to shrink or past
  // 2^32 blocks.
  Status Grow(uint64_t data_blocks);

  // Makes every change since the last commit durable, atomically.
  void Commit(CommitDone done);
  // Check() of the in-memory state (CheckState), plus the allocator's own books.
  Status Check() const;

  void set_discard_hook(DiscardHook hook) { discard_hook_ = std::move(hook); }

  uint64_t txn() const { return committed_txn_; }  // the last committed transaction
  bool dirty() const;
  bool commit_in_progress() const { return commit_ != nullptr; }
  const PoolState& state() const { return state_; }
  uint64_t data_blocks() const { return state_.refcount.size(); }
  uint32_t data_block_bytes() const { return data_block_bytes_; }
  uint64_t used_data_blocks() const { return used_; }
  // Blocks PrepareWrite can allocate now (excludes blocks freed but not yet committed).
  uint64_t free_data_blocks() const;
  uint64_t meta_blocks() const { return meta_use_.size(); }
  uint64_t free_meta_blocks() const;

 private:
  struct Opener;
  struct Committer;
  struct Formatter;
  // One record on the committed chain, oldest first.
  struct RecordInfo {
    uint64_t txn = 0;
    bool full = false;
    std::vector<uint64_t> blocks;
  };
  // What one commit took out of the live dirty sets (restored if it fails).
  struct Dirty {
    std::set<uint32_t> deleted_devs;
    std::set<uint32_t> devs;
    std::set<std::pair<uint32_t, uint64_t>> maps;
    std::set<uint64_t> refs;
    bool empty() const {
      return deleted_devs.empty() && devs.empty() && maps.empty() && refs.empty();
    }
    void MergeFrom(Dirty& other);
  };
  // Per metadata block: free, a superblock slot, on the committed chain, or written by the
  // commit in flight.
  enum MetaUse : uint8_t { kMetaFree, kMetaSuper, kMetaCommitted, kMetaPending };

  PoolMetadata(block::BlockDevice& meta, uint64_t data_blocks, uint32_t data_block_bytes);

  // Reference counting; Unref of the last reference frees the block for the next txn.
  void Ref(uint64_t dblock);
  void Unref(uint64_t dblock);
  Result<uint64_t> AllocateDataBlock();
  bool NeedsCopy(uint64_t dblock) const;
  void SetMapping(uint32_t dev, ThinDevice& d, uint64_t vblock, uint64_t dblock);
  void EraseMapping(uint32_t dev, ThinDevice& d, uint64_t vblock);
  Result<ThinDevice*> GetDevice(uint32_t dev, uint64_t vblock, uint64_t count);

  // Commit internals (pool_commit.cc).
  std::vector<uint8_t> SerializeDelta(const Dirty& dirty) const;
  std::vector<uint8_t> SerializeFull() const;
  Result<std::vector<uint64_t>> AllocateMetaBlocks(size_t count);
  void FinishCommit(Status st);
  static void PostDone(CommitDone done, Status st);
  void RunDiscardHook(const std::set<uint64_t>& freed);

  // Open internals (pool_open.cc): replays one record's entries onto state_.
  Status Replay(std::span<const uint8_t> payload, const OpenOptions& options, uint64_t* mappings);
  // Recomputes used_ from refcounts after Open.
  void RecountUsed();

  MetaIo io_;
  uint32_t data_block_bytes_;
  PoolState state_;
  uint64_t used_ = 0;          // data blocks with refcount > 0
  uint64_t alloc_cursor_ = 0;  // next-fit allocation
  // Freed (refcount hit 0) since the in-flight/last commit started; not allocatable.
  std::set<uint64_t> freed_pending_;
  // Freed before the in-flight commit started; allocatable when it completes.
  std::set<uint64_t> freed_in_commit_;
  // Blocks whose set of references changed (other than by allocation) since the in-flight
  // /last commit started, and before it started. Writing such a block in place could
  // change what another mapping reads in a state a crash may recover, so a write copies it
  // even when its refcount is 1 (it may be mapped elsewhere in the committed state).
  std::set<uint64_t> unsafe_pending_;
  std::set<uint64_t> unsafe_in_commit_;
  // Allocated since the in-flight/last commit started: no recoverable state maps them, so
  // sharing them inside this transaction does not make them unsafe.
  std::set<uint64_t> fresh_pending_;
  Dirty dirty_;

  uint64_t committed_txn_ = 0;
  int committed_slot_ = 1;  // the superblock slot holding committed_txn_
  std::vector<RecordInfo> chain_;
  uint64_t chain_blocks_ = 0;  // sum of chain_ blocks
  bool force_full_ = false;
  std::vector<uint8_t> meta_use_;  // MetaUse per metadata block
  uint64_t meta_cursor_ = format::kSuperSlots;
  std::unique_ptr<Committer> commit_;
  DiscardHook discard_hook_;
};

}  // namespace ferry::volume::thin
