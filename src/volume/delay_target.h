// delay: dm-delay (docs/targets/delay.md).
//
//   delay <dev> <offset> <delay_ms>
//         [<write_dev> <write_offset> <write_delay_ms>
//          [<flush_dev> <flush_offset> <flush_delay_ms>]]
//
// Three arguments: reads, writes and flushes go to <dev> after <delay_ms>. Six: writes
// (and discards, write-zeroes) and flushes use the second triple. Nine: flushes use the
// third. A request is submitted to its device from a reactor timer once its delay has
// passed, so it completes no earlier than the delay.
//
// Status: "<reads> <writes> <flushes>" waiting for their delay.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "volume/target.h"

namespace ferry::volume {

class DelayTarget : public Target {
 public:
  static Result<std::unique_ptr<Target>> Create(const TargetArgs& a);
  std::string_view type() const override { return "delay"; }
  void Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
           std::vector<MappedPiece>* out) const override;
  void SubmitPiece(PieceIo& io) override;
  std::string TableArgs() const override;
  std::string Status() const override;
  void ForEachUnderlying(
      const std::function<void(block::BlockDevice&, uint64_t)>& fn) const override;

 private:
  struct Class {
    Class(std::shared_ptr<block::BlockDevice> d, std::string n, uint64_t off, uint64_t ms)
        : dev(std::move(d)), name(std::move(n)), offset_sectors(off), delay_ms(ms) {}
    DeviceRef dev;
    std::string name;
    uint64_t offset_sectors;
    uint64_t delay_ms;
  };
  using Target::Target;
  const Class& ClassFor(block::IoOp op) const;
  Class& ClassFor(block::IoOp op) {
    return const_cast<Class&>(static_cast<const DelayTarget*>(this)->ClassFor(op));
  }

  static size_t Kind(block::IoOp op);  // 0 read, 1 write, 2 flush

  std::vector<std::unique_ptr<Class>> classes_;  // read, [write, [flush]]
  std::atomic<uint64_t> waiting_[3] = {};        // by Kind()
};

}  // namespace ferry::volume
