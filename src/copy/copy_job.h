// One copy in flight: offload legs and emulated chunks, driven on the engine's reactor.
//
// Internal to the copy engine (engine.cc creates jobs). Everything except Cancel() and
// progress() runs on the engine's reactor thread, so the job needs no locks; the counters
// users may read from other threads are atomics.
#pragma once

#include <array>
#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "copy/plan.h"
#include "copy/throttle.h"
#include "ferry/copy.h"
#include "io/buffer_pool.h"
#include "io/reactor.h"

namespace ferry::copy {

// What jobs share: the engine's reactor, options, bounce buffers and throttle.
struct EngineShared {
  io::Reactor* reactor;
  EngineOptions options;
  io::BufferPool pool;
  TokenBucket bucket;
};

class Job : public CopyJob, public std::enable_shared_from_this<Job> {
 public:
  using FinishedFn = InlineFunction<void(Job*), 32>;
  Job(EngineShared* shared, CopyDescriptor desc, CopyDoneFn done, FinishedFn finished);
  ~Job() override;

  // Plans and starts the copy. Reactor thread, called from a posted task (never inside
  // CopyEngine::Submit), so completion is never inline.
  void Start();

  void Cancel() override;
  CopyCounters progress() const override;

 private:
  // A stretch of the stream to emulate, for the destinations in `mask`.
  struct EmuRange {
    uint64_t stream_offset;
    uint64_t src_byte;
    std::array<uint64_t, kMaxDestinations> dst_byte;
    uint64_t len;
    uint32_t mask;
    bool backward;  // memmove towards higher addresses on one device: last chunk first
  };
  // One emulated chunk in flight: one read, then a write per destination in `mask`.
  struct Chunk {
    bool busy = false;
    io::PooledBuffer buf;
    iovec iov{};
    block::IoRequest read;
    std::array<block::IoRequest, kMaxDestinations> writes;
    uint64_t stream_offset = 0;
    uint64_t src_byte = 0;
    std::array<uint64_t, kMaxDestinations> dst_byte{};
    uint64_t len = 0;
    uint32_t mask = 0;
    int pending_writes = 0;
  };
  // One native copy leg into destination `dst`.
  struct Leg {
    size_t dst = 0;
    std::vector<block::CopySegment> segments;
    std::vector<uint64_t> stream_offsets;  // of each segment
    uint64_t bytes = 0;
    block::CopyLegRequest req;
  };

  void Plan(const std::vector<Piece>& pieces);
  void PlanLegs(size_t k, const std::vector<Piece>& pieces, std::vector<uint32_t>* emu_mask);
  void Pump();
  bool Throttled(uint64_t bytes);
  bool HasEmuWork() const { return emu_next_ < emu_.size(); }
  void IssueLeg();
  void OnLeg(Leg* leg, IoStatus st);
  bool IssueChunk();
  void OnRead(Chunk* c, IoStatus st);
  void OnWrite(Chunk* c, size_t k, IoStatus st);
  void ReleaseChunk(Chunk* c);
  void Fail(RangeError e);
  void AddNote(std::string note);
  void Count(block::CopyMechanism m, uint64_t bytes);
  void MaybeFinish();

  EngineShared* const shared_;
  CopyDescriptor desc_;
  CopyDoneFn done_;
  FinishedFn finished_fn_;
  const uint64_t total_bytes_;  // per destination times destinations
  uint64_t chunk_bytes_ = 0;

  std::deque<Leg> legs_;  // stable addresses: requests point into them
  size_t next_leg_ = 0;
  uint32_t legs_in_flight_ = 0;
  std::vector<EmuRange> emu_;
  size_t emu_next_ = 0;
  uint64_t emu_issued_ = 0;  // bytes of emu_[emu_next_] already issued
  std::vector<Chunk> chunks_;
  uint32_t chunks_in_flight_ = 0;
  uint32_t max_legs_in_flight_ = 1;

  bool started_ = false;
  bool stopping_ = false;
  bool finished_ = false;
  bool waiting_for_buffer_ = false;
  io::Reactor::TimerId throttle_timer_ = 0;
  IoStatus status_ = IoStatus::kOk;
  std::vector<RangeError> errors_;
  std::vector<std::string> notes_;

  std::atomic<bool> cancel_requested_{false};
  std::atomic<uint64_t> done_bytes_{0};
  std::atomic<uint64_t> offloaded_bytes_{0};
  std::atomic<uint64_t> emulated_bytes_{0};
  std::array<std::atomic<uint64_t>, kNumMechanisms> by_mechanism_{};
};

}  // namespace ferry::copy
