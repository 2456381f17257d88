#include "backends/file/file_device.h"

#include <fcntl.h>
#include <liburing.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "backends/file/file_impl.h"
#include "io/reactor.h"

namespace ferry::backends {
namespace {

constexpr uint64_t kMaxIoBytes = 4u << 20;
constexpr uint64_t kMaxFallocBytes = 1ull << 30;
constexpr uint64_t kMaxCopyBytes = 1ull << 30;

bool PowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

Status OpenError(int err, const FileOptions& o) {
  const std::string p = "'" + o.path + "'";
  switch (err) {
    case ENOENT:
      if (o.create) return NotFound("cannot create " + p + ": its directory does not exist");
      return NotFound(p + " does not exist (create=true creates it)");
    case EACCES:
    case EPERM:
    case EROFS:
      return PermissionDenied("cannot open " + p + (o.read_only ? " for reading" : " for writing") +
                              ": " + std::strerror(err));
    case EISDIR: return InvalidArgument(p + " is a directory, not a file or block device");
    case EINVAL:
      if (o.direct) {
        return InvalidArgument("the file system of " + p +
                               " does not support O_DIRECT (use direct=false)");
      }
      break;
    default: break;
  }
  return ErrnoStatus(err, "cannot open " + p);
}

// Offset alignment O_DIRECT needs for this file.
uint32_t DirectAlignment(int fd, bool is_block) {
  if (is_block) {
    int lbs = 0;
    if (ioctl(fd, BLKSSZGET, &lbs) == 0 && lbs > 0) return static_cast<uint32_t>(lbs);
    return 512;
  }
#ifdef STATX_DIOALIGN
  struct statx stx {};
  if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN) &&
      stx.stx_dio_offset_align > 0) {
    return std::max<uint32_t>(stx.stx_dio_offset_align, stx.stx_dio_mem_align);
  }
#endif
  return 4096;  // safe for every file system that supports O_DIRECT
}

Status PickBlockSize(const FileOptions& o, FileDevice::Impl& d) {
  uint32_t bs = o.block_size;
  const std::string p = "'" + o.path + "'";
  if (bs == 1) {
    if (d.is_block || o.direct) {
      return InvalidArgument("block_size=1 (byte addressing) is for buffered regular files; " + p +
                             (d.is_block ? " is a block device" : " is opened with direct=true"));
    }
  } else if (bs != 0 && (!PowerOfTwo(bs) || bs < 512 || bs > 65536)) {
    return InvalidArgument("block_size " + std::to_string(bs) +
                           " must be a power of two from 512 to 65536 (or 1)");
  }
  uint32_t align = o.direct ? DirectAlignment(d.fd, d.is_block) : 1;
  if (bs == 0) {
    bs = 512;
    if (d.is_block) {
      int lbs = 0;
      if (ioctl(d.fd, BLKSSZGET, &lbs) == 0 && lbs > 0) bs = static_cast<uint32_t>(lbs);
    }
    bs = std::max(bs, align);
  }
  if (bs < align) {
    return InvalidArgument("block_size " + std::to_string(bs) + " is smaller than the O_DIRECT " +
                           "alignment of " + p + " (" + std::to_string(align) + " bytes)");
  }
  d.geometry.block_size = bs;
  d.limits.buffer_alignment = std::max<uint32_t>(align, 1);
  return Status::Ok();
}

Status PickSize(const FileOptions& o, const struct stat& st, FileDevice::Impl& d) {
  const std::string p = "'" + o.path + "'";
  uint64_t size = 0;
  if (d.is_block) {
    uint64_t dev_bytes = 0;
    if (ioctl(d.fd, BLKGETSIZE64, &dev_bytes) != 0) return ErrnoStatus(errno, "BLKGETSIZE64 " + p);
    if (o.size_bytes > dev_bytes) {
      return OutOfRange("size " + std::to_string(o.size_bytes) + " is larger than block device " +
                        p + " (" + std::to_string(dev_bytes) + " bytes)");
    }
    size = o.size_bytes ? o.size_bytes : dev_bytes;
  } else {
    uint64_t file_bytes = static_cast<uint64_t>(st.st_size);
    size = o.size_bytes ? o.size_bytes : file_bytes;
    if (file_bytes < size) {
      if (o.read_only) {
        return OutOfRange(p + " is " + std::to_string(file_bytes) + " bytes, shorter than size " +
                          std::to_string(size) + ", and read_only=true cannot grow it");
      }
      if (ftruncate(d.fd, static_cast<off_t>(size)) != 0) {
        return ErrnoStatus(errno, "cannot grow " + p + " to " + std::to_string(size) + " bytes");
      }
    }
  }
  if (size == 0) return InvalidArgument(p + " is empty: give size= to grow it");
  if (size % d.geometry.block_size != 0) {
    return InvalidArgument(p + " is " + std::to_string(size) +
                           " bytes, not a multiple of the block size " +
                           std::to_string(d.geometry.block_size) +
                           " (set size= to a multiple, or block_size=1 for byte addressing)");
  }
  d.geometry.num_blocks = BlockCount(size / d.geometry.block_size);
  return Status::Ok();
}

void SetLimits(FileDevice::Impl& d) {
  block::QueueLimits& l = d.limits;
  l.max_io_bytes = kMaxIoBytes;
  l.max_iovecs = 1024;
  l.max_discard_bytes = kMaxFallocBytes;
  l.max_write_zeroes_bytes = kMaxFallocBytes;
  if (!d.is_block && !d.read_only) {
    l.max_copy_bytes = kMaxCopyBytes;
    l.max_copy_segments = 256;
    l.copy_granularity_bytes = d.geometry.block_size;
  }
}

}  // namespace

FileDevice::Impl::~Impl() {
  if (fd >= 0) close(fd);
}

FileDevice::FileDevice(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FileDevice::~FileDevice() = default;

Result<std::shared_ptr<FileDevice>> FileDevice::Open(FileOptions o) {
  if (o.path.empty()) return InvalidArgument("file backend: path is empty");
  if (o.create && o.size_bytes == 0) {
    struct stat st {};
    if (stat(o.path.c_str(), &st) != 0) {
      return InvalidArgument("create=true needs size= to create '" + o.path + "'");
    }
  }
  auto d = std::make_unique<Impl>();
  d->name = o.name.empty() ? o.path : o.name;
  d->path = o.path;
  d->direct = o.direct;
  d->read_only = o.read_only;
  int flags = (o.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (o.direct ? O_DIRECT : 0) |
              (o.create && !o.read_only ? O_CREAT : 0);
  d->fd = open(o.path.c_str(), flags, 0644);
  if (d->fd < 0) return OpenError(errno, o);
  struct stat st {};
  if (fstat(d->fd, &st) != 0) return ErrnoStatus(errno, "fstat '" + o.path + "'");
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return InvalidArgument("'" + o.path + "' is not a regular file or block device");
  }
  d->is_block = S_ISBLK(st.st_mode);
  d->st_dev = st.st_dev;
  d->st_ino = st.st_ino;
  d->fs_block_bytes = st.st_blksize > 0 ? static_cast<uint32_t>(st.st_blksize) : 4096;
  FERRY_RETURN_IF_ERROR(PickBlockSize(o, *d));
  FERRY_RETURN_IF_ERROR(PickSize(o, st, *d));
  SetLimits(*d);
  return std::shared_ptr<FileDevice>(new FileDevice(std::move(d)));
}

std::string_view FileDevice::name() const { return impl_->name; }
const block::Geometry& FileDevice::geometry() const { return impl_->geometry; }
const block::QueueLimits& FileDevice::limits() const { return impl_->limits; }
bool FileDevice::read_only() const { return impl_->read_only; }
int FileDevice::fd() const { return impl_->fd; }
const std::string& FileDevice::path() const { return impl_->path; }
bool FileDevice::is_block_device() const { return impl_->is_block; }
dev_t FileDevice::st_dev() const { return impl_->st_dev; }

namespace {

// One request in flight through io_uring. Reused through a per-thread free list, so steady
// state I/O does not allocate.
struct FileOp {
  io::UringOp uring;
  FileDevice::Impl* dev = nullptr;
  block::IoRequest* req = nullptr;
  io::Reactor* reactor = nullptr;
  uint64_t offset = 0;          // next byte of the file to transfer
  uint64_t remaining = 0;       // bytes left
  std::vector<iovec> iov;       // what is left of the payload (short transfers advance it)
  size_t iov_first = 0;         // first iovec still to transfer
  bool punch_fallback = false;  // write-zeroes retried as a hole punch
};

thread_local std::vector<std::unique_ptr<FileOp>> t_free_ops;

FileOp* TakeOp() {
  if (t_free_ops.empty()) return new FileOp();
  FileOp* op = t_free_ops.back().release();
  t_free_ops.pop_back();
  return op;
}

void Finish(FileOp* op, IoStatus st) {
  // The op goes back to the free list only after `done`: we are still inside its
  // io_uring callback, which a new request taking the op would overwrite.
  block::IoRequest* req = op->req;
  op->req = nullptr;
  req->done(st);
  t_free_ops.emplace_back(op);
}

void Issue(FileOp* op);

// Advances the payload after a short transfer of `n` bytes.
void Advance(FileOp* op, uint64_t n) {
  op->offset += n;
  op->remaining -= n;
  while (n > 0 && op->iov_first < op->iov.size()) {
    iovec& v = op->iov[op->iov_first];
    uint64_t take = std::min<uint64_t>(n, v.iov_len);
    v.iov_base = static_cast<char*>(v.iov_base) + take;
    v.iov_len -= take;
    n -= take;
    if (v.iov_len == 0) ++op->iov_first;
  }
}

void OnRw(FileOp* op, int32_t res) {
  if (res == -EAGAIN || res == -EINTR) return Issue(op);
  if (res < 0) return Finish(op, IoStatusFromErrno(res));
  if (res == 0) {
    if (op->req->op == block::IoOp::kWrite) return Finish(op, IoStatus::kIoError);
    // Read past the end of a file that shrank under us: the rest reads as zeroes.
    for (size_t i = op->iov_first; i < op->iov.size(); ++i) {
      std::memset(op->iov[i].iov_base, 0, op->iov[i].iov_len);
    }
    return Finish(op, IoStatus::kOk);
  }
  Advance(op, static_cast<uint64_t>(res));
  if (op->remaining == 0) return Finish(op, IoStatus::kOk);
  Issue(op);
}

void OnOther(FileOp* op, int32_t res) {
  if (res == -EINTR || res == -EAGAIN) return Issue(op);
  if (res == -EOPNOTSUPP && op->req->op == block::IoOp::kWriteZeroes && !op->punch_fallback) {
    op->punch_fallback = true;  // no ZERO_RANGE here: a punched hole reads zeroes too
    return Issue(op);
  }
  Finish(op, res < 0 ? IoStatusFromErrno(res) : IoStatus::kOk);
}

void Issue(FileOp* op) {
  io::Reactor* r = op->reactor;
  const int fd = op->dev->fd;
  io_uring_sqe* sqe = r->GetSqe(&op->uring);
  switch (op->req->op) {
    case block::IoOp::kRead:
    case block::IoOp::kWrite: {
      const iovec* v = op->iov.data() + op->iov_first;
      unsigned n = static_cast<unsigned>(op->iov.size() - op->iov_first);
      if (op->req->op == block::IoOp::kRead) {
        io_uring_prep_readv(sqe, fd, v, n, op->offset);
      } else {
        io_uring_prep_writev(sqe, fd, v, n, op->offset);
        if (op->req->flags & block::kIoFua) sqe->rw_flags = RWF_DSYNC;
      }
      op->uring.done = [op](int32_t res) { OnRw(op, res); };
      return;
    }
    case block::IoOp::kFlush: io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC); break;
    case block::IoOp::kDiscard:
    case block::IoOp::kWriteZeroes: {
      int mode = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE;
      if (op->req->op == block::IoOp::kWriteZeroes && !op->punch_fallback) {
        mode = FALLOC_FL_KEEP_SIZE | FALLOC_FL_ZERO_RANGE;
      }
      io_uring_prep_fallocate(sqe, fd, mode, op->offset, op->remaining);
      break;
    }
  }
  op->uring.done = [op](int32_t res) { OnOther(op, res); };
}

// BLKDISCARD / BLKZEROOUT block, so they run on the blocking pool.
void BlockDeviceRangeOp(FileDevice::Impl* dev, block::IoRequest* req, io::Reactor* r,
                        uint64_t offset, uint64_t len) {
  BlockingPool::Get().Run([dev, req, r, offset, len] {
    uint64_t range[2] = {offset, len};
    unsigned long cmd = req->op == block::IoOp::kDiscard ? BLKDISCARD : BLKZEROOUT;
    IoStatus st = IoStatus::kOk;
    if (ioctl(dev->fd, cmd, range) != 0) st = IoStatusFromErrno(errno);
    r->Post([req, st] { req->done(st); });
  });
}

}  // namespace

void FileDevice::Submit(block::IoRequest& req) {
  io::Reactor* r = io::Reactor::Current();
  IoStatus st = block::ValidateRequest(*this, req);
  if (st != IoStatus::kOk) {
    r->Post([&req, st] { req.done(st); });
    return;
  }
  const uint64_t bs = impl_->geometry.block_size;
  const uint64_t offset = req.lba.value() * bs;
  const uint64_t len = req.blocks.value() * bs;
  if (impl_->is_block && (req.op == block::IoOp::kDiscard || req.op == block::IoOp::kWriteZeroes)) {
    BlockDeviceRangeOp(impl_.get(), &req, r, offset, len);
    return;
  }
  FileOp* op = TakeOp();
  op->dev = impl_.get();
  op->req = &req;
  op->reactor = r;
  op->offset = offset;
  op->remaining = len;
  op->iov.assign(req.iov, req.iov + req.iovcnt);
  op->iov_first = 0;
  op->punch_fallback = false;
  Issue(op);
}

}  // namespace ferry::backends
