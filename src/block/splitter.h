// Request splitting: submit a request of any size to a device with limits.
//
// SubmitSplit(dev, req) has the completion contract of BlockDevice::Submit (exactly once,
// never inside the call, on the submitting reactor; the caller owns `req` and its buffers
// until then) but accepts requests larger than the device's QueueLimits:
// - reads and writes are cut at max_io_bytes and max_iovecs; iovecs are cut at block
//   boundaries (and at buffer_alignment when that is larger than a block), so every child
//   passes ValidateRequest;
// - discards are cut at max_discard_bytes (0: the request completes kNotSupported);
// - write-zeroes are cut at max_write_zeroes_bytes; when that is 0 they are emulated by
//   writes from one shared, read-only zero buffer (so zeroes cost no memory per request);
// - flush is passed through;
// - a child that completes kNoResources is resubmitted after a reactor timer with bounded
//   exponential backoff; after `give_up_after` of waiting it counts as kNoResources.
//
// The request is checked like ValidateRequest except for its size (max_io_bytes,
// max_iovecs) before anything is submitted. A read or write whose iovecs are so small that
// one block spans more than max_iovecs of them cannot be cut and completes kInvalid.
//
// Result. kOk when every child succeeded; otherwise the status of the failed child with the
// lowest LBA. After the first failure no further children are issued (the range above it
// is left partly done, which the error makes visible), and the parent completes when the
// children already in flight have completed.
//
// Memory. At most `max_in_flight` children are outstanding per request. Each call takes one
// context from a per-thread free list (a heap allocation only when the list is empty or a
// request needs more child iovecs than the reused context holds), so steady-state I/O does
// not allocate except for retry timers.
#pragma once

#include <chrono>
#include <cstdint>

#include "ferry/block_device.h"

namespace ferry::block {

struct SplitOptions {
  uint32_t max_in_flight = 8;  // children outstanding per request, >= 1
  std::chrono::microseconds first_backoff{50};
  std::chrono::microseconds max_backoff{10'000};
  std::chrono::microseconds give_up_after{1'000'000};  // total backoff per child
};

void SubmitSplit(BlockDevice& dev, IoRequest& req, const SplitOptions& options);
inline void SubmitSplit(BlockDevice& dev, IoRequest& req) { SubmitSplit(dev, req, SplitOptions{}); }

// Bytes of the shared zero buffer used to emulate write-zeroes; its address is aligned to
// kZeroBufferAlignment. Exposed for tests.
inline constexpr uint64_t kZeroBufferBytes = 1u << 20;
inline constexpr uint64_t kZeroBufferAlignment = 64u << 10;

}  // namespace ferry::block
