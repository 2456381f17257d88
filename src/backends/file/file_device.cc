#include "backends/file/file_device.h"

#include <fcntl.h>
#include <liburing.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "backends/file/file_impl.h"
#include "io/reactor.h"

namespace ferry::backends {
namespace {

constexpr uint64_t kMaxIoBytes = 4u << 20;
constexpr uint64_t kMaxFallocBytes = 1ull << 30;
constexpr uint64_t kMaxCopyBytes = 1ull << 30;
constexpr uint32_t kMaxCopySegments = 256;
constexpr uint64_t kProbeBytes = 64u << 10;

bool PowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

std::string Quoted(const std::string& path) { return "'" + path + "'"; }

Status OpenError(int err, const FileOptions& o) {
  const std::string p = Quoted(o.path);
  switch (err) {
    case ENOENT:
      if (o.create && !o.read_only) {
        return NotFound("cannot create " + p + ": its directory does not exist");
      }
      if (o.create) return NotFound(p + " does not exist (read_only=true never creates files)");
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

// Offset (and memory) alignment O_DIRECT needs for this file: the logical block size of a
// block device; STATX_DIOALIGN for files, else 4096, which suits every file system that
// supports O_DIRECT at all.
Result<uint32_t> DirectAlignment(int fd, bool is_block, const std::string& path) {
  if (is_block) {
    int lbs = 0;
    if (ioctl(fd, BLKSSZGET, &lbs) == 0 && lbs > 0) return static_cast<uint32_t>(lbs);
    return 512u;
  }
#ifdef STATX_DIOALIGN
  struct statx stx {};
  if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN)) {
    // statx(2): a zero offset alignment means this file does not support direct I/O.
    if (stx.stx_dio_offset_align == 0) {
      return InvalidArgument("the file system of " + Quoted(path) +
                             " does not support O_DIRECT (use direct=false)");
    }
    return std::max<uint32_t>(stx.stx_dio_offset_align, stx.stx_dio_mem_align);
  }
#endif
  return 4096u;
}

Status PickBlockSize(const FileOptions& o, FileDevice::Impl& d) {
  uint32_t bs = o.block_size;
  const std::string p = Quoted(o.path);
  if (bs == 1) {
    if (d.is_block || o.direct) {
      return InvalidArgument("block_size=1 (byte addressing) is for buffered regular files; " + p +
                             (d.is_block ? " is a block device" : " is opened with direct=true"));
    }
  } else if (bs != 0 && (!PowerOfTwo(bs) || bs < 512 || bs > 65536)) {
    return InvalidArgument("block_size " + std::to_string(bs) +
                           " must be a power of two from 512 to 65536 (or 1)");
  }
  uint32_t align = 1;
  if (o.direct) {
    FERRY_ASSIGN_OR_RETURN(align, DirectAlignment(d.fd, d.is_block, o.path));
  }
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
  d.limits.buffer_alignment = align;
  return Status::Ok();
}

Status PickSize(const FileOptions& o, const struct stat& st, FileDevice::Impl& d) {
  const std::string p = Quoted(o.path);
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
                           (d.is_block ? " (set size= to a multiple)"
                                       : " (set size= to a multiple, or block_size=1 for byte "
                                         "addressing)"));
  }
  d.geometry.num_blocks = BlockCount(size / d.geometry.block_size);
  return Status::Ok();
}

// Whether the file system punches holes. Probed past the end of the file (KEEP_SIZE), where
// a hole changes neither data nor size. Only an explicit "not supported" counts as no:
// anything else will show up, with its real errno, on the request that hits it.
bool FilePunchesHoles(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return true;
  const uint64_t end = static_cast<uint64_t>(st.st_size);
  const auto off = static_cast<off_t>((end / kProbeBytes + 1) * kProbeBytes);
  if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, kProbeBytes) == 0) {
    return true;
  }
  return errno != EOPNOTSUPP && errno != ENOSYS;
}

// The kernel's discard limit for a block device (sysfs queue/discard_max_bytes; partitions
// read their disk's queue). 0: no discard. Unknown: assume it works and let BLKDISCARD say.
uint64_t BlockDiscardMaxBytes(dev_t rdev) {
  const std::string dir =
      "/sys/dev/block/" + std::to_string(major(rdev)) + ":" + std::to_string(minor(rdev));
  for (const char* rel : {"/queue/discard_max_bytes", "/../queue/discard_max_bytes"}) {
    std::ifstream f(dir + rel);
    uint64_t v = 0;
    if (f >> v) return v;
  }
  return kMaxFallocBytes;
}

void SetLimits(FileDevice::Impl& d, dev_t rdev) {
  block::QueueLimits& l = d.limits;
  l.max_io_bytes = kMaxIoBytes;
  l.max_iovecs = 1024;  // IOV_MAX
  // A read-only device refuses discards before they reach the file (kReadOnly), and its
  // descriptor cannot probe fallocate: it advertises what a writable open would.
  bool discard = true;
  if (d.is_block) {
    discard = BlockDiscardMaxBytes(rdev) > 0;
  } else if (!d.read_only) {
    discard = FilePunchesHoles(d.fd);
  }
  l.max_discard_bytes = discard ? kMaxFallocBytes : 0;
  l.discard_zeroes_data = discard && !d.is_block;  // a punched hole reads as zeroes
  l.discard_granularity_bytes = d.is_block ? 0 : d.fs_block_bytes;
  unsigned int pbs = 0;
  if (d.is_block && ioctl(d.fd, BLKPBSZGET, &pbs) == 0) l.physical_block_bytes = pbs;
  if (!d.is_block) l.physical_block_bytes = d.fs_block_bytes;
  // BLKZEROOUT always works (the kernel writes zeroes when the device cannot). On files,
  // write-zeroes is ZERO_RANGE or a punched hole: without hole punching the block layer
  // emulates it by writing zeroes.
  l.max_write_zeroes_bytes = (d.is_block || discard) ? kMaxFallocBytes : 0;
  if (!d.is_block && !d.read_only) {
    l.max_copy_bytes = kMaxCopyBytes;
    l.max_copy_segments = kMaxCopySegments;
    l.copy_granularity_bytes = d.geometry.block_size;
  }
}

// Removes the file Open created when Open fails after creating it.
struct RemoveCreatedOnError {
  const std::string& path;
  bool armed = false;
  ~RemoveCreatedOnError() {
    if (armed) unlink(path.c_str());
  }
};

// Opens `o.path`; *created tells whether this call created the file (O_EXCL first, so an
// existing file is never mistaken for a new one).
int OpenFd(const FileOptions& o, bool* created) {
  const int flags = (o.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (o.direct ? O_DIRECT : 0);
  *created = false;
  if (o.create && !o.read_only) {
    int fd = open(o.path.c_str(), flags | O_CREAT | O_EXCL, 0644);
    if (fd >= 0 || errno != EEXIST) {
      *created = fd >= 0;
      return fd;
    }
  }
  return open(o.path.c_str(), flags);
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
      return InvalidArgument("create=true needs size= to create " + Quoted(o.path));
    }
  }
  auto d = std::make_unique<Impl>();
  d->name = o.name.empty() ? o.path : o.name;
  d->path = o.path;
  d->direct = o.direct;
  d->read_only = o.read_only;
  RemoveCreatedOnError cleanup{d->path};
  d->fd = OpenFd(o, &cleanup.armed);
  if (d->fd < 0) return OpenError(errno, o);
  struct stat st {};
  if (fstat(d->fd, &st) != 0) return ErrnoStatus(errno, "fstat " + Quoted(o.path));
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return InvalidArgument(Quoted(o.path) + " is not a regular file or block device");
  }
  d->is_block = S_ISBLK(st.st_mode);
  d->st_dev = st.st_dev;
  d->st_ino = st.st_ino;
  d->fs_block_bytes = st.st_blksize > 0 ? static_cast<uint32_t>(st.st_blksize) : 4096;
  FERRY_RETURN_IF_ERROR(PickBlockSize(o, *d));
  FERRY_RETURN_IF_ERROR(PickSize(o, st, *d));
  SetLimits(*d, st.st_rdev);
  cleanup.armed = false;
  return std::shared_ptr<FileDevice>(new FileDevice(std::move(d)));
}

std::string_view FileDevice::name() const { return impl_->name; }
const block::Geometry& FileDevice::geometry() const { return impl_->geometry; }
const block::QueueLimits& FileDevice::limits() const { return impl_->limits; }
bool FileDevice::read_only() const { return impl_->read_only; }
int FileDevice::fd() const { return impl_->fd; }
const std::string& FileDevice::path() const { return impl_->path; }
bool FileDevice::is_block_device() const { return impl_->is_block; }

block::ProvisioningExtent FileDevice::Provisioning(Lba lba, BlockCount max) const {
  const uint64_t bs = impl_->geometry.block_size;
  const auto start = static_cast<off_t>(lba.value() * bs);
  const auto end = static_cast<off_t>(
      std::min(lba.value() + max.value(), impl_->geometry.num_blocks.value()) * bs);
  if (impl_->is_block) return {true, max};
  // The block is data when the next data at or after its start begins inside it.
  const off_t data = lseek(impl_->fd, start, SEEK_DATA);
  if (data < 0 && errno != ENXIO) return {true, max};  // cannot tell: mapped
  const bool mapped = data >= 0 && data < start + static_cast<off_t>(bs);
  off_t next = end;
  if (mapped) {
    const off_t hole = lseek(impl_->fd, start, SEEK_HOLE);
    if (hole >= 0) next = hole;
  } else if (data >= 0) {
    next = data;
  }
  // Runs end on block boundaries: a block partly data counts as mapped (round a data
  // run up, a hole run down).
  const auto run = static_cast<uint64_t>(std::clamp(next, start, end) - start);
  const uint64_t blocks = mapped ? (run + bs - 1) / bs : run / bs;
  return {mapped, BlockCount(std::clamp<uint64_t>(blocks, 1, max.value()))};
}
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
  bool punch_fallback = false;  // write-zeroes done as a hole punch
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
    // No ZERO_RANGE on this file system: a punched hole reads back zeroes too.
    op->dev->zero_range_ok.store(false, std::memory_order_relaxed);
    op->punch_fallback = true;
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
    case block::IoOp::kWriteSame:
    case block::IoOp::kCompareAndWrite:  // never here: the limits say none
      io_uring_prep_nop(sqe);
      op->uring.done = [op](int32_t) { OnOther(op, -EOPNOTSUPP); };
      return;
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
  op->punch_fallback = !impl_->zero_range_ok.load(std::memory_order_relaxed);
  Issue(op);
}

}  // namespace ferry::backends
