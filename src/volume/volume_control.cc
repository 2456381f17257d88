// The control path of Volume: load, suspend, resume, remove, pins, messages, status.
#include <algorithm>

#include "io/reactor.h"
#include "volume/volume.h"

namespace ferry::volume {

bool Volume::References(const Table& table, int depth) const {
  if (depth > 64) return true;  // deeper than any sane stack: treat as a cycle
  bool found = false;
  table.ForEachUnderlying([&](block::BlockDevice& d, uint64_t) {
    if (found) return;
    if (&d == this) {
      found = true;
      return;
    }
    if (const Stack* s = d.stack()) {
      const Tables t = s->tables();
      found = (t.active && References(*t.active, depth + 1)) ||
              (t.inactive && References(*t.inactive, depth + 1));
    }
  });
  return found;
}

Status Volume::Load(std::shared_ptr<Table> table) {
  if (table == nullptr) return InvalidArgument(VolumeLabel(name_) + ": no table to load");
  if (References(*table, 0)) {
    return InvalidArgument(VolumeLabel(name_) +
                           ": the table refers to the volume itself (directly or through "
                           "other volumes); a volume cannot be stacked on itself");
  }
  std::shared_ptr<Table> old;
  {
    std::lock_guard lock(mu_);
    if (removed_) return FailedPrecondition(VolumeLabel(name_) + " was removed");
    old = std::move(inactive_);
    inactive_ = std::move(table);
  }
  return Status::Ok();
}

void Volume::ClearInactive() {
  std::shared_ptr<Table> old;
  std::lock_guard lock(mu_);
  old = std::move(inactive_);
}

void Volume::Suspend(std::chrono::nanoseconds deadline, SuspendDone done) {
  io::Reactor* r = io::Reactor::Current();
  std::shared_ptr<Table> table;
  bool first = false;
  uint64_t epoch = 0;
  {
    std::unique_lock lock(mu_);
    if (removed_) {
      lock.unlock();
      r->Post([d = std::make_unique<SuspendDone>(std::move(done)), n = name_]() mutable {
        (*d)(FailedPrecondition(VolumeLabel(n) + " was removed"));
      });
      return;
    }
    first = !suspended_;
    if (first) ++suspend_epoch_;
    suspended_ = true;
    epoch = suspend_epoch_;
    table = active_;
    waiters_.push_back({r, std::move(done)});
  }
  if (first) {
    for (size_t i = 0; i < table->size(); ++i) table->target(i).Presuspend();
  }
  {
    std::unique_lock lock(mu_);
    Drained(lock);
  }
  std::weak_ptr<Volume> weak = weak_from_this();
  r->RunAfter(deadline, [weak, epoch] {
    if (auto v = weak.lock()) v->DeadlinePassed(epoch);
  });
}

void Volume::DeadlinePassed(uint64_t epoch) {
  std::vector<ReleaseRequest> calls;
  {
    std::lock_guard lock(mu_);
    // Nothing to do once drained or resumed, or for the timer of an earlier suspend.
    if (!suspended_ || waiters_.empty() || epoch != suspend_epoch_) return;
    for (auto& [id, pin] : pins_) {
      if (pin.asked || !pin.on_release) continue;
      pin.asked = true;
      calls.push_back(std::move(pin.on_release));
    }
  }
  for (ReleaseRequest& c : calls) c();
}

Status Volume::Resume() {
  std::vector<Queued> queued;
  std::shared_ptr<Table> old;
  std::shared_ptr<Table> now;
  {
    std::lock_guard lock(mu_);
    if (removed_) return FailedPrecondition(VolumeLabel(name_) + " was removed");
    if (!suspended_) {
      if (inactive_ == nullptr) return Status::Ok();
      return FailedPrecondition(VolumeLabel(name_) +
                                " is not suspended: suspend it before resuming into the loaded "
                                "table");
    }
    if (in_flight_ > 0 || !pins_.empty()) {
      return FailedPrecondition(VolumeLabel(name_) + " is still draining " +
                                std::to_string(in_flight_) + " requests and " +
                                std::to_string(pins_.size()) +
                                " copy pins; resume once Suspend has completed");
    }
    if (inactive_ != nullptr) {
      old = std::move(active_);
      active_ = std::move(inactive_);
      ++generation_;
      ApplyTableLocked();
    }
    suspended_ = false;
    now = active_;
    queued.swap(queued_);
  }
  for (size_t i = 0; i < now->size(); ++i) now->target(i).Resume();
  old.reset();
  for (const Queued& q : queued) {
    q.reactor->Post([this, req = q.req] { Submit(*req); });
  }
  return Status::Ok();
}

Status Volume::Remove() {
  std::shared_ptr<Table> a;
  std::shared_ptr<Table> b;
  {
    std::lock_guard lock(mu_);
    if (removed_) return FailedPrecondition(VolumeLabel(name_) + " was already removed");
    if (open_ > 0) {
      return FailedPrecondition(VolumeLabel(name_) + " is open by " + std::to_string(open_) +
                                " holder(s) (LUNs or tables of other volumes); close them or "
                                "reload those tables first");
    }
    if (in_flight_ > 0 || !pins_.empty()) {
      return FailedPrecondition(VolumeLabel(name_) + " has " + std::to_string(in_flight_) +
                                " requests and " + std::to_string(pins_.size()) +
                                " copy pins in flight; wait for them to finish");
    }
    if (!queued_.empty()) {
      return FailedPrecondition(VolumeLabel(name_) + " is suspended with " +
                                std::to_string(queued_.size()) +
                                " queued requests; resume it first");
    }
    removed_ = true;
    a = std::move(active_);
    b = std::move(inactive_);
  }
  return Status::Ok();
}

void Volume::Open() {
  std::lock_guard lock(mu_);
  ++open_;
}

void Volume::Close() {
  std::lock_guard lock(mu_);
  --open_;
}

Result<Volume::CopyPin> Volume::PinForCopy(ReleaseRequest on_release) {
  std::lock_guard lock(mu_);
  if (removed_) return FailedPrecondition(VolumeLabel(name_) + " was removed");
  if (suspended_) {
    return Unavailable(VolumeLabel(name_) +
                       " is suspended: copy its ranges as ordinary reads and writes (they wait "
                       "for resume)");
  }
  const uint64_t id = next_pin_++;
  pins_.emplace(id, Pin{std::move(on_release), false});
  return NewPin(id, generation_);
}

void Volume::Unpin(uint64_t id) {
  std::unique_lock lock(mu_);
  pins_.erase(id);
  Drained(lock);
}

uint64_t Volume::generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

Result<std::string> Volume::Message(size_t target_index, std::span<const std::string> args) {
  std::shared_ptr<Table> t = active_table();
  if (t == nullptr) return FailedPrecondition(VolumeLabel(name_) + " has no table");
  if (target_index >= t->size()) {
    return OutOfRange(VolumeLabel(name_) + " has " + std::to_string(t->size()) +
                      " table lines; there is no line " + std::to_string(target_index));
  }
  auto r = t->target(target_index).Message(args);
  if (!r.ok()) return r.status().WithContext(std::string(t->target(target_index).type()));
  return r;
}

Result<std::string> Volume::MessageAtSector(uint64_t sector, std::span<const std::string> args) {
  std::shared_ptr<Table> t = active_table();
  if (t == nullptr) return FailedPrecondition(VolumeLabel(name_) + " has no table");
  const size_t i = t->FindTarget(sector);
  if (i >= t->size()) {
    return OutOfRange(VolumeLabel(name_) + " has " + std::to_string(t->num_sectors()) +
                      " sectors; sector " + std::to_string(sector) + " is past its end");
  }
  return Message(i, args);
}

std::string Volume::TableText() const {
  std::shared_ptr<Table> t = active_table();
  return t ? t->ToText() : "";
}

std::string Volume::InactiveTableText() const {
  std::lock_guard lock(mu_);
  return inactive_ ? inactive_->ToText() : "";
}

std::string Volume::StatusText() const {
  std::shared_ptr<Table> t = active_table();
  return t ? t->StatusText() : "";
}

std::shared_ptr<Table> Volume::active_table() const {
  std::lock_guard lock(mu_);
  return active_;
}

Stack::Tables Volume::tables() const {
  std::lock_guard lock(mu_);
  return {active_, inactive_};
}

bool Volume::suspended() const {
  std::lock_guard lock(mu_);
  return suspended_;
}

size_t Volume::in_flight() const {
  std::lock_guard lock(mu_);
  return in_flight_ + pins_.size();
}

size_t Volume::queued() const {
  std::lock_guard lock(mu_);
  return queued_.size();
}

int Volume::open_count() const {
  std::lock_guard lock(mu_);
  return open_;
}

}  // namespace ferry::volume
