#include "volume/volume.h"

#include <algorithm>
#include <numeric>

#include "io/reactor.h"

namespace ferry::volume {

// One volume request being run as pieces. Lives on the submitting reactor's thread (every
// piece completes there), taken from a per-thread free list so steady-state I/O reuses the
// vectors instead of allocating.
struct Volume::Fanout {
  Volume* vol = nullptr;
  block::IoRequest* parent = nullptr;
  std::shared_ptr<Table> table;  // keeps the targets and devices alive until completion
  std::vector<MappedPiece> pieces;
  std::vector<PieceIo> ios;
  std::vector<iovec> iovs;
  std::vector<std::pair<size_t, uint32_t>> iov_ranges;  // per piece: first, count
  size_t remaining = 0;
  IoStatus status = IoStatus::kOk;
};

// "volume 'NAME'", for messages (volume.h).
std::string VolumeLabel(std::string_view name) { return "volume '" + std::string(name) + "'"; }

std::vector<std::unique_ptr<Volume::Fanout>>& Volume::FreeList() {
  thread_local std::vector<std::unique_ptr<Fanout>> list;
  return list;
}

// ---- creation and geometry ----

Result<std::shared_ptr<Volume>> Volume::Create(std::string name, std::shared_ptr<Table> table) {
  if (name.empty()) return InvalidArgument("a volume needs a name");
  if (table == nullptr) return InvalidArgument(VolumeLabel(name) + " needs a table");
  return std::shared_ptr<Volume>(new Volume(std::move(name), std::move(table)));
}

Volume::Volume(std::string name, std::shared_ptr<Table> table)
    : name_(std::move(name)), active_(std::move(table)) {
  ApplyTableLocked();
}

Volume::~Volume() = default;

void Volume::ApplyTableLocked() {
  geometry_.block_size = active_->block_size();
  geometry_.num_blocks = BlockCount(active_->num_sectors() * kSectorBytes / geometry_.block_size);
  limits_ = active_->limits();
  uint64_t granularity = 0;
  for (size_t i = 0; i < active_->size(); ++i) {
    const uint64_t g = active_->target(i).copy_granularity_bytes();
    if (g != 0) granularity = granularity == 0 ? g : std::lcm(granularity, g);
  }
  if (granularity != 0) {
    limits_.copy_granularity_bytes = static_cast<uint32_t>(granularity);
    limits_.max_copy_bytes = std::max<uint64_t>(1, (uint64_t{1} << 30) / granularity) * granularity;
    limits_.max_copy_segments = 256;
  }
}

// ---- I/O ----

void Volume::Submit(block::IoRequest& req) {
  std::shared_ptr<Table> table;
  IoStatus st;
  {
    std::lock_guard lock(mu_);
    st = removed_ ? IoStatus::kInvalid : block::ValidateRequest(*this, req);
    if (st == IoStatus::kOk) {
      if (suspended_) {
        queued_.push_back({&req, io::Reactor::Current()});
        return;
      }
      table = active_;
      ++in_flight_;
    }
  }
  if (st != IoStatus::kOk) {
    CompletePosted(req.done, st);
    return;
  }
  Dispatch(req, std::move(table));
}

void Volume::Dispatch(block::IoRequest& req, std::shared_ptr<Table> table) {
  auto& free_list = FreeList();
  std::unique_ptr<Fanout> owned;
  if (free_list.empty()) {
    owned = std::make_unique<Fanout>();
  } else {
    owned = std::move(free_list.back());
    free_list.pop_back();
  }
  Fanout* f = owned.release();
  f->vol = this;
  f->parent = &req;
  f->table = std::move(table);
  f->status = IoStatus::kOk;
  f->pieces.clear();
  f->iovs.clear();
  f->iov_ranges.clear();
  const uint64_t bs = geometry_.block_size;
  (void)f->table->Map(req.op, req.lba.value() * bs, req.blocks.value() * bs, &f->pieces);
  const size_t n = f->pieces.size();
  if (n == 0) {  // a flush of a table without devices
    io::Reactor::Current()->Post([f] { f->vol->Finish(f); });
    return;
  }
  // Slice the payload: pieces come in volume order and cover the request exactly.
  const bool data = req.op == block::IoOp::kRead || req.op == block::IoOp::kWrite;
  uint32_t vi = 0;
  uint64_t in_v = 0;
  for (const MappedPiece& p : f->pieces) {
    const size_t first = f->iovs.size();
    uint64_t left = data ? p.len_bytes : 0;
    while (left > 0) {
      const iovec& v = req.iov[vi];
      const uint64_t take = std::min<uint64_t>(left, v.iov_len - in_v);
      f->iovs.push_back({static_cast<char*>(v.iov_base) + in_v, take});
      left -= take;
      in_v += take;
      if (in_v == v.iov_len) {
        ++vi;
        in_v = 0;
      }
    }
    f->iov_ranges.emplace_back(first, static_cast<uint32_t>(f->iovs.size() - first));
  }
  f->ios.resize(n);
  f->remaining = n;
  for (size_t i = 0; i < n; ++i) {
    PieceIo& io = f->ios[i];
    io.piece = f->pieces[i];
    io.flags = 0;
    io.bounce.reset();
    io.submitted = std::chrono::steady_clock::now();
    block::IoRequest& c = io.child;
    c.op = req.op;
    c.flags = req.flags;
    const uint64_t dbs =
        io.piece.kind == PieceKind::kDevice ? io.piece.dev->geometry().block_size : bs;
    c.lba = Lba(io.piece.dev_offset_bytes / dbs);
    c.blocks = BlockCount(io.piece.len_bytes / dbs);
    c.iov = data ? f->iovs.data() + f->iov_ranges[i].first : nullptr;
    c.iovcnt = data ? f->iov_ranges[i].second : 0;
    c.done = [f, i](IoStatus st) { f->vol->PieceDone(f, i, st); };
  }
  for (size_t i = 0; i < n; ++i) {
    f->table->target(f->ios[i].piece.target_index).SubmitPiece(f->ios[i]);
  }
}

void Volume::PieceDone(Fanout* f, size_t i, IoStatus st) {
  PieceIo& io = f->ios[i];
  st = f->table->target(io.piece.target_index).EndIo(io, st);
  if (st != IoStatus::kOk && f->status == IoStatus::kOk) f->status = st;  // first error wins
  if (--f->remaining == 0) Finish(f);
}

void Volume::Finish(Fanout* f) {
  block::IoRequest* parent = f->parent;
  const IoStatus st = f->status;
  f->table.reset();
  f->parent = nullptr;
  FreeList().emplace_back(f);
  parent->done(st);
  std::unique_lock lock(mu_);
  --in_flight_;
  Drained(lock);
}

void Volume::Drained(std::unique_lock<std::mutex>& lock) {
  if (!suspended_ || in_flight_ != 0 || !pins_.empty() || waiters_.empty()) return;
  std::vector<Waiter> waiters;
  waiters.swap(waiters_);
  lock.unlock();
  for (Waiter& w : waiters) {
    w.reactor->Post(
        [d = std::make_unique<SuspendDone>(std::move(w.done))]() mutable { (*d)(Status::Ok()); });
  }
}

block::ProvisioningExtent Volume::Provisioning(Lba lba, BlockCount max) const {
  std::shared_ptr<Table> table = active_table();
  if (table == nullptr || max.value() == 0) return {true, max};
  const uint64_t bs = table->block_size();
  const uint64_t off = lba.value() * bs;
  const size_t i = table->FindTarget(off / kSectorBytes);
  if (i >= table->size()) return {true, max};
  const uint64_t end = (table->start_sectors(i) + table->target(i).num_sectors()) * kSectorBytes;
  const uint64_t len = std::min(max.value() * bs, end - off);
  const uint64_t line_off = off - table->start_sectors(i) * kSectorBytes;
  if (auto e = table->target(i).Provisioning(line_off, len, static_cast<uint32_t>(bs))) return *e;
  std::vector<MappedPiece> pieces;
  if (!table->Map(block::IoOp::kRead, off, len, &pieces).ok() || pieces.empty()) {
    return {true, max};
  }
  const MappedPiece& p = pieces[0];
  const uint64_t piece_blocks = std::max<uint64_t>(1, p.len_bytes / bs);
  if (p.kind == PieceKind::kZero) return {false, BlockCount(piece_blocks)};
  if (p.kind == PieceKind::kError) return {true, BlockCount(piece_blocks)};
  const uint64_t dbs = p.dev->geometry().block_size;
  block::ProvisioningExtent e =
      p.dev->Provisioning(Lba(p.dev_offset_bytes / dbs), BlockCount(p.len_bytes / dbs));
  const uint64_t blocks = std::clamp<uint64_t>(e.blocks.value() * dbs / bs, 1, piece_blocks);
  return {e.mapped, BlockCount(blocks)};
}

// ---- native copies ----

// One leg forwarded to a line's target, with destination offsets relative to the line.
struct Volume::LegCopy {
  Volume* vol = nullptr;
  block::CopyLegRequest* parent = nullptr;
  std::shared_ptr<Table> table;
  std::vector<block::CopySegment> segments;
  block::CopyLegRequest child;
};

block::CopyOffload* Volume::copy_offload() { return limits_.max_copy_bytes != 0 ? this : nullptr; }

bool Volume::CanCopyFrom(const block::BlockDevice& src, std::string* why_not) const {
  std::shared_ptr<Table> table = active_table();
  std::string why;
  for (size_t i = 0; table != nullptr && i < table->size(); ++i) {
    const Target& t = table->target(i);
    if (t.copy_granularity_bytes() != 0 && t.CanCopyFrom(src, &why)) return true;
  }
  if (why_not != nullptr) {
    *why_not = why.empty() ? VolumeLabel(name_) + " has no line that copies natively" : why;
  }
  return false;
}

void Volume::SubmitCopy(block::CopyLegRequest& req) {
  auto* c = new LegCopy;
  c->vol = this;
  c->parent = &req;
  {
    std::lock_guard lock(mu_);
    if (!removed_ && !suspended_) c->table = active_;
    ++in_flight_;
  }
  c->child.src = req.src;
  c->child.done = [c](IoStatus st) { c->vol->CopyDone(c, st); };
  // Every segment inside one line that copies natively; otherwise the engine emulates.
  size_t line = SIZE_MAX;
  bool native = c->table != nullptr;
  for (const block::CopySegment& s : req.segments) {
    if (!native) break;
    const size_t i = c->table->FindTarget(s.dst_offset_bytes / kSectorBytes);
    const uint64_t start = i < c->table->size() ? c->table->start_sectors(i) * kSectorBytes : 0;
    native = i < c->table->size() && (line == SIZE_MAX || line == i) &&
             c->table->target(i).copy_granularity_bytes() != 0 &&
             s.dst_offset_bytes + s.len_bytes <=
                 start + c->table->target(i).num_sectors() * kSectorBytes;
    line = i;
    if (native)
      c->segments.push_back({s.src_offset_bytes, s.dst_offset_bytes - start, s.len_bytes});
  }
  if (!native || line == SIZE_MAX) {
    CompletePosted(c->child.done, IoStatus::kNotSupported);
    return;
  }
  c->child.segments = c->segments;
  c->table->target(line).SubmitCopy(c->child);
}

void Volume::CopyDone(LegCopy* c, IoStatus st) {
  block::CopyLegRequest* parent = c->parent;
  parent->mechanism = c->child.mechanism;
  parent->reflinked_bytes = c->child.reflinked_bytes;
  delete c;
  parent->done(st);
  std::unique_lock lock(mu_);
  --in_flight_;
  Drained(lock);
}

}  // namespace ferry::volume
