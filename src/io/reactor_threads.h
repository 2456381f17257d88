// Reactors on threads of their own: one event loop per core for work that spreads out
// (iSCSI connections). Each reactor is created on its thread (a reactor belongs to the
// thread that made it) and runs until the pool is destroyed.
//
// Contract: Post() work to at(i); everything else about a reactor stays on its thread.
// Destroying the pool stops every reactor after its current iteration and joins the
// threads: whatever is still posted then never runs, so owners drain their work first
// (e.g. iscsi::Server::idle()).
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "io/reactor.h"

namespace ferry::io {

class ReactorThreads {
 public:
  // `count` threads named "<name>-<i>" (count may be 0).
  static Result<std::unique_ptr<ReactorThreads>> Start(size_t count, const std::string& name);
  ~ReactorThreads();
  ReactorThreads(const ReactorThreads&) = delete;
  ReactorThreads& operator=(const ReactorThreads&) = delete;

  size_t size() const { return reactors_.size(); }
  Reactor* at(size_t i) const { return reactors_[i]; }

 private:
  ReactorThreads() = default;
  std::vector<std::thread> threads_;
  std::vector<Reactor*> reactors_;
};

}  // namespace ferry::io
