// A volume table: contiguous lines `<start_sector> <num_sectors> <target_type> <args...>` in
// device-mapper syntax (sectors are 512 bytes), each owned by a target (target.h).
//
// Parse is the decoder of outside input (config, admin socket): it never crashes on any
// bytes, and its errors name the line, the target and what to fix, e.g.
// "line 2: striped: chunk size 7 is not a power of two >= 8 sectors". ToText prints the
// canonical form, and Parse(ToText(t)) gives a table that prints the same.
//
// Rules checked: lines contiguous from sector 0 (no gaps or overlaps), lengths > 0, known
// target types, argument counts and numbers (no overflow), devices that exist (through the
// lookup) and ranges inside them, and alignment: the volume's block size is the largest
// block size of its devices, and every line start and length, device offset and stripe
// chunk must be a multiple of it. Blank lines and lines starting with '#' are skipped (line
// numbers still count them).
//
// A table is immutable after Parse except for the targets' own runtime state (counters,
// flakey's forced state); it is shared by the reactors submitting I/O to its volume.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "block/registry.h"
#include "ferry/block_device.h"
#include "volume/target.h"

namespace ferry::volume {

struct TableOptions {
  DeviceLookup lookup;  // resolves device names; unset: every device is missing
  TargetClock clock;    // unset: std::chrono::steady_clock::now
  TargetEnv env;        // the reactor and data mover of stateful targets (data_mover.h)
};

// A lookup over a registry (the registry must outlive the lookup's uses).
DeviceLookup LookupIn(const block::DeviceRegistry& registry);

class Table;

// Runs Target::Prepare of every line, in order, stopping at the first error (prefixed with
// "line N: <type>: "). `done` runs exactly once, possibly inside the call. Whoever parses a
// table prepares it before handing it to Volume::Create or Volume::Load.
void PrepareTable(std::shared_ptr<Table> table, Target::PrepareDone done);

class Table {
 public:
  static Result<std::shared_ptr<Table>> Parse(std::string_view text, const TableOptions& options);

  // One line per target, "start len type args\n", canonical numbers.
  std::string ToText() const;
  // dmsetup status: "start len type status\n" per line.
  std::string StatusText() const;

  size_t size() const { return entries_.size(); }
  Target& target(size_t i) const { return *entries_[i].target; }
  uint64_t start_sectors(size_t i) const { return entries_[i].start_sectors; }
  uint32_t line(size_t i) const { return entries_[i].line; }  // 1-based line of the text
  uint64_t num_sectors() const { return num_sectors_; }
  uint32_t block_size() const { return block_size_; }
  // Derived from the devices (see table.cc); max_copy_bytes is always 0.
  const block::QueueLimits& limits() const { return limits_; }

  // The line holding `sector`; size() when the sector is past the end.
  size_t FindTarget(uint64_t sector) const;

  // Pure mapping of [offset, offset + len) bytes of the volume for `op`: pieces in volume
  // order, cut at every line, device and stripe-chunk boundary, with volume offsets and
  // line indexes filled in. For kFlush (offset and len ignored): one piece per device that
  // must be flushed. OutOfRange when the range is not inside the table.
  Status Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
             std::vector<MappedPiece>* out) const;

  // Every device of every line (with repeats).
  void ForEachUnderlying(const std::function<void(block::BlockDevice&, uint64_t)>& fn) const;

 private:
  struct Entry {
    uint64_t start_sectors = 0;
    uint64_t num_sectors = 0;
    uint32_t line = 0;
    std::unique_ptr<Target> target;
  };
  Table() = default;
  Status Finish();  // block size, alignment, limits

  std::vector<Entry> entries_;
  uint64_t num_sectors_ = 0;
  uint32_t block_size_ = 512;
  block::QueueLimits limits_;
};

}  // namespace ferry::volume
