#include "scsi/range_lock.h"

#include <vector>

#include "io/reactor.h"

namespace ferry::scsi {

struct RangeLock::Holder {
  uint64_t lba;
  uint64_t end;
  io::Reactor* reactor;
  Granted granted;
  bool Overlaps(const Holder& o) const { return lba < o.end && o.lba < end; }
};

namespace {

template <typename List>
bool OverlapsAny(const List& l, const RangeLock::Holder& h, const RangeLock::Holder* stop) {
  for (const RangeLock::Holder* o : l) {
    if (o == stop) break;
    if (o->lba < h.end && h.lba < o->end) return true;
  }
  return false;
}

}  // namespace

RangeLock::Holder* RangeLock::Acquire(uint64_t lba, uint64_t blocks, Granted granted) {
  auto* h = new Holder{lba, lba + blocks, io::Reactor::Current(), std::move(granted)};
  {
    std::lock_guard lock(mu_);
    if (OverlapsAny(held_, *h, nullptr) || OverlapsAny(waiting_, *h, nullptr)) {
      waiting_.push_back(h);
      return h;
    }
    held_.push_back(h);
  }
  h->granted();
  return h;
}

void RangeLock::Release(Holder* h) {
  std::vector<Holder*> grant;
  {
    std::lock_guard lock(mu_);
    held_.remove(h);
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      Holder* w = *it;
      // Blocked by a held range, or by an earlier waiter that stays waiting (FIFO).
      if (OverlapsAny(held_, *w, nullptr) || OverlapsAny(waiting_, *w, w)) {
        ++it;
        continue;
      }
      it = waiting_.erase(it);
      held_.push_back(w);
      grant.push_back(w);
    }
  }
  delete h;
  for (Holder* w : grant) {
    w->reactor->Post([w] { w->granted(); });
  }
}

size_t RangeLock::held_for_testing() const {
  std::lock_guard lock(mu_);
  return held_.size();
}

size_t RangeLock::waiting_for_testing() const {
  std::lock_guard lock(mu_);
  return waiting_.size();
}

}  // namespace ferry::scsi
