#include "volume/thin/testing/crash_device.h"

#include <algorithm>
#include <cstring>

#include "io/reactor.h"

namespace ferry::volume::thin::testing {

using block::IoOp;
using block::IoRequest;

Result<std::shared_ptr<CrashDevice>> CrashDevice::Create(Options options) {
  const uint32_t bs = options.block_size;
  if (bs < 512 || bs > 65536 || (bs & (bs - 1)) != 0) {
    return InvalidArgument("crash device: block size " + std::to_string(bs) +
                           " is not a power of two in 512..65536");
  }
  if (options.size_bytes == 0 || options.size_bytes % bs != 0) {
    return InvalidArgument("crash device: size " + std::to_string(options.size_bytes) +
                           " is not a positive multiple of the block size");
  }
  return std::shared_ptr<CrashDevice>(new CrashDevice(std::move(options)));
}

Result<std::shared_ptr<CrashDevice>> CrashDevice::FromImage(Options options,
                                                            std::span<const uint8_t> image) {
  if (image.size() > options.size_bytes) {
    return InvalidArgument("crash device: image larger than the device");
  }
  FERRY_ASSIGN_OR_RETURN(auto dev, Create(std::move(options)));
  const uint32_t bs = dev->geometry_.block_size;
  for (size_t off = 0; off < image.size(); off += bs) {
    Bytes block(bs, 0);
    std::memcpy(block.data(), image.data() + off, std::min<size_t>(bs, image.size() - off));
    dev->now_.durable[off / bs] = std::move(block);
  }
  return dev;
}

CrashDevice::CrashDevice(Options options) : name_(std::move(options.name)) {
  geometry_.block_size = options.block_size;
  geometry_.num_blocks = BlockCount(options.size_bytes / options.block_size);
  limits_.max_io_bytes = 8u << 20;
  limits_.max_discard_bytes = 8u << 20;
  limits_.max_write_zeroes_bytes = 8u << 20;
  limits_.discard_zeroes_data = true;
}

void CrashDevice::Submit(IoRequest& req) {
  IoStatus st = block::ValidateRequest(*this, req);
  if (st == IoStatus::kOk) {
    if (req.op == IoOp::kRead) {
      st = Read(req);
    } else {
      Event e;
      if (req.op == IoOp::kFlush) {
        e.flush = true;
        ++flushes_;
      } else {
        e = GatherWrite(req);
        ++writes_;
      }
      Apply(now_, e, geometry_.block_size);
      if (marked_) journal_.push_back(std::move(e));
    }
  }
  io::Reactor::Current()->Post([&req, st] { req.done(st); });
}

IoStatus CrashDevice::Read(const IoRequest& req) const {
  const uint32_t bs = geometry_.block_size;
  uint64_t lba = req.lba.value();
  for (uint32_t i = 0; i < req.iovcnt; ++i) {
    auto* out = static_cast<uint8_t*>(req.iov[i].iov_base);
    for (size_t off = 0; off < req.iov[i].iov_len; off += bs, ++lba) {
      const Bytes* src = nullptr;
      if (auto p = now_.pending.find(lba); p != now_.pending.end()) {
        src = &p->second.back();
      } else if (auto d = now_.durable.find(lba); d != now_.durable.end()) {
        src = &d->second;
      }
      if (src != nullptr) {
        std::memcpy(out + off, src->data(), bs);
      } else {
        std::memset(out + off, 0, bs);
      }
    }
  }
  return IoStatus::kOk;
}

CrashDevice::Event CrashDevice::GatherWrite(const IoRequest& req) const {
  Event e;
  e.lba = req.lba.value();
  e.fua = (req.flags & block::kIoFua) != 0;
  e.data.resize(req.blocks.bytes(geometry_.block_size), 0);
  if (req.op == IoOp::kWrite) {
    size_t off = 0;
    for (uint32_t i = 0; i < req.iovcnt; ++i) {
      std::memcpy(e.data.data() + off, req.iov[i].iov_base, req.iov[i].iov_len);
      off += req.iov[i].iov_len;
    }
  }
  return e;
}

void CrashDevice::Apply(Contents& c, const Event& e, uint32_t block_size) {
  if (e.flush) {
    for (auto& [lba, versions] : c.pending) c.durable[lba] = std::move(versions.back());
    c.pending.clear();
    return;
  }
  const uint64_t blocks = e.data.size() / block_size;
  for (uint64_t i = 0; i < blocks; ++i) {
    Bytes block(e.data.begin() + i * block_size, e.data.begin() + (i + 1) * block_size);
    if (e.fua) {
      c.pending.erase(e.lba + i);
      c.durable[e.lba + i] = std::move(block);
    } else {
      c.pending[e.lba + i].push_back(std::move(block));
    }
  }
}

void CrashDevice::Mark() {
  marked_ = true;
  at_mark_ = now_;
  journal_.clear();
}

std::shared_ptr<CrashDevice> CrashDevice::CrashAfter(uint64_t n, std::mt19937_64* rng) const {
  Contents c = marked_ ? at_mark_ : now_;
  if (marked_) {
    n = std::min<uint64_t>(n, journal_.size());
    for (uint64_t i = 0; i < n; ++i) Apply(c, journal_[i], geometry_.block_size);
  }
  return PowerCut(c, rng);
}

std::shared_ptr<CrashDevice> CrashDevice::Crash(std::mt19937_64* rng) const {
  return PowerCut(now_, rng);
}

std::shared_ptr<CrashDevice> CrashDevice::PowerCut(const Contents& c, std::mt19937_64* rng) const {
  std::shared_ptr<CrashDevice> dev(new CrashDevice(
      {.name = name_, .size_bytes = geometry_.size_bytes(), .block_size = geometry_.block_size}));
  dev->now_.durable = c.durable;
  if (rng != nullptr) {
    for (const auto& [lba, versions] : c.pending) {
      // 0: the durable version stays; k: the k-th version written since the flush.
      std::uniform_int_distribution<size_t> pick(0, versions.size());
      size_t k = pick(*rng);
      if (k > 0) dev->now_.durable[lba] = versions[k - 1];
    }
  }
  return dev;
}

std::vector<uint8_t> CrashDevice::DurableImage() const {
  const uint32_t bs = geometry_.block_size;
  if (now_.durable.empty()) return {};
  std::vector<uint8_t> out((now_.durable.rbegin()->first + 1) * bs, 0);
  for (const auto& [lba, block] : now_.durable) {
    std::memcpy(out.data() + lba * bs, block.data(), bs);
  }
  return out;
}

}  // namespace ferry::volume::thin::testing
