// A block device that forgets, for crash-consistency tests.
//
// Writes are volatile until a flush (or a FUA write) makes them durable, like a disk with
// a write-back cache. A "power cut" keeps only the durable contents: Crash() returns a new
// device holding them. With a random generator, each block written since the last flush
// instead survives in any of the versions written to it (or none), independently of the
// others: the cache may have written back any subset of its blocks, in any order, and a
// multi-block write may be torn at block boundaries.
//
// To crash at every point of an operation, a test calls Mark() before it, runs it, and
// then asks CrashAfter(n) for every n in 0..events_since_mark(): the device a power cut
// would have left after the first n writes and flushes (in submission order) since Mark().
//
// Writes take effect when submitted (a later read sees them); a flush makes every write
// submitted before it durable. Discard and write-zeroes are volatile writes of zeroes.
// Completion follows include/ferry/block_device.h: exactly once, posted to the submitting
// reactor, never inline. One reactor thread at a time; not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "ferry/block_device.h"

namespace ferry::volume::thin::testing {

class CrashDevice : public block::BlockDevice {
 public:
  struct Options {
    std::string name = "crash";
    uint64_t size_bytes = 0;    // a positive multiple of block_size
    uint32_t block_size = 512;  // a power of two, 512..65536
  };

  static Result<std::shared_ptr<CrashDevice>> Create(Options options);
  // A device whose durable contents are `image` followed by zeroes (image no larger than
  // the device; any length: a partial last block is zero-padded).
  static Result<std::shared_ptr<CrashDevice>> FromImage(Options options,
                                                        std::span<const uint8_t> image);

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "crash"; }
  const block::Geometry& geometry() const override { return geometry_; }
  const block::QueueLimits& limits() const override { return limits_; }
  void Submit(block::IoRequest& req) override;

  // Writes (including discards and write-zeroes) and flushes submitted so far.
  uint64_t writes() const { return writes_; }
  uint64_t flushes() const { return flushes_; }
  // Blocks written since the last flush.
  size_t volatile_blocks() const { return now_.pending.size(); }

  // Starts a journal: remembers the contents now; later writes and flushes are recorded.
  void Mark();
  uint64_t events_since_mark() const { return journal_.size(); }
  // The device a power cut after the first `n` (<= events_since_mark()) events since
  // Mark() leaves. `rng` null: every unflushed write is lost; otherwise a random survivor
  // set as described above. The new device has everything durable and no mark.
  std::shared_ptr<CrashDevice> CrashAfter(uint64_t n, std::mt19937_64* rng) const;
  // A power cut now.
  std::shared_ptr<CrashDevice> Crash(std::mt19937_64* rng = nullptr) const;

  // The durable contents, block by block up to the last written block (holes are zero).
  std::vector<uint8_t> DurableImage() const;

 private:
  using Bytes = std::vector<uint8_t>;
  // Contents: durable blocks, and for each unflushed block every version written since
  // the last flush (oldest first).
  struct Contents {
    std::map<uint64_t, Bytes> durable;
    std::map<uint64_t, std::vector<Bytes>> pending;
  };
  struct Event {
    bool flush = false;
    uint64_t lba = 0;
    Bytes data;  // whole blocks
    bool fua = false;
  };

  CrashDevice(Options options);
  static void Apply(Contents& c, const Event& e, uint32_t block_size);
  std::shared_ptr<CrashDevice> PowerCut(const Contents& c, std::mt19937_64* rng) const;
  IoStatus Read(const block::IoRequest& req) const;
  Event GatherWrite(const block::IoRequest& req) const;

  std::string name_;
  block::Geometry geometry_;
  block::QueueLimits limits_;
  Contents now_;
  bool marked_ = false;
  Contents at_mark_;
  std::vector<Event> journal_;
  uint64_t writes_ = 0;
  uint64_t flushes_ = 0;
};

}  // namespace ferry::volume::thin::testing
