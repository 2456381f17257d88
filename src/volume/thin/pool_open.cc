// Thin-pool metadata: Open() — pick the newest valid superblock, walk its record chain
// back to the newest full record, replay the records oldest first.
//
// Everything read is untrusted (a corrupt device, a fuzzer): every block number is range-
// checked and visited at most once, the walk is bounded by the superblock's counts, and
// the replay refuses entries outside the pool or its devices, and more mappings than
// OpenOptions allows.
#include <algorithm>

#include "io/reactor.h"
#include "volume/thin/pool_metadata.h"

namespace ferry::volume::thin {
namespace {

// One record read back from the chain, newest first.
struct LoadedRecord {
  uint64_t txn = 0;
  bool full = false;
  uint64_t prev = 0;
  std::vector<uint64_t> blocks;
  std::vector<uint8_t> payload;
};

std::string At(uint64_t block) { return "thin metadata block " + std::to_string(block) + ": "; }

}  // namespace

struct PoolMetadata::Opener {
  block::BlockDevice& dev;
  OpenOptions options;
  OpenDone done;
  MetaIo io;
  std::vector<uint8_t> buf = std::vector<uint8_t>(2 * format::kBlockBytes);
  format::Superblock sb;
  int slot = 0;
  std::vector<LoadedRecord> records;
  std::vector<bool> visited;
  uint64_t blocks_read = 0;

  Opener(block::BlockDevice& d, OpenOptions o, OpenDone cb)
      : dev(d), options(o), done(std::move(cb)), io(d) {}

  void Fail(Status st) {
    std::unique_ptr<Opener> self(this);
    self->done(st.WithContext("opening thin metadata on '" + std::string(dev.name()) + "'"));
  }
  void Start();
  Status PickSuperblock();
  void ReadBlock(uint64_t block);
  Status TakeBlock(uint64_t block, uint64_t* next);
  void Finish();
};

void PoolMetadata::Opener::Start() {
  io.Read(0, 2, buf.data(), [this](IoStatus st) {
    if (st != IoStatus::kOk) {
      return Fail(Unavailable("reading superblocks: " + std::string(IoStatusName(st))));
    }
    if (Status s = PickSuperblock(); !s.ok()) return Fail(std::move(s));
    visited.assign(sb.meta_blocks, false);
    ReadBlock(sb.head_record);
  });
}

Status PoolMetadata::Opener::PickSuperblock() {
  Result<format::Superblock> s0 =
      format::DecodeSuperblock(std::span(buf).first(format::kBlockBytes));
  Result<format::Superblock> s1 =
      format::DecodeSuperblock(std::span(buf).subspan(format::kBlockBytes));
  if (!s0.ok() && !s1.ok()) {
    return DataLoss("no valid superblock (slot 0: " + std::string(s0.status().message()) +
                    "; slot 1: " + std::string(s1.status().message()) + ")");
  }
  slot = (s0.ok() && (!s1.ok() || s0->txn >= s1->txn)) ? 0 : 1;
  sb = slot == 0 ? *s0 : *s1;
  if (sb.meta_blocks > MetaIo::BlocksOn(dev)) {
    return DataLoss("superblock: " + std::to_string(sb.meta_blocks) +
                    " metadata blocks, the device holds " + std::to_string(MetaIo::BlocksOn(dev)));
  }
  if (sb.data_blocks == 0 || sb.data_blocks > UINT32_MAX) {
    return DataLoss("superblock: " + std::to_string(sb.data_blocks) + " data blocks");
  }
  if (sb.data_blocks > options.max_data_blocks) {
    return ResourceExhausted("superblock: " + std::to_string(sb.data_blocks) +
                             " data blocks, more than the limit " +
                             std::to_string(options.max_data_blocks));
  }
  if (sb.data_block_bytes == 0) return DataLoss("superblock: data block size 0");
  return Status::Ok();
}

void PoolMetadata::Opener::ReadBlock(uint64_t block) {
  if (block < format::kSuperSlots || block >= sb.meta_blocks) {
    return Fail(DataLoss(At(block) + "outside the record area"));
  }
  if (visited[block]) return Fail(DataLoss(At(block) + "reached twice (a loop in the chain)"));
  if (++blocks_read > sb.chain_blocks) {
    return Fail(DataLoss("record chain longer than the superblock's " +
                         std::to_string(sb.chain_blocks) + " blocks"));
  }
  visited[block] = true;
  io.Read(block, 1, buf.data(), [this, block](IoStatus st) {
    if (st != IoStatus::kOk) {
      return Fail(Unavailable(At(block) + "read failed: " + std::string(IoStatusName(st))));
    }
    uint64_t next = 0;
    if (Status s = TakeBlock(block, &next); !s.ok()) return Fail(std::move(s));
    if (next != 0) return ReadBlock(next);
    Finish();
  });
}

// Checks one record block against what the chain expects and keeps its payload. *next is
// the next block to read (of this record or the previous one), 0 when the chain is done.
Status PoolMetadata::Opener::TakeBlock(uint64_t block, uint64_t* next) {
  Result<format::RecordBlockHeader> decoded =
      format::DecodeRecordBlock(std::span(buf).first(format::kBlockBytes));
  if (!decoded.ok()) return decoded.status().WithContext(At(block) + "on the record chain");
  const format::RecordBlockHeader& h = *decoded;
  const bool first = records.empty() || records.back().blocks.empty();
  if (records.empty()) records.emplace_back();
  LoadedRecord& r = records.back();
  if (first) {
    const uint64_t want_below = records.size() == 1 ? sb.txn + 1 : records[records.size() - 2].txn;
    if (records.size() == 1 ? h.txn != sb.txn : h.txn >= want_below) {
      return DataLoss(At(block) + "transaction " + std::to_string(h.txn) +
                      " out of order on the chain");
    }
    r.txn = h.txn;
    r.full = h.kind == format::RecordKind::kFull;
    r.prev = h.prev_record;
  } else if (h.txn != r.txn || r.full != (h.kind == format::RecordKind::kFull)) {
    return DataLoss(At(block) + "belongs to another record");
  }
  if (h.index != r.blocks.size()) return DataLoss(At(block) + "out of sequence in its record");
  r.blocks.push_back(block);
  const uint8_t* payload = buf.data() + format::kRecordHeaderBytes;
  r.payload.insert(r.payload.end(), payload, payload + h.payload_bytes);
  if (h.next_block != 0) {
    *next = h.next_block;
    return Status::Ok();
  }
  if (r.full) {
    *next = 0;
    if (records.size() != sb.records || blocks_read != sb.chain_blocks) {
      return DataLoss("record chain has " + std::to_string(records.size()) + " records in " +
                      std::to_string(blocks_read) + " blocks, the superblock says " +
                      std::to_string(sb.records) + " in " + std::to_string(sb.chain_blocks));
    }
    return Status::Ok();
  }
  if (r.prev == 0) return DataLoss(At(block) + "delta record without a previous record");
  if (records.size() >= sb.records) {
    return DataLoss("record chain longer than the superblock's " + std::to_string(sb.records) +
                    " records");
  }
  *next = r.prev;
  records.emplace_back();
  return Status::Ok();
}

void PoolMetadata::Opener::Finish() {
  std::unique_ptr<PoolMetadata> pool(new PoolMetadata(dev, sb.data_blocks, sb.data_block_bytes));
  uint64_t mappings = 0;
  for (auto r = records.rbegin(); r != records.rend(); ++r) {
    Status st = pool->Replay(r->payload, options, &mappings);
    if (!st.ok()) {
      return Fail(st.WithContext("record of transaction " + std::to_string(r->txn)));
    }
  }
  for (auto r = records.rbegin(); r != records.rend(); ++r) {
    for (uint64_t b : r->blocks) pool->meta_use_[b] = kMetaCommitted;
    pool->chain_blocks_ += r->blocks.size();
    pool->chain_.push_back({r->txn, r->full, std::move(r->blocks)});
  }
  pool->committed_txn_ = sb.txn;
  pool->committed_slot_ = slot;
  pool->RecountUsed();
  std::unique_ptr<Opener> self(this);
  self->done(std::move(pool));
}

void PoolMetadata::Open(block::BlockDevice& meta, OpenOptions options, OpenDone done) {
  auto* o = new Opener(meta, options, std::move(done));
  if (Status st = MetaIo::CheckDevice(meta); !st.ok()) {
    io::Reactor::Current()->Post([o, st = std::move(st)]() mutable { o->Fail(std::move(st)); });
    return;
  }
  o->Start();
}

void PoolMetadata::RecountUsed() {
  used_ = 0;
  for (uint32_t r : state_.refcount) used_ += r != 0;
}

Status PoolMetadata::Replay(std::span<const uint8_t> payload, const OpenOptions& options,
                            uint64_t* mappings) {
  format::EntryReader reader(payload);
  const uint64_t nblocks = data_blocks();
  while (!reader.done()) {
    FERRY_ASSIGN_OR_RETURN(format::Entry e, reader.Next());
    if (e.type == format::EntryType::kRefRun) {
      if (e.len == 0 || e.dblock >= nblocks || e.len > nblocks - e.dblock) {
        return DataLoss("refcount run outside the pool");
      }
      std::fill_n(state_.refcount.begin() + e.dblock, e.len, e.count);
      continue;
    }
    if (e.type == format::EntryType::kDelete) {
      state_.devices.erase(e.dev);
      continue;
    }
    if (e.type == format::EntryType::kDevice) {
      if (e.dev == format::kNoOrigin || e.vblock == 0) return DataLoss("invalid thin device entry");
      ThinDevice& d = state_.devices[e.dev];
      if (!d.map.empty() && d.map.rbegin()->first >= e.vblock) {
        return DataLoss("thin device " + std::to_string(e.dev) + " shrinks below its mappings");
      }
      d.virtual_blocks = e.vblock;
      d.origin = e.len;
      d.created_txn = e.dblock;
      continue;
    }
    auto it = state_.devices.find(e.dev);
    if (it == state_.devices.end()) {
      return DataLoss("mapping entry for missing thin device " + std::to_string(e.dev));
    }
    ThinDevice& d = it->second;
    if (e.len == 0 || e.vblock >= d.virtual_blocks || e.len > d.virtual_blocks - e.vblock) {
      return DataLoss("mapping run outside thin device " + std::to_string(e.dev));
    }
    if (e.type == format::EntryType::kUnmapRun) {
      d.map.erase(d.map.lower_bound(e.vblock), d.map.lower_bound(e.vblock + e.len));
      continue;
    }
    if (e.dblock >= nblocks || e.len > nblocks - e.dblock) {
      return DataLoss("mapping run of thin device " + std::to_string(e.dev) + " outside the pool");
    }
    *mappings += e.len;
    if (*mappings > options.max_mappings) {
      return ResourceExhausted("more than " + std::to_string(options.max_mappings) + " mappings");
    }
    for (uint32_t i = 0; i < e.len; ++i) d.map[e.vblock + i] = e.dblock + i;
  }
  return Status::Ok();
}

}  // namespace ferry::volume::thin
