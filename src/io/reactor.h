// The reactor: one event loop per core thread, built on io_uring.
//
// Contract
// - A Reactor belongs to the thread that constructed it; Reactor::Current() returns it on
//   that thread and nullptr on threads that have none. At most one reactor per thread.
// - Everything except Post() and Stop() must be called on the owning thread.
// - Post() is the cross-thread message: it queues a task that runs later on the owning
//   thread, never inline, in FIFO order per posting thread.
// - Timers, posted tasks and io_uring completions all run on the owning thread, one at a
//   time, so code that lives on one reactor needs no locks.
// - io_uring is used directly only here and in the file backend: other code posts tasks.
#pragma once

#include <liburing.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/inline_function.h"
#include "base/status.h"

namespace ferry::io {

using Task = InlineFunction<void(), 64>;

// An io_uring operation in flight: its address is the SQE's user_data, and `done` is called
// exactly once with the CQE's res (bytes or -errno) on the reactor thread. The owner keeps
// the object alive until then.
struct UringOp {
  InlineFunction<void(int32_t res), 48> done;
};

class Reactor {
 public:
  using Clock = std::chrono::steady_clock;
  using TimerId = uint64_t;

  struct Options {
    unsigned ring_entries = 256;
    std::string name = "reactor";
  };

  static Result<std::unique_ptr<Reactor>> Create(Options options);
  static Result<std::unique_ptr<Reactor>> Create() { return Create(Options{}); }
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // The reactor owned by the calling thread, or nullptr.
  static Reactor* Current();
  bool InOwnerThread() const { return std::this_thread::get_id() == owner_; }
  const std::string& name() const { return name_; }

  // Thread-safe. Runs `task` later on the owning thread (never inside this call).
  void Post(Task task);

  // Runs `task` on the owning thread after `delay`. Owner thread only.
  TimerId RunAfter(std::chrono::nanoseconds delay, Task task);
  // Cancels a pending timer; false when it already ran or never existed.
  bool CancelTimer(TimerId id);

  // Returns an SQE whose user_data is `op`; the caller prepares it with io_uring_prep_*
  // (without touching user_data). Submission happens at the next loop iteration. Never
  // returns nullptr: a full submission queue is flushed first. Owner thread only.
  io_uring_sqe* GetSqe(UringOp* op);

  // Asks the kernel to cancel an operation in flight: it completes with -ECANCELED (or
  // with its result, if it finished first). Owner thread only.
  void CancelOp(UringOp* op);

  // Waiting on a foreign file descriptor (a library's socket, e.g. libiscsi's).
  //
  // PollFd arms a ONE-SHOT poll (IORING_OP_POLL_ADD, never multishot, never a fixed file)
  // for `poll_mask` (POLLIN, POLLOUT, ...) on `fd`: `op->done` runs once, on the reactor
  // thread, with the ready events (a positive poll mask) or -errno. Re-arm after handling
  // the events. The kernel holds the file that `fd` named when the poll was armed, so an
  // owner that may swap the file under the same number (dup2 on reconnect) cancels and
  // re-arms after the swap.
  //
  // CancelPoll: after it returns, `op->done` is never called for that poll (its completion,
  // if any, is dropped). False when the poll already completed or never existed.
  //
  // Polls are not counted in uring_in_flight(): they wait for events, not for I/O that must
  // drain, so a reactor may stop with polls armed. A poll still armed when the reactor is
  // destroyed never completes. Owner thread only.
  using PollId = uint64_t;
  PollId PollFd(UringOp* op, int fd, uint32_t poll_mask);
  bool CancelPoll(PollId id);

  // Runs until Stop(). Owner thread only.
  void Run();
  // Run(), then lets in-flight io_uring work and posted tasks finish: the body of a thread
  // that owns the reactor, before the ring goes away.
  void RunAndDrain();
  // Thread-safe. Makes Run() return after the current iteration.
  void Stop();
  // One loop iteration: runs due timers, posted tasks and completions. With `block`, waits
  // for at least one event when nothing is ready. Returns the number of callbacks run.
  size_t RunOnce(bool block);
  // Runs iterations until `done()` is true (tests and synchronous tools).
  template <typename Pred>
  void RunUntil(Pred done) {
    while (!done()) RunOnce(true);
  }

  // Number of io_uring operations submitted and not yet completed.
  size_t uring_in_flight() const { return uring_in_flight_; }

 private:
  Reactor(std::string name);
  Status Init(unsigned ring_entries);
  void ArmWakeup();
  size_t RunTimers();
  size_t RunPosted();
  size_t ReapCompletions();
  void WaitForEvent();

  std::string name_;
  std::thread::id owner_;
  io_uring ring_{};
  bool ring_ready_ = false;
  int wake_fd_ = -1;
  uint64_t wake_buf_ = 0;
  UringOp wake_op_;
  size_t uring_in_flight_ = 0;
  // Armed polls: user_data is (id << 1) | 1, which no UringOp address is (they are
  // aligned), so a cancelled poll's late completion finds no entry and is dropped.
  PollId next_poll_id_ = 1;
  std::unordered_map<PollId, UringOp*> polls_;
  std::atomic<bool> stop_{false};

  std::mutex post_mu_;
  std::vector<Task> posted_;   // guarded by post_mu_
  bool wake_pending_ = false;  // guarded by post_mu_: an eventfd write is outstanding
  std::vector<Task> running_;  // owner thread: the batch being run

  TimerId next_timer_id_ = 1;
  std::multimap<Clock::time_point, TimerId> timer_order_;
  std::unordered_map<TimerId, std::pair<Clock::time_point, Task>> timers_;
};

// A reactor running on a thread of its own, for daemons and benchmarks.
// Runs `fn` on `reactor`'s thread (from another thread) and waits for it to return
// (control path only).
void RunSyncOn(Reactor* reactor, InlineFunction<void(), 64> fn);

class ReactorThread {
 public:
  explicit ReactorThread(Reactor::Options options = {});
  ~ReactorThread();  // stops and joins
  // The reactor, once the thread has created it. Never nullptr after construction.
  Reactor* reactor() const { return reactor_; }
  // Runs `fn` on the reactor thread and waits for it to return (control path only).
  void RunSync(InlineFunction<void(), 64> fn);

 private:
  std::thread thread_;
  std::unique_ptr<Reactor> owned_;
  Reactor* reactor_ = nullptr;
};

// One reactor thread per core (or `count`), each pinned to its CPU when `pin` is set.
// Daemons spread connections and devices over these; index 0 is the "control" reactor.
class ReactorGroup {
 public:
  // count 0: one per online CPU.
  explicit ReactorGroup(size_t count = 0, bool pin = true);
  ~ReactorGroup();  // stops and joins every thread
  size_t size() const { return threads_.size(); }
  Reactor* at(size_t i) const { return threads_[i]->reactor(); }
  // Round-robin choice for spreading work.
  Reactor* Next();

 private:
  std::vector<std::unique_ptr<ReactorThread>> threads_;
  std::atomic<size_t> next_{0};
};

}  // namespace ferry::io
