// The C++ core of libferry (include/ferry/ferry.h): a context owns a reactor thread, the
// copy engine on it, the devices opened through it and the copies in flight. The C
// functions in ferry.cc only check arguments and translate structures.
//
// Threads. Every method may be called from any thread except the context's reactor thread
// (which only the library's own code runs on); state shared with that thread is guarded by
// `mu_`. Devices are opened, used and destroyed on the reactor thread, because backends
// bind their I/O (io_uring, iSCSI sessions) to the reactor they run on.
//
// Errors. Methods return 0 or a negative errno and set the calling thread's message
// (lib/error.h); the message always names the device, range or option at fault.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backends/backend_type.h"
#include "base/inline_function.h"
#include "ferry/copy.h"
#include "ferry/ferry.h"

namespace ferry::io {
class Reactor;
}
namespace ferry::api {
class Context;
}

// A device opened through a context (ferry_dev in the C API).
struct ferry_dev {
  ferry::api::Context* ctx = nullptr;
  std::shared_ptr<ferry::block::BlockDevice> dev;
  std::string uri;
  int copies_in_flight = 0;  // guarded by the context's mu_
};

namespace ferry::api {

// Byte counts of a copy in the C API's terms.
struct CopyStats {
  uint64_t total = 0;
  uint64_t done = 0;
  uint64_t offloaded = 0;
  uint64_t emulated = 0;
  std::string mechanism;  // "" before any byte moved
};

struct Completion {
  uint64_t cookie = 0;
  void* user_data = nullptr;
  int result = 0;  // 0 or -errno
  CopyStats stats;
};

struct ContextOptions {
  uint64_t chunk_bytes = 1u << 20;
  uint32_t queue_depth = 8;
  uint64_t throttle_bytes_per_sec = 0;
};

// A copy from submission until it is reaped. Fields other than the immutable ones are
// guarded by the context's mu_.
struct CopyRecord {
  uint64_t cookie = 0;
  void* user_data = nullptr;
  uint32_t flags = 0;
  ferry_dev* src = nullptr;
  ferry_dev* dst = nullptr;
  uint64_t total_bytes = 0;
  // The destination the engine writes: dst->dev, or a NoFallbackDevice over it.
  std::shared_ptr<block::BlockDevice> engine_dst;
  std::shared_ptr<copy::CopyJob> job;
  bool cancel_requested = false;
  bool done = false;
  int result = 0;
  copy::CopyCounters final_counters;
  block::IoRequest flush;  // FERRY_COPY_FUA, reactor thread only
};

class Context {
 public:
  // Starts the reactor thread, the engine and the eventfd; nullptr and the message set on
  // failure (*err: the negative errno).
  static std::unique_ptr<Context> Create(const ContextOptions& options, int* err);
  // Cancels and drains the copies in flight, closes the devices, stops the thread.
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  int event_fd() const { return event_fd_; }

  int Open(const std::string& uri, uint32_t flags, ferry_dev** out);
  int Close(ferry_dev* dev);
  int Flush(ferry_dev* dev);

  int Submit(ferry_dev* src, ferry_dev* dst, std::span<const ferry_range> ranges, uint32_t flags,
             void* user_data, uint64_t* cookie);
  int Progress(uint64_t cookie, CopyStats* out);
  int Cancel(uint64_t cookie);
  // Completions in completion order (ferry_reap's rules); the count, or a negative errno.
  int Reap(std::vector<Completion>* out, size_t min, size_t max, int timeout_ms);

 private:
  Context() = default;
  int Start(const ContextOptions& options);
  // Runs `fn` on the reactor thread and waits for it (control path).
  void RunSync(InlineFunction<void(), 64> fn);
  int CheckRanges(const ferry_dev* src, const ferry_dev* dst, std::span<const ferry_range> ranges,
                  uint32_t flags);
  copy::CopyDescriptor Describe(CopyRecord& rec, std::span<const ferry_range> ranges);
  // Reactor thread: the engine's completion, then the FUA flush, then Finish.
  void OnCopyDone(CopyRecord* rec, copy::CopyResult result);
  void Finish(CopyRecord* rec, int result);

  std::thread thread_;
  io::Reactor* reactor_ = nullptr;  // owned by thread_
  std::unique_ptr<copy::CopyEngine> engine_;
  backends::BackendContext backend_context_;
  int event_fd_ = -1;

  std::mutex mu_;
  std::condition_variable cv_;  // a copy completed
  uint64_t next_cookie_ = 1;
  size_t in_flight_ = 0;
  std::unordered_map<uint64_t, std::unique_ptr<CopyRecord>> copies_;
  std::deque<uint64_t> completed_;  // cookies in completion order
  std::unordered_map<ferry_dev*, std::unique_ptr<ferry_dev>> devices_;
};

// The C API's name of the mechanism that moved most bytes ("" when none moved yet).
std::string DominantMechanism(const copy::CopyCounters& c);

}  // namespace ferry::api
