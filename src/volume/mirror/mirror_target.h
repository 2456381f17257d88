// mirror: dm-mirror's RAID1 (docs/targets/mirror.md).
//
//   mirror <log_type> <#log_args> <log_args...> <#legs> <dev1> <offset1> ... <devN> <offsetN>
//          [<#features> <features...>]
//   log types: core <region_size> [sync|nosync]
//              disk <log_dev> <region_size> [sync|nosync]
//   features:  handle_errors, resync_rate <bytes_per_s>
//
// Every leg holds the whole target. Writes go to every live leg once their region is marked
// dirty in the region log (durably, for a disk log); reads go to one in-sync leg. Regions
// that may differ between legs (dirty at a crash, written while a leg was failed, `sync`)
// are copied from an in-sync leg to the others through the data mover (the copy engine),
// throttled, one region at a time; writes to a region being copied wait for the copy.
//
// Threads. All state lives on TargetEnv::reactor (the home reactor): SubmitPiece posts each
// piece there, leg I/O is submitted from there, and the piece completes on the reactor that
// submitted it. Status and Message read atomics and post their work home, so any thread may
// call them.
#pragma once

#include <memory>

#include "volume/target.h"

namespace ferry::volume::mirror {

class MirrorCore;

class MirrorTarget : public Target {
 public:
  static Result<std::unique_ptr<Target>> Create(const TargetArgs& a);
  ~MirrorTarget() override;

  std::string_view type() const override { return "mirror"; }
  void Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
           std::vector<MappedPiece>* out) const override;
  void SubmitPiece(PieceIo& io) override;
  std::string TableArgs() const override;
  std::string Status() const override;
  // "readd <leg>" (device name or 0-based index), "resync" (every region again),
  // "resync_rate <bytes_per_s>" (0: unthrottled), "stats".
  Result<std::string> Message(std::span<const std::string> args) override;
  void ForEachUnderlying(
      const std::function<void(block::BlockDevice&, uint64_t)>& fn) const override;
  void Prepare(PrepareDone done) override;
  void Presuspend() override;
  void Resume() override;

  MirrorCore& core() const { return *core_; }

 private:
  MirrorTarget(uint64_t num_sectors, std::shared_ptr<MirrorCore> core);
  std::shared_ptr<MirrorCore> core_;
};

}  // namespace ferry::volume::mirror
