#include "volume/snapshot/dev_io.h"

#include "block/splitter.h"

namespace ferry::volume::snapshot {
namespace {
struct Op {
  block::IoRequest req;
  iovec one{};
  IoDone done;
};
}  // namespace

void SubmitDevIo(block::BlockDevice& dev, block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
                 const iovec* iov, uint32_t iovcnt, IoDone done) {
  auto* o = new Op;
  o->done = std::move(done);
  o->req.op = op;
  if (op != block::IoOp::kFlush) {
    const uint64_t bs = dev.geometry().block_size;
    o->req.lba = Lba(offset_bytes / bs);
    o->req.blocks = BlockCount(len_bytes / bs);
    o->req.iov = const_cast<iovec*>(iov);  // the device only reads a write's payload
    o->req.iovcnt = iovcnt;
  }
  o->req.done = [o](IoStatus st) {
    IoDone d = std::move(o->done);
    delete o;
    d(st);
  };
  block::SubmitSplit(dev, o->req);
}

void SubmitDevBuf(block::BlockDevice& dev, block::IoOp op, uint64_t offset_bytes,
                  uint64_t len_bytes, void* buf, IoDone done) {
  auto* o = new Op;
  o->done = std::move(done);
  o->one = {buf, len_bytes};
  o->req.op = op;
  const uint64_t bs = dev.geometry().block_size;
  o->req.lba = Lba(offset_bytes / bs);
  o->req.blocks = BlockCount(len_bytes / bs);
  if (op == block::IoOp::kRead || op == block::IoOp::kWrite) {
    o->req.iov = &o->one;
    o->req.iovcnt = 1;
  }
  o->req.done = [o](IoStatus st) {
    IoDone d = std::move(o->done);
    delete o;
    d(st);
  };
  block::SubmitSplit(dev, o->req);
}

}  // namespace ferry::volume::snapshot
