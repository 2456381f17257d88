// Thin-pool metadata commits (format.h has the protocol and why) and Format().
#include <algorithm>
#include <cstring>

#include "io/reactor.h"
#include "volume/thin/pool_metadata.h"

namespace ferry::volume::thin {
namespace {

// Deltas may grow the chain to this many blocks, or to the size of the full record if
// larger, before a commit writes a full record instead.
constexpr uint64_t kMinChainBlocks = 64;
constexpr size_t kMaxChainRecords = 512;

size_t BlocksFor(size_t payload_bytes) {
  return std::max<size_t>(1, (payload_bytes + format::kPayloadBytes - 1) / format::kPayloadBytes);
}

// Emits runs of consecutive vblocks that map consecutive dblocks (or are all unmapped).
class MapRunWriter {
 public:
  explicit MapRunWriter(format::EntryWriter& w) : w_(w) {}
  ~MapRunWriter() { Flush(); }
  void Add(uint32_t dev, uint64_t vblock, std::optional<uint64_t> dblock) {
    const bool extends = len_ > 0 && dev == dev_ && vblock == vblock_ + len_ &&
                         dblock.has_value() == mapped_ && (!mapped_ || *dblock == dblock_ + len_) &&
                         len_ < UINT32_MAX;
    if (!extends) {
      Flush();
      dev_ = dev;
      vblock_ = vblock;
      mapped_ = dblock.has_value();
      dblock_ = dblock.value_or(0);
    }
    ++len_;
  }

 private:
  void Flush() {
    if (len_ == 0) return;
    if (mapped_) {
      w_.MapRun(dev_, vblock_, dblock_, len_);
    } else {
      w_.UnmapRun(dev_, vblock_, len_);
    }
    len_ = 0;
  }
  format::EntryWriter& w_;
  uint32_t dev_ = 0;
  uint64_t vblock_ = 0;
  uint64_t dblock_ = 0;
  bool mapped_ = false;
  uint32_t len_ = 0;
};

// Emits runs of consecutive dblocks with the same refcount.
class RefRunWriter {
 public:
  explicit RefRunWriter(format::EntryWriter& w) : w_(w) {}
  ~RefRunWriter() { Flush(); }
  void Add(uint64_t dblock, uint32_t count) {
    if (len_ == 0 || dblock != dblock_ + len_ || count != count_ || len_ == UINT32_MAX) {
      Flush();
      dblock_ = dblock;
      count_ = count;
    }
    ++len_;
  }

 private:
  void Flush() {
    if (len_ != 0) w_.RefRun(dblock_, len_, count_);
    len_ = 0;
  }
  format::EntryWriter& w_;
  uint64_t dblock_ = 0;
  uint32_t count_ = 0;
  uint32_t len_ = 0;
};

}  // namespace

// The commit in flight: its record and superblock buffers and what it took from the pool.
struct PoolMetadata::Committer {
  CommitDone done;
  Dirty taken;
  RecordInfo record;
  format::Superblock sb;
  int slot = 0;
  std::vector<uint8_t> record_buf;
  std::vector<uint8_t> sb_buf = std::vector<uint8_t>(format::kBlockBytes);
};

// A Format() in flight.
struct PoolMetadata::Formatter {
  std::unique_ptr<PoolMetadata> pool;
  OpenDone done;
  std::vector<uint8_t> zeroes = std::vector<uint8_t>(2 * format::kBlockBytes, 0);
};

PoolMetadata::PoolMetadata(block::BlockDevice& meta, uint64_t data_blocks,
                           uint32_t data_block_bytes)
    : io_(meta), data_block_bytes_(data_block_bytes) {
  state_.refcount.assign(data_blocks, 0);
  meta_use_.assign(MetaIo::BlocksOn(meta), kMetaFree);
  for (uint64_t b = 0; b < format::kSuperSlots; ++b) meta_use_[b] = kMetaSuper;
}

PoolMetadata::~PoolMetadata() = default;

void PoolMetadata::PostDone(CommitDone done, Status st) {
  // Completion is never inline; the callback waits in a heap cell for the posted task.
  auto* cell = new std::pair<CommitDone, Status>(std::move(done), std::move(st));
  io::Reactor::Current()->Post([cell] {
    std::unique_ptr<std::pair<CommitDone, Status>> owned(cell);
    owned->first(std::move(owned->second));
  });
}

std::vector<uint8_t> PoolMetadata::SerializeDelta(const Dirty& dirty) const {
  format::EntryWriter w;
  for (uint32_t dev : dirty.deleted_devs) w.Delete(dev);
  for (uint32_t dev : dirty.devs) {
    if (const ThinDevice* d = FindDevice(dev)) {
      w.Device(dev, d->virtual_blocks, d->origin, d->created_txn);
    }
  }
  {
    MapRunWriter maps(w);
    for (const auto& [dev, vblock] : dirty.maps) {
      const ThinDevice* d = FindDevice(dev);
      if (d == nullptr) continue;  // deleted since: its Delete entry covers it
      auto m = d->map.find(vblock);
      maps.Add(dev, vblock, m == d->map.end() ? std::nullopt : std::optional(m->second));
    }
  }
  {
    RefRunWriter refs(w);
    for (uint64_t dblock : dirty.refs) refs.Add(dblock, state_.refcount[dblock]);
  }
  return std::move(w.bytes());
}

std::vector<uint8_t> PoolMetadata::SerializeFull() const {
  format::EntryWriter w;
  for (const auto& [dev, d] : state_.devices) {
    w.Device(dev, d.virtual_blocks, d.origin, d.created_txn);
    MapRunWriter maps(w);
    for (const auto& [vblock, dblock] : d.map) maps.Add(dev, vblock, dblock);
  }
  {
    RefRunWriter refs(w);
    for (uint64_t d = 0; d < state_.refcount.size(); ++d) {
      if (state_.refcount[d] != 0) refs.Add(d, state_.refcount[d]);
    }
  }
  return std::move(w.bytes());
}

Result<std::vector<uint64_t>> PoolMetadata::AllocateMetaBlocks(size_t count) {
  std::vector<uint64_t> out;
  const uint64_t n = meta_use_.size();
  for (uint64_t i = 0; i < n && out.size() < count; ++i) {
    const uint64_t b = (meta_cursor_ + i) % n;
    if (meta_use_[b] == kMetaFree) out.push_back(b);
  }
  if (out.size() < count) {
    return ResourceExhausted("thin metadata device full: a commit needs " + std::to_string(count) +
                             " blocks, " + std::to_string(out.size()) + " are free");
  }
  for (uint64_t b : out) meta_use_[b] = kMetaPending;
  meta_cursor_ = (out.back() + 1) % n;
  return out;
}

void PoolMetadata::Commit(CommitDone done) {
  if (commit_ != nullptr) {
    return PostDone(std::move(done), FailedPrecondition("a thin metadata commit is in flight"));
  }
  if (!dirty()) return PostDone(std::move(done), Status::Ok());
  auto c = std::make_unique<Committer>();
  c->done = std::move(done);
  std::vector<uint8_t> payload;
  bool full = force_full_ || chain_.size() >= kMaxChainRecords;
  if (!full) {
    payload = SerializeDelta(dirty_);
    const uint64_t full_blocks = chain_.empty() ? 0 : chain_.front().blocks.size();
    full = chain_blocks_ - full_blocks + BlocksFor(payload.size()) >
           std::max(kMinChainBlocks, full_blocks);
  }
  if (full) payload = SerializeFull();
  const size_t nblocks = BlocksFor(payload.size());
  Result<std::vector<uint64_t>> blocks = AllocateMetaBlocks(nblocks);
  if (!blocks.ok()) return PostDone(std::move(c->done), blocks.status());
  c->record = {committed_txn_ + 1, full, std::move(*blocks)};
  c->record_buf.resize(nblocks * format::kBlockBytes);
  std::vector<std::pair<uint64_t, const uint8_t*>> writes;
  for (size_t i = 0; i < nblocks; ++i) {
    format::RecordBlockHeader h;
    h.txn = c->record.txn;
    h.prev_record = (i == 0 && !full) ? chain_.back().blocks.front() : 0;
    h.next_block = i + 1 < nblocks ? c->record.blocks[i + 1] : 0;
    h.index = static_cast<uint32_t>(i);
    h.kind = full ? format::RecordKind::kFull : format::RecordKind::kDelta;
    const size_t off = std::min(i * format::kPayloadBytes, payload.size());
    const size_t len = std::min<size_t>(format::kPayloadBytes, payload.size() - off);
    uint8_t* buf = c->record_buf.data() + i * format::kBlockBytes;
    format::EncodeRecordBlock(h, std::span(payload).subspan(off, len),
                              std::span(buf, format::kBlockBytes));
    writes.emplace_back(c->record.blocks[i], buf);
  }
  c->sb = {.txn = c->record.txn,
           .meta_blocks = meta_use_.size(),
           .data_blocks = data_blocks(),
           .data_block_bytes = data_block_bytes_,
           .head_record = c->record.blocks.front(),
           .records = full ? 1 : chain_.size() + 1,
           .chain_blocks = full ? nblocks : chain_blocks_ + nblocks};
  c->slot = 1 - committed_slot_;
  format::EncodeSuperblock(c->sb, c->sb_buf);
  // From here on, mutations go into the next transaction.
  c->taken = std::move(dirty_);
  dirty_ = Dirty{};
  freed_in_commit_ = std::move(freed_pending_);
  freed_pending_.clear();
  unsafe_in_commit_ = std::move(unsafe_pending_);
  unsafe_pending_.clear();
  fresh_pending_.clear();
  commit_ = std::move(c);
  // 1. record blocks, 2. flush, 3. superblock into the other slot, 4. flush.
  io_.WriteAll(std::move(writes), [this](IoStatus st) {
    if (st != IoStatus::kOk) return FinishCommit(Unavailable("writing a thin metadata record"));
    io_.Flush([this](IoStatus st) {
      if (st != IoStatus::kOk) return FinishCommit(Unavailable("flushing thin metadata"));
      io_.WriteAll(
          {{static_cast<uint64_t>(commit_->slot), commit_->sb_buf.data()}}, [this](IoStatus st) {
            if (st != IoStatus::kOk) {
              return FinishCommit(Unavailable("writing the thin superblock"));
            }
            io_.Flush([this](IoStatus st) {
              FinishCommit(st == IoStatus::kOk ? Status::Ok()
                                               : Unavailable("flushing the thin superblock"));
            });
          });
    });
  });
}

void PoolMetadata::FinishCommit(Status st) {
  std::unique_ptr<Committer> c = std::move(commit_);
  if (!st.ok()) {
    for (uint64_t b : c->record.blocks) meta_use_[b] = kMetaFree;
    c->taken.MergeFrom(dirty_);
    dirty_ = std::move(c->taken);
    freed_pending_.merge(freed_in_commit_);
    freed_in_commit_.clear();
    unsafe_pending_.merge(unsafe_in_commit_);
    unsafe_in_commit_.clear();
    c->done(std::move(st));
    return;
  }
  if (c->record.full) {
    for (const RecordInfo& r : chain_) {
      for (uint64_t b : r.blocks) meta_use_[b] = kMetaFree;
    }
    chain_.clear();
    chain_blocks_ = 0;
    force_full_ = false;
  }
  for (uint64_t b : c->record.blocks) meta_use_[b] = kMetaCommitted;
  chain_blocks_ += c->record.blocks.size();
  chain_.push_back(std::move(c->record));
  committed_txn_ = c->sb.txn;
  committed_slot_ = c->slot;
  std::set<uint64_t> freed = std::move(freed_in_commit_);
  freed_in_commit_.clear();
  unsafe_in_commit_.clear();
  RunDiscardHook(freed);
  c->done(Status::Ok());
}

void PoolMetadata::RunDiscardHook(const std::set<uint64_t>& freed) {
  if (!discard_hook_ || freed.empty()) return;
  uint64_t first = *freed.begin();
  uint64_t count = 0;
  for (uint64_t d : freed) {
    if (d != first + count) {
      discard_hook_(first, count);
      first = d;
      count = 0;
    }
    ++count;
  }
  discard_hook_(first, count);
}

void PoolMetadata::Format(block::BlockDevice& meta, FormatOptions options, OpenDone done) {
  Status st = MetaIo::CheckDevice(meta);
  if (st.ok() && (options.data_blocks == 0 || options.data_blocks > UINT32_MAX)) {
    st = InvalidArgument("thin pool: data blocks must be in 1..2^32-1");
  }
  if (st.ok() && options.data_block_bytes == 0)
    st = InvalidArgument("thin pool: data block size 0");
  auto* f = new Formatter;
  f->done = std::move(done);
  if (!st.ok()) {
    auto* cell = new std::pair<Formatter*, Status>(f, std::move(st));
    io::Reactor::Current()->Post([cell] {
      std::unique_ptr<std::pair<Formatter*, Status>> owned(cell);
      std::unique_ptr<Formatter> fmt(owned->first);
      fmt->done(std::move(owned->second));
    });
    return;
  }
  f->pool.reset(new PoolMetadata(meta, options.data_blocks, options.data_block_bytes));
  f->pool->force_full_ = true;
  // Invalidate both slots first, so an older pool's superblock can never win over ours.
  f->pool->io_.WriteAll({{0, f->zeroes.data()}, {1, f->zeroes.data() + format::kBlockBytes}},
                        [f](IoStatus st) {
                          if (st != IoStatus::kOk) {
                            std::unique_ptr<Formatter> owned(f);
                            return owned->done(Unavailable("clearing thin superblocks"));
                          }
                          f->pool->Commit([f](Status st) {
                            std::unique_ptr<Formatter> owned(f);
                            if (!st.ok())
                              return owned->done(st.WithContext("formatting thin pool"));
                            owned->done(std::move(owned->pool));
                          });
                        });
}

}  // namespace ferry::volume::thin
