#include "io/reactor_threads.h"

#include <pthread.h>

#include <future>

namespace ferry::io {

Result<std::unique_ptr<ReactorThreads>> ReactorThreads::Start(size_t count,
                                                              const std::string& name) {
  std::unique_ptr<ReactorThreads> pool(new ReactorThreads());
  for (size_t i = 0; i < count; ++i) {
    std::promise<Result<Reactor*>> made;
    std::future<Result<Reactor*>> ready = made.get_future();
    const std::string thread_name = name + "-" + std::to_string(i + 1);
    // The thread owns the promise: it may still be inside set_value() when get() returns.
    pool->threads_.emplace_back([made = std::move(made), thread_name]() mutable {
      pthread_setname_np(pthread_self(), thread_name.substr(0, 15).c_str());
      auto r = Reactor::Create({.name = thread_name});
      if (!r.ok()) return made.set_value(r.status());
      std::unique_ptr<Reactor> reactor = std::move(r).value();
      made.set_value(reactor.get());
      reactor->Run();
    });
    Result<Reactor*> r = ready.get();
    if (!r.ok()) {
      pool->threads_.back().join();
      pool->threads_.pop_back();
      return r.status();  // the destructor stops and joins the others
    }
    pool->reactors_.push_back(*r);
  }
  return pool;
}

ReactorThreads::~ReactorThreads() {
  for (Reactor* r : reactors_) r->Stop();
  for (std::thread& t : threads_) t.join();
}

}  // namespace ferry::io
