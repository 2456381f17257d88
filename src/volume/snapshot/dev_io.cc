#include "volume/snapshot/dev_io.h"

#include "block/splitter.h"
#include "volume/snapshot/free_list.h"

namespace ferry::volume::snapshot {
namespace {
struct Op {
  block::IoRequest req;
  iovec one{};
  IoDone done;
};

void Finish(Op* o, IoStatus st) {
  IoDone d = std::move(o->done);
  o->done = nullptr;
  o->req = block::IoRequest{};  // also drops this lambda: `o` is not used after
  FreeList<Op>::Give(o);
  d(st);
}
}  // namespace

void SubmitDevIo(block::BlockDevice& dev, block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
                 const iovec* iov, uint32_t iovcnt, IoDone done) {
  Op* o = FreeList<Op>::Take();
  o->done = std::move(done);
  o->req.op = op;
  o->req.iov = nullptr;
  o->req.iovcnt = 0;
  if (op != block::IoOp::kFlush) {
    const uint64_t bs = dev.geometry().block_size;
    o->req.lba = Lba(offset_bytes / bs);
    o->req.blocks = BlockCount(len_bytes / bs);
    o->req.iov = const_cast<iovec*>(iov);  // the device only reads a write's payload
    o->req.iovcnt = iovcnt;
  }
  o->req.done = [o](IoStatus st) { Finish(o, st); };
  block::SubmitSplit(dev, o->req);
}

void SubmitDevBuf(block::BlockDevice& dev, block::IoOp op, uint64_t offset_bytes,
                  uint64_t len_bytes, void* buf, IoDone done) {
  Op* o = FreeList<Op>::Take();
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
  o->req.done = [o](IoStatus st) { Finish(o, st); };
  block::SubmitSplit(dev, o->req);
}

}  // namespace ferry::volume::snapshot
