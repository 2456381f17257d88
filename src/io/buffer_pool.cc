#include "io/buffer_pool.h"

#include <cassert>
#include <cstdlib>

namespace ferry::io {

PooledBuffer& PooledBuffer::operator=(PooledBuffer&& o) noexcept {
  if (this != &o) {
    Release();
    pool_ = o.pool_;
    data_ = o.data_;
    o.pool_ = nullptr;
    o.data_ = nullptr;
  }
  return *this;
}

size_t PooledBuffer::size() const { return pool_ ? pool_->buffer_bytes() : 0; }

void PooledBuffer::Release() {
  if (pool_ != nullptr && data_ != nullptr) pool_->Return(data_);
  pool_ = nullptr;
  data_ = nullptr;
}

BufferPool::BufferPool(size_t buffer_bytes, size_t max_buffers)
    : buffer_bytes_((buffer_bytes + kAlignment - 1) / kAlignment * kAlignment),
      max_buffers_(max_buffers) {}

BufferPool::~BufferPool() {
  assert(in_use_ == 0 && "BufferPool destroyed with buffers outstanding");
  for (std::byte* p : all_) std::free(p);
}

size_t BufferPool::in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_use_;
}

PooledBuffer BufferPool::Acquire() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!free_.empty()) {
    std::byte* p = free_.back();
    free_.pop_back();
    ++in_use_;
    return PooledBuffer(this, p);
  }
  if (all_.size() >= max_buffers_) return PooledBuffer();
  auto* p = static_cast<std::byte*>(std::aligned_alloc(kAlignment, buffer_bytes_));
  if (p == nullptr) return PooledBuffer();
  all_.push_back(p);
  ++in_use_;
  return PooledBuffer(this, p);
}

void BufferPool::WaitForBuffer(Reactor* reactor, Task task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_use_ >= max_buffers_) {
      waiters_.emplace_back(reactor, std::move(task));
      return;
    }
  }
  reactor->Post(std::move(task));
}

void BufferPool::Return(std::byte* data) {
  std::pair<Reactor*, Task> waiter;
  {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(data);
    --in_use_;
    if (waiters_.empty()) return;
    waiter = std::move(waiters_.front());
    waiters_.pop_front();
  }
  waiter.first->Post(std::move(waiter.second));
}

}  // namespace ferry::io
