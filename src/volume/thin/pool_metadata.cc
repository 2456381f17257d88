// Thin-pool metadata: the in-memory state, its mutations and Check(). Commit and Format
// live in pool_commit.cc, Open in pool_open.cc.
#include "volume/thin/pool_metadata.h"

#include <algorithm>
#include <string>

namespace ferry::volume::thin {
namespace {

constexpr size_t kMaxReportedProblems = 8;

// Collects invariant violations into one DataLoss status.
class Problems {
 public:
  void Add(std::string what) {
    if (count_++ < kMaxReportedProblems) text_ += (text_.empty() ? "" : "; ") + what;
  }
  Status ToStatus(std::string_view what) const {
    if (count_ == 0) return Status::Ok();
    std::string more = count_ > kMaxReportedProblems
                           ? " (and " + std::to_string(count_ - kMaxReportedProblems) + " more)"
                           : "";
    return DataLoss(std::string(what) + ": " + std::to_string(count_) + " problem(s): " + text_ +
                    more);
  }

 private:
  size_t count_ = 0;
  std::string text_;
};

std::string DevName(uint32_t dev) { return "thin device " + std::to_string(dev); }

}  // namespace

Status CheckState(const PoolState& state) {
  Problems p;
  const uint64_t nblocks = state.refcount.size();
  std::vector<uint64_t> reach(nblocks, 0);
  for (const auto& [id, dev] : state.devices) {
    if (id == format::kNoOrigin) p.Add("reserved device id " + std::to_string(id));
    for (const auto& [vblock, dblock] : dev.map) {
      if (vblock >= dev.virtual_blocks) {
        p.Add(DevName(id) + ": vblock " + std::to_string(vblock) + " beyond its size " +
              std::to_string(dev.virtual_blocks));
      }
      if (dblock >= nblocks) {
        p.Add(DevName(id) + ": vblock " + std::to_string(vblock) + " maps data block " +
              std::to_string(dblock) + " outside the pool");
        continue;
      }
      ++reach[dblock];
    }
  }
  for (uint64_t d = 0; d < nblocks; ++d) {
    const uint64_t ref = state.refcount[d];
    if (ref == reach[d]) continue;
    std::string what = "data block " + std::to_string(d) + ": refcount " + std::to_string(ref) +
                       ", reached by " + std::to_string(reach[d]) + " mapping(s)";
    if (reach[d] == 0) {
      what += " (leaked)";
    } else if (reach[d] > ref) {
      what += " (owned more times than counted)";
    } else {
      what += " (over-counted)";
    }
    p.Add(std::move(what));
  }
  return p.ToStatus("thin metadata check");
}

void PoolMetadata::Dirty::MergeFrom(Dirty& other) {
  deleted_devs.merge(other.deleted_devs);
  devs.merge(other.devs);
  maps.merge(other.maps);
  refs.merge(other.refs);
}

bool PoolMetadata::dirty() const { return !dirty_.empty() || force_full_; }

uint64_t PoolMetadata::free_data_blocks() const {
  return data_blocks() - used_ - freed_pending_.size() - freed_in_commit_.size();
}

uint64_t PoolMetadata::free_meta_blocks() const {
  return static_cast<uint64_t>(std::count(meta_use_.begin(), meta_use_.end(), kMetaFree));
}

const ThinDevice* PoolMetadata::FindDevice(uint32_t dev) const {
  auto it = state_.devices.find(dev);
  return it == state_.devices.end() ? nullptr : &it->second;
}

Result<ThinDevice*> PoolMetadata::GetDevice(uint32_t dev, uint64_t vblock, uint64_t count) {
  auto it = state_.devices.find(dev);
  if (it == state_.devices.end()) return NotFound("no " + DevName(dev));
  const uint64_t size = it->second.virtual_blocks;
  if (vblock >= size || count > size - vblock) {
    return OutOfRange(DevName(dev) + ": blocks " + std::to_string(vblock) + "+" +
                      std::to_string(count) + " beyond its size " + std::to_string(size));
  }
  return &it->second;
}

void PoolMetadata::Ref(uint64_t dblock) {
  uint32_t& ref = state_.refcount[dblock];
  // Cannot overflow in practice: every reference is a mapping held in memory.
  if (ref == UINT32_MAX) return;
  if (ref++ == 0) {
    ++used_;
  } else if (!fresh_pending_.contains(dblock)) {
    unsafe_pending_.insert(dblock);
  }
  dirty_.refs.insert(dblock);
}

void PoolMetadata::Unref(uint64_t dblock) {
  uint32_t& ref = state_.refcount[dblock];
  if (ref == 0) return;  // a broken invariant Check() reports; never wrap
  if (--ref == 0) {
    --used_;
    freed_pending_.insert(dblock);
  } else if (!fresh_pending_.contains(dblock)) {
    unsafe_pending_.insert(dblock);
  }
  dirty_.refs.insert(dblock);
}

Status PoolMetadata::Grow(uint64_t data_blocks) {
  if (data_blocks < this->data_blocks() || data_blocks > UINT32_MAX) {
    return InvalidArgument("thin pool cannot change from " + std::to_string(this->data_blocks()) +
                           " to " + std::to_string(data_blocks) +
                           " data blocks (it only grows, up to 2^32 blocks)");
  }
  if (data_blocks == this->data_blocks()) return Status::Ok();
  state_.refcount.resize(data_blocks, 0);
  force_full_ = true;  // a full record with the superblock's new count
  return Status::Ok();
}

Result<uint64_t> PoolMetadata::AllocateDataBlock() {
  const uint64_t n = data_blocks();
  if (free_data_blocks() == 0) {
    const uint64_t after_commit = freed_pending_.size() + freed_in_commit_.size();
    return ResourceExhausted("thin pool out of data space (" + std::to_string(n) +
                             " blocks in use or freed by an uncommitted transaction; " +
                             std::to_string(after_commit) + " become free after commit)");
  }
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t d = (alloc_cursor_ + i) % n;
    if (state_.refcount[d] != 0 || freed_pending_.contains(d) || freed_in_commit_.contains(d)) {
      continue;
    }
    alloc_cursor_ = (d + 1) % n;
    Ref(d);
    fresh_pending_.insert(d);
    return d;
  }
  return Internal("thin pool free-block count disagrees with the refcounts");
}

void PoolMetadata::SetMapping(uint32_t dev, ThinDevice& d, uint64_t vblock, uint64_t dblock) {
  d.map[vblock] = dblock;
  dirty_.maps.insert({dev, vblock});
}

void PoolMetadata::EraseMapping(uint32_t dev, ThinDevice& d, uint64_t vblock) {
  d.map.erase(vblock);
  dirty_.maps.insert({dev, vblock});
}

Status PoolMetadata::CreateThin(uint32_t dev, uint64_t virtual_blocks) {
  if (dev == format::kNoOrigin) return InvalidArgument(DevName(dev) + ": reserved id");
  if (virtual_blocks == 0) return InvalidArgument(DevName(dev) + ": size 0");
  if (state_.devices.contains(dev)) return AlreadyExists(DevName(dev) + " exists");
  ThinDevice d;
  d.virtual_blocks = virtual_blocks;
  d.created_txn = committed_txn_ + 1;
  state_.devices.emplace(dev, std::move(d));
  dirty_.devs.insert(dev);
  return Status::Ok();
}

Status PoolMetadata::CreateSnapshot(uint32_t origin, uint32_t snap) {
  auto it = state_.devices.find(origin);
  if (it == state_.devices.end()) return NotFound("snapshot origin: no " + DevName(origin));
  if (snap == format::kNoOrigin) return InvalidArgument(DevName(snap) + ": reserved id");
  if (state_.devices.contains(snap)) return AlreadyExists(DevName(snap) + " exists");
  ThinDevice d = it->second;  // the map is copied: every block gains a reference
  d.origin = origin;
  d.created_txn = committed_txn_ + 1;
  for (const auto& [vblock, dblock] : d.map) {
    Ref(dblock);
    dirty_.maps.insert({snap, vblock});
  }
  state_.devices.emplace(snap, std::move(d));
  dirty_.devs.insert(snap);
  return Status::Ok();
}

Status PoolMetadata::DeleteThin(uint32_t dev) {
  auto it = state_.devices.find(dev);
  if (it == state_.devices.end()) return NotFound("no " + DevName(dev));
  for (const auto& [vblock, dblock] : it->second.map) Unref(dblock);
  state_.devices.erase(it);
  // The device's record entries go away with it; a Delete entry replaces them.
  dirty_.maps.erase(dirty_.maps.lower_bound({dev, 0}), dirty_.maps.lower_bound({dev + 1, 0}));
  dirty_.devs.erase(dev);
  dirty_.deleted_devs.insert(dev);
  return Status::Ok();
}

bool PoolMetadata::NeedsCopy(uint64_t dblock) const {
  return state_.refcount[dblock] > 1 || unsafe_pending_.contains(dblock) ||
         unsafe_in_commit_.contains(dblock);
}

Result<std::optional<Lookup>> PoolMetadata::Find(uint32_t dev, uint64_t vblock) const {
  auto it = state_.devices.find(dev);
  if (it == state_.devices.end()) return NotFound("no " + DevName(dev));
  if (vblock >= it->second.virtual_blocks) {
    return OutOfRange(DevName(dev) + ": vblock " + std::to_string(vblock) + " beyond its size");
  }
  auto m = it->second.map.find(vblock);
  if (m == it->second.map.end()) return std::optional<Lookup>();
  return std::optional<Lookup>(Lookup{m->second, NeedsCopy(m->second)});
}

Result<WritePlan> PoolMetadata::PrepareWrite(uint32_t dev, uint64_t vblock) {
  FERRY_ASSIGN_OR_RETURN(ThinDevice * d, GetDevice(dev, vblock, 1));
  auto m = d->map.find(vblock);
  if (m != d->map.end() && !NeedsCopy(m->second)) {
    return WritePlan{m->second, WriteAction::kOverwrite, 0};
  }
  FERRY_ASSIGN_OR_RETURN(uint64_t fresh, AllocateDataBlock());
  if (m == d->map.end()) {
    SetMapping(dev, *d, vblock, fresh);
    return WritePlan{fresh, WriteAction::kProvision, 0};
  }
  const uint64_t old = m->second;
  SetMapping(dev, *d, vblock, fresh);
  Unref(old);  // its other references (now or in a recoverable state) keep it
  return WritePlan{fresh, WriteAction::kCopyOnWrite, old};
}

Status PoolMetadata::AbortWrite(uint32_t dev, uint64_t vblock, const WritePlan& plan) {
  FERRY_ASSIGN_OR_RETURN(ThinDevice * d, GetDevice(dev, vblock, 1));
  auto m = d->map.find(vblock);
  if (m == d->map.end() || m->second != plan.data_block || plan.action == WriteAction::kOverwrite) {
    return Status::Ok();
  }
  const uint64_t old = plan.copy_from;
  // The old block is still intact while it is referenced, or freed but not yet allocatable.
  const bool old_intact =
      plan.action == WriteAction::kCopyOnWrite && old < data_blocks() &&
      (state_.refcount[old] > 0 || freed_pending_.contains(old) || freed_in_commit_.contains(old));
  if (!old_intact) {
    EraseMapping(dev, *d, vblock);
  } else {
    freed_pending_.erase(old);
    freed_in_commit_.erase(old);
    Ref(old);
    unsafe_pending_.insert(old);  // the next write copies it again
    SetMapping(dev, *d, vblock, old);
  }
  Unref(plan.data_block);
  return Status::Ok();
}

Status PoolMetadata::Discard(uint32_t dev, uint64_t vblock, uint64_t count) {
  if (count == 0) return Status::Ok();
  FERRY_ASSIGN_OR_RETURN(ThinDevice * d, GetDevice(dev, vblock, count));
  auto it = d->map.lower_bound(vblock);
  while (it != d->map.end() && it->first - vblock < count) {
    const uint64_t dblock = it->second;
    dirty_.maps.insert({dev, it->first});
    it = d->map.erase(it);
    Unref(dblock);
  }
  return Status::Ok();
}

Status PoolMetadata::ShareRange(uint32_t src_dev, uint64_t src_vblock, uint32_t dst_dev,
                                uint64_t dst_vblock, uint64_t count) {
  if (count == 0) return Status::Ok();
  FERRY_ASSIGN_OR_RETURN(ThinDevice * src, GetDevice(src_dev, src_vblock, count));
  FERRY_ASSIGN_OR_RETURN(ThinDevice * dst, GetDevice(dst_dev, dst_vblock, count));
  // Gather both sides first: with overlapping ranges of one device, this is memmove.
  std::vector<std::pair<uint64_t, uint64_t>> incoming;  // offset in range, dblock
  for (auto it = src->map.lower_bound(src_vblock);
       it != src->map.end() && it->first - src_vblock < count; ++it) {
    incoming.emplace_back(it->first - src_vblock, it->second);
  }
  std::vector<std::pair<uint64_t, uint64_t>> outgoing;
  for (auto it = dst->map.lower_bound(dst_vblock);
       it != dst->map.end() && it->first - dst_vblock < count;) {
    outgoing.emplace_back(it->first, it->second);
    dirty_.maps.insert({dst_dev, it->first});
    it = dst->map.erase(it);
  }
  // Take the new references before dropping the old ones, so a block on both sides
  // (sharing a range with itself) never reaches zero.
  for (const auto& [off, dblock] : incoming) {
    SetMapping(dst_dev, *dst, dst_vblock + off, dblock);
    Ref(dblock);
  }
  for (const auto& [vblock, dblock] : outgoing) Unref(dblock);
  return Status::Ok();
}

Status PoolMetadata::Check() const {
  FERRY_RETURN_IF_ERROR(CheckState(state_));
  Problems p;
  uint64_t used = 0;
  for (uint32_t r : state_.refcount) used += r != 0;
  if (used != used_) {
    p.Add("allocator counts " + std::to_string(used_) + " used blocks, refcounts say " +
          std::to_string(used));
  }
  for (const auto* freed : {&freed_pending_, &freed_in_commit_}) {
    for (uint64_t d : *freed) {
      if (d >= data_blocks() || state_.refcount[d] != 0) {
        p.Add("data block " + std::to_string(d) + " is both freed and referenced");
      }
    }
  }
  uint64_t chain_blocks = 0;
  for (const RecordInfo& r : chain_) {
    for (uint64_t b : r.blocks) {
      ++chain_blocks;
      if (b >= meta_use_.size() || meta_use_[b] != kMetaCommitted) {
        p.Add("metadata block " + std::to_string(b) + " holds a record but is not in use");
      }
    }
  }
  const auto committed =
      static_cast<uint64_t>(std::count(meta_use_.begin(), meta_use_.end(), kMetaCommitted));
  if (chain_blocks != chain_blocks_ || committed != chain_blocks) {
    p.Add("metadata space map counts " + std::to_string(committed) + " record blocks, the chain " +
          std::to_string(chain_blocks));
  }
  return p.ToStatus("thin metadata check");
}

}  // namespace ferry::volume::thin
