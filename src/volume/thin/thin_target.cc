#include "volume/thin/thin_target.h"

#include <algorithm>
#include <cstring>

#include "block/splitter.h"
#include "io/reactor.h"
#include "volume/stack.h"
#include "volume/table.h"

namespace ferry::volume::thin {

namespace {

// One piece in flight, on the pool reactor. The piece is cut at data-block boundaries and run
// one segment at a time; a segment that provisions or copies a block holds its cell.
struct Op {
  std::shared_ptr<Pool> pool;
  uint32_t dev = 0;
  PieceIo* io = nullptr;
  io::Reactor* home = nullptr;
  uint64_t start = 0;  // target-relative bytes
  uint64_t len = 0;
  uint64_t pos = 0;
  // The current segment.
  uint64_t vblock = 0;
  uint64_t in_block = 0;
  uint64_t seg = 0;
  WritePlan plan;
  bool locked = false;
  block::IoRequest sub;
  std::vector<iovec> iovs;
  std::vector<uint8_t> bounce;
};

bool IsWrite(block::IoOp op) {
  return op == block::IoOp::kWrite || op == block::IoOp::kWriteZeroes;
}

void Run(Op* op);

void Finish(Op* op, IoStatus st) {
  op->home->Post([op, st] {
    op->io->child.done(st);
    delete op;
  });
}

void Resume(Op* op, IoStatus st) {
  if (op->locked) {
    op->locked = false;
    // A block newly mapped for a write that failed would show the data device's old
    // contents (another thin's freed data): map back what the vblock had (nothing, or the
    // block it was being copied from).
    if (st != IoStatus::kOk) (void)op->pool->meta().AbortWrite(op->dev, op->vblock, op->plan);
    op->pool->Unlock(op->dev, op->vblock);
  }
  if (st != IoStatus::kOk) {
    Finish(op, st);
    return;
  }
  op->pos += op->seg;
  Run(op);
}

// The payload of [pos, pos + seg) of the piece (zeroes for write-zeroes).
void SliceSegment(Op* op) {
  op->iovs.clear();
  if (op->io->child.op == block::IoOp::kWriteZeroes) {
    op->iovs.push_back({const_cast<uint8_t*>(op->pool->zeroes().data()), op->seg});
    return;
  }
  uint64_t skip = op->pos;
  uint64_t left = op->seg;
  const block::IoRequest& c = op->io->child;
  for (uint32_t i = 0; i < c.iovcnt && left > 0; ++i) {
    const uint64_t n = c.iov[i].iov_len;
    if (skip >= n) {
      skip -= n;
      continue;
    }
    const uint64_t take = std::min(left, n - skip);
    op->iovs.push_back({static_cast<char*>(c.iov[i].iov_base) + skip, take});
    left -= take;
    skip = 0;
  }
}

// Reads or writes the segment at byte `at` of the data device.
void SubmitData(Op* op, block::IoOp kind, uint64_t at, uint64_t len) {
  const uint32_t dbs = op->pool->data().geometry().block_size;
  op->sub = block::IoRequest{};
  op->sub.op = kind;
  op->sub.lba = Lba(at / dbs);
  op->sub.blocks = BlockCount(len / dbs);
  op->sub.iov = op->iovs.data();
  op->sub.iovcnt = static_cast<uint32_t>(op->iovs.size());
  op->sub.done = [op](IoStatus st) { Resume(op, st); };
  block::SubmitSplit(op->pool->data(), op->sub);
}

void SubmitSegment(Op* op, block::IoOp kind, uint64_t dblock) {
  SubmitData(op, kind, dblock * op->pool->block_bytes() + op->in_block, op->seg);
}

// Writes the segment into the newly mapped plan.data_block (the cell is held).
void WriteNew(Op* op) {
  Pool& pool = *op->pool;
  if (pool.Discarding(op->plan.data_block)) {
    pool.WaitDiscard([op](bool) { WriteNew(op); });
    return;
  }
  const uint64_t bs = pool.block_bytes();
  const bool whole = op->seg == bs;
  if (op->plan.action == WriteAction::kCopyOnWrite && !whole) {
    MoveRequest m{.src = &pool.data(),
                  .src_offset_bytes = op->plan.copy_from * bs,
                  .dst = &pool.data(),
                  .dst_offset_bytes = op->plan.data_block * bs,
                  .len_bytes = bs};
    pool.mover()->Move(m, [op](MoveResult r) {
      op->pool->reactor()->Post([op, st = r.status] {
        if (st != IoStatus::kOk) {
          Resume(op, st);
          return;
        }
        SubmitSegment(op, block::IoOp::kWrite, op->plan.data_block);
      });
    });
    return;
  }
  if (op->plan.action == WriteAction::kProvision && !whole && !pool.options().skip_block_zeroing) {
    // Zero-fill the rest of the new block in the same write.
    op->bounce.assign(bs, 0);
    uint64_t at = op->in_block;
    for (const iovec& v : op->iovs) {
      std::memcpy(op->bounce.data() + at, v.iov_base, v.iov_len);
      at += v.iov_len;
    }
    op->iovs.assign(1, {op->bounce.data(), bs});
    SubmitData(op, block::IoOp::kWrite, op->plan.data_block * bs, bs);
    return;
  }
  SubmitSegment(op, block::IoOp::kWrite, op->plan.data_block);
}

IoStatus NoSpace(Op* op) {
  Pool& pool = *op->pool;
  pool.NoteOutOfSpace();
  if (pool.options().error_if_no_space) return IoStatus::kNoSpace;
  pool.WaitForSpace([op](bool ok) {
    if (ok) {
      Run(op);
    } else {
      Finish(op, IoStatus::kNoSpace);
    }
  });
  return IoStatus::kOk;
}

// One write segment. Returns false when it went asynchronous (or failed the op).
bool StepWrite(Op* op) {
  Pool& pool = *op->pool;
  const uint64_t bs = pool.block_bytes();
  if (op->io->child.op == block::IoOp::kWriteZeroes && op->seg == bs &&
      !pool.metadata_read_only()) {
    // A whole block of zeroes is an unmapped block.
    if (!pool.meta().Discard(op->dev, op->vblock, 1).ok()) {
      Finish(op, IoStatus::kIoError);
      return false;
    }
    return true;
  }
  SliceSegment(op);
  if (pool.metadata_read_only()) {
    auto f = pool.meta().Find(op->dev, op->vblock);
    if (f.ok() && f->has_value() && !(*f)->shared) {
      SubmitSegment(op, block::IoOp::kWrite, (*f)->data_block);
    } else {
      Finish(op, f.ok() ? IoStatus::kReadOnly : IoStatus::kIoError);
    }
    return false;
  }
  Result<WritePlan> plan = pool.meta().PrepareWrite(op->dev, op->vblock);
  if (!plan.ok()) {
    if (plan.status().code() != StatusCode::kResourceExhausted) {
      Finish(op, IoStatus::kIoError);
    } else if (IoStatus st = NoSpace(op); st != IoStatus::kOk) {
      Finish(op, st);
    }
    return false;
  }
  if (plan->action == WriteAction::kOverwrite) {
    SubmitSegment(op, block::IoOp::kWrite, plan->data_block);
    return false;
  }
  op->plan = *plan;
  op->locked = true;
  pool.Lock(op->dev, op->vblock);
  WriteNew(op);
  return false;
}

bool StepRead(Op* op) {
  auto f = op->pool->meta().Find(op->dev, op->vblock);
  if (!f.ok()) {
    Finish(op, IoStatus::kIoError);
    return false;
  }
  SliceSegment(op);
  if (!f->has_value()) {
    for (const iovec& v : op->iovs) std::memset(v.iov_base, 0, v.iov_len);
    return true;
  }
  SubmitSegment(op, block::IoOp::kRead, (*f)->data_block);
  return false;
}

// Discards unmap the whole data blocks inside the piece (dm-thin ignores partial blocks).
bool StepDiscard(Op* op) {
  Pool& pool = *op->pool;
  const uint64_t bs = pool.block_bytes();
  const uint64_t first = (op->start + bs - 1) / bs;
  const uint64_t end = (op->start + op->len) / bs;
  if (pool.options().ignore_discard || end <= first) {
    op->pos = op->len;
    return true;
  }
  if (pool.metadata_read_only()) {
    Finish(op, IoStatus::kReadOnly);
    return false;
  }
  for (uint64_t v = first; v < end; ++v) {
    if (pool.Locked(op->dev, v)) {
      pool.WaitCell(op->dev, v, [op](bool) { Run(op); });
      return false;
    }
  }
  if (!pool.meta().Discard(op->dev, first, end - first).ok()) {
    Finish(op, IoStatus::kIoError);
    return false;
  }
  pool.BlocksReleased();
  op->pos = op->len;
  return true;
}

void Run(Op* op) {
  Pool& pool = *op->pool;
  const block::IoOp kind = op->io->child.op;
  const uint64_t bs = pool.block_bytes();
  while (op->pos < op->len) {
    if (kind == block::IoOp::kDiscard) {
      if (!StepDiscard(op)) return;
      break;
    }
    const uint64_t at = op->start + op->pos;
    op->vblock = at / bs;
    op->in_block = at % bs;
    op->seg = std::min(bs - op->in_block, op->len - op->pos);
    if (pool.Locked(op->dev, op->vblock)) {
      pool.WaitCell(op->dev, op->vblock, [op](bool) { Run(op); });
      return;
    }
    if (!(IsWrite(kind) ? StepWrite(op) : StepRead(op))) return;
    op->pos += op->seg;
  }
  const bool fua = kind == block::IoOp::kWrite && (op->io->child.flags & block::kIoFua) != 0;
  if (kind == block::IoOp::kFlush || fua) {
    pool.FlushAndCommit([op](IoStatus st) { Finish(op, st); });
    return;
  }
  Finish(op, IoStatus::kOk);
}

}  // namespace

Result<std::unique_ptr<Target>> ThinTarget::Create(const TargetArgs& a) {
  if (a.args.size() != 2) {
    return InvalidArgument("expected <pool dev> <dev id>, got " + std::to_string(a.args.size()) +
                           " arguments");
  }
  FERRY_ASSIGN_OR_RETURN(uint32_t id, ParseThinId(a.args[1]));
  std::shared_ptr<block::BlockDevice> dev;
  if (a.lookup != nullptr && *a.lookup) dev = (*a.lookup)(a.args[0]);
  if (dev == nullptr) {
    return NotFound("pool device '" + a.args[0] + "' does not exist (create the thin-pool first)");
  }
  // The pool volume's one line is asked for its pool (PoolLine), not cast to its type.
  std::shared_ptr<Table> table = ActiveTableOf(*dev);
  const PoolLine* line =
      table != nullptr && table->size() == 1 ? table->target(0).pool_line() : nullptr;
  std::shared_ptr<Pool> pool = line != nullptr && !line->thin_id() ? line->pool() : nullptr;
  if (pool == nullptr) {
    return InvalidArgument("device '" + a.args[0] +
                           "' is not a pool: name a volume whose table is one thin-pool line");
  }
  std::unique_ptr<ThinTarget> t(new ThinTarget(a.num_sectors, std::move(dev), std::move(pool)));
  t->pool_name_ = a.args[0];
  t->dev_ = id;
  return std::unique_ptr<Target>(std::move(t));
}

void ThinTarget::Prepare(PrepareDone done) {
  pool_->reactor()->Post([this, d = std::make_shared<PrepareDone>(std::move(done))] {
    if (pool_->meta().FindDevice(dev_) == nullptr) {
      (*d)(NotFound("pool '" + pool_name_ + "' has no thin device " + std::to_string(dev_) +
                    "; send it 'create_thin " + std::to_string(dev_) + "' first"));
      return;
    }
    (*d)(ferry::Status::Ok());
  });
}

void ThinTarget::Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
                     std::vector<MappedPiece>* out) const {
  if (op == block::IoOp::kFlush) offset_bytes = len_bytes = 0;
  // One piece named after the data device; SubmitPiece maps it block by block.
  out->push_back({.volume_offset_bytes = offset_bytes,
                  .len_bytes = len_bytes,
                  .kind = PieceKind::kDevice,
                  .dev = &pool_->data(),
                  .dev_offset_bytes = offset_bytes});
}

void ThinTarget::SubmitPiece(PieceIo& io) {
  auto* op = new Op;
  op->pool = pool_;
  op->dev = dev_;
  op->io = &io;
  op->home = io::Reactor::Current();
  op->start = io.piece.dev_offset_bytes;
  op->len = io.piece.len_bytes;
  pool_->reactor()->Post([op] { Run(op); });
}

std::string ThinTarget::TableArgs() const { return pool_name_ + " " + std::to_string(dev_); }

std::string ThinTarget::Status() const {
  std::string s = "Fail";
  pool_->RunSync([&] {
    const ThinDevice* d = pool_->meta().FindDevice(dev_);
    if (d == nullptr) return;
    const uint64_t spb = pool_->block_bytes() / kSectorBytes;
    const uint64_t mapped = d->map.size() * spb;
    s = std::to_string(mapped) + " " +
        (d->map.empty() ? std::string("-")
                        : std::to_string((d->map.rbegin()->first + 1) * spb - 1));
  });
  return s;
}

std::optional<block::ProvisioningExtent> ThinTarget::Provisioning(uint64_t offset_bytes,
                                                                  uint64_t len_bytes,
                                                                  uint32_t block_size) const {
  block::ProvisioningExtent e{true, BlockCount(1)};
  pool_->RunSync([&] {
    const uint64_t bs = pool_->block_bytes();
    uint64_t at = offset_bytes;
    bool first = true;
    while (at < offset_bytes + len_bytes) {
      auto f = pool_->meta().Find(dev_, at / bs);
      const bool mapped = f.ok() && f->has_value();
      if (first) e.mapped = mapped;
      if (!first && mapped != e.mapped) break;
      first = false;
      at = (at / bs + 1) * bs;
    }
    const uint64_t bytes = std::min(at, offset_bytes + len_bytes) - offset_bytes;
    e.blocks = BlockCount(std::max<uint64_t>(1, bytes / block_size));
  });
  return e;
}

// ---- copies inside the pool ----

namespace {

// The thin device of `t` when it is a thin line of `pool`.
std::optional<uint32_t> ThinOf(const Target& t, const std::shared_ptr<Pool>& pool) {
  const PoolLine* line = t.pool_line();
  if (line == nullptr || line->pool() != pool) return std::nullopt;
  return line->thin_id();
}

// The thin device of `pool` whose line of `src` holds [offset, offset + len) bytes, with the
// offset made relative to that line; std::nullopt when src is not a volume or the range is
// not inside one thin line of the pool.
std::optional<uint32_t> SourceThin(const block::BlockDevice& src, const std::shared_ptr<Pool>& pool,
                                   uint64_t* offset, uint64_t len) {
  std::shared_ptr<Table> table = ActiveTableOf(src);
  if (table == nullptr) return std::nullopt;
  const size_t i = table->FindTarget(*offset / kSectorBytes);
  if (i >= table->size()) return std::nullopt;
  const uint64_t start = table->start_sectors(i) * kSectorBytes;
  const Target& t = table->target(i);
  const std::optional<uint32_t> id = ThinOf(t, pool);
  if (!id || *offset + len > start + t.num_sectors() * kSectorBytes) return std::nullopt;
  *offset -= start;
  return id;
}

struct ShareRun {
  uint32_t src_dev;
  uint64_t src_vblock;
  uint64_t dst_vblock;
  uint64_t count;
};

struct ShareOp {
  std::shared_ptr<Pool> pool;
  block::CopyLegRequest* req = nullptr;
  io::Reactor* home = nullptr;
  uint32_t dst_dev = 0;
  std::vector<ShareRun> runs;
};

void FinishShare(ShareOp* op, IoStatus st) {
  if (st == IoStatus::kOk) op->req->mechanism = block::CopyMechanism::kThinShare;
  op->home->Post([op, st] {
    op->req->done(st);
    delete op;
  });
}

void RunShare(ShareOp* op) {
  Pool& pool = *op->pool;
  // Wait for writes that provision or copy a block of either range.
  for (const ShareRun& r : op->runs) {
    for (uint64_t i = 0; i < r.count; ++i) {
      const std::pair<uint32_t, uint64_t> cells[] = {{r.src_dev, r.src_vblock + i},
                                                     {op->dst_dev, r.dst_vblock + i}};
      for (const auto& [dev, vb] : cells) {
        if (pool.Locked(dev, vb)) {
          pool.WaitCell(dev, vb, [op](bool) { RunShare(op); });
          return;
        }
      }
    }
  }
  for (const ShareRun& r : op->runs) {
    ferry::Status s =
        pool.meta().ShareRange(r.src_dev, r.src_vblock, op->dst_dev, r.dst_vblock, r.count);
    if (!s.ok()) {
      FinishShare(op, IoStatus::kIoError);
      return;
    }
  }
  pool.BlocksReleased();
  // The copy is durable when it completes, like a copy that wrote and flushed its data.
  pool.FlushAndCommit([op](IoStatus st) { FinishShare(op, st); });
}

}  // namespace

bool ThinTarget::CanCopyFrom(const block::BlockDevice& src, std::string* why_not) const {
  std::shared_ptr<Table> table = ActiveTableOf(src);
  for (size_t i = 0; table != nullptr && i < table->size(); ++i) {
    if (ThinOf(table->target(i), pool_) && !pool_->options().read_only) return true;
  }
  if (why_not != nullptr) {
    *why_not = "'" + std::string(src.name()) + "' is not a thin volume of pool '" + pool_name_ +
               "' (or the pool is read-only): blocks are shared only inside one pool";
  }
  return false;
}

void ThinTarget::SubmitCopy(block::CopyLegRequest& req) {
  auto* op = new ShareOp;
  op->pool = pool_;
  op->req = &req;
  op->home = io::Reactor::Current();
  op->dst_dev = dev_;
  const uint64_t bs = pool_->block_bytes();
  bool ok = !pool_->options().read_only;
  for (const block::CopySegment& s : req.segments) {
    uint64_t src_off = s.src_offset_bytes;
    const std::optional<uint32_t> src =
        ok ? SourceThin(*req.src, pool_, &src_off, s.len_bytes) : std::nullopt;
    ok = src.has_value() && src_off % bs == 0 && s.dst_offset_bytes % bs == 0 &&
         s.len_bytes % bs == 0;
    if (!ok) break;
    op->runs.push_back({*src, src_off / bs, s.dst_offset_bytes / bs, s.len_bytes / bs});
  }
  if (!ok) {
    // Not whole blocks of a thin of this pool: the engine copies the leg with reads and
    // writes instead.
    op->home->Post([op] {
      op->req->done(IoStatus::kNotSupported);
      delete op;
    });
    return;
  }
  pool_->reactor()->Post([op] { RunShare(op); });
}

}  // namespace ferry::volume::thin
