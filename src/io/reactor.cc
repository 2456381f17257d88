#include "io/reactor.h"

#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <future>

#include "base/log.h"

namespace ferry::io {
namespace {
thread_local Reactor* t_current = nullptr;
}  // namespace

Reactor* Reactor::Current() { return t_current; }

Reactor::Reactor(std::string name) : name_(std::move(name)), owner_(std::this_thread::get_id()) {}

Result<std::unique_ptr<Reactor>> Reactor::Create(Options options) {
  if (t_current != nullptr) {
    return FailedPrecondition("thread already owns reactor '" + t_current->name() + "'");
  }
  std::unique_ptr<Reactor> r(new Reactor(options.name));
  FERRY_RETURN_IF_ERROR(r->Init(options.ring_entries));
  t_current = r.get();
  return r;
}

Status Reactor::Init(unsigned ring_entries) {
  io_uring_params params{};
  params.flags = IORING_SETUP_CQSIZE;
  params.cq_entries = ring_entries * 4;
  int rc = io_uring_queue_init_params(ring_entries, &ring_, &params);
  if (rc < 0) return ErrnoStatus(-rc, "io_uring_queue_init");
  ring_ready_ = true;
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) return ErrnoStatus(errno, "eventfd");
  wake_op_.done = [this](int32_t res) {
    if (res < 0 && res != -EINTR && res != -ECANCELED) {
      FERRY_LOG_ERROR("reactor {}: eventfd read failed: {}", name_, res);
    }
    {
      std::lock_guard<std::mutex> lock(post_mu_);
      wake_pending_ = false;
    }
    if (res != -ECANCELED) ArmWakeup();
  };
  ArmWakeup();
  return Status::Ok();
}

Reactor::~Reactor() {
  // Drop pending timers and posted tasks: their owners are being torn down with us.
  timers_.clear();
  timer_order_.clear();
  posted_.clear();
  polls_.clear();
  if (ring_ready_) io_uring_queue_exit(&ring_);
  {
    std::lock_guard<std::mutex> lock(post_mu_);  // a Post() still writing its wakeup (Post)
  }
  if (wake_fd_ >= 0) close(wake_fd_);
  if (t_current == this) t_current = nullptr;
}

void Reactor::ArmWakeup() {
  io_uring_sqe* sqe = GetSqe(&wake_op_);
  io_uring_prep_read(sqe, wake_fd_, &wake_buf_, sizeof(wake_buf_), 0);
  --uring_in_flight_;  // the wakeup read is not caller I/O
}

// The wakeup is written under the lock: once the task is queued, the reactor may run it and
// be destroyed (its owner waited for that task), and the destructor closes the eventfd only
// after taking the lock, so a poster never writes to a closed (or reused) descriptor.
void Reactor::Post(Task task) {
  std::lock_guard<std::mutex> lock(post_mu_);
  posted_.push_back(std::move(task));
  if (wake_pending_) return;
  wake_pending_ = true;
  uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  (void)n;  // eventfd writes of 1 only fail on counter overflow, which cannot happen here
}

Reactor::TimerId Reactor::RunAfter(std::chrono::nanoseconds delay, Task task) {
  TimerId id = next_timer_id_++;
  auto when = Clock::now() + delay;
  timer_order_.emplace(when, id);
  timers_.emplace(id, std::make_pair(when, std::move(task)));
  return id;
}

bool Reactor::CancelTimer(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return false;
  auto range = timer_order_.equal_range(it->second.first);
  for (auto o = range.first; o != range.second; ++o) {
    if (o->second == id) {
      timer_order_.erase(o);
      break;
    }
  }
  timers_.erase(it);
  return true;
}

io_uring_sqe* Reactor::GetSqe(UringOp* op) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    int rc = io_uring_submit(&ring_);
    if (rc < 0 && rc != -EAGAIN && rc != -EBUSY && rc != -EINTR) {
      FERRY_LOG_ERROR("reactor {}: io_uring_submit failed: {}", name_, rc);
      std::abort();  // the ring is unusable; nothing sensible can continue
    }
    if (rc <= 0) ReapCompletions();
    sqe = io_uring_get_sqe(&ring_);
  }
  io_uring_sqe_set_data(sqe, op);
  ++uring_in_flight_;
  return sqe;
}

void Reactor::CancelOp(UringOp* op) {
  io_uring_sqe* sqe = GetSqe(nullptr);
  --uring_in_flight_;  // the cancel request itself is not caller I/O; its CQE is skipped
  io_uring_prep_cancel(sqe, op, 0);
  io_uring_sqe_set_data(sqe, nullptr);
}

Reactor::PollId Reactor::PollFd(UringOp* op, int fd, uint32_t poll_mask) {
  PollId id = next_poll_id_++;
  polls_.emplace(id, op);
  io_uring_sqe* sqe = GetSqe(nullptr);
  --uring_in_flight_;  // polls wait for events, they are not I/O that must drain
  io_uring_prep_poll_add(sqe, fd, poll_mask);
  io_uring_sqe_set_data64(sqe, (id << 1) | 1);
  return id;
}

bool Reactor::CancelPoll(PollId id) {
  if (polls_.erase(id) == 0) return false;
  io_uring_sqe* sqe = GetSqe(nullptr);
  --uring_in_flight_;
  io_uring_prep_poll_remove(sqe, (id << 1) | 1);
  io_uring_sqe_set_data(sqe, nullptr);
  return true;
}

size_t Reactor::RunTimers() {
  size_t n = 0;
  auto now = Clock::now();
  while (!timer_order_.empty() && timer_order_.begin()->first <= now) {
    TimerId id = timer_order_.begin()->second;
    timer_order_.erase(timer_order_.begin());
    auto it = timers_.find(id);
    Task task = std::move(it->second.second);
    timers_.erase(it);
    task();
    ++n;
  }
  return n;
}

size_t Reactor::RunPosted() {
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    if (posted_.empty()) return 0;
    running_.swap(posted_);
  }
  size_t n = running_.size();
  for (auto& t : running_) t();
  running_.clear();
  return n;
}

size_t Reactor::ReapCompletions() {
  size_t n = 0;
  io_uring_cqe* cqe;
  // Copy out before calling back: a callback may submit and reap recursively.
  while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
    uint64_t data = io_uring_cqe_get_data64(cqe);
    int32_t res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    if (data & 1) {  // a poll (PollFd); absent when cancelled
      auto it = polls_.find(data >> 1);
      if (it == polls_.end()) continue;
      UringOp* poll_op = it->second;
      polls_.erase(it);
      poll_op->done(res);
      ++n;
      continue;
    }
    auto* op = reinterpret_cast<UringOp*>(static_cast<uintptr_t>(data));
    if (op == nullptr) continue;
    if (op != &wake_op_) --uring_in_flight_;
    op->done(res);
    ++n;
  }
  return n;
}

void Reactor::WaitForEvent() {
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    if (!posted_.empty()) return;
  }
  io_uring_cqe* cqe = nullptr;
  if (timer_order_.empty()) {
    io_uring_submit_and_wait(&ring_, 1);
    return;
  }
  auto delay = timer_order_.begin()->first - Clock::now();
  if (delay <= Clock::duration::zero()) return;
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(delay).count();
  __kernel_timespec ts{};
  ts.tv_sec = ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  io_uring_submit(&ring_);
  io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
}

size_t Reactor::RunOnce(bool block) {
  size_t n = RunTimers();
  n += RunPosted();
  io_uring_submit(&ring_);
  n += ReapCompletions();
  if (n == 0 && block) {
    WaitForEvent();
    n += RunTimers();
    n += ReapCompletions();
    n += RunPosted();
  }
  return n;
}

void Reactor::Run() {
  stop_.store(false);
  while (!stop_.load(std::memory_order_relaxed)) RunOnce(true);
}

void Reactor::RunAndDrain() {
  Run();
  while (uring_in_flight() > 0) RunOnce(true);
  while (RunOnce(false) > 0) {
  }
}

void Reactor::Stop() {
  stop_.store(true);
  Post([] {});  // wake the loop so it sees the flag
}

ReactorThread::ReactorThread(Reactor::Options options) {
  std::promise<std::unique_ptr<Reactor>> ready;
  auto fut = ready.get_future();
  // The thread owns the promise (it may still be inside set_value() when get() returns);
  // this object owns the reactor, and destroys it only after the thread has ended:
  // Stop() from another thread must never race with the reactor's destruction.
  thread_ = std::thread([options = std::move(options), ready = std::move(ready)]() mutable {
    auto r = Reactor::Create(options);
    if (!r.ok()) {
      FERRY_LOG_ERROR("cannot start reactor thread: {}", r.status().ToString());
      std::abort();
    }
    Reactor* reactor = r->get();
    ready.set_value(std::move(r).value());
    reactor->RunAndDrain();
  });
  owned_ = fut.get();
  reactor_ = owned_.get();
}

ReactorThread::~ReactorThread() {
  reactor_->Stop();
  thread_.join();
  owned_.reset();  // the thread is gone: nothing else touches the reactor now
}

void RunSyncOn(Reactor* reactor, InlineFunction<void(), 64> fn) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  auto* fnp = &fn;
  reactor->Post([fnp, &mu, &cv, &done] {
    (*fnp)();
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
}

void ReactorThread::RunSync(InlineFunction<void(), 64> fn) { RunSyncOn(reactor_, std::move(fn)); }

ReactorGroup::ReactorGroup(size_t count, bool pin) {
  unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  if (count == 0) count = cpus;
  for (size_t i = 0; i < count; ++i) {
    threads_.push_back(
        std::make_unique<ReactorThread>(Reactor::Options{.name = "reactor-" + std::to_string(i)}));
    if (pin) {
      size_t cpu = i % cpus;
      threads_.back()->RunSync([cpu] {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        // Pinning is an optimisation: a restricted cpuset (containers) may refuse it.
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
      });
    }
  }
}

ReactorGroup::~ReactorGroup() {
  // Destroy in reverse so reactor 0 (control) outlives the others.
  while (!threads_.empty()) threads_.pop_back();
}

Reactor* ReactorGroup::Next() {
  return threads_[next_.fetch_add(1, std::memory_order_relaxed) % threads_.size()]->reactor();
}

}  // namespace ferry::io
