#include "copy/engine_mover.h"

#include <string>
#include <utility>

#include "io/reactor.h"

namespace ferry::copy {
namespace {

class EngineMover : public volume::DataMover {
 public:
  EngineMover(CopyEngine* engine, io::Reactor* reactor) : engine_(engine), reactor_(reactor) {}

  void Move(const volume::MoveRequest& req, MoveDone done) override {
    // Always through a posted task: Submit belongs to the engine's reactor, and `done`
    // must never run inside Move().
    // The request and callback do not fit a posted task inline: they travel on the heap.
    auto* pending = new Pending{req, std::move(done)};
    reactor_->Post([this, pending] {
      std::unique_ptr<Pending> own(pending);
      Start(own->req, std::move(own->done));
    });
  }

  io::Reactor* reactor() const override { return reactor_; }

 private:
  struct Pending {
    volume::MoveRequest req;
    MoveDone done;
  };
  void Start(const volume::MoveRequest& req, MoveDone done) {
    const uint32_t sbs = req.src->geometry().block_size;
    const uint32_t dbs = req.dst->geometry().block_size;
    if (req.len_bytes == 0 || req.len_bytes % sbs != 0 || req.len_bytes % dbs != 0 ||
        req.src_offset_bytes % sbs != 0 || req.dst_offset_bytes % dbs != 0) {
      volume::MoveResult r;
      r.status = IoStatus::kInvalid;
      r.error = "move of " + std::to_string(req.len_bytes) + " bytes is not aligned to the " +
                "devices' block sizes";
      return done(std::move(r));
    }
    CopyDescriptor desc;
    desc.src = req.src;
    desc.src_extents = {{Lba(req.src_offset_bytes / sbs), BlockCount(req.len_bytes / sbs)}};
    desc.dsts = {{req.dst, {{Lba(req.dst_offset_bytes / dbs), BlockCount(req.len_bytes / dbs)}}}};
    // The callback is shared between Submit's error path and the job's completion, which
    // never both run.
    auto cb = std::make_shared<MoveDone>(std::move(done));
    Result<std::shared_ptr<CopyJob>> job = engine_->Submit(std::move(desc), [cb](CopyResult res) {
      volume::MoveResult r;
      r.status = res.status;
      r.offloaded_bytes = res.counters.offloaded_bytes;
      r.emulated_bytes = res.counters.emulated_bytes;
      if (res.status != IoStatus::kOk) {
        r.error = std::string(IoStatusName(res.status));
        if (!res.errors.empty()) {
          const RangeError& e = res.errors.front();
          r.error += std::string(" on the ") + (e.on_source ? "source" : "destination") +
                     " at stream byte " + std::to_string(e.stream_offset_bytes);
        }
      }
      (*cb)(std::move(r));
    });
    if (!job.ok()) {
      volume::MoveResult r;
      r.status = IoStatus::kInvalid;
      r.error = job.status().ToString();
      (*cb)(std::move(r));
    }
  }

  CopyEngine* const engine_;
  io::Reactor* const reactor_;
};

}  // namespace

std::unique_ptr<volume::DataMover> MakeEngineMover(CopyEngine* engine, io::Reactor* reactor) {
  return std::make_unique<EngineMover>(engine, reactor);
}

}  // namespace ferry::copy
