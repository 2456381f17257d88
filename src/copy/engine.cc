// The copy engine (include/ferry/copy.h): validation, jobs, shared buffers and throttle.
#include <memory>
#include <unordered_map>

#include "copy/copy_job.h"
#include "copy/plan.h"
#include "ferry/copy.h"

namespace ferry::copy {
namespace {

class Engine : public CopyEngine {
 public:
  Engine(io::Reactor* reactor, EngineOptions o)
      : shared_{reactor, o, io::BufferPool(o.chunk_bytes, o.max_buffers),
                TokenBucket(o.throttle_bytes_per_sec,
                            std::max<uint64_t>(o.chunk_bytes, o.throttle_bytes_per_sec / 10))} {}

  ~Engine() override = default;

  Result<std::shared_ptr<CopyJob>> Submit(CopyDescriptor desc, CopyDoneFn done) override {
    FERRY_RETURN_IF_ERROR(ValidateDescriptor(desc));
    if (MaxBlockSize(desc) > shared_.pool.buffer_bytes()) {
      return InvalidArgument("block size " + std::to_string(MaxBlockSize(desc)) +
                             " is larger than the engine's chunk size " +
                             std::to_string(shared_.pool.buffer_bytes()));
    }
    auto job = std::make_shared<Job>(&shared_, TranslateToLeaves(std::move(desc)), std::move(done),
                                     [this](Job* j) { active_.erase(j); });
    active_.emplace(job.get(), job);
    shared_.reactor->Post([job] { job->Start(); });
    return std::shared_ptr<CopyJob>(job);
  }

  size_t active_jobs() const override { return active_.size(); }

 private:
  EngineShared shared_;
  std::unordered_map<Job*, std::shared_ptr<Job>> active_;
};

}  // namespace

Result<std::unique_ptr<CopyEngine>> CopyEngine::Create(io::Reactor* reactor,
                                                       EngineOptions options) {
  if (reactor == nullptr) return InvalidArgument("copy engine: no reactor");
  if (options.chunk_bytes < 512 || options.chunk_bytes > (1ull << 30)) {
    return InvalidArgument("copy engine: chunk_bytes must be from 512 bytes to 1 GiB");
  }
  if (options.queue_depth == 0 || options.max_buffers == 0) {
    return InvalidArgument("copy engine: queue_depth and max_buffers must be at least 1");
  }
  return std::unique_ptr<CopyEngine>(new Engine(reactor, options));
}

}  // namespace ferry::copy
