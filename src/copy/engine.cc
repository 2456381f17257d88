// The copy engine (include/ferry/copy.h): options, validation, translation, job start.
#include <memory>

#include "base/log.h"
#include "copy/job.h"
#include "copy/plan.h"
#include "copy/translate.h"
#include "ferry/copy.h"

namespace ferry::copy {
namespace {

class Engine : public CopyEngine {
 public:
  Engine(io::Reactor* reactor, const EngineOptions& o)
      : shared_(std::make_shared<EngineShared>(reactor, o)) {}

  ~Engine() override {
    // A caller bug (copy.h); the jobs hold the shared state and still run to completion.
    if (!shared_->active.empty()) {
      FERRY_LOG_ERROR("copy engine destroyed with {} copies in flight", shared_->active.size());
    }
  }

  Result<std::shared_ptr<CopyJob>> Submit(CopyDescriptor desc, CopyDoneFn done) override {
    if (!shared_->reactor->InOwnerThread()) {
      return FailedPrecondition("CopyEngine::Submit called off the engine's reactor thread");
    }
    FERRY_RETURN_IF_ERROR(ValidateDescriptor(desc));
    const uint32_t unit = MaxBlockSize(desc);
    if (unit > shared_->pool.buffer_bytes()) {
      return InvalidArgument(
          "block size " + std::to_string(unit) + " is larger than the engine's chunk size " +
          std::to_string(shared_->pool.buffer_bytes()) + "; raise EngineOptions::chunk_bytes");
    }
    const size_t num_dsts = desc.dsts.size();
    FERRY_ASSIGN_OR_RETURN(Translation t,
                           Translate(MakePieces(desc), num_dsts, unit, shared_->reactor));
    std::shared_ptr<PinSet> pins = t.pins;
    auto job = std::make_shared<Job>(shared_, std::move(desc), std::move(t), std::move(done));
    // Read on this reactor only, so it is set before any release request reaches it.
    pins->on_release = [weak = std::weak_ptr<Job>(job)] {
      if (auto j = weak.lock()) j->OnReleaseRequested();
    };
    shared_->active.emplace(job.get(), job);
    // Started from a posted task: completion can never run inside Submit.
    shared_->reactor->Post([job] { job->Start(); });
    return std::shared_ptr<CopyJob>(job);
  }

  size_t active_jobs() const override { return shared_->active.size(); }

 private:
  std::shared_ptr<EngineShared> shared_;
};

}  // namespace

Result<std::unique_ptr<CopyEngine>> CopyEngine::Create(io::Reactor* reactor,
                                                       EngineOptions options) {
  if (reactor == nullptr) return InvalidArgument("copy engine: no reactor");
  if (options.chunk_bytes < 512 || options.chunk_bytes > (1ull << 30)) {
    return InvalidArgument("copy engine: chunk_bytes must be from 512 bytes to 1 GiB, not " +
                           std::to_string(options.chunk_bytes));
  }
  if (options.queue_depth == 0 || options.max_buffers == 0) {
    return InvalidArgument("copy engine: queue_depth and max_buffers must be at least 1");
  }
  return std::unique_ptr<CopyEngine>(new Engine(reactor, options));
}

}  // namespace ferry::copy
