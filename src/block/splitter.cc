#include "block/splitter.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <vector>

#include "io/reactor.h"

namespace ferry::block {
namespace {

// The shared zero buffer for write-zeroes emulation: allocated once, never written after
// initialisation, never freed (devices may read it until process exit).
std::byte* ZeroBuffer() {
  static std::byte* const buf = [] {
    void* p = std::aligned_alloc(kZeroBufferAlignment, kZeroBufferBytes);
    if (p != nullptr) std::memset(p, 0, kZeroBufferBytes);
    return static_cast<std::byte*>(p);
  }();
  return buf;
}

// ValidateRequest without the size limits (max_io_bytes, max_iovecs): those are what
// splitting is for.
IoStatus ValidateForSplit(const BlockDevice& dev, const IoRequest& req) {
  const Geometry& g = dev.geometry();
  const QueueLimits& l = dev.limits();
  if (req.op == IoOp::kFlush) return IoStatus::kOk;
  if (req.op != IoOp::kRead && dev.read_only()) return IoStatus::kReadOnly;
  if (req.blocks.value() == 0) return IoStatus::kInvalid;
  if (req.lba.value() > g.num_blocks.value() ||
      req.blocks.value() > g.num_blocks.value() - req.lba.value()) {
    return IoStatus::kInvalid;
  }
  if (req.op == IoOp::kDiscard && l.max_discard_bytes == 0) return IoStatus::kNotSupported;
  if (req.op != IoOp::kRead && req.op != IoOp::kWrite) return IoStatus::kOk;
  if (req.iovcnt == 0 || req.iov == nullptr) return IoStatus::kInvalid;
  const uint64_t align = std::max<uint32_t>(l.buffer_alignment, 1);
  uint64_t have = 0;
  for (uint32_t i = 0; i < req.iovcnt; ++i) {
    const iovec& v = req.iov[i];
    if (reinterpret_cast<uintptr_t>(v.iov_base) % align != 0 || v.iov_len % align != 0) {
      return IoStatus::kInvalid;
    }
    have += v.iov_len;
  }
  return have == req.blocks.bytes(g.block_size) ? IoStatus::kOk : IoStatus::kInvalid;
}

// One parent request being split. Lives from SubmitSplit until the parent's callback has
// returned, then goes back to the per-thread free list.
class SplitContext {
 public:
  void Start(BlockDevice& dev, IoRequest& parent, const SplitOptions& options);

 private:
  struct Child {
    IoRequest req;
    std::vector<iovec> iov;  // capacity kept across reuse
    std::chrono::microseconds backoff{0};
    std::chrono::microseconds waited{0};
    bool busy = false;
  };

  IoStatus Plan();
  bool MoreToIssue() const { return !stop_ && (flush_pending_ || left_blocks_ > 0); }
  bool Build(Child& c);
  bool BuildPayload(Child& c, uint64_t want_bytes);
  void BuildZeroes(Child& c, uint64_t want_bytes);
  void Advance(uint64_t bytes);
  void Pump();
  void OnChildDone(Child& c, IoStatus st);
  void Fail(Lba lba, IoStatus st);
  void Complete();

  BlockDevice* dev_ = nullptr;
  IoRequest* parent_ = nullptr;
  SplitOptions opt_;
  io::Reactor* reactor_ = nullptr;
  std::vector<Child> children_;  // at least opt_.max_in_flight; addresses stable per use
  uint32_t in_flight_ = 0;       // children submitted or waiting to be retried
  bool in_start_ = false;        // inside SubmitSplit: completion must be posted
  bool pumping_ = false;         // guards against devices that complete inside Submit
  bool stop_ = false;            // a child failed (or cannot be built): issue no more
  bool flush_pending_ = false;

  // What the children are and how big they may be.
  IoOp child_op_ = IoOp::kRead;
  bool zero_emulation_ = false;
  uint64_t max_child_bytes_ = 0;  // multiple of unit_
  uint32_t max_child_iovecs_ = 0;
  uint64_t unit_ = 0;  // child byte lengths are multiples of this (blocks and alignment)

  // Cursor: the next block to issue and, for payload ops, where it sits in the iovecs.
  Lba next_lba_;
  uint64_t left_blocks_ = 0;
  uint32_t iov_index_ = 0;
  uint64_t iov_offset_ = 0;

  IoStatus status_ = IoStatus::kOk;
  uint64_t error_lba_ = UINT64_MAX;
};

// Contexts are reused per thread: completions run on the submitting reactor's thread, so a
// context returns to the list it came from. The list is bounded; extras are freed.
constexpr size_t kMaxFreeContexts = 64;
thread_local std::vector<std::unique_ptr<SplitContext>> t_free_contexts;

SplitContext* AcquireContext() {
  if (t_free_contexts.empty()) return new SplitContext();
  SplitContext* ctx = t_free_contexts.back().release();
  t_free_contexts.pop_back();
  return ctx;
}

void ReleaseContext(SplitContext* ctx) {
  if (t_free_contexts.size() >= kMaxFreeContexts) {
    delete ctx;
    return;
  }
  t_free_contexts.emplace_back(ctx);
}

void SplitContext::Start(BlockDevice& dev, IoRequest& parent, const SplitOptions& options) {
  dev_ = &dev;
  parent_ = &parent;
  opt_ = options;
  opt_.max_in_flight = std::max<uint32_t>(opt_.max_in_flight, 1);
  reactor_ = io::Reactor::Current();
  in_flight_ = 0;
  stop_ = false;
  status_ = IoStatus::kOk;
  error_lba_ = UINT64_MAX;
  if (children_.size() < opt_.max_in_flight) {
    // Growing moves the children: re-point every callback at its new slot.
    children_.resize(opt_.max_in_flight);
    for (Child& c : children_) {
      Child* cp = &c;
      c.req.done = [this, cp](IoStatus st) { OnChildDone(*cp, st); };
    }
  }
  IoStatus st = ValidateForSplit(dev, parent);
  if (st == IoStatus::kOk) st = Plan();
  if (st != IoStatus::kOk) Fail(parent.lba, st);
  in_start_ = true;
  Pump();
  in_start_ = false;
}

// Chooses the child op and sizes; sets up the cursor.
IoStatus SplitContext::Plan() {
  const IoRequest& p = *parent_;
  const uint32_t bs = dev_->geometry().block_size;
  const QueueLimits& l = dev_->limits();
  const uint64_t align = std::max<uint32_t>(l.buffer_alignment, 1);
  child_op_ = p.op;
  zero_emulation_ = false;
  flush_pending_ = p.op == IoOp::kFlush;
  next_lba_ = p.lba;
  left_blocks_ = flush_pending_ ? 0 : p.blocks.value();
  iov_index_ = 0;
  iov_offset_ = 0;
  unit_ = bs;
  max_child_iovecs_ = 0;
  switch (p.op) {
    case IoOp::kFlush: return IoStatus::kOk;
    // Not split: a caller that uses them submits within the device's limits and does the
    // work itself on kNotSupported.
    case IoOp::kWriteSame:
    case IoOp::kCompareAndWrite: return IoStatus::kInvalid;
    case IoOp::kDiscard: max_child_bytes_ = l.max_discard_bytes / bs * bs; break;
    case IoOp::kWriteZeroes:
      if (l.max_write_zeroes_bytes >= bs) {
        max_child_bytes_ = l.max_write_zeroes_bytes / bs * bs;
        break;
      }
      // Emulate with writes of the zero buffer, up to max_iovecs copies of it per child.
      if (ZeroBuffer() == nullptr) return IoStatus::kNoResources;
      if (align > kZeroBufferAlignment) return IoStatus::kNotSupported;
      zero_emulation_ = true;
      child_op_ = IoOp::kWrite;
      unit_ = std::lcm<uint64_t>(bs, align);
      if (kZeroBufferBytes % unit_ != 0) return IoStatus::kNotSupported;
      max_child_iovecs_ = l.max_iovecs;
      max_child_bytes_ =
          std::min<uint64_t>(l.max_io_bytes, uint64_t(l.max_iovecs) * kZeroBufferBytes);
      max_child_bytes_ = max_child_bytes_ / unit_ * unit_;
      break;
    case IoOp::kRead:
    case IoOp::kWrite:
      unit_ = std::lcm<uint64_t>(bs, align);
      max_child_iovecs_ = l.max_iovecs;
      max_child_bytes_ = l.max_io_bytes / unit_ * unit_;
      break;
  }
  if (max_child_bytes_ == 0) return IoStatus::kInvalid;  // limits below one block
  if ((p.op == IoOp::kRead || p.op == IoOp::kWrite || zero_emulation_) && max_child_iovecs_ == 0) {
    return IoStatus::kInvalid;
  }
  return IoStatus::kOk;
}

bool SplitContext::Build(Child& c) {
  const uint32_t bs = dev_->geometry().block_size;
  c.req.op = child_op_;
  c.req.flags = parent_->flags;
  c.req.iov = nullptr;
  c.req.iovcnt = 0;
  c.iov.clear();
  if (flush_pending_) {
    c.req.lba = parent_->lba;
    c.req.blocks = parent_->blocks;
    flush_pending_ = false;
    return true;
  }
  const uint64_t want = std::min(max_child_bytes_, left_blocks_ * bs);
  uint64_t got = want;
  if (child_op_ == IoOp::kRead || child_op_ == IoOp::kWrite) {
    if (zero_emulation_) {
      BuildZeroes(c, want);
    } else if (!BuildPayload(c, want)) {
      return false;
    }
    got = 0;
    for (const iovec& v : c.iov) got += v.iov_len;
    c.req.iov = c.iov.data();
    c.req.iovcnt = static_cast<uint32_t>(c.iov.size());
  }
  c.req.lba = next_lba_;
  c.req.blocks = BlockCount(got / bs);
  next_lba_ += c.req.blocks;
  left_blocks_ -= c.req.blocks.value();
  return true;
}

// Takes up to `want` bytes of the parent's iovecs from the cursor, in at most
// max_child_iovecs_ pieces. When the iovec cap stops it short, the child is cut back to a
// unit boundary; false when not even one unit fits.
bool SplitContext::BuildPayload(Child& c, uint64_t want) {
  uint64_t got = 0;
  uint32_t index = iov_index_;
  uint64_t offset = iov_offset_;
  while (got < want && c.iov.size() < max_child_iovecs_) {
    const iovec& v = parent_->iov[index];
    uint64_t n = std::min<uint64_t>(v.iov_len - offset, want - got);
    if (n > 0) c.iov.push_back({static_cast<char*>(v.iov_base) + offset, n});
    got += n;
    offset += n;
    if (offset == v.iov_len) {
      ++index;
      offset = 0;
    }
  }
  if (got < want) {
    uint64_t trim = got % unit_;
    if (trim == got) return false;
    while (trim > 0) {
      iovec& last = c.iov.back();
      if (last.iov_len <= trim) {
        trim -= last.iov_len;
        got -= last.iov_len;
        c.iov.pop_back();
      } else {
        last.iov_len -= trim;
        got -= trim;
        trim = 0;
      }
    }
  }
  Advance(got);
  return true;
}

void SplitContext::BuildZeroes(Child& c, uint64_t want) {
  for (uint64_t got = 0; got < want;) {
    uint64_t n = std::min(kZeroBufferBytes, want - got);
    c.iov.push_back({ZeroBuffer(), n});
    got += n;
  }
}

// Moves the iovec cursor forward by `bytes`.
void SplitContext::Advance(uint64_t bytes) {
  while (bytes > 0) {
    uint64_t n = std::min<uint64_t>(parent_->iov[iov_index_].iov_len - iov_offset_, bytes);
    bytes -= n;
    iov_offset_ += n;
    if (iov_offset_ == parent_->iov[iov_index_].iov_len) {
      ++iov_index_;
      iov_offset_ = 0;
    }
  }
}

void SplitContext::Pump() {
  if (pumping_) return;  // a child completed inside Submit: the loop below goes on
  pumping_ = true;
  while (MoreToIssue() && in_flight_ < opt_.max_in_flight) {
    Child* c = nullptr;
    for (uint32_t i = 0; i < opt_.max_in_flight && c == nullptr; ++i) {
      if (!children_[i].busy) c = &children_[i];
    }
    if (!Build(*c)) {
      Fail(next_lba_, IoStatus::kInvalid);
      break;
    }
    c->busy = true;
    c->backoff = std::chrono::microseconds(0);
    c->waited = std::chrono::microseconds(0);
    ++in_flight_;
    dev_->Submit(c->req);
  }
  pumping_ = false;
  if (in_flight_ > 0 || MoreToIssue()) return;
  if (in_start_) {
    reactor_->Post([this] { Complete(); });
  } else {
    Complete();
  }
}

void SplitContext::OnChildDone(Child& c, IoStatus st) {
  if (st == IoStatus::kNoResources) {
    auto next =
        c.backoff.count() == 0 ? opt_.first_backoff : std::min(c.backoff * 2, opt_.max_backoff);
    if (c.waited + next <= opt_.give_up_after) {
      c.backoff = next;
      c.waited += next;
      Child* cp = &c;
      reactor_->RunAfter(next, [this, cp] { dev_->Submit(cp->req); });
      return;
    }
  }
  c.busy = false;
  --in_flight_;
  if (st != IoStatus::kOk) Fail(c.req.lba, st);
  Pump();
}

void SplitContext::Fail(Lba lba, IoStatus st) {
  stop_ = true;
  if (lba.value() < error_lba_ || status_ == IoStatus::kOk) {
    error_lba_ = lba.value();
    status_ = st;
  }
}

void SplitContext::Complete() {
  IoRequest* parent = parent_;
  parent_ = nullptr;
  dev_ = nullptr;
  // The context is released only after the callback returns: this may run inside a
  // child's callback, whose storage is part of the context.
  parent->done(status_);
  ReleaseContext(this);
}

}  // namespace

void SubmitSplit(BlockDevice& dev, IoRequest& req, const SplitOptions& options) {
  AcquireContext()->Start(dev, req, options);
}

}  // namespace ferry::block
