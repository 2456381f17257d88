#include "volume/thin/meta_io.h"

#include <memory>

#include "volume/thin/format.h"

namespace ferry::volume::thin {
namespace {

struct Op {
  block::IoRequest req;
  iovec iov{};
  MetaIo::Done done;
};

// Counts down the writes of one WriteAll.
struct Batch {
  size_t left = 0;
  IoStatus first_error = IoStatus::kOk;
  MetaIo::Done done;

  void OneDone(IoStatus st) {
    if (st != IoStatus::kOk && first_error == IoStatus::kOk) first_error = st;
    if (--left == 0) {
      MetaIo::Done d = std::move(done);
      IoStatus result = first_error;
      delete this;
      d(result);
    }
  }
};

}  // namespace

Status MetaIo::CheckDevice(const block::BlockDevice& dev) {
  const uint32_t bs = dev.geometry().block_size;
  if (bs == 0 || bs > format::kBlockBytes || format::kBlockBytes % bs != 0) {
    return InvalidArgument("thin metadata device '" + std::string(dev.name()) + "': block size " +
                           std::to_string(bs) + " does not divide 4096");
  }
  if (dev.limits().max_io_bytes < 2 * format::kBlockBytes) {
    return InvalidArgument("thin metadata device '" + std::string(dev.name()) +
                           "': requests of 8 KiB are refused");
  }
  if (BlocksOn(dev) < format::kMinMetaBlocks) {
    return InvalidArgument("thin metadata device '" + std::string(dev.name()) +
                           "' is smaller than " +
                           std::to_string(format::kMinMetaBlocks * format::kBlockBytes) + " bytes");
  }
  return Status::Ok();
}

uint64_t MetaIo::BlocksOn(const block::BlockDevice& dev) {
  return dev.geometry().size_bytes() / format::kBlockBytes;
}

void MetaIo::Submit(block::IoOp op, uint64_t first, uint32_t count, uint8_t* buf, Done done) {
  const uint64_t per_block = format::kBlockBytes / dev_.geometry().block_size;
  auto* o = new Op;
  o->done = std::move(done);
  o->req.op = op;
  if (op != block::IoOp::kFlush) {
    o->iov = {buf, static_cast<size_t>(count) * format::kBlockBytes};
    o->req.lba = Lba(first * per_block);
    o->req.blocks = BlockCount(count * per_block);
    o->req.iov = &o->iov;
    o->req.iovcnt = 1;
  }
  o->req.done = [o](IoStatus st) {
    Done d = std::move(o->done);
    delete o;
    d(st);
  };
  dev_.Submit(o->req);
}

void MetaIo::Read(uint64_t first, uint32_t count, uint8_t* buf, Done done) {
  Submit(block::IoOp::kRead, first, count, buf, std::move(done));
}

void MetaIo::WriteAll(std::vector<std::pair<uint64_t, const uint8_t*>> writes, Done done) {
  if (writes.empty()) {
    // Nothing to write: still complete through the device, never inline.
    Flush(std::move(done));
    return;
  }
  auto* batch = new Batch;
  batch->left = writes.size();
  batch->done = std::move(done);
  for (const auto& [block, buf] : writes) {
    // The device only reads a write's payload.
    Submit(block::IoOp::kWrite, block, 1, const_cast<uint8_t*>(buf),
           [batch](IoStatus st) { batch->OneDone(st); });
  }
}

void MetaIo::Flush(Done done) { Submit(block::IoOp::kFlush, 0, 0, nullptr, std::move(done)); }

}  // namespace ferry::volume::thin
