#include "lib/no_fallback_device.h"

#include "io/reactor.h"

namespace ferry::api {

void NoFallbackDevice::Submit(block::IoRequest& req) {
  if (req.op == block::IoOp::kRead || req.op == block::IoOp::kFlush) {
    inner_->Submit(req);
    return;
  }
  io::Reactor::Current()->Post([&req] { req.done(IoStatus::kNotSupported); });
}

}  // namespace ferry::api
