// A fault-injecting wrapper around another block device, for tests (device-mapper's
// flakey/dust in spirit). Every request is forwarded to the inner device unless a rule
// matches it:
// - error ranges: requests of the given ops that touch [lba, lba+blocks) complete with the
//   given status and change nothing; a native copy leg whose destination segments touch a
//   write range of this device, or whose source segments touch a read range of a faulty
//   source, fails the same way;
// - dropped writes: a write, discard or write-zeroes touching a range completes kOk and is
//   not forwarded at all (the whole request is lost, as with dm-flakey's drop_writes);
// - delays: every request and copy leg completes no earlier than `delay` after submission
//   (it is forwarded, or failed, from a timer on the submitting reactor);
// - copy legs: native copies can be refused (kNotSupported) or failed;
// - capacity: the device can report fewer blocks than the inner device has, and be "resized"
//   between that and the inner size while open (SetCapacity), as a remote LU or an image
//   that an administrator resizes.
// Invalid requests (ValidateRequest) complete with their status before any rule applies.
//
// Completion follows include/ferry/block_device.h: exactly once, never inline, on the
// submitting reactor. Rules can change at any time from any thread (they are read under a
// lock when a request is submitted); requests already submitted keep the rules they saw.
// Thread-safe like the inner device.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ferry/block_device.h"

namespace ferry::backends {

class FaultyDevice : public block::BlockDevice, public block::CopyOffload {
 public:
  struct ErrorRange {
    Lba lba;
    BlockCount blocks;
    bool on_read = true;
    bool on_write = true;  // writes, discards and write-zeroes
    IoStatus status = IoStatus::kIoError;
  };

  // `name` empty: "<inner name>-faulty".
  FaultyDevice(std::shared_ptr<block::BlockDevice> inner, std::string name = "");
  ~FaultyDevice() override;

  void AddErrorRange(ErrorRange r);
  void AddDroppedWrites(Lba lba, BlockCount blocks);
  void SetDelay(std::chrono::microseconds delay);
  // Native copies into this device: std::nullopt forwards to the inner device's offload,
  // a status fails every leg with it (kNotSupported makes the copy engine emulate). While a
  // status is set, CanCopyFrom() says yes so that legs reach the device and fail.
  void SetCopyStatus(std::optional<IoStatus> status);
  // Reports `blocks` (at most the inner device's) from now on; requests past them are
  // kInvalid. Readers on other threads see the old or the new size (a single aligned store).
  void SetCapacity(BlockCount blocks);
  // Removes every rule (error ranges, dropped writes, delay, copy status); keeps counters
  // and the capacity.
  void ClearFaults();

  // Requests seen, by op, and native copy legs seen (also the invalid and failed ones).
  uint64_t requests(block::IoOp op) const;
  uint64_t copy_legs() const;

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "faulty"; }
  const block::Geometry& geometry() const override { return geometry_; }
  const block::QueueLimits& limits() const override { return inner_->limits(); }
  bool read_only() const override { return inner_->read_only(); }
  block::ProvisioningExtent Provisioning(Lba lba, BlockCount max) const override {
    return inner_->Provisioning(lba, max);
  }
  void Submit(block::IoRequest& req) override;
  // `this` when the inner device can copy natively or a copy status is set, else nullptr.
  block::CopyOffload* copy_offload() override;

  // Copy legs whose source is a FaultyDevice are unwrapped to its inner device before
  // asking the inner device, so faulty(ram) -> faulty(ram) in one arena still offloads.
  bool CanCopyFrom(const block::BlockDevice& src, std::string* why_not) const override;
  void SubmitCopy(block::CopyLegRequest& req) override;

  block::BlockDevice& inner() { return *inner_; }
  const block::BlockDevice& inner() const { return *inner_; }

 private:
  struct State;
  struct CopyForward;
  // Completes `done` with `st` after `delay` (a posted task when zero).
  static void CompleteLater(block::IoCallback& done, IoStatus st, std::chrono::microseconds delay);
  void ForwardCopy(block::CopyLegRequest& req);
  IoStatus CopyRangeFault(const block::CopyLegRequest& req) const;

  std::shared_ptr<block::BlockDevice> inner_;
  block::Geometry geometry_;  // the inner device's, num_blocks set by SetCapacity
  std::string name_;
  std::shared_ptr<State> state_;
};

}  // namespace ferry::backends
