// Internal: the state of one snapshot (origin + COW device), shared by every table that
// names the same COW device (a reloaded snapshot or snapshot-merge table adopts the live
// state instead of opening the store twice), and found by snapshot-origin through the
// origin registry (dm's origin hash) once prepared.
//
// Threads. A core lives on its home reactor (TargetEnv::reactor): every method below runs
// there unless it says "any thread". Piece completions are posted back to the reactor that
// submitted the piece.
//
// Ordering rules (docs/targets/snapshot.md, "Copies"):
// - a chunk has at most one exception in progress (`pending_`); writes to it wait;
// - an origin write to a chunk waits until the chunk is committed in every snapshot that
//   lacks it, and until snapshot reads of that chunk already sent to the origin finished;
// - while merging, the chunk being merged is closed to writes.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/reactor.h"
#include "volume/data_mover.h"
#include "volume/snapshot/exception_store.h"
#include "volume/target.h"

namespace ferry::volume::snapshot {

class SnapshotCore : public std::enable_shared_from_this<SnapshotCore> {
 public:
  struct Params {
    std::shared_ptr<block::BlockDevice> origin;
    std::shared_ptr<block::BlockDevice> cow;
    bool persistent = true;
    uint32_t chunk_sectors = 8;
    io::Reactor* home = nullptr;
    DataMover* mover = nullptr;
  };
  using Done = ExceptionStore::Done;

  // Any thread. The live core of `p.cow` when one exists (its origin, store type and chunk
  // size must match), else a new, unprepared one.
  static Result<std::shared_ptr<SnapshotCore>> Get(const Params& p);
  // Any thread. Prepared cores of `origin`.
  static std::vector<std::shared_ptr<SnapshotCore>> ForOrigin(const block::BlockDevice* origin);
  // Any thread: runs `done` on `back` once every core in `cores` holds the chunks of
  // [offset, offset + len) of the origin (or has given up on them by invalidating).
  static void SaveInAll(std::vector<std::shared_ptr<SnapshotCore>> cores, uint64_t offset,
                        uint64_t len, io::Reactor* back, io::Task done);
  ~SnapshotCore();

  // Any thread. Opens (or formats) the store once, then registers the core for its origin.
  // `done` runs on the home reactor.
  void Prepare(Done done);
  io::Reactor* home() const { return p_.home; }
  const Params& params() const { return p_; }
  uint64_t chunk_bytes() const { return chunk_bytes_; }

  // A piece of a snapshot (or snapshot-merge) line: offsets are origin offsets, inside one
  // chunk. Completes io.child.done on `back`.
  void Submit(PieceIo& io, io::Reactor* back);
  // Runs `done` (on home) once the chunks of [offset, offset + len) are saved here.
  void EnsureSaved(uint64_t offset, uint64_t len, io::Task done);

  // Merge (snapshot_merge.cc): start copying exceptions back; pause and resume around
  // suspend.
  void StartMerge();
  void PauseMerge(bool pause);

  // Any thread: "Invalid" or "<allocated>/<total> <metadata>" in sectors.
  std::string Status() const;
  // Home thread (tests): the store, for Check().
  const ExceptionStore& store() const { return store_; }
  bool merging() const { return merging_; }

 private:
  // One piece of a snapshot line in flight (heap-held, freed when it completes).
  struct Op {
    std::shared_ptr<SnapshotCore> core;
    PieceIo* io = nullptr;
    io::Reactor* back = nullptr;
    uint64_t chunk = 0;     // origin chunk
    uint64_t in_chunk = 0;  // byte offset inside it
    uint64_t len = 0;
    uint64_t slot = 0;
  };
  struct PendingChunk {
    uint64_t slot = 0;
    bool committed = false;  // waiting only for origin reads to drain
    std::vector<io::Task> waiters;
  };
  explicit SnapshotCore(const Params& p);
  void Register();
  void Read(Op* op);
  void Write(Op* op);
  void WriteNew(Op* op);
  void WriteCow(Op* op);
  void MergeWrite(Op* op);
  void Complete(Op* op, IoStatus st);
  void StartCopy(uint64_t chunk);
  void CopyDone(uint64_t chunk, IoStatus st);
  void Committed(uint64_t chunk, const ferry::Status& st);
  void Release(uint64_t chunk);
  void OriginReadDone(uint64_t chunk);
  void InvalidateNow(const std::string& why);
  uint64_t ChunkLen(uint64_t chunk) const;
  void UpdateStats();
  void MergeStep();
  void MergeCopy(ExceptionStore::Live live);
  void MergeFinished(uint64_t chunk, const ferry::Status& st);
  void CowWriteDone(uint64_t chunk);

  const Params p_;
  const uint64_t chunk_bytes_;
  ExceptionStore store_;
  enum class OpenState { kClosed, kOpening, kOpen, kFailed } open_ = OpenState::kClosed;
  ferry::Status open_error_;
  std::vector<Done> open_waiters_;
  std::unordered_map<uint64_t, PendingChunk> pending_;
  std::unordered_map<uint64_t, int> origin_reads_;  // snapshot reads sent to the origin
  std::unordered_map<uint64_t, int> cow_writes_;    // writes in flight to exception chunks
  // Merge state.
  bool merging_ = false;
  bool merge_paused_ = false;
  bool merge_busy_ = false;
  uint64_t merging_chunk_ = UINT64_MAX;
  std::vector<io::Task> merge_waiters_;
  // Status, readable from any thread.
  std::atomic<bool> valid_{true};
  std::atomic<bool> registered_{false};  // prepared: snapshot-origin sees it
  std::atomic<uint64_t> allocated_sectors_{0};
  std::atomic<uint64_t> metadata_sectors_{0};
};

}  // namespace ferry::volume::snapshot
