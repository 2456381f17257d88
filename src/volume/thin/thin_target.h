// thin: a thin volume of a thin pool (docs/targets/thin.md).
//
//   thin <pool dev> <dev id>
//
// <pool dev> is a volume whose active table is one thin-pool line; <dev id> a thin device
// made by the pool's create_thin or create_snap message. Reads of unmapped blocks return
// zeroes; writes provision (zero-filling the rest of a new block unless the pool skips
// block zeroing) or copy a shared block first. Flush and FUA commit the metadata after
// flushing the data device; the pool also commits every second. Every piece runs on the
// pool's reactor and completes on the reactor that submitted it.
#pragma once

#include <memory>

#include "volume/target.h"
#include "volume/thin/pool.h"
#include "volume/thin/pool_line.h"

namespace ferry::volume::thin {

class ThinTarget : public Target, public PoolLine {
 public:
  static Result<std::unique_ptr<Target>> Create(const TargetArgs& a);
  std::string_view type() const override { return "thin"; }
  void Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
           std::vector<MappedPiece>* out) const override;
  void SubmitPiece(PieceIo& io) override;
  std::string TableArgs() const override;
  std::string Status() const override;
  void ForEachUnderlying(
      const std::function<void(block::BlockDevice&, uint64_t)>& fn) const override {
    fn(*pool_dev_.get(), 0);
  }
  void Prepare(PrepareDone done) override;
  std::optional<block::ProvisioningExtent> Provisioning(uint64_t offset_bytes, uint64_t len_bytes,
                                                        uint32_t block_size) const override;

  // Copies between thin volumes of one pool share blocks (ShareRange) instead of moving
  // data; legs are whole data blocks (the engine emulates unaligned edges).
  uint32_t copy_granularity_bytes() const override { return pool_->block_bytes(); }
  bool CanCopyFrom(const block::BlockDevice& src, std::string* why_not) const override;
  void SubmitCopy(block::CopyLegRequest& req) override;

  // A thin device of its pool (PoolLine).
  const PoolLine* pool_line() const override { return this; }
  std::shared_ptr<Pool> pool() const override { return pool_; }
  std::optional<uint32_t> thin_id() const override { return dev_; }

 private:
  ThinTarget(uint64_t len, std::shared_ptr<block::BlockDevice> pool_dev, std::shared_ptr<Pool> pool)
      : Target(len), pool_dev_(std::move(pool_dev)), pool_(std::move(pool)) {}

  DeviceRef pool_dev_;
  std::string pool_name_;
  std::shared_ptr<Pool> pool_;
  uint32_t dev_ = 0;
};

}  // namespace ferry::volume::thin
