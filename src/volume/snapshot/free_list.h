// Internal: a per-thread free list, so that steady-state snapshot I/O reuses its request
// contexts instead of allocating (STYLE.md: no `new` on the I/O path once warm). An object
// taken on one thread may be returned on another; each list is bounded.
#pragma once

#include <memory>
#include <vector>

namespace ferry::volume::snapshot {

template <typename T>
class FreeList {
 public:
  static T* Take() {
    auto& list = List();
    if (list.empty()) return new T;
    T* t = list.back().release();
    list.pop_back();
    return t;
  }
  // `t` must be reset by the caller (its callbacks and references dropped).
  static void Give(T* t) {
    auto& list = List();
    if (list.size() >= kMax) {
      delete t;
      return;
    }
    list.emplace_back(t);
  }

 private:
  static constexpr size_t kMax = 1024;
  static std::vector<std::unique_ptr<T>>& List() {
    thread_local std::vector<std::unique_ptr<T>> list;
    return list;
  }
};

}  // namespace ferry::volume::snapshot
