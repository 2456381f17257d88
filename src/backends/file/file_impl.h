// Internals of the file backend shared by file_device.cc (open, I/O) and file_copy.cc
// (native copy). Not part of the backend's interface.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/file/file_device.h"
#include "base/inline_function.h"

namespace ferry::backends {

struct FileDevice::Impl {
  std::string name;
  std::string path;
  int fd = -1;
  bool direct = false;
  bool read_only = false;
  bool is_block = false;
  dev_t st_dev = 0;
  ino_t st_ino = 0;
  uint32_t fs_block_bytes = 4096;  // reflink alignment (st_blksize)
  // Cleared when the file system refuses FALLOC_FL_ZERO_RANGE: write-zeroes then punches
  // holes straight away instead of failing one fallocate per request. Any reactor thread.
  std::atomic<bool> zero_range_ok{true};
  block::Geometry geometry;
  block::QueueLimits limits;
  ~Impl();
};

// A few threads for the blocking calls io_uring does not offer (FICLONERANGE,
// copy_file_range, BLKDISCARD, BLKZEROOUT). Jobs complete by posting to a reactor.
class BlockingPool {
 public:
  using Job = InlineFunction<void(), 96>;
  static BlockingPool& Get();
  void Run(Job job);
  ~BlockingPool();

 private:
  BlockingPool();
  void Loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;  // guarded by mu_
  bool stop_ = false;     // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace ferry::backends
