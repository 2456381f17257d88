#include "backends/ram/ram_device.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include "io/reactor.h"

namespace ferry::backends {

using block::IoOp;
using block::IoRequest;

bool RamArena::Charge(uint64_t bytes) {
  uint64_t cur = allocated_.load(std::memory_order_relaxed);
  do {
    if (max_bytes_ != 0 && cur + bytes > max_bytes_) return false;
  } while (!allocated_.compare_exchange_weak(cur, cur + bytes, std::memory_order_relaxed));
  return true;
}

Result<std::shared_ptr<RamDevice>> RamDevice::Create(RamOptions options) {
  if (options.name.empty()) return InvalidArgument("ram device needs a name");
  uint32_t bs = options.block_size;
  if (bs < 512 || bs > 65536 || (bs & (bs - 1)) != 0) {
    return InvalidArgument("ram device '" + options.name + "': block size " + std::to_string(bs) +
                           " is not a power of two in 512..65536");
  }
  if (options.size_bytes == 0 || options.size_bytes % bs != 0) {
    return InvalidArgument("ram device '" + options.name + "': size " +
                           std::to_string(options.size_bytes) +
                           " must be a positive multiple of the block size " + std::to_string(bs));
  }
  if (!options.arena) options.arena = std::make_shared<RamArena>();
  return std::shared_ptr<RamDevice>(new RamDevice(std::move(options)));
}

RamDevice::RamDevice(RamOptions options)
    : name_(std::move(options.name)),
      read_only_(options.read_only),
      arena_(std::move(options.arena)) {
  geometry_.block_size = options.block_size;
  geometry_.num_blocks = BlockCount(options.size_bytes / options.block_size);
  limits_.max_io_bytes = 8u << 20;
  limits_.buffer_alignment = 1;
  limits_.max_discard_bytes = UINT64_MAX;
  limits_.max_write_zeroes_bytes = UINT64_MAX;
  limits_.discard_zeroes_data = true;
  limits_.discard_granularity_bytes = kChunkBytes;
  limits_.max_copy_bytes = 1ull << 32;
  limits_.max_copy_segments = 256;
  limits_.copy_granularity_bytes = options.block_size;
}

block::ProvisioningExtent RamDevice::Provisioning(Lba lba, BlockCount max) const {
  const uint64_t bs = geometry_.block_size;
  const uint64_t end = std::min(lba.value() + max.value(), geometry_.num_blocks.value()) * bs;
  uint64_t off = lba.value() * bs;
  std::shared_lock lock(mu_);
  const bool mapped = FindChunk(off / kChunkBytes) != nullptr;
  while (off < end && (FindChunk(off / kChunkBytes) != nullptr) == mapped) {
    off = (off / kChunkBytes + 1) * kChunkBytes;
  }
  return {mapped, BlockCount((std::min(off, end) - lba.value() * bs) / bs)};
}

uint64_t RamDevice::allocated_bytes() const {
  std::shared_lock lock(mu_);
  return chunks_.size() * kChunkBytes;
}

void RamDevice::Complete(block::IoCallback& done, IoStatus st) {
  io::Reactor::Current()->Post([&done, st] { done(st); });
}

std::byte* RamDevice::FindChunk(uint64_t index) const {
  auto it = chunks_.find(index);
  return it == chunks_.end() ? nullptr : it->second.get();
}

std::byte* RamDevice::GetOrAllocChunk(uint64_t index, IoStatus* st) {
  if (std::byte* p = FindChunk(index)) return p;
  if (!arena_->Charge(kChunkBytes)) {
    *st = IoStatus::kNoSpace;
    return nullptr;
  }
  Chunk c(new (std::nothrow) std::byte[kChunkBytes]);
  if (!c) {
    arena_->Uncharge(kChunkBytes);
    *st = IoStatus::kNoResources;
    return nullptr;
  }
  std::memset(c.get(), 0, kChunkBytes);
  std::byte* p = c.get();
  chunks_.emplace(index, std::move(c));
  return p;
}

void RamDevice::Submit(IoRequest& req) {
  IoStatus st = block::ValidateRequest(*this, req);
  if (st == IoStatus::kOk) {
    switch (req.op) {
      case IoOp::kRead: st = Read(req); break;
      case IoOp::kWrite: st = Write(req); break;
      case IoOp::kFlush: break;  // memory is as durable as it gets
      case IoOp::kDiscard:
      case IoOp::kWriteZeroes: {
        std::unique_lock lock(mu_);
        st = Zero(req.lba.bytes(geometry_.block_size), req.blocks.bytes(geometry_.block_size));
        break;
      }
      case IoOp::kWriteSame:
      case IoOp::kCompareAndWrite: st = IoStatus::kNotSupported; break;  // limits say none
    }
  }
  Complete(req.done, st);
}

IoStatus RamDevice::Read(const IoRequest& req) {
  std::shared_lock lock(mu_);
  uint64_t off = req.lba.bytes(geometry_.block_size);
  for (uint32_t i = 0; i < req.iovcnt; ++i) {
    auto* out = static_cast<std::byte*>(req.iov[i].iov_base);
    uint64_t left = req.iov[i].iov_len;
    while (left > 0) {
      uint64_t in_chunk = off % kChunkBytes;
      uint64_t n = std::min(left, kChunkBytes - in_chunk);
      if (const std::byte* c = FindChunk(off / kChunkBytes)) {
        std::memcpy(out, c + in_chunk, n);
      } else {
        std::memset(out, 0, n);
      }
      out += n;
      off += n;
      left -= n;
    }
  }
  return IoStatus::kOk;
}

IoStatus RamDevice::Write(const IoRequest& req) {
  std::unique_lock lock(mu_);
  uint64_t off = req.lba.bytes(geometry_.block_size);
  for (uint32_t i = 0; i < req.iovcnt; ++i) {
    const auto* in = static_cast<const std::byte*>(req.iov[i].iov_base);
    uint64_t left = req.iov[i].iov_len;
    while (left > 0) {
      uint64_t in_chunk = off % kChunkBytes;
      uint64_t n = std::min(left, kChunkBytes - in_chunk);
      IoStatus st = IoStatus::kOk;
      std::byte* c = GetOrAllocChunk(off / kChunkBytes, &st);
      if (c == nullptr) return st;
      std::memcpy(c + in_chunk, in, n);
      in += n;
      off += n;
      left -= n;
    }
  }
  return IoStatus::kOk;
}

IoStatus RamDevice::Zero(uint64_t off, uint64_t len) {
  while (len > 0) {
    uint64_t index = off / kChunkBytes;
    uint64_t in_chunk = off % kChunkBytes;
    uint64_t n = std::min(len, kChunkBytes - in_chunk);
    auto it = chunks_.find(index);
    if (it != chunks_.end()) {
      if (n == kChunkBytes) {
        chunks_.erase(it);
        arena_->Uncharge(kChunkBytes);
      } else {
        std::memset(it->second.get() + in_chunk, 0, n);
      }
    }
    off += n;
    len -= n;
  }
  return IoStatus::kOk;
}

bool RamDevice::CanCopyFrom(const block::BlockDevice& src, std::string* why_not) const {
  const auto* ram = dynamic_cast<const RamDevice*>(&src);
  if (ram == nullptr) {
    if (why_not) *why_not = "source '" + std::string(src.name()) + "' is not a RAM device";
    return false;
  }
  if (ram->arena_ != arena_) {
    if (why_not)
      *why_not = "RAM devices '" + ram->name_ + "' and '" + name_ + "' live in different arenas";
    return false;
  }
  return true;
}

IoStatus RamDevice::CopyLocked(RamDevice& src, uint64_t src_off, uint64_t dst_off, uint64_t len) {
  // Walk pieces that stay inside one chunk on both sides; go backwards when the
  // destination lies above an overlapping source on the same device (memmove).
  const bool backward = (&src == this) && dst_off > src_off && dst_off < src_off + len;
  uint64_t done = 0;
  while (done < len) {
    uint64_t left = len - done;
    uint64_t s = backward ? src_off + left : src_off + done;  // backward: piece end
    uint64_t d = backward ? dst_off + left : dst_off + done;
    uint64_t room_s = backward ? ((s - 1) % kChunkBytes) + 1 : kChunkBytes - s % kChunkBytes;
    uint64_t room_d = backward ? ((d - 1) % kChunkBytes) + 1 : kChunkBytes - d % kChunkBytes;
    uint64_t n = std::min({left, room_s, room_d});
    if (backward) {
      s -= n;
      d -= n;
    }
    const std::byte* sc = src.FindChunk(s / kChunkBytes);
    if (sc == nullptr) {
      std::byte* dc = FindChunk(d / kChunkBytes);
      if (dc != nullptr) std::memset(dc + d % kChunkBytes, 0, n);
    } else {
      IoStatus st = IoStatus::kOk;
      std::byte* dc = GetOrAllocChunk(d / kChunkBytes, &st);
      if (dc == nullptr) return st;
      std::memmove(dc + d % kChunkBytes, sc + s % kChunkBytes, n);
    }
    done += n;
  }
  return IoStatus::kOk;
}

void RamDevice::SubmitCopy(block::CopyLegRequest& req) {
  auto* src = dynamic_cast<RamDevice*>(req.src);
  IoStatus st = IoStatus::kOk;
  if (src == nullptr || src->arena_ != arena_) {
    st = IoStatus::kNotSupported;
  } else if (read_only_) {
    st = IoStatus::kReadOnly;
  } else if (req.segments.empty() || req.segments.size() > limits_.max_copy_segments) {
    st = IoStatus::kInvalid;
  }
  uint64_t total = 0;
  for (const auto& seg : req.segments) {
    if (st != IoStatus::kOk) break;
    total += seg.len_bytes;
    uint32_t g = std::max(geometry_.block_size, src->geometry_.block_size);
    if (seg.len_bytes == 0 || seg.src_offset_bytes % g || seg.dst_offset_bytes % g ||
        seg.len_bytes % g || seg.src_offset_bytes > src->geometry_.size_bytes() ||
        seg.len_bytes > src->geometry_.size_bytes() - seg.src_offset_bytes ||
        seg.dst_offset_bytes > geometry_.size_bytes() ||
        seg.len_bytes > geometry_.size_bytes() - seg.dst_offset_bytes ||
        total > limits_.max_copy_bytes) {
      st = IoStatus::kInvalid;
    }
  }
  if (st == IoStatus::kOk) {
    // Lock both devices in address order; one lock when copying inside a device.
    std::unique_lock<std::shared_mutex> first, second;
    if (src == this) {
      first = std::unique_lock(mu_);
    } else {
      RamDevice* a = std::less<RamDevice*>()(src, this) ? src : this;
      RamDevice* b = a == src ? this : src;
      first = std::unique_lock(a->mu_);
      second = std::unique_lock(b->mu_);
    }
    for (const auto& seg : req.segments) {
      st = CopyLocked(*src, seg.src_offset_bytes, seg.dst_offset_bytes, seg.len_bytes);
      if (st != IoStatus::kOk) break;
    }
  }
  if (st == IoStatus::kOk) req.mechanism = block::CopyMechanism::kRamNative;
  Complete(req.done, st);
}

}  // namespace ferry::backends
