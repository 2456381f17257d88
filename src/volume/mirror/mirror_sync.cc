// The mirror's resync: regions that may differ between legs are copied, one at a time, from
// the primary (the first live leg that is not catching up) to the other live legs through
// the data mover, no faster than the resync rate. Readd and full resync.
#include <algorithm>

#include "volume/mirror/mirror_core.h"

namespace ferry::volume::mirror {

void MirrorCore::KickResync() {
  if (resync_running_ || suspended_.load() || stopped_.load() || !prepared_) return;
  ResyncNext();
}

void MirrorCore::ResyncNext() {
  size_t alive = 0;
  for (size_t i = 0; i < legs_.size(); ++i) alive += Alive(i) ? 1 : 0;
  if (need_sync_ == 0) {
    bool was_catching_up = false;
    for (auto& l : legs_) was_catching_up |= std::exchange(l->catching_up, false);
    if (was_catching_up && cfg_.disk_log) RequestCommit([] {});
    return;
  }
  if (alive < 2) return;  // nothing to copy to until a leg is readded
  const auto now = std::chrono::steady_clock::now();
  const uint64_t rate = rate_.load(std::memory_order_relaxed);
  if (rate > 0 && now < next_copy_at_) {
    resync_running_ = true;
    home_->RunAfter(next_copy_at_ - now, [self = shared_from_this()] {
      self->resync_running_ = false;
      self->KickResync();
    });
    return;
  }
  uint64_t r = cursor_;
  for (uint64_t k = 0; k < num_regions_; ++k, r = (r + 1) % num_regions_) {
    if ((regions_[r].flags & (kNeedSync | kRecovering)) == kNeedSync) break;
  }
  if ((regions_[r].flags & (kNeedSync | kRecovering)) != kNeedSync) return;
  cursor_ = r;
  resync_running_ = true;
  const uint64_t len = std::min(region_bytes_, target_bytes_ - r * region_bytes_);
  if (rate > 0) {
    // Token bucket without burst: copy k starts no earlier than (bytes before k) / rate
    // after the first, so bytes copied <= rate * elapsed + one region.
    const auto cost = std::chrono::nanoseconds(
        static_cast<int64_t>(static_cast<double>(len) * 1e9 / static_cast<double>(rate)));
    next_copy_at_ = std::max(now, next_copy_at_) + cost;
  }
  if (!first_copy_set_) {
    first_copy_ = now;
    first_copy_set_ = true;
  }
  regions_[r].flags |= kRecovering;            // new writes to r now wait
  if (regions_[r].pending == 0) StartCopy(r);  // else the last write in flight starts it
}

void MirrorCore::StartCopy(uint64_t r) {
  const int src = Primary();
  uint32_t dsts = 0;
  for (size_t i = 0; i < legs_.size(); ++i) {
    if (Alive(i) && static_cast<int>(i) != src) dsts |= 1u << i;
  }
  const uint32_t src_mask = src < 0 ? 0 : 1u << src;
  if (src < 0 || dsts == 0) {
    home_->Post([self = shared_from_this(), r, src_mask] { self->CopyDone(r, 0, 0, src_mask); });
    return;
  }
  struct Copy {
    uint32_t remaining;
    uint32_t failed = 0;
    uint32_t copied = 0;
    uint32_t src_mask = 0;
  };
  auto c = std::make_shared<Copy>(
      Copy{.remaining = static_cast<uint32_t>(std::popcount(dsts)), .src_mask = src_mask});
  const uint64_t len = std::min(region_bytes_, target_bytes_ - r * region_bytes_);
  const Leg& s = *legs_[src];
  for (size_t i = 0; i < legs_.size(); ++i) {
    if ((dsts & (1u << i)) == 0) continue;
    const Leg& d = *legs_[i];
    MoveRequest req{.src = s.dev.get(),
                    .src_offset_bytes = s.offset_sectors * kSectorBytes + r * region_bytes_,
                    .dst = d.dev.get(),
                    .dst_offset_bytes = d.offset_sectors * kSectorBytes + r * region_bytes_,
                    .len_bytes = len};
    mover_->Move(req, [self = shared_from_this(), c, r, i](MoveResult res) {
      self->home_->Post([self, c, r, i, ok = res.status == IoStatus::kOk] {
        (ok ? c->copied : c->failed) |= 1u << i;
        if (--c->remaining == 0) self->CopyDone(r, c->failed, c->copied, c->src_mask);
      });
    });
  }
}

void MirrorCore::CopyDone(uint64_t r, uint32_t failed_dsts, uint32_t copied_dsts,
                          uint32_t src_mask) {
  for (size_t i = 0; i < legs_.size(); ++i) {
    if (failed_dsts & (1u << i)) FailLeg(i, 'S');
  }
  const uint64_t len = std::min(region_bytes_, target_bytes_ - r * region_bytes_);
  if (copied_dsts != 0) {
    resync_bytes_.fetch_add(len, std::memory_order_relaxed);
    resync_regions_.fetch_add(1, std::memory_order_relaxed);
    resync_ns_.store(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               std::chrono::steady_clock::now() - first_copy_)
                                               .count()));
  }
  // The live legs now hold the primary's data, except a leg readded during the copy.
  regions_[r].flags &= static_cast<uint8_t>(~kRecovering);
  const uint32_t alive = ((1u << legs_.size()) - 1) & ~failed_mask();
  if ((alive & ~(copied_dsts | failed_dsts | src_mask)) == 0) ClearFlag(r, kNeedSync);
  if (failed_mask() != 0) SetFlag(r, kStale);
  if (regions_[r].pending == 0) MarkClean(r);
  auto held = held_.find(r);
  if (held != held_.end()) {
    std::vector<MirrorOp*> ops = std::move(held->second);
    held_.erase(held);
    for (MirrorOp* op : ops) StartWrite(op);
  }
  resync_running_ = false;
  cursor_ = (r + 1) % num_regions_;
  KickResync();
}

void MirrorCore::Readd(size_t leg) {
  const char was = legs_[leg]->health.load();
  if (was == 'A' || stopped_.load()) return;
  legs_[leg]->health.store('A');
  legs_[leg]->catching_up = true;
  // A flush failure may have lost writes anywhere, and a failed log lost track: copy all.
  const bool full = was == 'F' || log_failed_.load();
  const bool others_failed = failed_mask() != 0;
  for (uint64_t r = 0; r < num_regions_; ++r) {
    if (full || (regions_[r].flags & kStale)) {
      SetFlag(r, kNeedSync);
      if (!others_failed) ClearFlag(r, kStale);
    }
  }
  if (cfg_.disk_log) RequestCommit([] {});
  KickResync();
}

void MirrorCore::FullResync() {
  for (uint64_t r = 0; r < num_regions_; ++r) SetFlag(r, kNeedSync);
  if (cfg_.disk_log) RequestCommit([] {});
  KickResync();
}

void MirrorCore::PostReadd(size_t leg) {
  home_->Post([self = shared_from_this(), leg] { self->Readd(leg); });
}

void MirrorCore::PostFullResync() {
  home_->Post([self = shared_from_this()] { self->FullResync(); });
}

void MirrorCore::Presuspend() { suspended_.store(true); }

void MirrorCore::Resume() {
  suspended_.store(false);
  home_->Post([self = shared_from_this()] {
    if (!self->to_clean_.empty()) self->ScheduleClean();  // a clean skipped while suspended
    self->KickResync();
  });
}

void MirrorCore::Shutdown() { stopped_.store(true); }

}  // namespace ferry::volume::mirror
