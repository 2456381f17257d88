#include "volume/snapshot/exception_store.h"

#include <algorithm>
#include <map>
#include <random>
#include <string>

#include "io/reactor.h"
#include "volume/snapshot/dev_io.h"

namespace ferry::volume::snapshot {
namespace {

constexpr uint64_t kSectorBytes = 512;

void PostDone(ExceptionStore::Done done, ferry::Status st) {
  io::Reactor::Current()->Post([d = std::make_shared<ExceptionStore::Done>(std::move(done)),
                                st]() mutable { (*d)(std::move(st)); });
}

ferry::Status IoError(const block::BlockDevice& dev, const char* what, IoStatus st) {
  return ferry::Status(StatusCode::kUnavailable, std::string(what) + " on COW device '" +
                                                     std::string(dev.name()) +
                                                     "' failed: " + std::string(IoStatusName(st)));
}

}  // namespace

ExceptionStore::ExceptionStore(Options o)
    : o_(o),
      chunk_bytes_(uint64_t{o.chunk_sectors} * kSectorBytes),
      cow_chunks_(o.cow->geometry().size_bytes() / chunk_bytes_),
      layout_(chunk_bytes_, cow_chunks_) {}

std::optional<uint64_t> ExceptionStore::Lookup(uint64_t origin_chunk) const {
  auto it = map_.find(origin_chunk);
  if (it == map_.end()) return std::nullopt;
  return SlotChunk(it->second);
}

uint64_t ExceptionStore::SlotChunk(uint64_t slot) const {
  return o_.persistent ? layout_.DataChunk(slot) : slot;
}

uint64_t ExceptionStore::metadata_chunks() const {
  if (!o_.persistent) return 0;
  return 1 + (next_slot_ + layout_.per_area() - 1) / layout_.per_area();
}

Result<uint64_t> ExceptionStore::Allocate(uint64_t origin_chunk) {
  const uint64_t limit = o_.persistent ? layout_.slots() : cow_chunks_;
  if (next_slot_ >= limit) {
    return ResourceExhausted("COW device '" + std::string(o_.cow->name()) + "' is full (" +
                             std::to_string(limit) +
                             " chunks); give the snapshot a larger COW device");
  }
  const uint64_t slot = next_slot_++;
  pending_slot_[slot] = origin_chunk;
  if (slots_.size() < next_slot_) slots_.resize(next_slot_);
  return slot;
}

// ---- open and format ----

void ExceptionStore::Open(Done done) {
  if (!o_.persistent) return PostDone(std::move(done), ferry::Status::Ok());
  auto buf = std::make_shared<std::vector<uint8_t>>(kHeaderBytes);
  SubmitDevBuf(*o_.cow, block::IoOp::kRead, 0, kHeaderBytes, buf->data(),
               [this, buf, done = std::move(done)](IoStatus st) mutable {
                 if (st != IoStatus::kOk) return done(IoError(*o_.cow, "reading the header", st));
                 auto h = DecodeHeader(*buf);
                 if (!h.ok()) return done(h.status());
                 if (!h->has_value()) return Format(std::move(done));
                 const Header& hd = **h;
                 if (hd.chunk_sectors != o_.chunk_sectors) {
                   return done(InvalidArgument(
                       "COW device '" + std::string(o_.cow->name()) +
                       "' holds a store with chunk size " + std::to_string(hd.chunk_sectors) +
                       " sectors; use that chunk size or zero the device's first 4 KiB"));
                 }
                 valid_ = hd.valid;
                 store_id_ = hd.store_id;
                 auto area = std::make_shared<std::vector<uint8_t>>(chunk_bytes_);
                 ReadArea(0, std::move(area), std::move(done));
               });
}

void ExceptionStore::ReadArea(uint64_t area, std::shared_ptr<std::vector<uint8_t>> buf, Done done) {
  if (area >= layout_.areas()) return FinishOpen(std::move(done));
  SubmitDevBuf(*o_.cow, block::IoOp::kRead, layout_.AreaChunk(area) * chunk_bytes_, chunk_bytes_,
               buf->data(), [this, area, buf, done = std::move(done)](IoStatus st) mutable {
                 if (st != IoStatus::kOk) {
                   return done(IoError(*o_.cow, "reading a metadata area", st));
                 }
                 ferry::Status s =
                     DecodeArea(*buf, layout_, area, store_id_, o_.origin_chunks, &slots_);
                 if (!s.ok()) return done(s);
                 ReadArea(area + 1, std::move(buf), std::move(done));
               });
}

void ExceptionStore::FinishOpen(Done done) {
  // Slots after the last record are free; holes before it (commits lost in a crash) stay
  // unused.
  while (!slots_.empty() && slots_.back().state == RecordState::kEmpty) slots_.pop_back();
  next_slot_ = slots_.size();
  for (uint64_t s = 0; s < slots_.size(); ++s) {
    if (slots_[s].state == RecordState::kException) map_[slots_[s].origin_chunk] = s;
  }
  done(CheckSlots(slots_, layout_, o_.origin_chunks));
}

void ExceptionStore::Format(Done done) {
  if (layout_.slots() == 0) {
    return done(InvalidArgument("COW device '" + std::string(o_.cow->name()) +
                                "' is too small for a persistent store (needs at least 3 chunks)"));
  }
  std::random_device rd;
  store_id_ = (uint64_t{rd()} << 32) | rd();
  if (store_id_ == 0) store_id_ = 1;
  auto buf = std::make_shared<std::vector<uint8_t>>(kHeaderBytes);
  EncodeHeader({.chunk_sectors = o_.chunk_sectors, .valid = true, .store_id = store_id_}, *buf);
  SubmitDevBuf(*o_.cow, block::IoOp::kWrite, 0, kHeaderBytes, buf->data(),
               [this, buf, done = std::move(done)](IoStatus st) mutable {
                 if (st != IoStatus::kOk) return done(IoError(*o_.cow, "writing the header", st));
                 FlushThen(std::move(done));
               });
}

// ---- commits ----

void ExceptionStore::FlushThen(Done done) {
  SubmitDevBuf(*o_.cow, block::IoOp::kFlush, 0, 0, nullptr,
               [this, done = std::move(done)](IoStatus st) mutable {
                 done(st == IoStatus::kOk ? ferry::Status::Ok() : IoError(*o_.cow, "flush", st));
               });
}

void ExceptionStore::Commit(uint64_t slot, Done done) {
  if (!valid_) {
    pending_slot_.erase(slot);
    return PostDone(std::move(done), FailedPrecondition("the snapshot is invalid"));
  }
  if (!o_.persistent) {
    slots_[slot] = {pending_slot_[slot], SlotChunk(slot), RecordState::kException};
    map_[pending_slot_[slot]] = slot;
    pending_slot_.erase(slot);
    return PostDone(std::move(done), ferry::Status::Ok());
  }
  queue_.push_back({slot, std::move(done)});
  if (!busy_) StartBatch();
}

void ExceptionStore::StartBatch() {
  busy_ = true;
  auto batch = std::make_shared<std::vector<Pending>>(std::move(queue_));
  queue_.clear();
  // The data of every exception in the batch completed before its Commit: this flush makes
  // it durable before any record that names it can be.
  FlushThen([this, batch](ferry::Status st) {
    std::vector<uint64_t> slots;
    if (st.ok() && valid_) {
      for (const Pending& p : *batch) {
        slots_[p.slot] = {pending_slot_[p.slot], SlotChunk(p.slot), RecordState::kException};
        slots.push_back(p.slot);
      }
    }
    auto finish = [this, batch](ferry::Status st) {
      for (Pending& p : *batch) {
        const uint64_t origin = pending_slot_[p.slot];
        pending_slot_.erase(p.slot);
        if (st.ok()) {
          map_[origin] = p.slot;
        } else {
          slots_[p.slot] = {};
        }
      }
      if (!st.ok()) Fail();
      busy_ = false;
      for (Pending& p : *batch) p.done(st);
      Kick();
    };
    if (!st.ok() || !valid_) {
      return finish(st.ok() ? FailedPrecondition("the snapshot is invalid") : st);
    }
    WriteSlots(slots, [this, finish = std::move(finish)](ferry::Status st) mutable {
      if (!st.ok()) return finish(st);
      FlushThen(std::move(finish));
    });
  });
}

// Writes the metadata blocks (COW block size) that hold `slots`, encoded from slots_.
void ExceptionStore::WriteSlots(const std::vector<uint64_t>& slots, Done done) {
  const uint64_t bs = o_.cow->geometry().block_size;
  const uint64_t per_block = bs / kRecordBytes;
  std::map<uint64_t, uint64_t> blocks;  // device offset -> first slot of the block
  for (uint64_t s : slots) {
    const uint64_t area = s / layout_.per_area();
    const uint64_t in_area = s % layout_.per_area() / per_block * per_block;
    blocks[layout_.AreaChunk(area) * chunk_bytes_ + in_area * kRecordBytes] =
        area * layout_.per_area() + in_area;
  }
  struct Batch {
    std::vector<uint8_t> bytes;
    size_t left = 0;
    IoStatus first = IoStatus::kOk;
    Done done;
  };
  auto b = std::make_shared<Batch>();
  b->bytes.assign(blocks.size() * bs, 0);
  b->left = blocks.size();
  b->done = std::move(done);
  size_t i = 0;
  for (const auto& [offset, first] : blocks) {
    uint8_t* p = b->bytes.data() + i * bs;
    for (uint64_t k = 0; k < per_block && first + k < slots_.size(); ++k) {
      EncodeRecord(slots_[first + k], store_id_,
                   std::span<uint8_t, kRecordBytes>(p + k * kRecordBytes, kRecordBytes));
    }
    SubmitDevBuf(*o_.cow, block::IoOp::kWrite, offset, bs, p, [this, b](IoStatus st) {
      if (st != IoStatus::kOk && b->first == IoStatus::kOk) b->first = st;
      if (--b->left > 0) return;
      b->done(b->first == IoStatus::kOk ? ferry::Status::Ok()
                                        : IoError(*o_.cow, "writing exception records", b->first));
    });
    ++i;
  }
}

// Marks the store invalid in memory; the caller (whose `done` gets the error) writes the
// invalid header with Invalidate(), keeping itself alive until that completes.
void ExceptionStore::Fail() { valid_ = false; }

void ExceptionStore::Invalidate(Done done) {
  valid_ = false;
  if (!o_.persistent) return PostDone(std::move(done), ferry::Status::Ok());
  auto buf = std::make_shared<std::vector<uint8_t>>(kHeaderBytes);
  EncodeHeader({.chunk_sectors = o_.chunk_sectors, .valid = false, .store_id = store_id_}, *buf);
  SubmitDevBuf(*o_.cow, block::IoOp::kWrite, 0, kHeaderBytes, buf->data(),
               [this, buf, done = std::move(done)](IoStatus st) mutable {
                 if (st != IoStatus::kOk) {
                   return done(IoError(*o_.cow, "writing the invalid header", st));
                 }
                 FlushThen(std::move(done));
               });
}

// ---- merge ----

std::optional<ExceptionStore::Live> ExceptionStore::LastLive() const {
  std::optional<Live> best;
  for (const auto& [origin, slot] : map_) {
    if (!best || slot > best->slot) best = Live{slot, origin, SlotChunk(slot)};
  }
  return best;
}

void ExceptionStore::MarkMerged(uint64_t slot, Done done) {
  const uint64_t origin = slots_[slot].origin_chunk;
  if (!o_.persistent) {
    map_.erase(origin);
    slots_[slot].state = RecordState::kMerged;
    return PostDone(std::move(done), ferry::Status::Ok());
  }
  if (busy_) {  // metadata writes are serialized: a block is never written twice at once
    merge_waiting_.push_back({slot, std::move(done)});
    return;
  }
  busy_ = true;
  slots_[slot].state = RecordState::kMerged;
  auto d = std::make_shared<Done>(std::move(done));
  WriteSlots({slot}, [this, slot, origin, d](ferry::Status st) mutable {
    auto after = [this, slot, origin, d](ferry::Status st) mutable {
      if (st.ok()) {
        map_.erase(origin);
      } else {
        slots_[slot].state = RecordState::kException;
        Fail();
      }
      busy_ = false;
      (*d)(st);
      Kick();
    };
    if (!st.ok()) return after(st);
    FlushThen(std::move(after));
  });
}

void ExceptionStore::Kick() {
  if (busy_) return;
  if (!merge_waiting_.empty()) {
    Pending p = std::move(merge_waiting_.front());
    merge_waiting_.erase(merge_waiting_.begin());
    return MarkMerged(p.slot, std::move(p.done));
  }
  if (!queue_.empty()) StartBatch();
}

ferry::Status ExceptionStore::Check() const {
  if (o_.persistent) FERRY_RETURN_IF_ERROR(CheckSlots(slots_, layout_, o_.origin_chunks));
  size_t live = 0;
  for (uint64_t s = 0; s < slots_.size(); ++s) {
    if (slots_[s].state != RecordState::kException) continue;
    ++live;
    auto it = map_.find(slots_[s].origin_chunk);
    if (it == map_.end() || it->second != s) {
      return DataLoss("slot " + std::to_string(s) + " is not the live exception of its chunk");
    }
    if (SlotChunk(s) >= cow_chunks_) {
      return DataLoss("slot " + std::to_string(s) + " lies past the COW device");
    }
  }
  if (live != map_.size()) return DataLoss("exception map and slots disagree");
  return ferry::Status::Ok();
}

}  // namespace ferry::volume::snapshot
