#include "volume/delay_target.h"

#include <algorithm>

#include "io/reactor.h"

namespace ferry::volume {

Result<std::unique_ptr<Target>> DelayTarget::Create(const TargetArgs& a) {
  const size_t n = a.args.size();
  if (n != 3 && n != 6 && n != 9) {
    return InvalidArgument(
        "expected 3, 6 or 9 arguments (<dev> <offset> <delay_ms>, then "
        "optionally the same for writes and then for flushes), got " +
        std::to_string(n));
  }
  static constexpr const char* kClass[] = {"read", "write", "flush"};
  std::unique_ptr<DelayTarget> t(new DelayTarget(a.num_sectors));
  for (size_t c = 0; c < n / 3; ++c) {
    const std::string what = kClass[c];
    const std::string& name = a.args[3 * c];
    FERRY_ASSIGN_OR_RETURN(uint64_t offset, ParseNumber(a.args[3 * c + 1], what + " offset"));
    FERRY_ASSIGN_OR_RETURN(uint64_t ms,
                           ParseNumber(a.args[3 * c + 2], what + " delay (ms)", UINT32_MAX));
    auto dev = ResolveDevice(a, name, offset, a.num_sectors);
    if (!dev.ok()) return dev.status().WithContext(what + " device");
    t->classes_.push_back(std::make_unique<Class>(std::move(dev).value(), name, offset, ms));
  }
  return std::unique_ptr<Target>(std::move(t));
}

size_t DelayTarget::Kind(block::IoOp op) {
  if (op == block::IoOp::kFlush) return 2;
  return op == block::IoOp::kRead ? 0 : 1;
}

const DelayTarget::Class& DelayTarget::ClassFor(block::IoOp op) const {
  // With 3 arguments writes and flushes use the read triple; with 6 flushes use the write
  // triple.
  return *classes_[std::min(Kind(op), classes_.size() - 1)];
}

void DelayTarget::Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
                      std::vector<MappedPiece>* out) const {
  if (op == block::IoOp::kFlush) offset_bytes = len_bytes = 0;
  const Class& c = ClassFor(op);
  out->push_back({.volume_offset_bytes = offset_bytes,
                  .len_bytes = len_bytes,
                  .kind = PieceKind::kDevice,
                  .dev = c.dev.get(),
                  .dev_offset_bytes = c.offset_sectors * kSectorBytes + offset_bytes});
}

void DelayTarget::SubmitPiece(PieceIo& io) {
  Class& c = ClassFor(io.child.op);
  if (c.delay_ms == 0) {
    Target::SubmitPiece(io);
    return;
  }
  std::atomic<uint64_t>& waiting = waiting_[Kind(io.child.op)];
  waiting.fetch_add(1, std::memory_order_relaxed);
  io::Reactor::Current()->RunAfter(std::chrono::milliseconds(c.delay_ms), [this, &waiting, &io] {
    waiting.fetch_sub(1, std::memory_order_relaxed);
    Target::SubmitPiece(io);
  });
}

std::string DelayTarget::TableArgs() const {
  std::string s;
  for (const auto& c : classes_) {
    if (!s.empty()) s += " ";
    s += c->name + " " + std::to_string(c->offset_sectors) + " " + std::to_string(c->delay_ms);
  }
  return s;
}

std::string DelayTarget::Status() const {
  return std::to_string(waiting_[0].load(std::memory_order_relaxed)) + " " +
         std::to_string(waiting_[1].load(std::memory_order_relaxed)) + " " +
         std::to_string(waiting_[2].load(std::memory_order_relaxed));
}

void DelayTarget::ForEachUnderlying(
    const std::function<void(block::BlockDevice&, uint64_t)>& fn) const {
  for (const auto& c : classes_) fn(*c->dev.get(), c->offset_sectors);
}

}  // namespace ferry::volume
