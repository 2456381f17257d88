// thin-pool: a pool of data blocks shared by thin volumes (docs/targets/thin-pool.md).
//
//   thin-pool <metadata dev> <data dev> <data block size (sectors)> <low water mark (blocks)>
//             [<#features> <features>...]
//
// Features (dm-thin's): skip_block_zeroing, ignore_discard, no_discard_passdown, read_only,
// error_if_no_space. Prepare opens the metadata on the table's reactor, or formats it when
// its superblock slots are all zero. The pool volume read or written directly maps to the
// data device, like dm, except that a flush of the pool volume also commits the metadata
// (what dm-thin does when a pool is suspended): ferryd flushes every backstore when it stops,
// so thin devices created or deleted by a message just before are not lost. Messages and
// status: Pool (pool.h).
#pragma once

#include <memory>

#include "volume/target.h"
#include "volume/thin/pool.h"
#include "volume/thin/pool_line.h"

namespace ferry::volume::thin {

class ThinPoolTarget : public Target, public PoolLine {
 public:
  static Result<std::unique_ptr<Target>> Create(const TargetArgs& a);
  std::string_view type() const override { return "thin-pool"; }
  void Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
           std::vector<MappedPiece>* out) const override;
  std::string TableArgs() const override;
  std::string Status() const override;
  Result<std::string> Message(std::span<const std::string> args) override;
  void ForEachUnderlying(
      const std::function<void(block::BlockDevice&, uint64_t)>& fn) const override;
  void Prepare(PrepareDone done) override;
  void Presuspend() override;
  void SubmitPiece(PieceIo& io) override;

  // The pool, once Prepare has completed (nullptr before); thin lines find it through the
  // pool volume (PoolLine).
  const PoolLine* pool_line() const override { return this; }
  std::shared_ptr<Pool> pool() const override { return pool_; }
  std::optional<uint32_t> thin_id() const override { return std::nullopt; }

 private:
  ThinPoolTarget(uint64_t len, std::shared_ptr<block::BlockDevice> meta,
                 std::shared_ptr<block::BlockDevice> data)
      : Target(len), meta_(meta), data_(data) {}
  static ferry::Status ParseFeatures(std::span<const std::string> args, PoolOptions* o);

  DeviceRef meta_;
  DeviceRef data_;
  std::string meta_name_;
  std::string data_name_;
  PoolOptions options_;
  TargetEnv env_;
  std::shared_ptr<Pool> pool_;
};

}  // namespace ferry::volume::thin
