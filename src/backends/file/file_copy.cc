// Native copy of the file backend (CopyOffload): FICLONERANGE, else copy_file_range.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "backends/file/file_device.h"
#include "backends/file/file_impl.h"
#include "io/reactor.h"

namespace ferry::backends {
namespace {

constexpr size_t kPoolThreads = 2;

// Errors that mean "this file system cannot do it here", not "the data is bad".
bool NotNative(int err) {
  return err == EXDEV || err == EOPNOTSUPP || err == ENOSYS || err == EINVAL || err == ETXTBSY ||
         err == EBADF;
}

// FICLONERANGE of one aligned range; 0 or an errno.
int Clone(int src_fd, int dst_fd, uint64_t src_off, uint64_t dst_off, uint64_t len) {
  file_clone_range fcr{};
  fcr.src_fd = src_fd;
  fcr.src_offset = src_off;
  fcr.src_length = len;
  fcr.dest_offset = dst_off;
  return ioctl(dst_fd, FICLONERANGE, &fcr) == 0 ? 0 : errno;
}

// copy_file_range until `len` bytes are copied; 0 or an errno (ENODATA: the source ended).
int CopyRange(int src_fd, int dst_fd, uint64_t src_off, uint64_t dst_off, uint64_t len) {
  auto so = static_cast<loff_t>(src_off);
  auto dof = static_cast<loff_t>(dst_off);
  while (len > 0) {
    ssize_t n = copy_file_range(src_fd, &so, dst_fd, &dof, len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return ENODATA;
    len -= static_cast<uint64_t>(n);
  }
  return 0;
}

struct SegmentResult {
  int err = 0;
  uint64_t reflinked = 0;
};

// One segment: the part aligned to the file system block (when source and destination are
// aligned alike) is cloned; the rest, or all of it when cloning is refused, is copied.
SegmentResult CopySegment(const FileDevice::Impl& src, const FileDevice::Impl& dst,
                          const block::CopySegment& s, bool* clone_ok) {
  SegmentResult r;
  const uint64_t fsb = std::max(src.fs_block_bytes, dst.fs_block_bytes);
  uint64_t head = 0, mid = 0;
  if (*clone_ok && s.src_offset_bytes % fsb == s.dst_offset_bytes % fsb) {
    uint64_t mis = s.src_offset_bytes % fsb;
    head = std::min(s.len_bytes, mis == 0 ? 0 : fsb - mis);
    mid = (s.len_bytes - head) / fsb * fsb;
  }
  if (head > 0) r.err = CopyRange(src.fd, dst.fd, s.src_offset_bytes, s.dst_offset_bytes, head);
  if (r.err == 0 && mid > 0) {
    int e = Clone(src.fd, dst.fd, s.src_offset_bytes + head, s.dst_offset_bytes + head, mid);
    if (e == 0) {
      r.reflinked = mid;
    } else if (NotNative(e) || e == EPERM) {
      *clone_ok = false;  // not this file system: copy_file_range for the rest of the leg
      r.err = CopyRange(src.fd, dst.fd, s.src_offset_bytes + head, s.dst_offset_bytes + head, mid);
    } else {
      r.err = e;
    }
  }
  uint64_t tail = s.len_bytes - head - mid;
  if (r.err == 0 && tail > 0) {
    uint64_t off = head + mid;
    r.err = CopyRange(src.fd, dst.fd, s.src_offset_bytes + off, s.dst_offset_bytes + off, tail);
  }
  return r;
}

bool Overlaps(const block::CopySegment& s) {
  return s.src_offset_bytes < s.dst_offset_bytes + s.len_bytes &&
         s.dst_offset_bytes < s.src_offset_bytes + s.len_bytes;
}

}  // namespace

BlockingPool& BlockingPool::Get() {
  static BlockingPool pool;
  return pool;
}

BlockingPool::BlockingPool() {
  for (size_t i = 0; i < kPoolThreads; ++i) threads_.emplace_back([this] { Loop(); });
}

BlockingPool::~BlockingPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void BlockingPool::Run(Job job) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void BlockingPool::Loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

bool FileDevice::CanCopyFrom(const block::BlockDevice& src, std::string* why_not) const {
  auto say = [why_not](std::string s) {
    if (why_not) *why_not = std::move(s);
    return false;
  };
  const auto* f = dynamic_cast<const FileDevice*>(&src);
  if (f == nullptr) {
    return say("'" + std::string(src.name()) + "' is a " + std::string(src.type()) +
               " device; the file backend copies natively only between files");
  }
  if (f->impl_->is_block || impl_->is_block) {
    return say("block devices have no native copy here ('" +
               (impl_->is_block ? impl_->path : f->impl_->path) + "')");
  }
  if (impl_->read_only) return say("'" + impl_->path + "' is open read-only");
  if (f->impl_->st_dev != impl_->st_dev) {
    return say("'" + f->impl_->path + "' and '" + impl_->path +
               "' are on different file systems (no reflink or copy_file_range across them)");
  }
  return true;
}

void FileDevice::SubmitCopy(block::CopyLegRequest& leg) {
  io::Reactor* r = io::Reactor::Current();
  auto complete = [r, &leg](IoStatus st) { r->Post([&leg, st] { leg.done(st); }); };
  const auto* src = dynamic_cast<const FileDevice*>(leg.src);
  if (impl_->read_only) return complete(IoStatus::kReadOnly);
  if (src == nullptr || !CanCopyFrom(*src, nullptr)) return complete(IoStatus::kNotSupported);
  const uint64_t sbs = src->impl_->geometry.block_size;
  const uint64_t dbs = impl_->geometry.block_size;
  const uint64_t ssize = src->impl_->geometry.size_bytes();
  const uint64_t dsize = impl_->geometry.size_bytes();
  uint64_t total = 0;
  const bool same_file = src->impl_->st_ino == impl_->st_ino;
  bool overlap = false;
  if (leg.segments.empty() || leg.segments.size() > impl_->limits.max_copy_segments) {
    return complete(IoStatus::kInvalid);
  }
  for (const block::CopySegment& s : leg.segments) {
    bool aligned = s.src_offset_bytes % sbs == 0 && s.dst_offset_bytes % dbs == 0 &&
                   s.len_bytes % sbs == 0 && s.len_bytes % dbs == 0 && s.len_bytes > 0;
    bool inside = s.src_offset_bytes <= ssize && s.len_bytes <= ssize - s.src_offset_bytes &&
                  s.dst_offset_bytes <= dsize && s.len_bytes <= dsize - s.dst_offset_bytes;
    if (!aligned || !inside) return complete(IoStatus::kInvalid);
    total += s.len_bytes;
    overlap = overlap || (same_file && Overlaps(s));
  }
  if (total > impl_->limits.max_copy_bytes) return complete(IoStatus::kInvalid);
  // Reflink and copy_file_range refuse overlapping ranges of one file: emulate (memmove).
  if (overlap) return complete(IoStatus::kNotSupported);
  const Impl* s_impl = src->impl_.get();
  const Impl* d_impl = impl_.get();
  BlockingPool::Get().Run([r, &leg, s_impl, d_impl, total] {
    bool clone_ok = true;
    uint64_t reflinked = 0;
    IoStatus st = IoStatus::kOk;
    for (const block::CopySegment& s : leg.segments) {
      SegmentResult res = CopySegment(*s_impl, *d_impl, s, &clone_ok);
      reflinked += res.reflinked;
      if (res.err != 0) {
        st = NotNative(res.err) ? IoStatus::kNotSupported : IoStatusFromErrno(res.err);
        break;
      }
    }
    if (st == IoStatus::kOk) {
      leg.mechanism = reflinked == total ? block::CopyMechanism::kReflink
                                         : block::CopyMechanism::kCopyFileRange;
      leg.reflinked_bytes = reflinked == total ? 0 : reflinked;
    }
    r->Post([&leg, st] { leg.done(st); });
  });
}

}  // namespace ferry::backends
