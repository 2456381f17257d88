// A snapshot's exception store: which origin chunks have been copied to which COW chunks.
//
// Persistent stores (P) keep the format of store_format.h on the COW device; transient ones
// (N) keep exceptions in memory and use every COW chunk for data.
//
// Crash consistency (P). An exception becomes visible only by Commit(): the caller has
// already written the chunk's data to its COW chunk (and seen it complete); Commit flushes
// the COW device, writes the metadata blocks holding the new records, and flushes again.
// A crash before the second flush leaves each record durable or not; either way the data it
// names is complete. Commits queue and go out in batches, one batch at a time.
//
// Threads: every call on one reactor (the snapshot's home); callbacks run there, never
// inside the call. The COW device must outlive the store.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "base/inline_function.h"
#include "base/status.h"
#include "ferry/block_device.h"
#include "volume/snapshot/store_format.h"

namespace ferry::volume::snapshot {

class ExceptionStore {
 public:
  using Done = InlineFunction<void(ferry::Status), 64>;
  struct Options {
    block::BlockDevice* cow = nullptr;
    uint32_t chunk_sectors = 8;
    bool persistent = true;
    uint64_t origin_chunks = 0;  // records past it are corrupt
  };
  explicit ExceptionStore(Options o);

  // P: reads the header (formats a blank device) and every metadata area. N: ready at once.
  void Open(Done done);

  bool valid() const { return valid_; }
  bool persistent() const { return o_.persistent; }
  uint64_t chunk_bytes() const { return chunk_bytes_; }
  // The COW chunk of `origin_chunk`'s committed exception.
  std::optional<uint64_t> Lookup(uint64_t origin_chunk) const;
  // Reserves a slot (and its COW chunk, SlotChunk) for a new exception of `origin_chunk`;
  // ResourceExhausted when the device is full.
  Result<uint64_t> Allocate(uint64_t origin_chunk);
  uint64_t SlotChunk(uint64_t slot) const;
  // Makes the exception of an allocated slot durable and visible; after an error the store
  // is invalid in memory and the caller persists that with Invalidate(). A slot whose copy failed
  // is simply never committed (it stays empty).
  void Commit(uint64_t slot, Done done);
  // Marks the store invalid, on disk too (P); `done` once the header is durable.
  void Invalidate(Done done);

  // Merge: the live exception in the highest slot, as (slot, origin chunk, COW chunk).
  struct Live {
    uint64_t slot, origin_chunk, cow_chunk;
  };
  std::optional<Live> LastLive() const;
  // Records that the slot's data now lives in the origin again; the exception disappears
  // once durable. An error invalidates the store in memory, as for Commit.
  void MarkMerged(uint64_t slot, Done done);

  // Invariants: in-memory map and slots agree, every COW chunk owned at most once and inside
  // the device, origin chunks in range (DataLoss says which).
  ferry::Status Check() const;

  uint64_t live_exceptions() const { return map_.size(); }
  // Chunks taken by the header and metadata areas in use (0 for N).
  uint64_t metadata_chunks() const;
  uint64_t cow_chunks() const { return cow_chunks_; }

 private:
  struct Pending {
    uint64_t slot;
    Done done;
  };
  void ReadArea(uint64_t area, std::shared_ptr<std::vector<uint8_t>> buf, Done done);
  void FinishOpen(Done done);
  void Format(Done done);
  void StartBatch();
  void WriteSlots(const std::vector<uint64_t>& slots, Done done);
  void FlushThen(Done done);
  void Fail();
  void Kick();  // starts the next queued metadata write when none is in flight

  Options o_;
  uint64_t chunk_bytes_;
  uint64_t cow_chunks_;
  Layout layout_;
  bool valid_ = true;
  uint64_t store_id_ = 0;
  std::vector<Record> slots_;                            // committed state of each slot
  std::unordered_map<uint64_t, uint64_t> pending_slot_;  // allocated slot -> origin chunk
  std::unordered_map<uint64_t, uint64_t> map_;           // origin chunk -> slot (live)
  uint64_t next_slot_ = 0;
  std::vector<Pending> queue_;          // commits waiting for the next batch
  std::vector<Pending> merge_waiting_;  // MarkMerged calls waiting for the batch in flight
  bool busy_ = false;
};

}  // namespace ferry::volume::snapshot
