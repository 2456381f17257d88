#include "io/buffer_pool.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace ferry::io {
namespace {

TEST(BufferPoolTest, BoundedAlignedAndReused) {
  BufferPool pool(1000, 2);
  EXPECT_EQ(pool.buffer_bytes(), 4096u);
  PooledBuffer a = pool.Acquire();
  PooledBuffer b = pool.Acquire();
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % BufferPool::kAlignment, 0u);
  EXPECT_FALSE(pool.Acquire());
  EXPECT_EQ(pool.in_use(), 2u);
  std::byte* pa = a.data();
  a.Release();
  PooledBuffer c = pool.Acquire();
  EXPECT_EQ(c.data(), pa);
}

TEST(BufferPoolTest, WaiterRunsWhenBufferReturns) {
  auto r = Reactor::Create();
  ASSERT_TRUE(r.ok());
  BufferPool pool(4096, 1);
  PooledBuffer a = pool.Acquire();
  bool woke = false;
  pool.WaitForBuffer(r->get(), [&] { woke = true; });
  EXPECT_EQ((*r)->RunOnce(false), 0u);
  EXPECT_FALSE(woke);
  a = PooledBuffer();
  (*r)->RunUntil([&] { return woke; });
  EXPECT_TRUE(pool.Acquire());
}

}  // namespace
}  // namespace ferry::io
