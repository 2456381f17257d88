// A fault-injecting wrapper around another block device, for tests (device-mapper's
// flakey/dust in spirit). Every request is forwarded to the inner device unless a rule
// matches it:
// - error ranges: requests of the given ops that touch [lba, lba+blocks) complete with the
//   given status and change nothing;
// - dropped writes: writes touching a range complete kOk but are not written;
// - delays: every request completes no earlier than `delay` after submission (reactor timer);
// - copy legs: native copies can be refused (kNotSupported) or failed.
// Rules can change at any time from the test thread that owns the reactor.
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

  void AddErrorRange(ErrorRange r);
  void AddDroppedWrites(Lba lba, BlockCount blocks);
  void SetDelay(std::chrono::microseconds delay);
  // Native copies into this device: std::nullopt forwards to the inner device's offload,
  // a status fails every leg with it (kNotSupported makes the copy engine emulate).
  void SetCopyStatus(std::optional<IoStatus> status);
  void ClearFaults();

  // Requests seen, by op, and native copy legs seen.
  uint64_t requests(block::IoOp op) const;
  uint64_t copy_legs() const;

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "faulty"; }
  const block::Geometry& geometry() const override { return inner_->geometry(); }
  const block::QueueLimits& limits() const override { return inner_->limits(); }
  bool read_only() const override { return inner_->read_only(); }
  void Submit(block::IoRequest& req) override;
  block::CopyOffload* copy_offload() override;

  // Copy legs whose source is a FaultyDevice are unwrapped to its inner device before
  // asking the inner device, so faulty(ram) -> faulty(ram) in one arena still offloads.
  bool CanCopyFrom(const block::BlockDevice& src, std::string* why_not) const override;
  void SubmitCopy(block::CopyLegRequest& req) override;

  block::BlockDevice& inner() { return *inner_; }

 private:
  struct State;
  std::shared_ptr<block::BlockDevice> inner_;
  std::string name_;
  std::shared_ptr<State> state_;
};

}  // namespace ferry::backends
