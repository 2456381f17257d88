// The RAM backend: a sparse in-memory block device.
//
// Memory is allocated in chunks on first write; unwritten chunks read as zeroes, and
// discard and write-zeroes free whole chunks (partial chunks are zeroed), so a thin RAM
// device costs only what was written. Devices that share a RamArena can copy between each
// other natively (memmove of chunk contents, holes stay holes).
//
// Thread-safe: requests may be submitted from any reactor; each completes on the reactor
// that submitted it, through a posted task (never inline).
#pragma once

#include <atomic>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "base/status.h"
#include "ferry/block_device.h"

namespace ferry::backends {

// Memory shared by a group of RAM devices: native copies happen only inside one arena.
// `max_bytes` caps the memory all its devices may allocate (0: no cap); a write that would
// exceed it completes with kNoSpace.
class RamArena {
 public:
  explicit RamArena(uint64_t max_bytes = 0) : max_bytes_(max_bytes) {}
  uint64_t allocated_bytes() const { return allocated_.load(std::memory_order_relaxed); }
  uint64_t max_bytes() const { return max_bytes_; }

  // Reserves one chunk's worth of memory against the cap.
  bool Charge(uint64_t bytes);
  void Uncharge(uint64_t bytes) { allocated_.fetch_sub(bytes, std::memory_order_relaxed); }

 private:
  const uint64_t max_bytes_;
  std::atomic<uint64_t> allocated_{0};
};

struct RamOptions {
  std::string name;
  uint64_t size_bytes = 0;          // a multiple of block_size, > 0
  uint32_t block_size = 512;        // a power of two, 512..65536
  std::shared_ptr<RamArena> arena;  // nullptr: a private arena without a cap
  bool read_only = false;
};

class RamDevice : public block::BlockDevice, public block::CopyOffload {
 public:
  static constexpr uint64_t kChunkBytes = 64 * 1024;

  static Result<std::shared_ptr<RamDevice>> Create(RamOptions options);

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "ram"; }
  const block::Geometry& geometry() const override { return geometry_; }
  const block::QueueLimits& limits() const override { return limits_; }
  bool read_only() const override { return read_only_; }
  void Submit(block::IoRequest& req) override;
  block::CopyOffload* copy_offload() override { return this; }
  // Mapped: the chunk holding the block is allocated (a partly discarded chunk stays
  // mapped, zeroed).
  block::ProvisioningExtent Provisioning(Lba lba, BlockCount max) const override;

  // CopyOffload: native copy from any RamDevice of the same arena.
  bool CanCopyFrom(const block::BlockDevice& src, std::string* why_not) const override;
  void SubmitCopy(block::CopyLegRequest& req) override;

  const std::shared_ptr<RamArena>& arena() const { return arena_; }
  // Bytes of memory this device holds (whole chunks).
  uint64_t allocated_bytes() const;

 private:
  RamDevice(RamOptions options);
  using Chunk = std::unique_ptr<std::byte[]>;

  IoStatus Read(const block::IoRequest& req);
  IoStatus Write(const block::IoRequest& req);
  IoStatus Zero(uint64_t offset, uint64_t len);  // frees whole chunks
  // Copies len bytes from src at src_off to this device at dst_off (memmove semantics
  // when src is this device). Caller holds the locks.
  IoStatus CopyLocked(RamDevice& src, uint64_t src_off, uint64_t dst_off, uint64_t len);
  std::byte* FindChunk(uint64_t index) const;
  std::byte* GetOrAllocChunk(uint64_t index, IoStatus* st);
  static void Complete(block::IoCallback& done, IoStatus st);

  std::string name_;
  block::Geometry geometry_;
  block::QueueLimits limits_;
  bool read_only_;
  std::shared_ptr<RamArena> arena_;
  mutable std::shared_mutex mu_;
  std::unordered_map<uint64_t, Chunk> chunks_;  // guarded by mu_
};

}  // namespace ferry::backends
