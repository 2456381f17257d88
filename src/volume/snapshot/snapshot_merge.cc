// snapshot-merge: copies exceptions back into the origin, highest slot first, one chunk at a
// time. Crash consistency: the chunk is copied to the origin and the origin flushed before
// the record is marked merged (and flushed), so a crash at any point leaves the exception
// live (and its merge is redone after restart, copying the same bytes again) or merged with
// its data durable in the origin.
#include <string>

#include "volume/snapshot/dev_io.h"
#include "volume/snapshot/snapshot_core.h"

namespace ferry::volume::snapshot {

void SnapshotCore::StartMerge() {
  home()->Post([self = shared_from_this()] {
    self->merging_ = true;
    self->MergeStep();
  });
}

void SnapshotCore::PauseMerge(bool pause) {
  home()->Post([self = shared_from_this(), pause] {
    self->merge_paused_ = pause;
    self->MergeStep();
  });
}

void SnapshotCore::MergeStep() {
  if (!merging_ || merge_paused_ || merge_busy_ || !valid_) return;
  std::optional<ExceptionStore::Live> live = store_.LastLive();
  if (!live) return;
  // Writes in flight to the exception's chunk finish first (CowWriteDone comes back here).
  if (cow_writes_.contains(live->origin_chunk)) return;
  merge_busy_ = true;
  merging_chunk_ = live->origin_chunk;
  // The origin chunk is about to change: other snapshots of the origin save it first.
  std::vector<std::shared_ptr<SnapshotCore>> others = ForOrigin(p_.origin.get());
  std::erase_if(others, [this](const auto& c) { return c.get() == this; });
  SaveInAll(std::move(others), live->origin_chunk * chunk_bytes_, ChunkLen(live->origin_chunk),
            home(), [self = shared_from_this(), l = *live] { self->MergeCopy(l); });
}

void SnapshotCore::MergeCopy(ExceptionStore::Live live) {
  const uint64_t chunk = live.origin_chunk;
  const MoveRequest req{p_.cow.get(), live.cow_chunk * chunk_bytes_, p_.origin.get(),
                        chunk * chunk_bytes_, ChunkLen(chunk)};
  p_.mover->Move(req, [self = shared_from_this(), live](MoveResult r) {
    self->home()->Post([self, live, st = r.status] {
      const uint64_t chunk = live.origin_chunk;
      if (st != IoStatus::kOk) {
        return self->MergeFinished(
            chunk, Unavailable("copying COW chunk " + std::to_string(live.cow_chunk) +
                               " back to the origin failed"));
      }
      SubmitDevBuf(*self->p_.origin, block::IoOp::kFlush, 0, 0, nullptr, [self, live](IoStatus st) {
        if (st != IoStatus::kOk) {
          return self->MergeFinished(live.origin_chunk, Unavailable("flushing the origin failed"));
        }
        self->store_.MarkMerged(live.slot, [self, live](ferry::Status st) {
          self->MergeFinished(live.origin_chunk, st);
        });
      });
    });
  });
}

void SnapshotCore::MergeFinished(uint64_t chunk, const ferry::Status& st) {
  (void)chunk;
  merge_busy_ = false;
  merging_chunk_ = UINT64_MAX;
  if (!st.ok()) {
    InvalidateNow("merge stopped: " + std::string(st.message()));
  } else {
    UpdateStats();
  }
  std::vector<io::Task> waiters = std::move(merge_waiters_);
  merge_waiters_.clear();
  for (io::Task& w : waiters) w();
  home()->Post([self = shared_from_this()] { self->MergeStep(); });
}

// A write while merging lands where the chunk's data lives now: in its exception until the
// chunk is merged, in the origin after (other snapshots of the origin save it first).
void SnapshotCore::MergeWrite(Op* op) {
  if (op->chunk == merging_chunk_) {
    merge_waiters_.push_back([op] { op->core->Write(op); });
    return;
  }
  if (store_.Lookup(op->chunk)) return WriteCow(op);
  std::vector<std::shared_ptr<SnapshotCore>> others = ForOrigin(p_.origin.get());
  std::erase_if(others, [this](const auto& c) { return c.get() == this; });
  SaveInAll(std::move(others), op->chunk * chunk_bytes_ + op->in_chunk, op->len, home(), [op] {
    SnapshotCore& core = *op->core;
    const block::IoRequest& c = op->io->child;
    SubmitDevIo(*core.p_.origin, c.op, op->chunk * core.chunk_bytes_ + op->in_chunk, op->len, c.iov,
                c.iovcnt, [op](IoStatus st) { op->core->Complete(op, st); });
  });
}

}  // namespace ferry::volume::snapshot
