#include "scsi/copy_runner.h"

#include <algorithm>

#include "base/log.h"
#include "scsi/copy_manager.h"
#include "scsi/copy_op.h"
#include "scsi/token_store.h"

namespace ferry::scsi {

CopyRunner::CopyRunner(std::shared_ptr<CopyManager> manager, std::shared_ptr<CopyOp> op, Task* task,
                       TaskDone done)
    : manager_(std::move(manager)),
      op_(std::move(op)),
      task_(task),
      done_(std::move(done)),
      origin_(io::Reactor::Current()) {}

CopyRunner::~CopyRunner() = default;

void CopyRunner::Start() {
  manager_->active_++;
  manager_->reactor_->Post([self = shared_from_this()] { self->Pump(); });
}

void CopyRunner::Pump() {
  if (op_->cancel) {
    // COPY OPERATION ABORT or a task management function: what was written stays.
    Sense s = MakeSense(SenseKey::kCopyAborted, Asc::kNoAdditionalSense);
    s.command_specific = static_cast<uint32_t>(index_);
    return Finish(s);
  }
  Step step = Produce(index_);
  if (std::holds_alternative<End>(step)) return Finish(Verify());
  if (auto* s = std::get_if<Sense>(&step)) {
    if (s->key == SenseKey::kCopyAborted || s->key == SenseKey::kDataProtect) {
      s->command_specific = static_cast<uint32_t>(index_);  // SPC-4 5.17.4.3: the segment
    }
    return Finish(*s);
  }
  if (std::holds_alternative<Skip>(step)) return StepDone(0);
  RunCopy(std::move(std::get<Copy>(step)));
}

void CopyRunner::NoteWrites(const Copy& c) {
  if (c.dst_lu == nullptr) return;
  for (const copy::Extent& e : c.desc.dsts[0].extents) {
    manager_->tokens_->NoteWrite(c.dst_lu, e.lba.value(), e.blocks.value(), own_token_);
  }
}

void CopyRunner::RunCopy(Copy c) {
  uint64_t lo = UINT64_MAX, hi = 0;
  for (const copy::Extent& e : c.desc.dsts[0].extents) {
    lo = std::min(lo, e.lba.value());
    hi = std::max(hi, e.lba.value() + e.blocks.value());
  }
  if (c.dst_lu == nullptr || hi <= lo) return RunLocked(std::move(c));
  // One range from the first to the last destination block: steps run one at a time and
  // a runner holds one range at most, so waiting here cannot deadlock with another copy.
  auto pending = std::make_shared<Copy>(std::move(c));
  const LogicalUnit* lu = pending->dst_lu;
  // Granted at once or later, the step runs from the reactor: after lock_ is set.
  locked_lu_ = lu;
  lock_ = lu->range_lock().Acquire(lo, hi - lo, [self = shared_from_this(), pending] {
    self->manager_->reactor_->Post([self, pending] { self->RunLocked(std::move(*pending)); });
  });
}

void CopyRunner::Unlock() {
  if (lock_ == nullptr) return;
  locked_lu_->range_lock().Release(lock_);
  lock_ = nullptr;
  locked_lu_ = nullptr;
}

void CopyRunner::RunLocked(Copy c) {
  NoteWrites(c);  // before the first byte lands: a token made earlier never sees new data
  if (c.desc.src == nullptr) {
    zeroing_ = std::move(c);
    return Zero(0);
  }
  written_ = Copy{.desc = {.dsts = c.desc.dsts}, .dst_lu = c.dst_lu};
  auto job =
      manager_->engine().Submit(std::move(c.desc), [self = shared_from_this()](copy::CopyResult r) {
        self->manager_->CountCopy(r);
        self->NoteWrites(self->written_);  // and after: a token made meanwhile is revoked too
        self->Unlock();
        {
          std::lock_guard l(self->op_->mu);
          self->op_->job.reset();
          // A failed or stopped step still wrote what it wrote: the transfer count says so.
          if (r.status != IoStatus::kOk) self->op_->bytes_done += r.counters.done_bytes;
        }
        if (r.status != IoStatus::kOk) return self->Finish(self->CopyFailed(self->index_, r));
        self->StepDone(r.counters.done_bytes);
      });
  if (!job.ok()) {
    // The runners check what the engine validates; this is a bug, not an initiator error.
    FERRY_LOG_ERROR("copy manager: the copy engine refused step {}: {}", index_,
                    job.status().ToString());
    Unlock();
    return Finish(MakeSense(SenseKey::kCopyAborted, Asc::kThirdPartyDeviceFailure));
  }
  std::lock_guard l(op_->mu);
  op_->job = *job;
  if (op_->cancel) op_->job->Cancel();
}

// Block device zero token (SBC-3): write-zeroes over each destination extent in turn.
void CopyRunner::Zero(size_t extent) {
  const auto& extents = zeroing_.desc.dsts[0].extents;
  if (extent == extents.size() || op_->cancel) {
    uint64_t bytes = 0;
    const uint32_t bs = zeroing_.desc.dsts[0].dev->geometry().block_size;
    for (size_t i = 0; i < extent; ++i) bytes += extents[i].blocks.value() * bs;
    NoteWrites(zeroing_);
    Unlock();
    manager_->bytes_zeroed_ += bytes;
    return StepDone(bytes);
  }
  zero_req_ = block::IoRequest{.op = block::IoOp::kWriteZeroes,
                               .lba = extents[extent].lba,
                               .blocks = extents[extent].blocks};
  // The callback only posts: what follows reuses (or clears) zero_req_ and its callback,
  // which must not happen inside that callback.
  zero_req_.done = [self = shared_from_this(), extent](IoStatus st) {
    self->manager_->reactor_->Post([self, extent, st] { self->Zeroed(extent, st); });
  };
  block::SubmitSplit(*zeroing_.desc.dsts[0].dev, zero_req_);
}

void CopyRunner::Zeroed(size_t extent, IoStatus st) {
  zero_req_ = {};  // drops the callback's reference to this runner
  if (st != IoStatus::kOk) {
    Unlock();
    Sense s = MakeSense(SenseKey::kCopyAborted, Asc::kThirdPartyDeviceFailure);
    s.information = zeroing_.desc.dsts[0].extents[extent].lba.value();
    return Finish(s);
  }
  Zero(extent + 1);
}

Sense CopyRunner::CopyFailed(size_t index, const copy::CopyResult& r) {
  if (r.status == IoStatus::kAborted) {
    Sense s = MakeSense(SenseKey::kCopyAborted, Asc::kNoAdditionalSense);
    s.command_specific = static_cast<uint32_t>(index);
    return s;
  }
  // SPC-4 5.17.4.3: a source or destination failed under the copy manager.
  Sense s = MakeSense(SenseKey::kCopyAborted, Asc::kThirdPartyDeviceFailure);
  s.command_specific = static_cast<uint32_t>(index);
  if (!r.errors.empty()) s.information = r.errors.front().lba.value();
  FERRY_LOG_WARN("copy manager: step {} failed: {}", index, IoStatusName(r.status));
  return s;
}

void CopyRunner::StepDone(uint64_t bytes) {
  {
    std::lock_guard l(op_->mu);
    op_->segments_done++;
    op_->bytes_done += bytes;
  }
  ++index_;
  Pump();
}

void CopyRunner::Finish(std::optional<Sense> sense) {
  {
    std::lock_guard l(op_->mu);
    if (op_->cancel) {
      op_->status = CopyOpStatus::kTerminated;
    } else if (sense) {
      op_->status = CopyOpStatus::kCompletedWithErrors;
    } else {
      op_->status = op_->residual ? CopyOpStatus::kCompletedResidualData : CopyOpStatus::kCompleted;
    }
    op_->failed = sense.has_value();
    if (sense) op_->sense = *sense;
  }
  manager_->EndOp(op_);
  result_ = std::move(sense);
  if (task_ == nullptr) return;  // IMMED: the command completed long ago
  origin_->Post([self = shared_from_this()] {
    if (self->result_) self->task_->Fail(*self->result_);
    TaskDone d = std::move(self->done_);
    d();
  });
}

}  // namespace ferry::scsi
