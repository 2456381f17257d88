// Emulation: pipelined chunks through the engine's bounce buffers. One read per chunk, then
// a write per destination that needs it (dm-kcopyd's fan-out); reads and writes go through
// block::SubmitSplit, which cuts at device limits and retries kNoResources.
#include <algorithm>

#include "block/splitter.h"
#include "copy/job.h"

namespace ferry::copy {

// Cuts piece `p` where some destination's offloaded span begins or ends; each part goes to
// a lane with the destinations that still need it.
void Job::PlanEmulation(const Piece& p, const std::array<OffloadSpan, kMaxDestinations>& spans,
                        bool ordered) {
  std::vector<uint64_t> cuts = {0, p.len};
  for (size_t k = 0; k < num_dsts_; ++k) {
    if (spans[k].middle == 0) continue;
    cuts.push_back(spans[k].head);
    cuts.push_back(spans[k].head + spans[k].middle);
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  Lane& lane = ordered ? ordered_ : parallel_;
  const bool backward = ordered && CopyBackward(p, num_dsts_);
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    const uint64_t a = cuts[i], b = cuts[i + 1];
    uint32_t mask = 0;
    for (size_t k = 0; k < num_dsts_; ++k) {
      const OffloadSpan& s = spans[k];
      const bool offloaded = s.middle > 0 && a >= s.head && b <= s.head + s.middle;
      if (!offloaded) mask |= 1u << k;
    }
    if (mask != 0) lane.ranges.push_back({SubPiece(p, a, b - a), mask, backward});
  }
}

// The lane that may issue a chunk now: the ordered lane keeps at most one chunk in flight.
Job::Lane* Job::NextLane() {
  if (chunks_in_flight_ >= depth_) return nullptr;
  if (ordered_.HasWork() && ordered_.in_flight == 0) return &ordered_;
  if (parallel_.HasWork()) return &parallel_;
  return nullptr;
}

// Issues the next chunk of `lane`; false when it has to wait for a buffer or for tokens.
bool Job::IssueChunk(Lane* lane) {
  const EmuRange& r = lane->ranges[lane->next];
  if (!MayIssue(r.piece.translated)) return false;
  const uint64_t n = std::min(chunk_bytes_, r.piece.len - lane->issued);
  if (!spare_ && shared_->buffer_waiters == 0) spare_ = shared_->pool.Acquire();
  if (!spare_) {
    WaitForBuffer();
    return false;
  }
  if (Throttled(n)) return false;  // keeps spare_ for when the tokens arrive
  Chunk* c = &*std::find_if(chunks_.begin(), chunks_.end(), [](const Chunk& x) { return !x.busy; });
  const uint64_t off = r.backward ? r.piece.len - lane->issued - n : lane->issued;
  c->busy = true;
  c->lane = lane;
  c->buf = std::move(spare_);
  c->part = SubPiece(r.piece, off, n);
  c->mask = r.mask;
  c->pending_writes = 0;
  c->iov = {c->buf.data(), n};
  lane->issued += n;
  if (lane->issued == r.piece.len) {
    ++lane->next;
    lane->issued = 0;
  }
  ++lane->in_flight;
  ++chunks_in_flight_;
  if (c->part.translated) ++translated_in_flight_;
  block::BlockDevice* src = c->part.src.dev;
  const uint32_t bs = src->geometry().block_size;
  c->read = block::IoRequest{.op = block::IoOp::kRead,
                             .lba = Lba(c->part.src.byte / bs),
                             .blocks = BlockCount(n / bs),
                             .iov = &c->iov,
                             .iovcnt = 1};
  c->read.done = [this, c](IoStatus st) { OnRead(c, st); };
  block::SubmitSplit(*src, c->read);
  return true;
}

void Job::WaitForBuffer() {
  if (waiting_for_buffer_) return;
  waiting_for_buffer_ = true;
  ++shared_->buffer_waiters;
  // Weak references: the pool's waiter list must not keep a job (and through it the pool)
  // alive. A job that is gone (finished, so no longer counted) passes the wakeup on as in
  // OnBufferReturned().
  shared_->pool.WaitForBuffer(reactor_, [job = weak_from_this(), shared = std::weak_ptr(shared_)] {
    if (auto j = job.lock()) return j->OnBufferReturned();
    if (auto s = shared.lock()) {
      io::PooledBuffer pass = s->pool.Acquire();
    }
  });
}

// The pool woke this job: it is at the head of the queue, so it takes the buffer even while
// other jobs wait.
void Job::OnBufferReturned() {
  if (waiting_for_buffer_) {  // not after Finish(), which stopped counting the job
    waiting_for_buffer_ = false;
    --shared_->buffer_waiters;
  }
  if (finished_ || stopping_) {
    // The pool wakes one waiter per returned buffer; a job that no longer wants it passes
    // the wakeup on (taking and returning a free buffer wakes the next waiter), so another
    // job does not wait for a buffer that is already free.
    io::PooledBuffer pass = shared_->pool.Acquire();
    return Pump();
  }
  if (!spare_) spare_ = shared_->pool.Acquire();
  Pump();
}

void Job::OnRead(Chunk* c, IoStatus st) {
  if (st != IoStatus::kOk) {
    const block::BlockDevice* src = c->part.src.dev;
    Fail({.on_source = true,
          .dev = src,
          .lba = Lba(c->part.src.byte / src->geometry().block_size),
          .stream_offset_bytes = c->part.stream_offset,
          .len_bytes = c->part.len,
          .status = st});
  }
  if (st != IoStatus::kOk || stopping_) return ReleaseChunk(c);
  for (size_t k = 0; k < num_dsts_; ++k) {
    if (!(c->mask & (1u << k))) continue;
    const Place& d = c->part.dst[k];
    const uint32_t bs = d.dev->geometry().block_size;
    c->writes[k] = block::IoRequest{.op = block::IoOp::kWrite,
                                    .lba = Lba(d.byte / bs),
                                    .blocks = BlockCount(c->part.len / bs),
                                    .iov = &c->iov,
                                    .iovcnt = 1};
    c->writes[k].done = [this, c, k](IoStatus s) { OnWrite(c, k, s); };
    ++c->pending_writes;
  }
  for (size_t k = 0; k < num_dsts_; ++k) {
    if (c->mask & (1u << k)) block::SubmitSplit(*c->part.dst[k].dev, c->writes[k]);
  }
}

void Job::OnWrite(Chunk* c, size_t k, IoStatus st) {
  if (st == IoStatus::kOk) {
    emulated_bytes_.fetch_add(c->part.len, std::memory_order_relaxed);
    Count(block::CopyMechanism::kEmulated, c->part.len);
  } else {
    const Place& d = c->part.dst[k];
    Fail({.on_source = false,
          .dst_index = k,
          .dev = d.dev,
          .lba = Lba(d.byte / d.dev->geometry().block_size),
          .stream_offset_bytes = c->part.stream_offset,
          .len_bytes = c->part.len,
          .status = st});
  }
  if (--c->pending_writes == 0) ReleaseChunk(c);
}

void Job::ReleaseChunk(Chunk* c) {
  c->buf.Release();
  c->busy = false;
  --c->lane->in_flight;
  --chunks_in_flight_;
  if (c->part.translated) --translated_in_flight_;
  Pump();
}

}  // namespace ferry::copy
