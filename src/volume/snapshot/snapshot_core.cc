#include "volume/snapshot/snapshot_core.h"

#include <algorithm>
#include <mutex>

#include "base/log.h"
#include "volume/snapshot/dev_io.h"
#include "volume/snapshot/free_list.h"

namespace ferry::volume::snapshot {

namespace {

// dm's origin hash: every core, found by COW device (adoption) or origin (snapshot-origin).
struct Registry {
  std::mutex mu;
  std::vector<std::weak_ptr<SnapshotCore>> cores;  // guarded by mu
  static Registry& Get() {
    static Registry r;
    return r;
  }
};

}  // namespace

// ---- registry ----

Result<std::shared_ptr<SnapshotCore>> SnapshotCore::Get(const Params& p) {
  Registry& r = Registry::Get();
  std::lock_guard lock(r.mu);
  for (const auto& w : r.cores) {
    std::shared_ptr<SnapshotCore> c = w.lock();
    if (c == nullptr || c->p_.cow.get() != p.cow.get()) continue;
    if (c->p_.origin.get() != p.origin.get() || c->p_.persistent != p.persistent ||
        c->p_.chunk_sectors != p.chunk_sectors) {
      return FailedPrecondition(
          "COW device '" + std::string(p.cow->name()) + "' is in use by a snapshot of origin '" +
          std::string(c->p_.origin->name()) + "' (" + (c->p_.persistent ? "P" : "N") +
          ", chunk size " + std::to_string(c->p_.chunk_sectors) +
          "); give the same arguments or remove that table first");
    }
    return c;
  }
  std::shared_ptr<SnapshotCore> c(new SnapshotCore(p));
  r.cores.push_back(c);
  return c;
}

std::vector<std::shared_ptr<SnapshotCore>> SnapshotCore::ForOrigin(
    const block::BlockDevice* origin) {
  std::vector<std::shared_ptr<SnapshotCore>> out;
  Registry& r = Registry::Get();
  std::lock_guard lock(r.mu);
  for (const auto& w : r.cores) {
    std::shared_ptr<SnapshotCore> c = w.lock();
    if (c != nullptr && c->p_.origin.get() == origin && c->registered_.load()) {
      out.push_back(std::move(c));
    }
  }
  return out;
}

SnapshotCore::SnapshotCore(const Params& p)
    : p_(p),
      chunk_bytes_(uint64_t{p.chunk_sectors} * kSectorBytes),
      store_({.cow = p.cow.get(),
              .chunk_sectors = p.chunk_sectors,
              .persistent = p.persistent,
              .origin_chunks =
                  (p.origin->geometry().size_bytes() + chunk_bytes_ - 1) / chunk_bytes_}) {}

SnapshotCore::~SnapshotCore() {
  Registry& r = Registry::Get();
  std::lock_guard lock(r.mu);
  std::erase_if(r.cores, [](const std::weak_ptr<SnapshotCore>& w) { return w.expired(); });
}

void SnapshotCore::SaveInAll(std::vector<std::shared_ptr<SnapshotCore>> cores, uint64_t offset,
                             uint64_t len, io::Reactor* back, io::Task done) {
  struct Join {
    std::atomic<size_t> left{0};
    io::Task done;
    io::Reactor* back = nullptr;
  };
  if (cores.empty()) return back->Post(std::move(done));
  auto j = std::make_shared<Join>();
  j->left = cores.size();
  j->done = std::move(done);
  j->back = back;
  for (auto& c : cores) {
    io::Reactor* home = c->home();
    home->Post([c = std::move(c), offset, len, j] {
      c->EnsureSaved(offset, len, [j] {
        if (j->left.fetch_sub(1) == 1) j->back->Post(std::move(j->done));
      });
    });
  }
}

// ---- prepare ----

void SnapshotCore::Prepare(Done done) {
  auto d = std::make_shared<Done>(std::move(done));
  home()->Post([self = shared_from_this(), d] {
    switch (self->open_) {
      case OpenState::kOpen: return (*d)(ferry::Status::Ok());
      case OpenState::kFailed: return (*d)(self->open_error_);
      case OpenState::kOpening: self->open_waiters_.push_back(std::move(*d)); return;
      case OpenState::kClosed: break;
    }
    self->open_ = OpenState::kOpening;
    self->open_waiters_.push_back(std::move(*d));
    self->store_.Open([self](ferry::Status st) {
      self->open_ = st.ok() ? OpenState::kOpen : OpenState::kFailed;
      self->open_error_ = st;
      if (st.ok()) {
        self->valid_ = self->store_.valid();
        self->UpdateStats();
        self->registered_ = true;
      }
      std::vector<Done> waiters;
      waiters.swap(self->open_waiters_);
      for (Done& w : waiters) w(st);
    });
  });
}

// ---- I/O ----

void SnapshotCore::Submit(PieceIo& io, io::Reactor* back) {
  Op* op = FreeList<Op>::Take();
  op->core = shared_from_this();
  op->io = &io;
  op->back = back;
  op->chunk = io.piece.dev_offset_bytes / chunk_bytes_;
  op->in_chunk = io.piece.dev_offset_bytes % chunk_bytes_;
  op->len = io.piece.len_bytes;
  switch (io.child.op) {
    case block::IoOp::kRead: return Read(op);
    case block::IoOp::kWrite:
    case block::IoOp::kWriteZeroes: return Write(op);
    default:
      // Discard: the range may read back as anything, so keeping the old data is valid and
      // needs no exception.
      return Complete(op, valid_ ? IoStatus::kOk : IoStatus::kIoError);
  }
}

void SnapshotCore::Complete(Op* op, IoStatus st) {
  // The op goes back to this (home) thread's free list; the completion carries the core's
  // reference, which may be the last one, to the submitting reactor.
  PieceIo* io = op->io;
  io::Reactor* back = op->back;
  std::shared_ptr<SnapshotCore> keep = std::move(op->core);
  *op = Op{};
  FreeList<Op>::Give(op);
  back->Post([io, st, keep = std::move(keep)] { io->child.done(st); });
}

void SnapshotCore::Read(Op* op) {
  if (!valid_) return Complete(op, IoStatus::kIoError);
  const block::IoRequest& c = op->io->child;
  if (auto cow = store_.Lookup(op->chunk)) {
    return SubmitDevIo(*p_.cow, block::IoOp::kRead, *cow * chunk_bytes_ + op->in_chunk, op->len,
                       c.iov, c.iovcnt, [op](IoStatus st) { op->core->Complete(op, st); });
  }
  ++origin_reads_[op->chunk];
  SubmitDevIo(*p_.origin, block::IoOp::kRead, op->chunk * chunk_bytes_ + op->in_chunk, op->len,
              c.iov, c.iovcnt, [op](IoStatus st) {
                op->core->OriginReadDone(op->chunk);
                op->core->Complete(op, st);
              });
}

void SnapshotCore::OriginReadDone(uint64_t chunk) {
  auto it = origin_reads_.find(chunk);
  if (--it->second > 0) return;
  origin_reads_.erase(it);
  auto p = pending_.find(chunk);
  if (p != pending_.end() && p->second.committed) Release(chunk);
}

void SnapshotCore::Write(Op* op) {
  if (!valid_) return Complete(op, IoStatus::kIoError);
  if (merging_) return MergeWrite(op);
  auto p = pending_.find(op->chunk);
  if (p != pending_.end()) {
    p->second.waiters.push_back([op] { op->core->Write(op); });
    return;
  }
  if (store_.Lookup(op->chunk)) return WriteCow(op);
  WriteNew(op);
}

void SnapshotCore::WriteCow(Op* op) {
  const block::IoRequest& c = op->io->child;
  ++cow_writes_[op->chunk];
  const uint64_t at = *store_.Lookup(op->chunk) * chunk_bytes_ + op->in_chunk;
  SubmitDevIo(*p_.cow, c.op, at, op->len, c.iov, c.iovcnt, [op](IoStatus st) {
    SnapshotCore& core = *op->core;
    if (st != IoStatus::kOk) core.InvalidateNow("a write to the COW device failed");
    core.CowWriteDone(op->chunk);
    core.Complete(op, st);
  });
}

// A write to a chunk with no exception: allocate one, copy the origin chunk first unless the
// write covers it, write, commit.
void SnapshotCore::WriteNew(Op* op) {
  auto slot = store_.Allocate(op->chunk);
  if (!slot.ok()) {
    InvalidateNow(std::string(slot.status().message()));
    return Complete(op, IoStatus::kIoError);
  }
  op->slot = *slot;
  pending_[op->chunk].slot = *slot;
  auto write = [op] {
    SnapshotCore& core = *op->core;
    const block::IoRequest& c = op->io->child;
    const uint64_t at = core.store_.SlotChunk(op->slot) * core.chunk_bytes_ + op->in_chunk;
    SubmitDevIo(*core.p_.cow, c.op, at, op->len, c.iov, c.iovcnt, [op](IoStatus st) {
      SnapshotCore& core = *op->core;
      if (st != IoStatus::kOk) {
        core.Committed(op->chunk, Unavailable("a write to the COW device failed"));
        return core.Complete(op, st);
      }
      core.store_.Commit(op->slot, [op](ferry::Status st) {
        op->core->Committed(op->chunk, st);
        op->core->Complete(op, st.ok() ? IoStatus::kOk : IoStatus::kIoError);
      });
    });
  };
  if (op->in_chunk == 0 && op->len == ChunkLen(op->chunk)) return write();
  const MoveRequest req{p_.origin.get(), op->chunk * chunk_bytes_, p_.cow.get(),
                        store_.SlotChunk(*slot) * chunk_bytes_, ChunkLen(op->chunk)};
  p_.mover->Move(req, [op, write](MoveResult r) mutable {
    op->core->home()->Post([op, write, st = r.status]() mutable {
      if (st != IoStatus::kOk) {
        op->core->Committed(op->chunk, Unavailable("copying the origin chunk failed"));
        return op->core->Complete(op, IoStatus::kIoError);
      }
      write();
    });
  });
}

void SnapshotCore::CowWriteDone(uint64_t chunk) {
  auto it = cow_writes_.find(chunk);
  if (--it->second == 0) cow_writes_.erase(it);
  if (merging_) MergeStep();
}

void SnapshotCore::EnsureSaved(uint64_t offset, uint64_t len, io::Task done) {
  if (!valid_ || merging_ || open_ != OpenState::kOpen || len == 0) return done();
  struct Join {
    size_t left = 1;
    io::Task done;
  };
  auto j = std::make_shared<Join>();
  j->done = std::move(done);
  const uint64_t last = (offset + len - 1) / chunk_bytes_;
  for (uint64_t c = offset / chunk_bytes_; c <= last && valid_; ++c) {
    if (store_.Lookup(c)) continue;
    if (!pending_.contains(c)) StartCopy(c);
    auto it = pending_.find(c);
    if (it == pending_.end()) continue;  // the snapshot was invalidated
    ++j->left;
    it->second.waiters.push_back([j] {
      if (--j->left == 0) j->done();
    });
  }
  if (--j->left == 0) j->done();
}

void SnapshotCore::StartCopy(uint64_t chunk) {
  auto slot = store_.Allocate(chunk);
  if (!slot.ok()) return InvalidateNow(std::string(slot.status().message()));
  pending_[chunk].slot = *slot;
  const MoveRequest req{p_.origin.get(), chunk * chunk_bytes_, p_.cow.get(),
                        store_.SlotChunk(*slot) * chunk_bytes_, ChunkLen(chunk)};
  p_.mover->Move(req, [self = shared_from_this(), chunk](MoveResult r) {
    self->home()->Post([self, chunk, st = r.status] { self->CopyDone(chunk, st); });
  });
}

void SnapshotCore::CopyDone(uint64_t chunk, IoStatus st) {
  auto it = pending_.find(chunk);
  if (it == pending_.end()) return;  // invalidated meanwhile
  if (st != IoStatus::kOk) {
    return Committed(chunk,
                     Unavailable("copying origin chunk " + std::to_string(chunk) +
                                 " to the COW device failed: " + std::string(IoStatusName(st))));
  }
  store_.Commit(it->second.slot, [self = shared_from_this(), chunk](ferry::Status st) {
    self->Committed(chunk, st);
  });
}

void SnapshotCore::Committed(uint64_t chunk, const ferry::Status& st) {
  if (!st.ok()) return InvalidateNow(std::string(st.message()));
  UpdateStats();
  Release(chunk);
}

void SnapshotCore::Release(uint64_t chunk) {
  auto it = pending_.find(chunk);
  if (it == pending_.end()) return;
  if (origin_reads_.contains(chunk)) {
    it->second.committed = true;  // OriginReadDone releases it
    return;
  }
  std::vector<io::Task> waiters = std::move(it->second.waiters);
  pending_.erase(it);
  for (io::Task& w : waiters) w();
}

void SnapshotCore::InvalidateNow(const std::string& why) {
  if (!valid_) return;
  FERRY_LOG_WARN("snapshot on COW device '{}' invalidated: {}", p_.cow->name(), why);
  valid_ = false;
  store_.Invalidate([self = shared_from_this()](ferry::Status) {});
  // Origin writes waiting for a copy go on without it; snapshot writes re-run and fail.
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [chunk, p] : pending) {
    for (io::Task& w : p.waiters) w();
  }
  auto merge_waiters = std::move(merge_waiters_);
  merge_waiters_.clear();
  for (io::Task& w : merge_waiters) w();
}

uint64_t SnapshotCore::ChunkLen(uint64_t chunk) const {
  const uint64_t size = p_.origin->geometry().size_bytes();
  return std::min(chunk_bytes_, size - chunk * chunk_bytes_);
}

void SnapshotCore::UpdateStats() {
  const uint64_t cs = p_.chunk_sectors;
  metadata_sectors_ = store_.metadata_chunks() * cs;
  allocated_sectors_ = (store_.live_exceptions() + store_.metadata_chunks()) * cs;
}

std::string SnapshotCore::Status() const {
  if (!valid_) return "Invalid";
  return std::to_string(allocated_sectors_.load()) + "/" +
         std::to_string(p_.cow->geometry().size_bytes() / kSectorBytes) + " " +
         std::to_string(metadata_sectors_.load());
}

}  // namespace ferry::volume::snapshot
