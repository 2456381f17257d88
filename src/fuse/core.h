// The inside of a Mount (server.h), shared by the session code (server.cc), the metadata
// operations (meta_ops.cc) and the data operations (data_ops.cc, copy_op.cc). Reactor thread only.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <map>
#include <memory>
#include <string>

#include "ferry/block_device.h"
#include "ferry/copy.h"
#include "fuse/server.h"
#include "io/buffer_pool.h"
#include "io/reactor.h"
#include "scsi/range_lock.h"

namespace ferry::fuse {

// Reads and writes are at most this long (the max_read mount option and the max_write
// INIT answer); a pooled buffer also holds the two partial blocks around an unaligned one.
inline constexpr uint64_t kMaxIoBytes = 1u << 20;
inline constexpr uint64_t kMaxBlockBytes = 64u << 10;
inline constexpr size_t kBufferBytes = kMaxIoBytes + 2 * kMaxBlockBytes;
inline constexpr size_t kMaxBuffers = 32;
// Provisioning runs looked at for one st_blocks (fuse_map.h AllocatedBytes).
inline constexpr uint32_t kMaxProvisioningRuns = 1u << 16;

struct DeviceFile {
  std::string name;
  fuse_ino_t ino = 0;
  std::shared_ptr<block::BlockDevice> dev;
  std::function<void()> on_remove;
  int open_handles = 0;
  bool read_only = false;
  // Every write through the mount holds its blocks until it completes (data_ops.cc), so that
  // a write off the device's blocks reads, merges and writes them with no other write of the
  // mount in between: programs writing different bytes of one block all land.
  scsi::RangeLock writes;
};

struct Core {
  io::Reactor* reactor = nullptr;
  MountOptions options;
  fuse_session* se = nullptr;
  fuse_buf buf{};  // the request being decoded (libfuse reuses its memory)
  io::UringOp poll_op;
  io::Reactor::PollId poll_id = 0;
  bool poll_armed = false;
  bool mounted = false;
  bool stopped = false;
  size_t in_flight = 0;  // requests whose answer waits for I/O or a copy
  std::map<fuse_ino_t, std::shared_ptr<DeviceFile>> by_ino;
  std::map<std::string, fuse_ino_t, std::less<>> by_name;
  fuse_ino_t next_ino = FUSE_ROOT_ID + 1;
  io::BufferPool pool{kBufferBytes, kMaxBuffers};
  std::unique_ptr<copy::CopyEngine> engine;
  std::map<uint64_t, std::weak_ptr<copy::CopyJob>> jobs;  // copies in flight, by sequence
  uint64_t next_job = 1;
  MountStats stats;
  struct timespec started {};

  std::shared_ptr<DeviceFile> Find(fuse_ino_t ino) const {
    auto it = by_ino.find(ino);
    return it == by_ino.end() ? nullptr : it->second;
  }
  struct stat Stat(const DeviceFile& f) const;
  struct stat RootStat() const;
  void ArmPoll();
  void OnReadable(int32_t res);
};

// The low-level operations, registered in server.cc.
void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name);
void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void OpRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void OpStatfs(fuse_req_t req, fuse_ino_t ino);
void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi);
void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void OpWrite(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off,
             fuse_file_info* fi);
void OpFsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
void OpFallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                 fuse_file_info* fi);
void OpLseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info* fi);
void OpCopyFileRange(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, fuse_file_info* fi_in,
                     fuse_ino_t ino_out, off_t off_out, fuse_file_info* fi_out, size_t len,
                     int flags);

// Zeroes [off, off + len) of `f`: by discard when `may_discard` and the device reads
// discarded blocks as zeroes (a refused discard becomes write-zeroes), else by write-zeroes;
// `done` runs on the reactor with the status.
void ZeroRange(Core& c, const std::shared_ptr<DeviceFile>& f, uint64_t off, uint64_t len,
               bool may_discard, std::function<void(IoStatus)> done);

inline Core& CoreOf(fuse_req_t req) { return *static_cast<Core*>(fuse_req_userdata(req)); }

}  // namespace ferry::fuse
