#include "copy/copy_job.h"

#include <algorithm>

#include "block/splitter.h"

namespace ferry::copy {
namespace {

uint64_t TotalBytes(const CopyDescriptor& d) { return StreamBytes(d) * d.dsts.size(); }

bool RangesOverlap(uint64_t a, uint64_t b, uint64_t len) { return a < b + len && b < a + len; }

}  // namespace

Job::Job(EngineShared* shared, CopyDescriptor desc, CopyDoneFn done, FinishedFn finished)
    : shared_(shared),
      desc_(std::move(desc)),
      done_(std::move(done)),
      finished_fn_(std::move(finished)),
      total_bytes_(TotalBytes(desc_)) {}

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
  if (cancel_requested_.exchange(true)) return;
  shared_->reactor->Post([self = shared_from_this()] { self->Pump(); });
}

void Job::Start() {
  started_ = true;
  const uint64_t align = MaxBlockSize(desc_);
  chunk_bytes_ = AlignDown(shared_->options.chunk_bytes, align);
  Plan(MakePieces(desc_));
  Pump();
}

// Decides, per destination, which pieces go to native copy legs and which are emulated.
void Job::Plan(const std::vector<Piece>& pieces) {
  bool serial = false;
  for (size_t k = 0; k < desc_.dsts.size(); ++k) serial = serial || HasSelfOverlap(desc_, k);
  std::vector<uint32_t> emu_mask(pieces.size(), 0);
  for (size_t k = 0; k < desc_.dsts.size(); ++k) {
    block::BlockDevice* dst = desc_.dsts[k].dev;
    std::string why;
    if (!desc_.allow_offload) {
      AddNote("offload disabled for this copy: every byte is emulated");
    } else if (serial) {
      AddNote("source and destination ranges overlap on '" + std::string(desc_.src->name()) +
              "': copied by emulation, in order, with memmove semantics");
    } else if (dst->copy_offload() == nullptr) {
      AddNote("'" + std::string(dst->name()) + "' (" + std::string(dst->type()) +
              ") has no native copy");
    } else if (!dst->copy_offload()->CanCopyFrom(*desc_.src, &why)) {
      AddNote("'" + std::string(desc_.src->name()) + "' -> '" + std::string(dst->name()) +
              "': " + why);
    } else {
      PlanLegs(k, pieces, &emu_mask);
      continue;
    }
    for (uint32_t& m : emu_mask) m |= 1u << k;
  }
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (emu_mask[i] == 0) continue;
    const Piece& p = pieces[i];
    bool backward = false;
    for (size_t k = 0; k < desc_.dsts.size(); ++k) {
      backward = backward || (desc_.dsts[k].dev == desc_.src && p.dst_byte[k] > p.src_byte &&
                              RangesOverlap(p.src_byte, p.dst_byte[k], p.len));
    }
    emu_.push_back({p.stream_offset, p.src_byte, p.dst_byte, p.len, emu_mask[i], backward});
  }
  const uint32_t depth = std::max<uint32_t>(shared_->options.queue_depth, 1);
  chunks_ = std::vector<Chunk>(serial ? 1 : std::min(depth, shared_->options.max_buffers));
  max_legs_in_flight_ = depth;
}

// Native copy legs into destination k, within its copy limits. Pieces not aligned to the
// destination's copy granularity are emulated instead.
void Job::PlanLegs(size_t k, const std::vector<Piece>& pieces, std::vector<uint32_t>* emu_mask) {
  const block::QueueLimits& lim = desc_.dsts[k].dev->limits();
  const uint64_t gran = std::max<uint64_t>(lim.copy_granularity_bytes, 1);
  const uint64_t max_bytes = AlignDown(lim.max_copy_bytes, gran);
  const size_t max_segs = std::max<uint32_t>(lim.max_copy_segments, 1);
  Leg* leg = nullptr;
  for (size_t i = 0; i < pieces.size(); ++i) {
    const Piece& p = pieces[i];
    if (p.src_byte % gran || p.dst_byte[k] % gran || p.len % gran || lim.max_copy_bytes < gran) {
      (*emu_mask)[i] |= 1u << k;
      continue;
    }
    for (uint64_t off = 0; off < p.len;) {
      if (leg == nullptr || leg->bytes == max_bytes || leg->segments.size() == max_segs) {
        leg = &legs_.emplace_back();
        leg->dst = k;
      }
      uint64_t n = std::min(p.len - off, max_bytes - leg->bytes);
      leg->segments.push_back({p.src_byte + off, p.dst_byte[k] + off, n});
      leg->stream_offsets.push_back(p.stream_offset + off);
      leg->bytes += n;
      off += n;
    }
  }
}

void Job::Pump() {
  if (finished_ || !started_) return;
  if (cancel_requested_.load() && !stopping_) {
    stopping_ = true;
    if (status_ == IoStatus::kOk) status_ = IoStatus::kAborted;
  }
  while (!stopping_) {
    bool progressed = false;
    if (legs_in_flight_ < max_legs_in_flight_ && next_leg_ < legs_.size()) {
      if (Throttled(legs_[next_leg_].bytes)) break;
      IssueLeg();
      progressed = true;
    }
    if (HasEmuWork() && chunks_in_flight_ < chunks_.size()) {
      if (!IssueChunk()) break;
      progressed = true;
    }
    if (!progressed) break;
  }
  MaybeFinish();
}

bool Job::Throttled(uint64_t bytes) {
  if (throttle_timer_ != 0) return true;
  auto wait = shared_->bucket.Take(bytes);
  if (wait.count() == 0) return false;
  throttle_timer_ = shared_->reactor->RunAfter(wait, [self = shared_from_this()] {
    self->throttle_timer_ = 0;
    self->Pump();
  });
  return true;
}

void Job::IssueLeg() {
  Leg* leg = &legs_[next_leg_++];
  ++legs_in_flight_;
  leg->req.src = desc_.src;
  leg->req.segments = leg->segments;
  leg->req.mechanism = block::CopyMechanism::kNone;
  leg->req.done = [this, leg](IoStatus st) { OnLeg(leg, st); };
  desc_.dsts[leg->dst].dev->copy_offload()->SubmitCopy(leg->req);
}

void Job::OnLeg(Leg* leg, IoStatus st) {
  --legs_in_flight_;
  block::BlockDevice* dst = desc_.dsts[leg->dst].dev;
  if (st == IoStatus::kOk) {
    block::CopyMechanism m = leg->req.mechanism;
    if (m == block::CopyMechanism::kNone || m == block::CopyMechanism::kEmulated) {
      m = block::CopyMechanism::kNone;  // a device that did not say how: still native
    }
    offloaded_bytes_.fetch_add(leg->bytes, std::memory_order_relaxed);
    Count(m, leg->bytes);
  } else if (st == IoStatus::kNotSupported) {
    // "Emulate this leg": its destination range may be partly written; rewrite all of it.
    AddNote("'" + std::string(dst->name()) + "' refused native copy for some ranges: emulated");
    for (size_t i = 0; i < leg->segments.size(); ++i) {
      const block::CopySegment& s = leg->segments[i];
      EmuRange r{
          leg->stream_offsets[i], s.src_offset_bytes, {}, s.len_bytes, 1u << leg->dst, false};
      r.dst_byte[leg->dst] = s.dst_offset_bytes;
      emu_.push_back(r);
    }
  } else {
    const uint32_t bs = dst->geometry().block_size;
    Fail({.on_source = false,
          .dst_index = leg->dst,
          .dev = dst,
          .lba = Lba(leg->segments[0].dst_offset_bytes / bs),
          .stream_offset_bytes = leg->stream_offsets[0],
          .len_bytes = leg->bytes,
          .status = st});
  }
  Pump();
}

// Takes the next chunk of emulation work; false when it has to wait (buffer or throttle).
bool Job::IssueChunk() {
  const EmuRange& r = emu_[emu_next_];
  const uint64_t n = std::min(chunk_bytes_, r.len - emu_issued_);
  io::PooledBuffer buf = shared_->pool.Acquire();
  if (!buf) {
    if (!waiting_for_buffer_) {
      waiting_for_buffer_ = true;
      shared_->pool.WaitForBuffer(shared_->reactor, [self = shared_from_this()] {
        self->waiting_for_buffer_ = false;
        self->Pump();
      });
    }
    return false;
  }
  if (Throttled(n)) return false;
  Chunk* c = &*std::find_if(chunks_.begin(), chunks_.end(), [](const Chunk& x) { return !x.busy; });
  const uint64_t off = r.backward ? r.len - emu_issued_ - n : emu_issued_;
  c->busy = true;
  c->buf = std::move(buf);
  c->stream_offset = r.stream_offset + off;
  c->src_byte = r.src_byte + off;
  for (size_t k = 0; k < desc_.dsts.size(); ++k) c->dst_byte[k] = r.dst_byte[k] + off;
  c->len = n;
  c->mask = r.mask;
  emu_issued_ += n;
  if (emu_issued_ == r.len) {
    ++emu_next_;
    emu_issued_ = 0;
  }
  ++chunks_in_flight_;
  c->iov = {c->buf.data(), n};
  const uint32_t bs = desc_.src->geometry().block_size;
  c->read = block::IoRequest{.op = block::IoOp::kRead,
                             .lba = Lba(c->src_byte / bs),
                             .blocks = BlockCount(n / bs),
                             .iov = &c->iov,
                             .iovcnt = 1};
  c->read.done = [this, c](IoStatus st) { OnRead(c, st); };
  block::SubmitSplit(*desc_.src, c->read);
  return true;
}

void Job::OnRead(Chunk* c, IoStatus st) {
  if (st != IoStatus::kOk) {
    Fail({.on_source = true,
          .dev = desc_.src,
          .lba = Lba(c->src_byte / desc_.src->geometry().block_size),
          .stream_offset_bytes = c->stream_offset,
          .len_bytes = c->len,
          .status = st});
  }
  if (st != IoStatus::kOk || stopping_) return ReleaseChunk(c);
  for (size_t k = 0; k < desc_.dsts.size(); ++k) {
    if (!(c->mask & (1u << k))) continue;
    block::BlockDevice* dst = desc_.dsts[k].dev;
    const uint32_t bs = dst->geometry().block_size;
    c->writes[k] = block::IoRequest{.op = block::IoOp::kWrite,
                                    .lba = Lba(c->dst_byte[k] / bs),
                                    .blocks = BlockCount(c->len / bs),
                                    .iov = &c->iov,
                                    .iovcnt = 1};
    c->writes[k].done = [this, c, k](IoStatus s) { OnWrite(c, k, s); };
    ++c->pending_writes;
  }
  // Submit after counting, so an early completion cannot see pending_writes reach zero.
  for (size_t k = 0; k < desc_.dsts.size(); ++k) {
    if (c->mask & (1u << k)) block::SubmitSplit(*desc_.dsts[k].dev, c->writes[k]);
  }
}

void Job::OnWrite(Chunk* c, size_t k, IoStatus st) {
  if (st == IoStatus::kOk) {
    emulated_bytes_.fetch_add(c->len, std::memory_order_relaxed);
    Count(block::CopyMechanism::kEmulated, c->len);
  } else {
    block::BlockDevice* dst = desc_.dsts[k].dev;
    Fail({.on_source = false,
          .dst_index = k,
          .dev = dst,
          .lba = Lba(c->dst_byte[k] / dst->geometry().block_size),
          .stream_offset_bytes = c->stream_offset,
          .len_bytes = c->len,
          .status = st});
  }
  if (--c->pending_writes == 0) ReleaseChunk(c);
}

void Job::ReleaseChunk(Chunk* c) {
  c->buf.Release();
  c->busy = false;
  --chunks_in_flight_;
  Pump();
}

void Job::Count(block::CopyMechanism m, uint64_t bytes) {
  by_mechanism_[static_cast<size_t>(m)].fetch_add(bytes, std::memory_order_relaxed);
  done_bytes_.fetch_add(bytes, std::memory_order_relaxed);
}

void Job::Fail(RangeError e) {
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
  const bool work_left = next_leg_ < legs_.size() || HasEmuWork();
  if ((work_left && !stopping_) || legs_in_flight_ > 0 || chunks_in_flight_ > 0) return;
  finished_ = true;
  if (throttle_timer_ != 0) {
    shared_->reactor->CancelTimer(throttle_timer_);
    throttle_timer_ = 0;
  }
  CopyResult result;
  result.status = status_;
  result.counters = progress();
  std::sort(errors_.begin(), errors_.end(), [](const RangeError& a, const RangeError& b) {
    return a.stream_offset_bytes < b.stream_offset_bytes;
  });
  result.errors = std::move(errors_);
  result.offload_notes = std::move(notes_);
  auto self = shared_from_this();  // finished_fn_ drops the engine's reference
  done_(std::move(result));
  finished_fn_(this);
}

}  // namespace ferry::copy
