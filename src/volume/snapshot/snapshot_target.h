// snapshot, snapshot-origin and snapshot-merge: dm-snapshot's targets
// (docs/targets/snapshot.md, on-disk format in docs/targets/snapshot-store.md).
//
//   snapshot        <origin> <COW dev> <P|N> <chunk sectors>
//   snapshot-merge  <origin> <COW dev> P <chunk sectors>
//   snapshot-origin <origin>
//
// snapshot presents the origin as it was when the snapshot's store was formatted: chunks
// the origin has changed since are read from their copies (exceptions) on the COW device.
// Writes to the origin must go through a snapshot-origin line (or snapshot-merge) so that
// every snapshot of it saves a chunk before it changes. snapshot-merge presents the
// snapshot's content over the origin and copies its exceptions back in the background.
//
// Stateful work runs on TargetEnv::reactor and copies go through TargetEnv::mover; snapshot
// and snapshot-merge refuse to be built without them. Neither is copy-transparent.
#pragma once

#include <memory>

#include "volume/snapshot/snapshot_core.h"
#include "volume/target.h"

namespace ferry::volume::snapshot {

class SnapshotTarget : public Target {
 public:
  static Result<std::unique_ptr<Target>> CreateSnapshot(const TargetArgs& a);
  static Result<std::unique_ptr<Target>> CreateMerge(const TargetArgs& a);
  std::string_view type() const override { return merge_ ? "snapshot-merge" : "snapshot"; }
  void Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
           std::vector<MappedPiece>* out) const override;
  void SubmitPiece(PieceIo& io) override;
  std::string TableArgs() const override;
  std::string Status() const override { return core_->Status(); }
  void ForEachUnderlying(
      const std::function<void(block::BlockDevice&, uint64_t)>& fn) const override;
  void Prepare(PrepareDone done) override;
  void Presuspend() override;
  void Resume() override;

  // Tests: the shared state behind the line.
  const std::shared_ptr<SnapshotCore>& core() const { return core_; }

 private:
  SnapshotTarget(uint64_t len, bool merge, std::shared_ptr<block::BlockDevice> origin,
                 std::shared_ptr<block::BlockDevice> cow)
      : Target(len), merge_(merge), origin_(std::move(origin)), cow_(std::move(cow)) {}
  static Result<std::unique_ptr<Target>> Create(const TargetArgs& a, bool merge);

  const bool merge_;
  DeviceRef origin_;
  DeviceRef cow_;
  std::string origin_name_;
  std::string cow_name_;
  std::shared_ptr<SnapshotCore> core_;
};

class OriginTarget : public Target {
 public:
  static Result<std::unique_ptr<Target>> Create(const TargetArgs& a);
  std::string_view type() const override { return "snapshot-origin"; }
  void Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
           std::vector<MappedPiece>* out) const override;
  void SubmitPiece(PieceIo& io) override;
  std::string TableArgs() const override { return name_; }
  void ForEachUnderlying(
      const std::function<void(block::BlockDevice&, uint64_t)>& fn) const override {
    fn(*dev_.get(), 0);
  }

 private:
  OriginTarget(uint64_t len, std::shared_ptr<block::BlockDevice> dev)
      : Target(len), dev_(std::move(dev)) {}
  DeviceRef dev_;
  std::string name_;
};

}  // namespace ferry::volume::snapshot
