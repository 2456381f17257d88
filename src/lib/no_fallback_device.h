// The destination of a FERRY_COPY_NO_FALLBACK copy: the real device, except that the
// writes the copy engine would emulate with fail with kNotSupported. Native copy legs go
// straight to the real device's CopyOffload, so offloaded bytes still move; a leg the
// device refuses falls back to emulation in the engine, whose first write then fails and
// ends the copy with kNotSupported (ferry.h: "never emulate").
#pragma once

#include <memory>

#include "ferry/block_device.h"

namespace ferry::api {

class NoFallbackDevice : public block::BlockDevice {
 public:
  explicit NoFallbackDevice(std::shared_ptr<block::BlockDevice> inner) : inner_(std::move(inner)) {}

  std::string_view name() const override { return inner_->name(); }
  std::string_view type() const override { return inner_->type(); }
  const block::Geometry& geometry() const override { return inner_->geometry(); }
  const block::QueueLimits& limits() const override { return inner_->limits(); }
  bool read_only() const override { return inner_->read_only(); }
  // Reads and flushes pass; writes, discards and write-zeroes complete with kNotSupported
  // on the calling reactor, never inside this call.
  void Submit(block::IoRequest& req) override;
  block::CopyOffload* copy_offload() override { return inner_->copy_offload(); }
  block::ProvisioningExtent Provisioning(Lba lba, BlockCount max) const override {
    return inner_->Provisioning(lba, max);
  }

 private:
  std::shared_ptr<block::BlockDevice> inner_;
};

}  // namespace ferry::api
