// The session: mounting (and clearing a stale mount), the poll on /dev/fuse, the end.
#include "fuse/server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "base/log.h"
#include "fuse/core.h"

namespace ferry::fuse {
namespace {

// Requests decoded per poll wake-up before the reactor runs other work.
constexpr int kRequestsPerWake = 64;

void OpInit(void* userdata, fuse_conn_info* conn) {
  (void)userdata;
  // O_TRUNC arrives as a setattr of the size (truncate zeroes the device's tail, fuse_map.h)
  // rather than as an open flag.
  conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
  conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  conn->max_write = kMaxIoBytes;
  conn->max_read = kMaxIoBytes;  // as the max_read mount option (libfuse checks they agree)
}

const fuse_lowlevel_ops kOps = [] {
  fuse_lowlevel_ops o{};
  o.init = OpInit;
  o.lookup = OpLookup;
  o.getattr = OpGetattr;
  o.setattr = OpSetattr;
  o.readdir = OpReaddir;
  o.open = OpOpen;
  o.release = OpRelease;
  o.statfs = OpStatfs;
  o.read = OpRead;
  o.write = OpWrite;
  o.fsync = OpFsync;
  o.fallocate = OpFallocate;
  o.lseek = OpLseek;
  o.copy_file_range = OpCopyFileRange;
  return o;
}();

// The file system type of the mount at `dir` (from /proc/self/mountinfo), or "".
std::string MountedType(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, found;
  while (std::getline(in, line)) {
    // id parent major:minor root mount-point options [optional...] - type source ...
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    f >> id >> parent >> dev >> root >> point;
    if (point != dir) continue;
    std::string word;
    while (f >> word && word != "-") {
    }
    f >> found;
  }
  return found;  // the last mount at `dir` is the visible one
}

// A crashed ferryd leaves its mount behind: every access fails ENOTCONN. Detach it; refuse a
// mount point where a live file system is mounted by someone (another ferryd, most likely).
Status PrepareMountPoint(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 && errno == ENOTCONN) {
    FERRY_LOG_WARN("fuse: {} is a stale FUSE mount (its server is gone): detaching it", dir);
    if (umount2(dir.c_str(), MNT_DETACH) != 0) {
      return ErrnoStatus(
          errno, "fuse: detaching the stale mount at " + dir + " (run: umount -l " + dir + ")");
    }
  }
  if (stat(dir.c_str(), &st) != 0) return ErrnoStatus(errno, "fuse: mount point " + dir);
  if (!S_ISDIR(st.st_mode))
    return InvalidArgument("fuse: mount point " + dir + " is not a directory");
  char real[PATH_MAX];
  if (realpath(dir.c_str(), real) == nullptr) return ErrnoStatus(errno, "fuse: realpath " + dir);
  const std::string type = MountedType(real);
  if (type.rfind("fuse", 0) == 0) {
    return FailedPrecondition("fuse: " + dir + " is already a FUSE mount (" + type +
                              "): another ferryd? If it is stale, run: umount -l " + dir);
  }
  return Status::Ok();
}

}  // namespace

void Core::ArmPoll() {
  if (poll_armed || stopped || !mounted) return;
  poll_op.done = [this](int32_t res) { OnReadable(res); };
  poll_id = reactor->PollFd(&poll_op, fuse_session_fd(se), POLLIN);
  poll_armed = true;
}

void Core::OnReadable(int32_t res) {
  poll_armed = false;
  if (stopped) return;
  (void)res;  // POLLIN, or POLLERR when the mount went away: the read below tells
  for (int i = 0; i < kRequestsPerWake; ++i) {
    const int n = fuse_session_receive_buf(se, &buf);
    if (n == -EAGAIN) break;
    if (n == -EINTR) continue;
    if (n <= 0) {
      FERRY_LOG_WARN(
          "fuse: the mount at {} was unmounted from outside ferryd; restart ferryd "
          "to mount it again",
          options.mount_point);
      mounted = false;
      return;
    }
    fuse_session_process_buf(se, &buf);
  }
  ArmPoll();
}

Result<std::unique_ptr<Mount>> Mount::Start(io::Reactor* reactor, MountOptions options) {
  FERRY_RETURN_IF_ERROR(PrepareMountPoint(options.mount_point));
  auto core = std::make_unique<Core>();
  core->reactor = reactor;
  core->options = options;
  clock_gettime(CLOCK_REALTIME, &core->started);
  copy::EngineOptions eo;
  eo.throttle_bytes_per_sec = options.copy_bandwidth;
  FERRY_ASSIGN_OR_RETURN(core->engine, copy::CopyEngine::Create(reactor, eo));
  std::string opts =
      "fsname=ferry,subtype=ferry,default_permissions,max_read=" + std::to_string(kMaxIoBytes);
  if (options.allow_other) opts += ",allow_other";
  if (options.read_only) opts += ",ro";
  std::vector<std::string> argv_s = {"ferryd", "-o", opts};
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  core->se = fuse_session_new(&args, &kOps, sizeof(kOps), core.get());
  fuse_opt_free_args(&args);  // the option parser may have copied argv
  if (core->se == nullptr) return InvalidArgument("fuse: libfuse refused the options " + opts);
  if (fuse_session_mount(core->se, options.mount_point.c_str()) != 0) {
    fuse_session_destroy(core->se);
    core->se = nullptr;
    return Unavailable("fuse: cannot mount " + options.mount_point +
                       " (root, /dev/fuse and the fuse kernel module are needed; libfuse said "
                       "why on stderr)");
  }
  core->mounted = true;
  const int fd = fuse_session_fd(core->se);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  core->ArmPoll();
  FERRY_LOG_INFO("fuse: devices as files under {}", options.mount_point);
  return std::unique_ptr<Mount>(new Mount(std::move(core)));
}

Mount::Mount(std::unique_ptr<Core> core) : core_(std::move(core)) {}

void Mount::Stop() {
  Core& c = *core_;
  if (c.stopped) return;
  c.stopped = true;
  if (c.poll_armed) c.reactor->CancelPoll(c.poll_id);
  c.poll_armed = false;
  for (auto& [id, job] : c.jobs) {
    if (auto j = job.lock()) j->Cancel();
  }
  fuse_session_exit(c.se);
  // Detached now (new opens fail), torn down when the last open file closes; the session
  // fd stays open until the requests in flight have been answered (~Mount).
  if (c.mounted && umount2(c.options.mount_point.c_str(), MNT_DETACH) != 0) {
    FERRY_LOG_WARN("fuse: unmounting {}: {}", c.options.mount_point, strerror(errno));
  }
  c.mounted = false;
  FERRY_LOG_INFO("fuse: {} unmounted", c.options.mount_point);
}

bool Mount::idle() const { return core_->in_flight == 0; }

Mount::~Mount() {
  Stop();
  Core& c = *core_;
  c.reactor->RunUntil([&] { return c.in_flight == 0; });
  // Closes the fd: the kernel fails what it still holds for this mount (ENOTCONN).
  fuse_session_destroy(c.se);
  free(c.buf.mem);
  for (auto& [ino, f] : c.by_ino) {
    if (f->on_remove) f->on_remove();
  }
}

Status Mount::Add(const std::string& name, std::shared_ptr<block::BlockDevice> dev,
                  std::function<void()> on_remove) {
  Core& c = *core_;
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return InvalidArgument("fuse: '" + name + "' cannot be a file name");
  }
  if (c.by_name.contains(name)) return AlreadyExists("fuse: " + name + " is already a file");
  auto f = std::make_shared<DeviceFile>();
  f->name = name;
  f->ino = c.next_ino++;
  f->read_only = c.options.read_only || dev->read_only();
  f->dev = std::move(dev);
  f->on_remove = std::move(on_remove);
  c.by_name[name] = f->ino;
  c.by_ino[f->ino] = std::move(f);
  return Status::Ok();
}

Status Mount::Remove(std::string_view name) {
  Core& c = *core_;
  auto it = c.by_name.find(name);
  if (it == c.by_name.end()) return NotFound("fuse: no file " + std::string(name));
  std::shared_ptr<DeviceFile> f = c.by_ino[it->second];
  if (f->open_handles > 0) {
    return FailedPrecondition("fuse: " + f->name + " is open (" + std::to_string(f->open_handles) +
                              " handles)");
  }
  c.by_ino.erase(f->ino);
  c.by_name.erase(it);
  if (f->on_remove) f->on_remove();
  f->on_remove = nullptr;
  return Status::Ok();
}

std::vector<FileInfo> Mount::Files() const {
  std::vector<FileInfo> out;
  for (const auto& [ino, f] : core_->by_ino) {
    const struct stat st = core_->Stat(*f);
    out.push_back({.name = f->name,
                   .size_bytes = static_cast<uint64_t>(st.st_size),
                   .block_size = f->dev->geometry().block_size,
                   .allocated_bytes = static_cast<uint64_t>(st.st_blocks) * 512,
                   .open_handles = f->open_handles,
                   .read_only = f->read_only});
  }
  return out;
}

MountStats Mount::stats() const { return core_->stats; }
const std::string& Mount::mount_point() const { return core_->options.mount_point; }
bool Mount::mounted() const { return core_->mounted; }

}  // namespace ferry::fuse
