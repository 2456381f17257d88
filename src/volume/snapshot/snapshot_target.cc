#include "volume/snapshot/snapshot_target.h"

#include <algorithm>

namespace ferry::volume::snapshot {

namespace {

Status CheckEnv(const TargetArgs& a) {
  if (a.env == nullptr || a.env->reactor == nullptr) {
    return FailedPrecondition(
        "needs a reactor for its exception store (TableOptions::env.reactor); the owner of "
        "the table must provide one");
  }
  if (a.env->mover == nullptr) {
    return FailedPrecondition(
        "needs a data mover for copy-on-write (TableOptions::env.mover, e.g. "
        "copy::MakeEngineMover); the owner of the table must provide one");
  }
  return Status::Ok();
}

Result<uint32_t> ParseChunk(const std::string& token) {
  FERRY_ASSIGN_OR_RETURN(uint64_t cs, ParseNumber(token, "chunk size", UINT32_MAX));
  if (cs < kMinChunkSectors || cs > kMaxChunkSectors || (cs & (cs - 1)) != 0) {
    return InvalidArgument("chunk size " + std::to_string(cs) +
                           " is not a power of two in 8..16384 sectors");
  }
  return static_cast<uint32_t>(cs);
}

// Block sizes: both devices' must divide the chunk, and the COW device's must divide the
// origin's size (the last, partial chunk is copied whole blocks at a time).
Status CheckDevices(const block::BlockDevice& origin, const block::BlockDevice& cow,
                    uint64_t chunk_bytes, bool persistent) {
  if (&origin == &cow) return InvalidArgument("origin and COW device must be different devices");
  for (const block::BlockDevice* d : {&origin, &cow}) {
    if (chunk_bytes % d->geometry().block_size != 0) {
      return InvalidArgument("chunk size " + std::to_string(chunk_bytes / kSectorBytes) +
                             " sectors is not a multiple of device '" + std::string(d->name()) +
                             "' block size " + std::to_string(d->geometry().block_size) +
                             " bytes; raise the chunk size");
    }
  }
  if (origin.geometry().size_bytes() % cow.geometry().block_size != 0) {
    return InvalidArgument("origin size is not a multiple of COW device block size " +
                           std::to_string(cow.geometry().block_size));
  }
  const uint64_t chunks = cow.geometry().size_bytes() / chunk_bytes;
  if (chunks < (persistent ? 3u : 1u)) {
    return InvalidArgument(
        "COW device '" + std::string(cow.name()) + "' holds " + std::to_string(chunks) +
        " chunks; a " +
        (persistent ? "persistent store needs at least 3 (header, " + std::string("metadata, data)")
                    : std::string("transient store needs at least 1")) +
        "; give it a larger COW device or a smaller chunk size");
  }
  return Status::Ok();
}

}  // namespace

// ---- snapshot, snapshot-merge ----

Result<std::unique_ptr<Target>> SnapshotTarget::CreateSnapshot(const TargetArgs& a) {
  return Create(a, false);
}
Result<std::unique_ptr<Target>> SnapshotTarget::CreateMerge(const TargetArgs& a) {
  return Create(a, true);
}

Result<std::unique_ptr<Target>> SnapshotTarget::Create(const TargetArgs& a, bool merge) {
  if (a.args.size() != 4) {
    return InvalidArgument(std::string("expected <origin> <COW dev> ") + (merge ? "P" : "<P|N>") +
                           " <chunk sectors>, got " + std::to_string(a.args.size()) + " arguments");
  }
  const std::string& type = a.args[2];
  if (type != "P" && type != "N" && type != "p" && type != "n") {
    return InvalidArgument("store type '" + type +
                           "' must be P (persistent) or N (transient, in memory)");
  }
  const bool persistent = type == "P" || type == "p";
  if (merge && !persistent) {
    return InvalidArgument(
        "snapshot-merge needs a persistent store (P): a transient store "
        "has nothing on disk to merge across restarts");
  }
  FERRY_ASSIGN_OR_RETURN(uint32_t chunk, ParseChunk(a.args[3]));
  FERRY_RETURN_IF_ERROR(CheckEnv(a));
  auto origin = ResolveDevice(a, a.args[0], 0, a.num_sectors);
  if (!origin.ok()) return origin.status().WithContext("origin");
  auto cow = ResolveDevice(a, a.args[1], 0, 0);
  if (!cow.ok()) return cow.status().WithContext("COW device");
  FERRY_RETURN_IF_ERROR(CheckDevices(**origin, **cow, uint64_t{chunk} * kSectorBytes, persistent));
  FERRY_ASSIGN_OR_RETURN(auto core, SnapshotCore::Get({.origin = *origin,
                                                       .cow = *cow,
                                                       .persistent = persistent,
                                                       .chunk_sectors = chunk,
                                                       .home = a.env->reactor,
                                                       .mover = a.env->mover}));
  std::unique_ptr<SnapshotTarget> t(
      new SnapshotTarget(a.num_sectors, merge, std::move(origin).value(), std::move(cow).value()));
  t->origin_name_ = a.args[0];
  t->cow_name_ = a.args[1];
  t->core_ = std::move(core);
  return std::unique_ptr<Target>(std::move(t));
}

void SnapshotTarget::Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
                         std::vector<MappedPiece>* out) const {
  if (op == block::IoOp::kFlush) {
    for (const DeviceRef* d : {&origin_, &cow_}) {
      out->push_back({.len_bytes = 0, .kind = PieceKind::kDevice, .dev = d->get()});
    }
    return;
  }
  // One piece per chunk: each is served by the chunk's exception or the origin.
  const uint64_t cb = core_->chunk_bytes();
  while (len_bytes > 0) {
    const uint64_t n = std::min(len_bytes, cb - offset_bytes % cb);
    out->push_back({.volume_offset_bytes = offset_bytes,
                    .len_bytes = n,
                    .kind = PieceKind::kDevice,
                    .dev = origin_.get(),
                    .dev_offset_bytes = offset_bytes});
    offset_bytes += n;
    len_bytes -= n;
  }
}

void SnapshotTarget::SubmitPiece(PieceIo& io) {
  if (io.child.op == block::IoOp::kFlush) return Target::SubmitPiece(io);
  io::Reactor* back = io::Reactor::Current();
  core_->home()->Post([c = core_, &io, back] { c->Submit(io, back); });
}

std::string SnapshotTarget::TableArgs() const {
  return origin_name_ + " " + cow_name_ + " " + (core_->params().persistent ? "P" : "N") + " " +
         std::to_string(core_->params().chunk_sectors);
}

void SnapshotTarget::ForEachUnderlying(
    const std::function<void(block::BlockDevice&, uint64_t)>& fn) const {
  fn(*origin_.get(), 0);
  fn(*cow_.get(), 0);
}

void SnapshotTarget::Prepare(PrepareDone done) {
  auto d = std::make_shared<PrepareDone>(std::move(done));
  core_->Prepare([c = core_, merge = merge_, d](ferry::Status st) {
    if (st.ok() && merge) c->StartMerge();
    (*d)(std::move(st));
  });
}

void SnapshotTarget::Presuspend() {
  if (merge_) core_->PauseMerge(true);
}

void SnapshotTarget::Resume() {
  if (merge_) core_->PauseMerge(false);
}

// ---- snapshot-origin ----

Result<std::unique_ptr<Target>> OriginTarget::Create(const TargetArgs& a) {
  if (a.args.size() != 1) {
    return InvalidArgument("expected <origin>, got " + std::to_string(a.args.size()) +
                           " arguments");
  }
  auto dev = ResolveDevice(a, a.args[0], 0, a.num_sectors);
  if (!dev.ok()) return dev.status().WithContext("origin");
  std::unique_ptr<OriginTarget> t(new OriginTarget(a.num_sectors, std::move(dev).value()));
  t->name_ = a.args[0];
  return std::unique_ptr<Target>(std::move(t));
}

void OriginTarget::Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
                       std::vector<MappedPiece>* out) const {
  if (op == block::IoOp::kFlush) offset_bytes = len_bytes = 0;
  out->push_back({.volume_offset_bytes = offset_bytes,
                  .len_bytes = len_bytes,
                  .kind = PieceKind::kDevice,
                  .dev = dev_.get(),
                  .dev_offset_bytes = offset_bytes});
}

void OriginTarget::SubmitPiece(PieceIo& io) {
  const block::IoOp op = io.child.op;
  if (op == block::IoOp::kRead || op == block::IoOp::kFlush) return Target::SubmitPiece(io);
  auto cores = SnapshotCore::ForOrigin(dev_.get());
  if (cores.empty()) return Target::SubmitPiece(io);
  // Every snapshot saves the chunks first; only then may the origin change.
  SnapshotCore::SaveInAll(std::move(cores), io.piece.dev_offset_bytes, io.piece.len_bytes,
                          io::Reactor::Current(), [this, &io] { Target::SubmitPiece(io); });
}

}  // namespace ferry::volume::snapshot
