// The directory and attribute operations: one flat directory of device files.
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>
#include <vector>

#include "fuse/core.h"
#include "fuse/fuse_map.h"

namespace ferry::fuse {
namespace {

// Attributes and names are never cached by the kernel: st_blocks follows the device's
// provisioning, and files come and go (ferryctl fuse add|remove) without notifications
// (an invalidation written from the reactor could wait on a lookup the reactor must answer).
constexpr double kAttrTimeout = 0.0;

// Preferred I/O size (st_blksize): the largest request the mount takes, which is what cp and
// dd read and write in when they follow it.
constexpr blksize_t kPreferredIoBytes = kMaxIoBytes;

void ReplyAttr(fuse_req_t req, const struct stat& st) { fuse_reply_attr(req, &st, kAttrTimeout); }

}  // namespace

struct stat Core::Stat(const DeviceFile& f) const {
  struct stat st {};
  const block::Geometry& g = f.dev->geometry();
  st.st_ino = f.ino;
  st.st_mode = S_IFREG | (f.read_only ? 0400 : 0600);
  st.st_nlink = 1;
  st.st_size = static_cast<off_t>(g.size_bytes());
  const block::BlockDevice& dev = *f.dev;
  const uint64_t allocated = AllocatedBytes(
      g.size_bytes(), g.block_size,
      [&dev](Lba lba, BlockCount max) { return dev.Provisioning(lba, max); }, kMaxProvisioningRuns);
  st.st_blocks = static_cast<blkcnt_t>(allocated / 512);
  st.st_blksize = kPreferredIoBytes;
  st.st_atim = st.st_mtim = st.st_ctim = started;
  return st;
}

struct stat Core::RootStat() const {
  struct stat st {};
  st.st_ino = FUSE_ROOT_ID;
  st.st_mode = S_IFDIR | 0755;
  st.st_nlink = 2;
  st.st_atim = st.st_mtim = st.st_ctim = started;
  return st;
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Core& c = CoreOf(req);
  auto it = c.by_name.find(std::string_view(name));
  if (parent != FUSE_ROOT_ID || it == c.by_name.end()) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_entry_param e{};
  e.ino = it->second;
  e.generation = 1;
  e.attr = c.Stat(*c.Find(it->second));
  e.attr_timeout = kAttrTimeout;
  e.entry_timeout = kAttrTimeout;
  fuse_reply_entry(req, &e);
}

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  (void)fi;
  Core& c = CoreOf(req);
  if (ino == FUSE_ROOT_ID) return ReplyAttr(req, c.RootStat());
  auto f = c.Find(ino);
  if (f == nullptr) return (void)fuse_reply_err(req, ENOENT);
  ReplyAttr(req, c.Stat(*f));
}

// Only the size (truncate, O_TRUNC) and times (ignored: they are not kept) may change.
void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  (void)fi;
  Core& c = CoreOf(req);
  auto f = c.Find(ino);
  if (f == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
    return (void)fuse_reply_err(req, EPERM);
  }
  if (!(to_set & FUSE_SET_ATTR_SIZE)) return ReplyAttr(req, c.Stat(*f));
  if (f->read_only) return (void)fuse_reply_err(req, EROFS);
  const block::Geometry& g = f->dev->geometry();
  const TruncatePlan p =
      PlanTruncate(static_cast<uint64_t>(attr->st_size), g.size_bytes(), g.block_size);
  if (p.error != 0) return (void)fuse_reply_err(req, p.error);
  if (p.noop) return ReplyAttr(req, c.Stat(*f));
  ++c.in_flight;
  ZeroRange(c, f, p.off, p.len, /*may_discard=*/true, [&c, req, f](IoStatus st) {
    --c.in_flight;
    if (st != IoStatus::kOk) return (void)fuse_reply_err(req, ErrnoOf(st));
    ReplyAttr(req, c.Stat(*f));
  });
}

void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  (void)fi;
  Core& c = CoreOf(req);
  if (ino != FUSE_ROOT_ID) return (void)fuse_reply_err(req, ENOTDIR);
  std::vector<std::pair<std::string, struct stat>> entries = {{".", c.RootStat()},
                                                              {"..", c.RootStat()}};
  for (const auto& [i, f] : c.by_ino) entries.emplace_back(f->name, c.Stat(*f));
  std::vector<char> buf(size);
  size_t used = 0;
  for (size_t i = static_cast<size_t>(off); i < entries.size(); ++i) {
    const size_t need =
        fuse_add_direntry(req, buf.data() + used, size - used, entries[i].first.c_str(),
                          &entries[i].second, static_cast<off_t>(i + 1));
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Core& c = CoreOf(req);
  auto f = c.Find(ino);
  if (f == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if ((fi->flags & O_ACCMODE) != O_RDONLY && f->read_only) {
    return (void)fuse_reply_err(req, EROFS);
  }
  // No page cache: coherent with the device's other users (iSCSI), no second copy in memory.
  fi->direct_io = 1;
  fi->keep_cache = 0;
  fi->fh = static_cast<uint64_t>(fi->flags);  // O_DSYNC makes writes FUA (data_ops.cc)
  ++f->open_handles;
  fuse_reply_open(req, fi);
}

void OpRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  (void)fi;
  Core& c = CoreOf(req);
  if (auto f = c.Find(ino); f != nullptr && f->open_handles > 0) --f->open_handles;
  fuse_reply_err(req, 0);
}

void OpStatfs(fuse_req_t req, fuse_ino_t ino) {
  (void)ino;
  Core& c = CoreOf(req);
  struct statvfs s {};
  s.f_bsize = s.f_frsize = 4096;
  for (const auto& [i, f] : c.by_ino) s.f_blocks += f->dev->geometry().size_bytes() / 4096;
  s.f_files = c.by_ino.size() + 1;
  s.f_namemax = 255;
  fuse_reply_statfs(req, &s);
}

}  // namespace ferry::fuse
