// The copy API: one asynchronous copy engine for every client (ferryctl copy, EXTENDED COPY,
// ODX tokens, mirror resync, snapshot copy-on-write).
//
// A copy is one descriptor: a source device with a list of extents and one or more
// destination devices, each with its own list of extents of the same total length in bytes
// (block sizes may differ). The engine offloads the parts the destination backend can copy
// natively (CopyOffload) and emulates the rest with pipelined reads and writes through
// pooled bounce buffers. Offload is an optimisation, never a semantic: both paths leave
// identical bytes, and the result says how many bytes each path moved.
//
// Threads. A CopyEngine lives on one reactor. Submit() is called on that reactor's thread;
// the completion runs there exactly once and never inside Submit(). CopyJob::Cancel() and
// CopyJob::progress() may be called from any thread.
//
// Overlap. When source and destination are the same device and a destination extent
// overlaps a source extent, a single source/destination extent pair behaves like memmove;
// for longer lists the result is that of copying chunk by chunk in list order (where
// destination extents overlap each other, the later one wins). Devices are compared as
// objects: two device objects over the same storage are not known to overlap.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/inline_function.h"
#include "base/io_status.h"
#include "base/status.h"
#include "base/units.h"
#include "ferry/block_device.h"

namespace ferry::io {
class Reactor;
}

namespace ferry::copy {

// A range of a device in that device's blocks.
struct Extent {
  Lba lba;
  BlockCount blocks;
};

struct CopyDestination {
  block::BlockDevice* dev = nullptr;
  std::vector<Extent> extents;
};

inline constexpr size_t kMaxDestinations = 8;  // as dm-kcopyd

struct CopyDescriptor {
  block::BlockDevice* src = nullptr;
  std::vector<Extent> src_extents;
  std::vector<CopyDestination> dsts;  // 1..kMaxDestinations
  bool allow_offload = true;          // false: emulate everything (--no-offload)
};

// A failed piece of a copy. `stream_offset_bytes` counts from the start of the copy (the
// concatenation of the source extents); `dev` and `lba` name where the failure happened.
struct RangeError {
  bool on_source = false;  // the read failed (every destination misses these bytes)
  size_t dst_index = 0;    // which destination, when !on_source
  const block::BlockDevice* dev = nullptr;
  Lba lba;
  uint64_t stream_offset_bytes = 0;
  uint64_t len_bytes = 0;
  IoStatus status = IoStatus::kOk;
};

inline constexpr size_t kNumMechanisms = 10;  // values of block::CopyMechanism

// Byte counts of a copy; bytes are counted per destination (two destinations of 1 MiB
// count 2 MiB).
struct CopyCounters {
  uint64_t total_bytes = 0;
  uint64_t done_bytes = 0;
  uint64_t offloaded_bytes = 0;
  uint64_t emulated_bytes = 0;
  // Index: block::CopyMechanism as the device reported it for each native leg (kNone: the
  // device did not say), kEmulated for the engine's reads and writes.
  std::array<uint64_t, kNumMechanisms> by_mechanism{};
};

struct CopyResult {
  IoStatus status = IoStatus::kOk;  // kOk only when every byte reached every destination
  CopyCounters counters;
  std::vector<RangeError> errors;  // in stream order; empty when status is kOk
  // Why (parts of) the copy were not offloaded, one line per reason; for --verbose.
  std::vector<std::string> offload_notes;
};

using CopyDoneFn = InlineFunction<void(CopyResult), 64>;

// A copy in flight.
class CopyJob {
 public:
  virtual ~CopyJob() = default;
  // Thread-safe. Stops issuing new work; the copy completes with kAborted once what is in
  // flight has finished. No effect after completion.
  virtual void Cancel() = 0;
  // Thread-safe snapshot of the counters so far.
  virtual CopyCounters progress() const = 0;
};

struct EngineOptions {
  uint64_t chunk_bytes = 1u << 20;      // emulated read/write size
  uint32_t queue_depth = 8;             // emulated chunks in flight per job
  uint32_t max_buffers = 64;            // bounce buffers of the engine (memory bound)
  uint64_t throttle_bytes_per_sec = 0;  // shared by all jobs; 0: unthrottled
};

class CopyEngine {
 public:
  // `reactor` must outlive the engine; the engine must outlive its jobs.
  static Result<std::unique_ptr<CopyEngine>> Create(io::Reactor* reactor, EngineOptions options);
  virtual ~CopyEngine() = default;

  // Validates the descriptor (devices present, extents inside devices, equal lengths,
  // 1..kMaxDestinations destinations, read-only destinations refused) and starts the copy.
  // An invalid descriptor returns an error and `done` is never called.
  virtual Result<std::shared_ptr<CopyJob>> Submit(CopyDescriptor desc, CopyDoneFn done) = 0;

  // Number of jobs in flight.
  virtual size_t active_jobs() const = 0;
};

}  // namespace ferry::copy
