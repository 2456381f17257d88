// Statistics of one logical unit (docs/metrics.md): READ and WRITE commands and bytes,
// their latency from Execute() to completion, commands in flight, and CHECK CONDITIONs by
// sense key and additional sense code.
//
// Threads: Started() and Completed() run on the reactor of the command (many reactors
// share a logical unit); they cost relaxed atomic adds on the calling thread's shard
// (metrics/histogram.h), no lock. Snapshot() runs anywhere (the metrics HTTP thread).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "metrics/histogram.h"
#include "scsi/sense.h"

namespace ferry::scsi {

struct Task;

struct LuStatsSnapshot {
  uint64_t read_ops = 0;    // READ(6/10/12/16) completed, whatever their status
  uint64_t read_bytes = 0;  // ... and the bytes of those that completed GOOD
  uint64_t write_ops = 0;   // WRITE, WRITE AND VERIFY, ORWRITE, WRITE ATOMIC
  uint64_t write_bytes = 0;
  uint64_t other_ops = 0;  // every other command
  uint64_t in_flight = 0;  // executing now (a gauge)
  metrics::HistogramSnapshot read_latency, write_latency;
  struct Error {
    SenseKey key;
    Asc asc;  // ASC << 8 | ASCQ
    uint64_t count;
  };
  std::vector<Error> errors;      // CHECK CONDITIONs
  uint64_t errors_untracked = 0;  // CHECK CONDITIONs past the table's distinct (key, ASC) pairs
};

class LuStats {
 public:
  // Distinct (sense key, ASC) pairs counted per logical unit; later new pairs are counted
  // as untracked (bounds the label cardinality of ferry_lun_errors_total).
  static constexpr size_t kErrorSlots = 32;

  // A command starts; returns its start time (steady clock, ns) for Completed().
  uint64_t Started();
  // The command completed (status and sense set); `block_size` of the LU.
  void Completed(const Task& t, uint64_t start_ns, uint32_t block_size);
  LuStatsSnapshot Snapshot() const;

 private:
  struct Shard {
    std::atomic<uint64_t> started{0}, completed{0};
    std::atomic<uint64_t> read_ops{0}, read_bytes{0}, write_ops{0}, write_bytes{0};
    metrics::LatencyHistogram read_latency, write_latency;
  };
  void CountError(const Sense& s);

  metrics::Sharded<Shard> shards_;
  // Slot i counts the pair in error_keys_[i] (1 << 24 | key << 16 | asc; 0: free).
  std::array<std::atomic<uint32_t>, kErrorSlots> error_keys_{};
  std::array<std::atomic<uint64_t>, kErrorSlots> error_counts_{};
  std::atomic<uint64_t> errors_untracked_{0};
};

// What a completed command moved, for statistics: a READ or a WRITE (as LuStatsSnapshot
// counts them), and its bytes when it completed GOOD.
struct IoCount {
  bool read = false;
  bool write = false;
  uint64_t bytes = 0;
};
IoCount CountIo(const Task& t, uint32_t block_size);

// Label values: "illegal_request", "unit_attention", ...; the ASC as "0x2400".
std::string_view SenseKeyLabel(SenseKey k);

}  // namespace ferry::scsi
