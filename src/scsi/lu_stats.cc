#include "scsi/lu_stats.h"

#include <chrono>

#include "scsi/opcodes.h"
#include "scsi/task.h"

namespace ferry::scsi {
namespace {

using metrics::Add;
using metrics::Load;

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

IoCount CountIo(const Task& t, uint32_t block_size) {
  IoCount c;
  auto bt = DecodeBlockTransfer(t.cdb.data());
  if (!bt) return c;
  const uint8_t op = t.cdb[0];
  c.read = bt->data_in;
  c.write = !bt->data_in && op != kVerify10 && op != kVerify12 && op != kVerify16;
  if ((c.read || c.write) && t.status == Status::kGood) c.bytes = uint64_t{bt->blocks} * block_size;
  return c;
}

uint64_t LuStats::Started() {
  Add(shards_.Mine().started, 1);
  return NowNs();
}

void LuStats::Completed(const Task& t, uint64_t start_ns, uint32_t block_size) {
  const uint64_t ns = NowNs() - start_ns;
  Shard& s = shards_.Mine();
  const IoCount io = CountIo(t, block_size);
  if (io.read) {
    Add(s.read_ops, 1);
    Add(s.read_bytes, io.bytes);
    s.read_latency.Observe(ns);
  } else if (io.write) {
    Add(s.write_ops, 1);
    Add(s.write_bytes, io.bytes);
    s.write_latency.Observe(ns);
  }
  if (t.status == Status::kCheckCondition && t.has_sense) CountError(t.sense);
  Add(s.completed, 1);
}

void LuStats::CountError(const Sense& sense) {
  const uint32_t key =
      1u << 24 | uint32_t{static_cast<uint8_t>(sense.key)} << 16 | static_cast<uint16_t>(sense.asc);
  // Open addressing from a hash of the pair; a slot, once claimed, keeps its pair.
  const size_t start = (key * 2654435761u) % kErrorSlots;
  for (size_t i = 0; i < kErrorSlots; ++i) {
    const size_t slot = (start + i) % kErrorSlots;
    uint32_t seen = error_keys_[slot].load(std::memory_order_acquire);
    if (seen == 0 && error_keys_[slot].compare_exchange_strong(seen, key)) seen = key;
    if (seen == key) return Add(error_counts_[slot], 1);
  }
  Add(errors_untracked_, 1);
}

LuStatsSnapshot LuStats::Snapshot() const {
  LuStatsSnapshot out;
  uint64_t started = 0, completed = 0;
  shards_.ForEach([&](const Shard& s) {
    started += Load(s.started);
    completed += Load(s.completed);
    out.read_ops += Load(s.read_ops);
    out.read_bytes += Load(s.read_bytes);
    out.write_ops += Load(s.write_ops);
    out.write_bytes += Load(s.write_bytes);
    s.read_latency.AddTo(&out.read_latency);
    s.write_latency.AddTo(&out.write_latency);
  });
  // Completions read after their start (the shards are read in one pass, so a command
  // may be seen completed and not started): never below zero.
  out.in_flight = started > completed ? started - completed : 0;
  out.other_ops = completed - std::min(completed, out.read_ops + out.write_ops);
  for (size_t i = 0; i < kErrorSlots; ++i) {
    const uint32_t k = error_keys_[i].load(std::memory_order_acquire);
    const uint64_t n = Load(error_counts_[i]);
    if (k == 0 || n == 0) continue;
    out.errors.push_back(
        {static_cast<SenseKey>((k >> 16) & 0xff), static_cast<Asc>(k & 0xffff), n});
  }
  out.errors_untracked = Load(errors_untracked_);
  return out;
}

std::string_view SenseKeyLabel(SenseKey k) {
  switch (k) {
    case SenseKey::kNoSense: return "no_sense";
    case SenseKey::kRecoveredError: return "recovered_error";
    case SenseKey::kNotReady: return "not_ready";
    case SenseKey::kMediumError: return "medium_error";
    case SenseKey::kHardwareError: return "hardware_error";
    case SenseKey::kIllegalRequest: return "illegal_request";
    case SenseKey::kUnitAttention: return "unit_attention";
    case SenseKey::kDataProtect: return "data_protect";
    case SenseKey::kBlankCheck: return "blank_check";
    case SenseKey::kCopyAborted: return "copy_aborted";
    case SenseKey::kAbortedCommand: return "aborted_command";
    case SenseKey::kVolumeOverflow: return "volume_overflow";
    case SenseKey::kMiscompare: return "miscompare";
  }
  return "other";
}

}  // namespace ferry::scsi
