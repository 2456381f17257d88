#include "volume/basic_targets.h"

#include <algorithm>

namespace ferry::volume {

namespace {

Status ArgCount(const TargetArgs& a, size_t want, std::string_view syntax) {
  if (a.args.size() == want) return Status::Ok();
  return InvalidArgument("expected " + std::to_string(want) + " argument" + (want == 1 ? "" : "s") +
                         " (" + std::string(syntax) + "), got " + std::to_string(a.args.size()));
}

}  // namespace

// ---- linear ----

Result<std::unique_ptr<Target>> LinearTarget::Create(const TargetArgs& a) {
  FERRY_RETURN_IF_ERROR(ArgCount(a, 2, "<dev> <offset>"));
  FERRY_ASSIGN_OR_RETURN(uint64_t offset, ParseNumber(a.args[1], "offset"));
  FERRY_ASSIGN_OR_RETURN(auto dev, ResolveDevice(a, a.args[0], offset, a.num_sectors));
  return std::unique_ptr<Target>(
      new LinearTarget(a.num_sectors, std::move(dev), a.args[0], offset));
}

void LinearTarget::Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
                       std::vector<MappedPiece>* out) const {
  if (op == block::IoOp::kFlush) offset_bytes = len_bytes = 0;
  out->push_back({.volume_offset_bytes = offset_bytes,
                  .len_bytes = len_bytes,
                  .kind = PieceKind::kDevice,
                  .dev = dev_.get(),
                  .dev_offset_bytes = offset_sectors_ * kSectorBytes + offset_bytes});
}

std::string LinearTarget::TableArgs() const {
  return name_ + " " + std::to_string(offset_sectors_);
}

// ---- striped ----

Result<std::unique_ptr<Target>> StripedTarget::Create(const TargetArgs& a) {
  if (a.args.size() < 2) {
    return InvalidArgument(
        "expected <#stripes> <chunk_sectors> followed by <dev> <offset> per "
        "stripe, got " +
        std::to_string(a.args.size()) + " arguments");
  }
  FERRY_ASSIGN_OR_RETURN(uint64_t n, ParseNumber(a.args[0], "number of stripes"));
  if (n == 0) return InvalidArgument("number of stripes must be at least 1");
  if ((a.args.size() - 2) % 2 != 0 || (a.args.size() - 2) / 2 != n) {
    return InvalidArgument("expected 2 + 2 x " + std::to_string(n) +
                           " arguments (<#stripes> <chunk_sectors> then <dev> <offset> per "
                           "stripe), got " +
                           std::to_string(a.args.size()));
  }
  FERRY_ASSIGN_OR_RETURN(uint64_t chunk, ParseNumber(a.args[1], "chunk size"));
  if (chunk < 8 || (chunk & (chunk - 1)) != 0) {
    return InvalidArgument("chunk size " + std::to_string(chunk) +
                           " is not a power of two >= 8 sectors");
  }
  // dm-stripe: the length divides by the number of stripes and each stripe's share by the
  // chunk size, i.e. the length is a multiple of chunk x stripes.
  if (a.num_sectors % n != 0 || (a.num_sectors / n) % chunk != 0) {
    return InvalidArgument("length " + std::to_string(a.num_sectors) +
                           " sectors is not a multiple of chunk size x stripes (" +
                           std::to_string(chunk) + " x " + std::to_string(n) + ")");
  }
  const uint64_t per_stripe = a.num_sectors / n;
  std::unique_ptr<StripedTarget> t(new StripedTarget(a.num_sectors, chunk));
  for (uint64_t i = 0; i < n; ++i) {
    const std::string& name = a.args[2 + 2 * i];
    const std::string what = "stripe " + std::to_string(i) + " offset";
    FERRY_ASSIGN_OR_RETURN(uint64_t offset, ParseNumber(a.args[3 + 2 * i], what));
    auto dev = ResolveDevice(a, name, offset, per_stripe);
    if (!dev.ok()) return dev.status().WithContext("stripe " + std::to_string(i));
    auto s = std::make_unique<Stripe>(std::move(dev).value(), name, offset);
    t->stripes_.push_back(std::move(s));
  }
  return std::unique_ptr<Target>(std::move(t));
}

void StripedTarget::Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
                        std::vector<MappedPiece>* out) const {
  const uint32_t n = static_cast<uint32_t>(stripes_.size());
  if (op == block::IoOp::kFlush) {
    for (uint32_t i = 0; i < n; ++i) {
      out->push_back({.kind = PieceKind::kDevice, .dev = stripes_[i]->dev.get(), .stripe = i});
    }
    return;
  }
  const uint64_t chunk_bytes = chunk_sectors_ * kSectorBytes;
  while (len_bytes > 0) {
    const uint64_t chunk = offset_bytes / chunk_bytes;
    const uint64_t in_chunk = offset_bytes % chunk_bytes;
    const uint64_t len = std::min(len_bytes, chunk_bytes - in_chunk);
    const uint32_t stripe = static_cast<uint32_t>(chunk % n);
    const Stripe& s = *stripes_[stripe];
    out->push_back(
        {.volume_offset_bytes = offset_bytes,
         .len_bytes = len,
         .kind = PieceKind::kDevice,
         .dev = s.dev.get(),
         .dev_offset_bytes = s.offset_sectors * kSectorBytes + (chunk / n) * chunk_bytes + in_chunk,
         .stripe = stripe});
    offset_bytes += len;
    len_bytes -= len;
  }
}

IoStatus StripedTarget::EndIo(PieceIo& io, IoStatus st) {
  if (st != IoStatus::kOk && st != IoStatus::kNoResources && io.piece.stripe < stripes_.size()) {
    stripes_[io.piece.stripe]->errors.fetch_add(1, std::memory_order_relaxed);
  }
  return st;
}

std::string StripedTarget::TableArgs() const {
  std::string s = std::to_string(stripes_.size()) + " " + std::to_string(chunk_sectors_);
  for (const auto& st : stripes_) s += " " + st->name + " " + std::to_string(st->offset_sectors);
  return s;
}

std::string StripedTarget::Status() const {
  std::string s = std::to_string(stripes_.size());
  std::string alive;
  for (const auto& st : stripes_) {
    s += " " + st->name;
    alive += st->errors.load(std::memory_order_relaxed) > 0 ? 'D' : 'A';
  }
  return s + " 1 " + alive;
}

void StripedTarget::ForEachUnderlying(
    const std::function<void(block::BlockDevice&, uint64_t)>& fn) const {
  for (const auto& s : stripes_) fn(*s->dev.get(), s->offset_sectors);
}

std::string StripedTarget::CheckAlignment(uint64_t block_sectors) const {
  if (chunk_sectors_ % block_sectors == 0) return "";
  return "chunk size " + std::to_string(chunk_sectors_) +
         " sectors is not a multiple of the volume block size (" + std::to_string(block_sectors) +
         " sectors)";
}

// ---- zero and error ----

Result<std::unique_ptr<Target>> ZeroTarget::Create(const TargetArgs& a) {
  FERRY_RETURN_IF_ERROR(ArgCount(a, 0, "zero takes none"));
  return std::unique_ptr<Target>(new ZeroTarget(a.num_sectors));
}

void ZeroTarget::Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
                     std::vector<MappedPiece>* out) const {
  if (op == block::IoOp::kFlush) return;  // nothing to make durable
  out->push_back(
      {.volume_offset_bytes = offset_bytes, .len_bytes = len_bytes, .kind = PieceKind::kZero});
}

Result<std::unique_ptr<Target>> ErrorTarget::Create(const TargetArgs& a) {
  FERRY_RETURN_IF_ERROR(ArgCount(a, 0, "error takes none"));
  return std::unique_ptr<Target>(new ErrorTarget(a.num_sectors));
}

void ErrorTarget::Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
                      std::vector<MappedPiece>* out) const {
  if (op == block::IoOp::kFlush) return;  // dm-error is not sent flushes
  out->push_back(
      {.volume_offset_bytes = offset_bytes, .len_bytes = len_bytes, .kind = PieceKind::kError});
}

}  // namespace ferry::volume
