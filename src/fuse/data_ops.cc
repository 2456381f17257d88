// Reads, writes, fsync, fallocate and lseek on device files: block requests through the
// block layer's splitter, answered from their completions on the reactor.
#include <fcntl.h>
#include <linux/fs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "block/splitter.h"
#include "fuse/core.h"
#include "fuse/fuse_map.h"

namespace ferry::fuse {
namespace {

// An aligned I/O buffer: from the mount's pool, or from the heap when the pool is empty (the
// kernel bounds how many requests are in flight; the reactor never waits for memory).
class Buffer {
 public:
  Buffer(io::BufferPool& pool, size_t len) : pooled_(pool.Acquire()) {
    if (!pooled_ || len > pooled_.size()) {
      pooled_.Release();
      heap_.reset(
          static_cast<std::byte*>(std::aligned_alloc(io::BufferPool::kAlignment, RoundUp(len))));
    }
  }
  std::byte* data() const { return heap_ ? heap_.get() : pooled_.data(); }

 private:
  static size_t RoundUp(size_t n) {
    const size_t a = io::BufferPool::kAlignment;
    return (n + a - 1) / a * a;
  }
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  io::PooledBuffer pooled_;
  std::unique_ptr<std::byte, Free> heap_;
};

// One read or write in flight (a heap object: its address is all the callbacks capture).
struct IoCtx {
  Core* c = nullptr;
  fuse_req_t req = nullptr;
  std::shared_ptr<DeviceFile> f;
  BlockSpan span;
  uint64_t len = 0;  // the caller's bytes, at span.head in `buf`
  std::unique_ptr<Buffer> buf;
  std::unique_ptr<Buffer> old;  // an unaligned write: the blocks as they were
  iovec iov{};
  block::IoRequest io;
  uint8_t write_flags = 0;
  scsi::RangeLock::Holder* lock = nullptr;  // a write's blocks (DeviceFile::writes)
};

void Submit(IoCtx* x, block::IoOp op, std::byte* data, block::IoCallback done) {
  const uint32_t bs = x->f->dev->geometry().block_size;
  x->iov = {data, x->span.len};
  x->io = block::IoRequest{};
  x->io.op = op;
  x->io.flags = op == block::IoOp::kWrite ? x->write_flags : 0;
  x->io.lba = Lba(x->span.first / bs);
  x->io.blocks = BlockCount(x->span.len / bs);
  x->io.iov = &x->iov;
  x->io.iovcnt = 1;
  x->io.done = std::move(done);
  block::SubmitSplit(*x->f->dev, x->io);
}

void Finish(IoCtx* x, int err) {
  if (x->lock != nullptr) x->f->writes.Release(x->lock);
  --x->c->in_flight;
  if (err != 0) fuse_reply_err(x->req, err);
  delete x;
}

void WriteSpan(IoCtx* x) {
  Submit(x, block::IoOp::kWrite, x->buf->data(), [x](IoStatus st) {
    if (st != IoStatus::kOk) return Finish(x, ErrnoOf(st));
    ++x->c->stats.writes;
    x->c->stats.written_bytes += x->len;
    fuse_reply_write(x->req, x->len);
    Finish(x, 0);
  });
}

IoCtx* NewIo(Core& c, fuse_req_t req, std::shared_ptr<DeviceFile> f, uint64_t off, uint64_t len) {
  auto* x = new IoCtx;
  x->c = &c;
  x->req = req;
  x->f = std::move(f);
  x->len = len;
  x->span = WidenToBlocks(off, len, x->f->dev->geometry().block_size);
  x->buf = std::make_unique<Buffer>(c.pool, x->span.len);
  ++c.in_flight;
  return x;
}

// Once the write holds its blocks: a write off the device's blocks reads the blocks around it
// first and merges; then it writes.
void WriteLocked(IoCtx* x) {
  if (x->span.aligned() && x->span.len == x->len) return WriteSpan(x);
  x->old = std::make_unique<Buffer>(x->c->pool, x->span.len);
  Submit(x, block::IoOp::kRead, x->old->data(), [x](IoStatus st) {
    if (st != IoStatus::kOk) return Finish(x, ErrnoOf(st));
    const uint64_t tail = x->span.head + x->len;
    std::memcpy(x->buf->data(), x->old->data(), x->span.head);
    std::memcpy(x->buf->data() + tail, x->old->data() + tail, x->span.len - tail);
    x->old.reset();
    WriteSpan(x);
  });
}

}  // namespace

void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  (void)fi;
  Core& c = CoreOf(req);
  auto f = c.Find(ino);
  if (f == nullptr) return (void)fuse_reply_err(req, ENOENT);
  const uint64_t len =
      std::min<uint64_t>(ClampToDevice(off, size, f->dev->geometry().size_bytes()), kMaxIoBytes);
  if (len == 0) return (void)fuse_reply_buf(req, nullptr, 0);  // end of file
  IoCtx* x = NewIo(c, req, std::move(f), off, len);
  Submit(x, block::IoOp::kRead, x->buf->data(), [x](IoStatus st) {
    if (st != IoStatus::kOk) return Finish(x, ErrnoOf(st));
    ++x->c->stats.reads;
    x->c->stats.read_bytes += x->len;
    fuse_reply_buf(x->req, reinterpret_cast<const char*>(x->buf->data() + x->span.head), x->len);
    Finish(x, 0);
  });
}

// A device does not grow: a write that starts at its end fails ENOSPC, one that crosses it
// is short. Writes of the mount to common blocks run one after another (DeviceFile::writes);
// iSCSI writes to the same device do not wait for them (a sub-block write from the mount
// racing an iSCSI write of that block may put the block's other bytes back as they were).
void OpWrite(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off,
             fuse_file_info* fi) {
  Core& c = CoreOf(req);
  auto f = c.Find(ino);
  if (f == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if (f->read_only) return (void)fuse_reply_err(req, EROFS);
  const uint64_t len =
      std::min<uint64_t>(ClampToDevice(off, size, f->dev->geometry().size_bytes()), kMaxIoBytes);
  if (len == 0) return (void)fuse_reply_err(req, size == 0 ? 0 : ENOSPC);
  IoCtx* x = NewIo(c, req, std::move(f), off, len);
  x->write_flags = (fi->fh & O_DSYNC) ? block::kIoFua : 0;
  std::memcpy(x->buf->data() + x->span.head, data, len);
  // Granted at once (inside Acquire) or later on this reactor; the I/O it starts never
  // completes inside the call (ferry/block_device.h), so Finish always sees the holder.
  const uint32_t bs = x->f->dev->geometry().block_size;
  x->lock = x->f->writes.Acquire(x->span.first / bs, x->span.len / bs, [x] { WriteLocked(x); });
}

void OpFsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  (void)datasync;
  (void)fi;
  Core& c = CoreOf(req);
  auto f = c.Find(ino);
  if (f == nullptr) return (void)fuse_reply_err(req, ENOENT);
  struct Flush {
    block::IoRequest io;
    std::shared_ptr<DeviceFile> f;
  };
  auto* fl = new Flush{.io = {}, .f = f};
  fl->io.op = block::IoOp::kFlush;
  ++c.in_flight;
  fl->io.done = [&c, req, fl](IoStatus st) {
    --c.in_flight;
    ++c.stats.flushes;
    // A device that keeps no volatile cache (read-only, or no flush) has nothing to flush.
    const bool ok =
        st == IoStatus::kOk || st == IoStatus::kNotSupported || st == IoStatus::kReadOnly;
    fuse_reply_err(req, ok ? 0 : ErrnoOf(st));
    delete fl;
  };
  f->dev->Submit(fl->io);
}

void ZeroRange(Core& c, const std::shared_ptr<DeviceFile>& f, uint64_t off, uint64_t len,
               bool may_discard, std::function<void(IoStatus)> done) {
  const block::QueueLimits& l = f->dev->limits();
  const bool discard = may_discard && l.discard_zeroes_data && l.max_discard_bytes > 0;
  struct Zero {
    block::IoRequest io;
    std::shared_ptr<DeviceFile> f;
    std::function<void(IoStatus)> done;
  };
  auto* z = new Zero{.io = {}, .f = f, .done = std::move(done)};
  const uint32_t bs = f->dev->geometry().block_size;
  z->io.op = discard ? block::IoOp::kDiscard : block::IoOp::kWriteZeroes;
  z->io.lba = Lba(off / bs);
  z->io.blocks = BlockCount(len / bs);
  // A discard the device refuses (granularity, a stacked target) becomes write-zeroes.
  z->io.done = [&c, z](IoStatus st) {
    if (st != IoStatus::kOk && z->io.op == block::IoOp::kDiscard) {
      z->io.op = block::IoOp::kWriteZeroes;
      z->io.done = [&c, z](IoStatus st2) {
        ++c.stats.write_zeroes;
        z->done(st2);
        delete z;
      };
      block::SubmitSplit(*z->f->dev, z->io);
      return;
    }
    ++(z->io.op == block::IoOp::kDiscard ? c.stats.discards : c.stats.write_zeroes);
    z->done(st);
    delete z;
  };
  block::SubmitSplit(*f->dev, z->io);
}

void OpFallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                 fuse_file_info* fi) {
  (void)fi;
  Core& c = CoreOf(req);
  auto f = c.Find(ino);
  if (f == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if (off < 0 || len <= 0) return (void)fuse_reply_err(req, EINVAL);
  if (f->read_only) return (void)fuse_reply_err(req, EROFS);
  const block::Geometry& g = f->dev->geometry();
  const FallocatePlan p =
      PlanFallocate(mode, static_cast<uint64_t>(off), static_cast<uint64_t>(len), g.size_bytes(),
                    g.block_size, f->dev->limits().discard_zeroes_data);
  if (p.error != 0 || p.noop) return (void)fuse_reply_err(req, p.error);
  ++c.in_flight;
  // Punching discards where that reads back as zeroes; ZERO_RANGE always writes zeroes.
  ZeroRange(c, f, p.off, p.len, p.op == block::IoOp::kDiscard, [&c, req](IoStatus st) {
    --c.in_flight;
    fuse_reply_err(req, ErrnoOf(st));
  });
}

void OpLseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info* fi) {
  (void)fi;
  Core& c = CoreOf(req);
  auto f = c.Find(ino);
  if (f == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if ((whence != SEEK_DATA && whence != SEEK_HOLE) || off < 0) {
    return (void)fuse_reply_err(req, EINVAL);
  }
  const block::Geometry& g = f->dev->geometry();
  const block::BlockDevice& dev = *f->dev;
  const int64_t r =
      SeekProvisioned(static_cast<uint64_t>(off), g.size_bytes(), g.block_size, whence == SEEK_DATA,
                      [&dev](Lba lba, BlockCount max) { return dev.Provisioning(lba, max); });
  if (r < 0) return (void)fuse_reply_err(req, static_cast<int>(-r));
  fuse_reply_lseek(req, r);
}

}  // namespace ferry::fuse
