#include "backends/faulty/faulty_device.h"

#include <algorithm>
#include <atomic>

#include "io/reactor.h"

namespace ferry::backends {

using block::IoOp;

struct FaultyDevice::State {
  mutable std::mutex mu;
  std::vector<ErrorRange> errors;                   // guarded by mu
  std::vector<std::pair<Lba, BlockCount>> dropped;  // guarded by mu
  std::chrono::microseconds delay{0};               // guarded by mu
  std::optional<IoStatus> copy_status;              // guarded by mu
  // Indexed by IoOp; kCompareAndWrite is the last one.
  std::atomic<uint64_t> requests[static_cast<size_t>(IoOp::kCompareAndWrite) + 1] = {};
  std::atomic<uint64_t> copy_legs{0};

  // The status of the first error range that a request of `op` on [lba, lba+blocks)
  // touches, or kOk. Caller holds mu.
  IoStatus RangeFault(bool write, uint64_t lba, uint64_t blocks) const {
    for (const ErrorRange& r : errors) {
      if ((write ? r.on_write : r.on_read) && Overlaps(lba, blocks, r.lba, r.blocks)) {
        return r.status;
      }
    }
    return IoStatus::kOk;
  }

  static bool Overlaps(uint64_t lba, uint64_t blocks, Lba r_lba, BlockCount r_blocks) {
    return lba < r_lba.value() + r_blocks.value() && r_lba.value() < lba + blocks;
  }
};

// A copy leg re-addressed to the inner device (its source unwrapped from a FaultyDevice).
// The caller's leg is left untouched except for `mechanism`.
struct FaultyDevice::CopyForward {
  block::CopyLegRequest leg;
  block::CopyLegRequest* outer = nullptr;
};

FaultyDevice::FaultyDevice(std::shared_ptr<block::BlockDevice> inner, std::string name)
    : inner_(std::move(inner)),
      geometry_(inner_->geometry()),
      name_(std::move(name)),
      state_(std::make_shared<State>()) {
  if (name_.empty()) name_ = std::string(inner_->name()) + "-faulty";
}

void FaultyDevice::SetCapacity(BlockCount blocks) {
  std::lock_guard lock(state_->mu);
  geometry_.num_blocks = std::min(blocks, inner_->geometry().num_blocks);
}

FaultyDevice::~FaultyDevice() = default;

void FaultyDevice::AddErrorRange(ErrorRange r) {
  std::lock_guard lock(state_->mu);
  state_->errors.push_back(r);
}

void FaultyDevice::AddDroppedWrites(Lba lba, BlockCount blocks) {
  std::lock_guard lock(state_->mu);
  state_->dropped.emplace_back(lba, blocks);
}

void FaultyDevice::SetDelay(std::chrono::microseconds delay) {
  std::lock_guard lock(state_->mu);
  state_->delay = delay;
}

void FaultyDevice::SetCopyStatus(std::optional<IoStatus> status) {
  std::lock_guard lock(state_->mu);
  state_->copy_status = status;
}

void FaultyDevice::ClearFaults() {
  std::lock_guard lock(state_->mu);
  state_->errors.clear();
  state_->dropped.clear();
  state_->delay = std::chrono::microseconds(0);
  state_->copy_status.reset();
}

uint64_t FaultyDevice::requests(IoOp op) const {
  return state_->requests[static_cast<size_t>(op)].load(std::memory_order_relaxed);
}

uint64_t FaultyDevice::copy_legs() const {
  return state_->copy_legs.load(std::memory_order_relaxed);
}

void FaultyDevice::CompleteLater(block::IoCallback& done, IoStatus st,
                                 std::chrono::microseconds delay) {
  io::Reactor* r = io::Reactor::Current();
  if (delay.count() > 0) {
    r->RunAfter(delay, [&done, st] { done(st); });
  } else {
    r->Post([&done, st] { done(st); });
  }
}

void FaultyDevice::Submit(block::IoRequest& req) {
  state_->requests[static_cast<size_t>(req.op)].fetch_add(1, std::memory_order_relaxed);
  IoStatus st = block::ValidateRequest(*this, req);
  bool drop = false;
  std::chrono::microseconds delay;
  {
    std::lock_guard lock(state_->mu);
    delay = state_->delay;
    if (st == IoStatus::kOk && req.op != IoOp::kFlush) {
      const bool write = req.op != IoOp::kRead;
      st = state_->RangeFault(write, req.lba.value(), req.blocks.value());
      for (const auto& [lba, blocks] : state_->dropped) {
        drop = drop || (write && State::Overlaps(req.lba.value(), req.blocks.value(), lba, blocks));
      }
    }
  }
  if (st != IoStatus::kOk || drop) {
    CompleteLater(req.done, st, delay);
  } else if (delay.count() > 0) {
    io::Reactor::Current()->RunAfter(delay, [this, &req] { inner_->Submit(req); });
  } else {
    inner_->Submit(req);
  }
}

block::CopyOffload* FaultyDevice::copy_offload() {
  {
    std::lock_guard lock(state_->mu);
    if (state_->copy_status.has_value()) return this;
  }
  return inner_->copy_offload() != nullptr ? this : nullptr;
}

namespace {
const block::BlockDevice& Unwrap(const block::BlockDevice& dev) {
  const auto* f = dynamic_cast<const FaultyDevice*>(&dev);
  return f != nullptr ? f->inner() : dev;
}
}  // namespace

bool FaultyDevice::CanCopyFrom(const block::BlockDevice& src, std::string* why_not) const {
  {
    std::lock_guard lock(state_->mu);
    if (state_->copy_status.has_value()) return true;
  }
  // copy_offload() is not const; the inner device's capability does not change with it.
  auto* offload = const_cast<block::BlockDevice&>(*inner_).copy_offload();
  if (offload == nullptr) {
    if (why_not) *why_not = "device '" + std::string(inner_->name()) + "' cannot copy natively";
    return false;
  }
  return offload->CanCopyFrom(Unwrap(src), why_not);
}

// Error ranges apply to copy legs too: writes into this device, reads from a faulty source.
IoStatus FaultyDevice::CopyRangeFault(const block::CopyLegRequest& req) const {
  auto blocks_of = [](const block::BlockDevice& d, uint64_t off, uint64_t len, uint64_t* lba) {
    uint32_t bs = d.geometry().block_size;
    *lba = off / bs;
    return (off + len + bs - 1) / bs - *lba;
  };
  {
    std::lock_guard lock(state_->mu);
    for (const auto& seg : req.segments) {
      uint64_t lba;
      uint64_t n = blocks_of(*this, seg.dst_offset_bytes, seg.len_bytes, &lba);
      IoStatus st = state_->RangeFault(/*write=*/true, lba, n);
      if (st != IoStatus::kOk) return st;
    }
  }
  const auto* src = dynamic_cast<const FaultyDevice*>(req.src);
  if (src == nullptr) return IoStatus::kOk;
  std::lock_guard lock(src->state_->mu);
  for (const auto& seg : req.segments) {
    uint64_t lba;
    uint64_t n = blocks_of(*src, seg.src_offset_bytes, seg.len_bytes, &lba);
    IoStatus st = src->state_->RangeFault(/*write=*/false, lba, n);
    if (st != IoStatus::kOk) return st;
  }
  return IoStatus::kOk;
}

void FaultyDevice::SubmitCopy(block::CopyLegRequest& req) {
  state_->copy_legs.fetch_add(1, std::memory_order_relaxed);
  std::chrono::microseconds delay;
  IoStatus st;
  {
    std::lock_guard lock(state_->mu);
    delay = state_->delay;
    st = state_->copy_status.value_or(IoStatus::kOk);
  }
  if (st == IoStatus::kOk && req.src != nullptr) st = CopyRangeFault(req);
  if (st != IoStatus::kOk) {
    CompleteLater(req.done, st, delay);
  } else if (delay.count() > 0) {
    io::Reactor::Current()->RunAfter(delay, [this, &req] { ForwardCopy(req); });
  } else {
    ForwardCopy(req);
  }
}

void FaultyDevice::ForwardCopy(block::CopyLegRequest& req) {
  block::CopyOffload* offload = inner_->copy_offload();
  if (offload == nullptr) {  // the copy status was cleared after the leg was accepted
    CompleteLater(req.done, IoStatus::kNotSupported, std::chrono::microseconds(0));
    return;
  }
  auto* src = dynamic_cast<FaultyDevice*>(req.src);
  if (src == nullptr) {
    offload->SubmitCopy(req);
    return;
  }
  // A test device: one allocation per unwrapped leg is fine here.
  auto* fwd = new CopyForward;
  fwd->outer = &req;
  fwd->leg.src = &src->inner();
  fwd->leg.segments = req.segments;
  fwd->leg.done = [fwd](IoStatus s) {
    block::CopyLegRequest* outer = fwd->outer;
    outer->mechanism = fwd->leg.mechanism;
    delete fwd;  // nothing below touches the lambda's captures
    outer->done(s);
  };
  offload->SubmitCopy(fwd->leg);
}

}  // namespace ferry::backends
