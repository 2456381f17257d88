#include "lib/context.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>

#include "backends/ram/ram_device.h"
#include "block/splitter.h"
#include "io/reactor.h"
#include "lib/error.h"

namespace ferry::api {

std::string DominantMechanism(const copy::CopyCounters& c) {
  size_t best = 0;
  for (size_t i = 1; i < c.by_mechanism.size(); ++i) {
    if (c.by_mechanism[i] > c.by_mechanism[best]) best = i;
  }
  if (c.by_mechanism[best] == 0) return c.done_bytes > 0 ? "native" : "";
  if (best == 0) return "native";  // a device that did not say how
  return std::string(block::CopyMechanismName(static_cast<block::CopyMechanism>(best)));
}

std::unique_ptr<Context> Context::Create(const ContextOptions& options, int* err) {
  std::unique_ptr<Context> ctx(new Context());
  *err = ctx->Start(options);
  if (*err != 0) return nullptr;
  return ctx;
}

int Context::Start(const ContextOptions& options) {
  event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) {
    int e = errno;
    return Fail(-e, std::string("ferry_ctx_new: eventfd: ") + std::strerror(e));
  }
  backend_context_.ram_arena = std::make_shared<backends::RamArena>();
  std::promise<Result<io::Reactor*>> ready;
  auto started = ready.get_future();
  thread_ = std::thread([&ready] {
    auto r = io::Reactor::Create(io::Reactor::Options{.name = "libferry"});
    if (!r.ok()) {
      ready.set_value(r.status());
      return;
    }
    io::Reactor* reactor = r->get();
    ready.set_value(reactor);
    reactor->RunAndDrain();
  });
  Result<io::Reactor*> reactor = started.get();
  if (!reactor.ok()) {
    thread_.join();
    return Fail(reactor.status().WithContext("ferry_ctx_new: cannot start the reactor"));
  }
  reactor_ = *reactor;
  copy::EngineOptions eo;
  eo.chunk_bytes = options.chunk_bytes;
  eo.queue_depth = options.queue_depth;
  eo.max_buffers = std::max<uint32_t>(options.queue_depth, 2) * 4;  // a few copies at once
  eo.throttle_bytes_per_sec = options.throttle_bytes_per_sec;
  Status st;
  RunSync([&] {
    auto engine = copy::CopyEngine::Create(reactor_, eo);
    if (engine.ok()) {
      engine_ = std::move(engine).value();
    } else {
      st = engine.status();
    }
  });
  if (!st.ok()) return Fail(st.WithContext("ferry_ctx_new"));
  return 0;
}

Context::~Context() {
  if (reactor_ != nullptr) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (auto& [cookie, rec] : copies_) {
        rec->cancel_requested = true;
        if (rec->job) rec->job->Cancel();
      }
      cv_.wait(lock, [&] { return in_flight_ == 0; });
      copies_.clear();
    }
    // Devices and the engine go away on the thread their I/O ran on.
    RunSync([&] {
      devices_.clear();
      engine_.reset();
    });
    reactor_->Stop();
    thread_.join();
  }
  if (event_fd_ >= 0) close(event_fd_);
}

void Context::RunSync(InlineFunction<void(), 64> fn) { io::RunSyncOn(reactor_, std::move(fn)); }

}  // namespace ferry::api
