// Job lifecycle: plan, pump, errors, notes, completion.
#include "copy/job.h"

#include <algorithm>

namespace ferry::copy {

EngineShared::EngineShared(io::Reactor* r, const EngineOptions& o)
    : reactor(r),
      options(o),
      pool(o.chunk_bytes, o.max_buffers),
      // Burst: one chunk, or a tenth of a second at the rate when that is more.
      bucket(o.throttle_bytes_per_sec, std::max(o.chunk_bytes, o.throttle_bytes_per_sec / 10)) {}

Job::Job(std::shared_ptr<EngineShared> shared, CopyDescriptor desc, Translation t, CopyDoneFn done)
    : shared_(std::move(shared)),
      reactor_(shared_->reactor),
      desc_(std::move(desc)),
      pieces_(std::move(t.pieces)),
      pins_(std::move(t.pins)),
      done_(std::move(done)),
      num_dsts_(desc_.dsts.size()),
      total_bytes_(StreamBytes(desc_) * num_dsts_) {}

Job::~Job() = default;

CopyCounters Job::progress() const {
  CopyCounters c;
  c.total_bytes = total_bytes_;
  c.done_bytes = done_bytes_.load(std::memory_order_relaxed);
  c.offloaded_bytes = offloaded_bytes_.load(std::memory_order_relaxed);
  c.emulated_bytes = emulated_bytes_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < kNumMechanisms; ++i) {
    c.by_mechanism[i] = by_mechanism_[i].load(std::memory_order_relaxed);
  }
  return c;
}

void Job::Cancel() {
  if (completed_.load(std::memory_order_acquire)) return;
  if (cancel_requested_.exchange(true, std::memory_order_acq_rel)) return;
  reactor_->Post([self = shared_from_this()] { self->Pump(); });
}

void Job::Start() {
  started_ = true;
  Plan();
  Pump();
}

// Cuts the work into legs and the two emulation lanes (job.h).
void Job::Plan() {
  const EngineOptions& o = shared_->options;
  depth_ = std::max<uint32_t>(o.queue_depth, 1);
  unit_ = MaxBlockSize(desc_);
  for (const Piece& p : pieces_) {
    unit_ = std::max<uint64_t>(unit_, p.src.dev->geometry().block_size);
    for (size_t k = 0; k < num_dsts_; ++k) {
      unit_ = std::max<uint64_t>(unit_, p.dst[k].dev->geometry().block_size);
    }
  }
  // Submit refused block sizes above the pool's buffers, so a chunk holds at least a block.
  chunk_bytes_ = std::max(
      AlignDown(std::min<uint64_t>(o.chunk_bytes, shared_->pool.buffer_bytes()), unit_), unit_);
  chunks_ = std::vector<Chunk>(depth_);

  const std::vector<bool> hazard = FindHazards(pieces_, num_dsts_);
  uint64_t ordered_bytes = 0;
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const Piece& p = pieces_[i];
    std::array<OffloadSpan, kMaxDestinations> spans{};
    if (desc_.allow_offload && !hazard[i]) spans = PlanOffload(p);
    if (hazard[i]) ordered_bytes += p.len;
    PlanEmulation(p, spans, hazard[i]);
  }
  if (!desc_.allow_offload) {
    AddNote("offload disabled (--no-offload)");
  } else if (ordered_bytes > 0) {
    AddNote(std::string(desc_.src->name()) + ": source and destination ranges overlap; " +
            std::to_string(ordered_bytes) + " bytes copied in stream order by emulation");
  }
  NoteUnaligned();
  pieces_ = {};
}

void Job::Pump() {
  if (finished_ || !started_) return;
  if (!stopping_ && cancel_requested_.load(std::memory_order_acquire)) {
    stopping_ = true;
    if (status_ == IoStatus::kOk) status_ = IoStatus::kAborted;
    CancelLegsInFlight();
  }
  // Two passes at most: issuing may find the pins stale (MayIssue), and then, with no
  // translated work in flight, the rest is retargeted and issued at once.
  for (int pass = 0; pass < 2; ++pass) {
    // Pins asked back or stale: once no translated work is in flight, drop them and move
    // the rest onto the descriptor's devices (pins.cc).
    if (fallback_ && !retargeted_ && translated_in_flight_ == 0) Retarget();
    if (stopping_) break;
    while (CanIssueLeg() && MayIssue(legs_[next_leg_].translated) &&
           !Throttled(legs_[next_leg_].bytes)) {
      IssueLeg();
    }
    for (Lane* lane = NextLane(); lane != nullptr && IssueChunk(lane); lane = NextLane()) {
    }
    if (!fallback_ || retargeted_ || translated_in_flight_ > 0) break;
  }
  MaybeFinish();
}

// Takes `bytes` from the engine's token bucket; when it is empty, arms one timer that pumps
// again and returns true.
bool Job::Throttled(uint64_t bytes) {
  if (throttle_timer_ != 0) return true;
  const auto wait = shared_->bucket.Take(bytes);
  if (wait.count() == 0) return false;
  throttle_timer_ = reactor_->RunAfter(wait, [self = shared_from_this()] {
    self->throttle_timer_ = 0;
    self->Pump();
  });
  return true;
}

void Job::Count(block::CopyMechanism m, uint64_t bytes) {
  by_mechanism_[static_cast<size_t>(m)].fetch_add(bytes, std::memory_order_relaxed);
  done_bytes_.fetch_add(bytes, std::memory_order_relaxed);
}

// The first error decides the status (over a cancel); work in flight still drains.
void Job::Fail(const RangeError& e) {
  if (status_ == IoStatus::kOk || status_ == IoStatus::kAborted) status_ = e.status;
  stopping_ = true;
  errors_.push_back(e);
}

void Job::AddNote(std::string note) {
  if (std::find(notes_.begin(), notes_.end(), note) == notes_.end()) {
    notes_.push_back(std::move(note));
  }
}

void Job::MaybeFinish() {
  if (finished_) return;
  const bool work_left = next_leg_ < legs_.size() || parallel_.HasWork() || ordered_.HasWork();
  if ((work_left && !stopping_) || legs_in_flight_ > 0 || chunks_in_flight_ > 0) return;
  Finish();
}

void Job::Finish() {
  finished_ = true;
  completed_.store(true, std::memory_order_release);
  if (throttle_timer_ != 0) {
    reactor_->CancelTimer(throttle_timer_);
    throttle_timer_ = 0;
  }
  spare_.Release();
  pins_->ReleaseAll();
  if (waiting_for_buffer_) {  // the pool's entry stays queued; it passes its wakeup on
    waiting_for_buffer_ = false;
    --shared_->buffer_waiters;
  }
  CopyResult result;
  result.counters = progress();
  // A cancel that lost the race with the last completion aborted nothing.
  const bool all_done = result.counters.done_bytes == total_bytes_;
  result.status = status_ == IoStatus::kAborted && all_done ? IoStatus::kOk : status_;
  std::stable_sort(errors_.begin(), errors_.end(), [](const RangeError& a, const RangeError& b) {
    if (a.stream_offset_bytes != b.stream_offset_bytes) {
      return a.stream_offset_bytes < b.stream_offset_bytes;
    }
    return a.on_source != b.on_source ? a.on_source : a.dst_index < b.dst_index;
  });
  result.errors = std::move(errors_);
  result.offload_notes = std::move(notes_);
  auto self = shared_from_this();  // the engine's reference goes first
  shared_->active.erase(this);
  done_(std::move(result));
}

}  // namespace ferry::copy
