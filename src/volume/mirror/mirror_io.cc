// The mirror's data path on the home reactor: reads with balancing and retry, writes to
// every live leg behind a durable dirty mark, flushes per leg, leg failure.
#include <bit>

#include "block/splitter.h"
#include "volume/mirror/mirror_core.h"

namespace ferry::volume::mirror {

void MirrorCore::Submit(PieceIo& io) {
  io::Reactor* origin = io::Reactor::Current();
  home_->Post([self = shared_from_this(), &io, origin] { self->Run(self->NewOp(io, origin)); });
}

MirrorOp* MirrorCore::NewOp(PieceIo& io, io::Reactor* origin) {
  std::unique_ptr<MirrorOp> op;
  if (free_ops_.empty()) {
    op = std::make_unique<MirrorOp>();
    op->children.resize(legs_.size());
  } else {
    op = std::move(free_ops_.back());
    free_ops_.pop_back();
  }
  op->io = &io;
  op->origin = origin;
  op->op = io.child.op;
  op->ok_mask = op->err_mask = op->tried_mask = op->remaining = 0;
  op->first_error = IoStatus::kOk;
  if (op->op == block::IoOp::kFlush) {
    for (size_t i = 0; i < legs_.size(); ++i) {
      if (legs_[i]->dev.get() == io.piece.dev &&
          legs_[i]->offset_sectors * kSectorBytes == io.piece.dev_offset_bytes) {
        op->flush_leg = i;
        break;
      }
    }
  } else {
    op->off = io.piece.dev_offset_bytes - legs_[0]->offset_sectors * kSectorBytes;
    op->len = io.piece.len_bytes;
    op->region = op->off / region_bytes_;
  }
  return op.release();
}

void MirrorCore::Run(MirrorOp* op) {
  if (!prepared_) {
    Complete(op, IoStatus::kIoError);  // the table was not prepared (PrepareTable)
    return;
  }
  switch (op->op) {
    case block::IoOp::kRead: StartRead(op); return;
    case block::IoOp::kFlush: StartFlush(op); return;
    default: StartWrite(op); return;
  }
}

void MirrorCore::Complete(MirrorOp* op, IoStatus st) {
  PieceIo* io = op->io;
  op->origin->Post([io, st] { io->child.done(st); });
  free_ops_.emplace_back(op);
}

void MirrorCore::PrepChild(MirrorOp* op, size_t leg) {
  block::IoRequest& c = op->children[leg];
  const uint64_t bs = legs_[leg]->dev.get()->geometry().block_size;
  c.op = op->op;
  c.flags = op->io->child.flags;
  c.lba = Lba((legs_[leg]->offset_sectors * kSectorBytes + op->off) / bs);
  c.blocks = BlockCount(op->len / bs);
  c.iov = op->io->child.iov;
  c.iovcnt = op->io->child.iovcnt;
}

int MirrorCore::Primary() const {
  int any = -1;
  for (size_t i = 0; i < legs_.size(); ++i) {
    if (!Alive(i)) continue;
    if (!legs_[i]->catching_up) return static_cast<int>(i);
    if (any < 0) any = static_cast<int>(i);
  }
  return any;
}

uint32_t MirrorCore::failed_mask() const {
  uint32_t m = 0;
  for (size_t i = 0; i < legs_.size(); ++i) {
    if (!Alive(i)) m |= 1u << i;
  }
  return m;
}

void MirrorCore::FailLeg(size_t leg, char why) {
  char alive = 'A';
  if (!legs_[leg]->health.compare_exchange_strong(alive, why)) return;
  legs_[leg]->catching_up = false;
  if (cfg_.disk_log) RequestCommit([] {});  // writes acknowledge only once it is durable
}

// ---- reads ----

void MirrorCore::StartRead(MirrorOp* op) {
  const size_t n = legs_.size();
  int leg = -1;
  // A region that may differ between legs reads from the resync source.
  if (regions_[op->region].flags & kNeedSync) {
    const int p = Primary();
    if (p >= 0 && (op->tried_mask & (1u << p)) == 0) leg = p;
  }
  for (size_t k = 0; leg < 0 && k < n; ++k) {
    const size_t i = (rr_ + k) % n;
    if (Alive(i) && (op->tried_mask & (1u << i)) == 0) {
      leg = static_cast<int>(i);
      rr_ = static_cast<uint32_t>(i + 1);
    }
  }
  if (leg < 0) {
    Complete(op, op->first_error == IoStatus::kOk ? IoStatus::kIoError : op->first_error);
    return;
  }
  op->tried_mask |= 1u << leg;
  op->read_leg = static_cast<size_t>(leg);
  PrepChild(op, leg);
  op->children[leg].done = [this, op](IoStatus st) { ReadDone(op, st); };
  legs_[leg]->reads.fetch_add(1, std::memory_order_relaxed);
  block::SubmitSplit(*legs_[leg]->dev.get(), op->children[leg]);
}

void MirrorCore::ReadDone(MirrorOp* op, IoStatus st) {
  if (st == IoStatus::kOk) {
    Complete(op, st);
    return;
  }
  if (op->first_error == IoStatus::kOk) op->first_error = st;
  if (cfg_.handle_errors) FailLeg(op->read_leg, 'R');
  StartRead(op);  // retry on another leg (every leg is tried at most once)
}

// ---- writes ----

void MirrorCore::StartWrite(MirrorOp* op) {
  Region& g = regions_[op->region];
  if (g.flags & kRecovering) {  // never let a resync copy overwrite this write
    held_[op->region].push_back(op);
    return;
  }
  ++g.pending;
  g.flags &= static_cast<uint8_t>(~kCleanPending);
  if (!cfg_.disk_log) {
    g.flags |= kLogDirty | kDurable;
  } else if ((g.flags & kDurable) == 0) {
    if ((g.flags & kLogDirty) == 0) {
      g.flags |= kLogDirty;
      marking_.push_back(op->region);
    }
    RequestCommit([this, op] { IssueWrite(op); });
    return;
  }
  IssueWrite(op);
}

void MirrorCore::IssueWrite(MirrorOp* op) {
  uint32_t mask = 0;
  for (size_t i = 0; i < legs_.size(); ++i) {
    if (Alive(i)) mask |= 1u << i;
  }
  if (mask != (1u << legs_.size()) - 1) SetFlag(op->region, kStale);
  op->remaining = static_cast<uint32_t>(std::popcount(mask));
  if (mask == 0) {
    op->first_error = IoStatus::kIoError;
    FinishWrite(op);
    return;
  }
  for (size_t i = 0; i < legs_.size(); ++i) {
    if ((mask & (1u << i)) == 0) continue;
    PrepChild(op, i);
    op->children[i].done = [this, op, i](IoStatus st) { LegWriteDone(op, i, st); };
    legs_[i]->writes.fetch_add(1, std::memory_order_relaxed);
    block::SubmitSplit(*legs_[i]->dev.get(), op->children[i]);
  }
}

void MirrorCore::LegWriteDone(MirrorOp* op, size_t leg, IoStatus st) {
  if (st == IoStatus::kOk) {
    op->ok_mask |= 1u << leg;
  } else {
    op->err_mask |= 1u << leg;
    if (op->first_error == IoStatus::kOk) op->first_error = st;
    if (cfg_.handle_errors) FailLeg(leg, 'D');
  }
  if (--op->remaining == 0) FinishWrite(op);
}

void MirrorCore::FinishWrite(MirrorOp* op) {
  IoStatus st = IoStatus::kOk;
  if (op->ok_mask == 0) {
    st = op->first_error == IoStatus::kOk ? IoStatus::kIoError : op->first_error;
  } else if (op->err_mask != 0) {
    if (cfg_.handle_errors) {
      SetFlag(op->region, kStale);
    } else {
      st = op->first_error;  // without handle_errors a leg's error fails the write
    }
  }
  const uint64_t r = op->region;
  if (cfg_.disk_log && (failed_mask() & ~durable_failed_) != 0) {
    // A leg failed and the log does not say so yet: a restart must not take it for a good
    // resync source, so the write is acknowledged once the failure is durable.
    RequestCommit([this, op, st, r] {
      Complete(op, st);
      WriteDrained(r);
    });
    return;
  }
  Complete(op, st);
  WriteDrained(r);
}

void MirrorCore::WriteDrained(uint64_t r) {
  Region& g = regions_[r];
  if (--g.pending != 0) return;
  if (g.flags & kRecovering) {
    StartCopy(r);
    return;
  }
  if ((g.flags & kLogDirty) && (g.flags & kNeedSync) == 0) MarkClean(r);
}

// ---- flushes ----

void MirrorCore::StartFlush(MirrorOp* op) {
  const size_t leg = op->flush_leg;
  if (!Alive(leg)) {
    Complete(op, failed_mask() == (1u << legs_.size()) - 1 ? IoStatus::kIoError : IoStatus::kOk);
    return;
  }
  block::IoRequest& c = op->children[leg];
  c.op = block::IoOp::kFlush;
  c.flags = op->io->child.flags;
  c.lba = Lba(0);
  c.blocks = BlockCount(0);
  c.iov = nullptr;
  c.iovcnt = 0;
  c.done = [this, op, leg](IoStatus st) {
    if (st == IoStatus::kOk || !cfg_.handle_errors) {
      Complete(op, st);
      return;
    }
    FailLeg(leg, 'F');
    const IoStatus out =
        failed_mask() == (1u << legs_.size()) - 1 ? st : IoStatus::kOk;  // others hold it
    if (!cfg_.disk_log) {
      Complete(op, out);
      return;
    }
    RequestCommit([this, op, out] { Complete(op, out); });
  };
  legs_[leg]->dev.get()->Submit(c);
}

}  // namespace ferry::volume::mirror
