// ferryd's FUSE mount: chosen devices (backstores and volumes) as regular files in one
// directory, so that ordinary programs read, write and copy them. docs/fuse.md is the user's
// page.
//
// Threads. A Mount lives on one reactor (ferryd's main one): libfuse's low-level session fd
// is polled there, each request is decoded and answered on that thread, and device I/O and
// copies are submitted there and complete there. Nothing blocks the reactor: a request
// whose I/O is in flight is answered from its completion (fuse_reply_* later). Every method
// of Mount is called on that reactor.
//
// Semantics, the reasons in docs/fuse.md:
// - files are opened FOPEN_DIRECT_IO: no page cache, every read and write goes to the device,
//   so the mount and iSCSI initiators of the same devices see each other's writes;
// - copy_file_range between two files of the mount is one request to Ferry's copy engine
//   (which offloads it: thin sharing, reflink, remote XCOPY/ODX, or emulates it);
// - st_blocks, SEEK_DATA and SEEK_HOLE come from the device's provisioning; fallocate
//   PUNCH_HOLE discards, ZERO_RANGE writes zeroes, fsync flushes; a file's size is its
//   device's and never changes (truncating below it zeroes the rest, fuse_map.h).
//
// Lifetime. Start mounts (a stale mount of a crashed ferryd at the same place is detached
// first, a live one refuses). Stop detaches the mount at once (MNT_DETACH) and stops reading
// requests; the destructor waits for the requests in flight, then closes the session, which
// fails whatever the kernel still holds (a writer blocked on the mount gets ENOTCONN).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "ferry/block_device.h"
#include "ferry/copy.h"

namespace ferry::io {
class Reactor;
}

namespace ferry::fuse {

struct MountOptions {
  std::string mount_point;      // an existing directory
  bool allow_other = false;     // users other than ferryd's may use the files (modes still apply)
  bool read_only = false;       // every file read-only
  uint64_t copy_bandwidth = 0;  // bytes per second all copy_file_range share; 0: no cap
};

struct FileInfo {
  std::string name;
  uint64_t size_bytes = 0;
  uint32_t block_size = 0;
  uint64_t allocated_bytes = 0;  // st_blocks * 512
  int open_handles = 0;
  bool read_only = false;
};

// Counters since Start.
struct MountStats {
  uint64_t reads = 0, writes = 0, read_bytes = 0, written_bytes = 0;
  uint64_t copies = 0;           // copy_file_range requests run by the copy engine
  uint64_t copies_declined = 0;  // answered EOPNOTSUPP: the kernel copied by read and write
  uint64_t copies_failed = 0;
  uint64_t bytes_offloaded = 0, bytes_emulated = 0;
  std::array<uint64_t, copy::kNumMechanisms> by_mechanism{};  // index: block::CopyMechanism
  uint64_t discards = 0, write_zeroes = 0, flushes = 0;
};

struct Core;

class Mount {
 public:
  static Result<std::unique_ptr<Mount>> Start(io::Reactor* reactor, MountOptions options);
  ~Mount();
  Mount(const Mount&) = delete;
  Mount& operator=(const Mount&) = delete;

  // Shows `dev` as the file `name` (a device name: no '/'). `on_remove` runs once when the
  // file goes (Remove, or the mount's end): a volume's holder count is released there.
  // AlreadyExists for a name in use.
  Status Add(const std::string& name, std::shared_ptr<block::BlockDevice> dev,
             std::function<void()> on_remove);
  // NotFound, or FailedPrecondition while the file is open.
  Status Remove(std::string_view name);
  std::vector<FileInfo> Files() const;
  MountStats stats() const;
  const std::string& mount_point() const;
  // False once the mount is gone: stopped, or unmounted from outside (then ferryd logs it).
  bool mounted() const;

  // Detaches the mount and stops taking requests. Idempotent.
  void Stop();
  // No request in flight (after Stop: the destructor will not wait).
  bool idle() const;

 private:
  explicit Mount(std::unique_ptr<Core> core);
  std::unique_ptr<Core> core_;
};

}  // namespace ferry::fuse
