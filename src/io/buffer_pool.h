// A bounded pool of aligned I/O buffers.
//
// Stacked targets and the copy engine take bounce buffers from a pool instead of allocating
// on the I/O path. Memory is bounded by buffer_bytes * max_buffers; buffers are allocated
// on first use and reused afterwards. All buffers are aligned for O_DIRECT.
//
// Thread-safe: Acquire() and release may happen on any thread. A waiter registered with
// WaitForBuffer() is posted to its reactor when a buffer comes back.
#pragma once

#include <cstddef>
#include <deque>
#include <mutex>
#include <span>
#include <vector>

#include "io/reactor.h"

namespace ferry::io {

class BufferPool;

// An owned buffer; returns itself to its pool when destroyed. Empty when the pool was
// exhausted.
class PooledBuffer {
 public:
  PooledBuffer() = default;
  PooledBuffer(PooledBuffer&& o) noexcept : pool_(o.pool_), data_(o.data_) {
    o.pool_ = nullptr;
    o.data_ = nullptr;
  }
  PooledBuffer& operator=(PooledBuffer&& o) noexcept;
  PooledBuffer(const PooledBuffer&) = delete;
  PooledBuffer& operator=(const PooledBuffer&) = delete;
  ~PooledBuffer() { Release(); }

  explicit operator bool() const { return data_ != nullptr; }
  std::byte* data() const { return data_; }
  size_t size() const;
  std::span<std::byte> span() const { return {data_, size()}; }
  void Release();

 private:
  friend class BufferPool;
  PooledBuffer(BufferPool* pool, std::byte* data) : pool_(pool), data_(data) {}
  BufferPool* pool_ = nullptr;
  std::byte* data_ = nullptr;
};

class BufferPool {
 public:
  static constexpr size_t kAlignment = 4096;

  // buffer_bytes is rounded up to kAlignment.
  BufferPool(size_t buffer_bytes, size_t max_buffers);
  ~BufferPool();  // all buffers must have been returned
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  size_t buffer_bytes() const { return buffer_bytes_; }
  size_t max_buffers() const { return max_buffers_; }
  size_t in_use() const;

  // A buffer, or an empty PooledBuffer when all max_buffers are in use.
  PooledBuffer Acquire();
  // Runs `task` on `reactor` once a buffer has been returned (it may be taken again by
  // someone else first: callers retry Acquire()). Runs soon if one is free already.
  void WaitForBuffer(Reactor* reactor, Task task);

 private:
  friend class PooledBuffer;
  void Return(std::byte* data);

  const size_t buffer_bytes_;
  const size_t max_buffers_;
  mutable std::mutex mu_;
  std::vector<std::byte*> free_;                   // guarded by mu_
  std::vector<std::byte*> all_;                    // guarded by mu_
  size_t in_use_ = 0;                              // guarded by mu_
  std::deque<std::pair<Reactor*, Task>> waiters_;  // guarded by mu_
};

}  // namespace ferry::io
