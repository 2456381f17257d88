// flakey: dm-flakey's fault injection (docs/targets/flakey.md).
//
//   flakey <dev> <offset> <up_interval> <down_interval> [<#feature_args> <feature_args>...]
//
// Like linear, except that from the moment the table is parsed the device is "up" for
// <up_interval> seconds and then "down" for <down_interval> seconds, repeating. While down:
// - error_reads: reads fail with kIoError;
// - drop_writes: writes, discards, write-zeroes and flushes complete kOk and are dropped;
// - error_writes: they fail with kIoError;
// - corrupt_bio_byte <Nth_byte> <r|w> <value> <flags>: byte N (1-based) of each read (r,
//   after it completed) or write (w, in a private copy of the payload) piece whose request
//   flags include all of <flags> (block_device.h kIo* bits) is replaced by <value>;
// - no features at all: reads and writes both fail (error_reads + error_writes).
// Time comes from the table's clock (TableOptions::clock), so tests drive it.
//
// Messages (a Ferry extension; dm-flakey has none): "down" and "up" force the state,
// "auto" returns to the intervals. Status: "<up|down> <auto|forced>".
#pragma once

#include <atomic>
#include <memory>

#include "volume/target.h"

namespace ferry::volume {

class FlakeyTarget : public Target {
 public:
  static Result<std::unique_ptr<Target>> Create(const TargetArgs& a);
  std::string_view type() const override { return "flakey"; }
  void Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
           std::vector<MappedPiece>* out) const override;
  void SubmitPiece(PieceIo& io) override;
  IoStatus EndIo(PieceIo& io, IoStatus st) override;
  std::string TableArgs() const override;
  std::string Status() const override;
  Result<std::string> Message(std::span<const std::string> args) override;
  void ForEachUnderlying(
      const std::function<void(block::BlockDevice&, uint64_t)>& fn) const override {
    fn(*dev_.get(), offset_sectors_);
  }

  bool down() const;  // the state a request submitted now sees

 private:
  struct Features {
    bool drop_writes = false;
    bool error_writes = false;
    bool error_reads = false;
    bool corrupt = false;
    uint64_t corrupt_byte = 0;  // 1-based
    bool corrupt_writes = false;
    uint8_t corrupt_value = 0;
    uint32_t corrupt_flags = 0;
  };
  FlakeyTarget(uint64_t len, std::shared_ptr<block::BlockDevice> dev) : Target(len), dev_(dev) {}
  static ferry::Status ParseFeatures(std::span<const std::string> args, Features* f);
  bool CorruptMatches(const PieceIo& io, bool write) const;

  DeviceRef dev_;
  std::string name_;
  uint64_t offset_sectors_ = 0;
  uint64_t up_s_ = 0;
  uint64_t down_s_ = 0;
  Features f_;
  bool any_feature_ = false;  // false: down means error reads and writes
  TargetClock clock_;
  std::chrono::steady_clock::time_point start_;
  std::atomic<int> forced_{0};  // 0 auto, 1 up, 2 down
};

}  // namespace ferry::volume
