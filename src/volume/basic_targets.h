// The plain mapping targets: linear, striped, zero and error (docs/targets/<name>.md).
#pragma once

#include <memory>
#include <vector>

#include "volume/target.h"

namespace ferry::volume {

// linear <dev> <offset>: the range maps to <dev> from sector <offset>.
class LinearTarget : public Target {
 public:
  static Result<std::unique_ptr<Target>> Create(const TargetArgs& a);
  std::string_view type() const override { return "linear"; }
  bool copy_transparent() const override { return true; }
  void Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
           std::vector<MappedPiece>* out) const override;
  std::string TableArgs() const override;
  void ForEachUnderlying(
      const std::function<void(block::BlockDevice&, uint64_t)>& fn) const override {
    fn(*dev_.get(), offset_sectors_);
  }

 private:
  LinearTarget(uint64_t len, std::shared_ptr<block::BlockDevice> dev, std::string name,
               uint64_t offset)
      : Target(len), dev_(std::move(dev)), name_(std::move(name)), offset_sectors_(offset) {}
  DeviceRef dev_;
  std::string name_;
  uint64_t offset_sectors_;
};

// striped <#stripes> <chunk_sectors> (<dev> <offset>)+: RAID-0. Chunk i of the target lives
// on stripe i % #stripes, at chunk i / #stripes of that stripe.
class StripedTarget : public Target {
 public:
  static Result<std::unique_ptr<Target>> Create(const TargetArgs& a);
  std::string_view type() const override { return "striped"; }
  // Copies bypass EndIo's per-stripe error count: a failed leg is reported by the copy.
  bool copy_transparent() const override { return true; }
  void Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
           std::vector<MappedPiece>* out) const override;
  IoStatus EndIo(PieceIo& io, IoStatus st) override;
  std::string TableArgs() const override;
  // "<#stripes> <dev>... 1 <A|D per stripe>": D once a stripe has returned an error.
  std::string Status() const override;
  void ForEachUnderlying(
      const std::function<void(block::BlockDevice&, uint64_t)>& fn) const override;
  std::string CheckAlignment(uint64_t block_sectors) const override;

 private:
  struct Stripe {
    Stripe(std::shared_ptr<block::BlockDevice> d, std::string n, uint64_t off)
        : dev(std::move(d)), name(std::move(n)), offset_sectors(off) {}
    DeviceRef dev;
    std::string name;
    uint64_t offset_sectors = 0;
    std::atomic<uint64_t> errors{0};
  };
  StripedTarget(uint64_t len, uint64_t chunk) : Target(len), chunk_sectors_(chunk) {}
  uint64_t chunk_sectors_;
  std::vector<std::unique_ptr<Stripe>> stripes_;
};

// zero: reads return zeroes, writes and discards are dropped.
class ZeroTarget : public Target {
 public:
  static Result<std::unique_ptr<Target>> Create(const TargetArgs& a);
  std::string_view type() const override { return "zero"; }
  void Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
           std::vector<MappedPiece>* out) const override;
  std::string TableArgs() const override { return ""; }

 private:
  using Target::Target;
};

// error: every read, write, discard and write-zeroes fails with kIoError.
class ErrorTarget : public Target {
 public:
  static Result<std::unique_ptr<Target>> Create(const TargetArgs& a);
  std::string_view type() const override { return "error"; }
  void Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
           std::vector<MappedPiece>* out) const override;
  std::string TableArgs() const override { return ""; }

 private:
  using Target::Target;
};

}  // namespace ferry::volume
