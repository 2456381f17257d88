// One copy in flight (internal to the copy engine; engine.cc creates jobs).
//
// A job has three kinds of work, all issued from Pump() on the engine's reactor:
// - legs: native copies into one destination leaf device (offload.cc), up to queue_depth in
//   flight;
// - the parallel lane: emulated chunks of pieces that commute with every other piece
//   (plan.h, FindHazards), up to queue_depth chunks in flight, one read and a write per
//   destination that needs the chunk (emulate.cc);
// - the ordered lane: emulated chunks of pieces that overlap other ranges on the same
//   device, one chunk at a time in stream order, from the end of a piece whose destination
//   lies above its source (memmove).
// Both lanes share the job's queue_depth chunk slots and the engine's buffer pool.
//
// Pins (pins.cc). The job holds the PinSet of its translation (translate.h) until it
// completes. Work of translated pieces is issued only while the pins are valid; once they
// are not (a suspend deadline asked for them back), the job issues no more of it, drops
// the pins when none is in flight, and retargets the rest onto the descriptor's devices.
//
// Threads. Everything except Cancel() and progress() runs on the engine's reactor, so the
// job needs no locks; what other threads read is atomic.
//
// Lifetime. The engine's shared state holds a reference until completion; callbacks in
// flight hold `this` and are all drained before completion. The job holds the shared state
// (pool, bucket), so a task that reaches a finished job never touches a destroyed engine.
// Cancel() after completion touches nothing but the job's own atomics.
#pragma once

#include <array>
#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "copy/plan.h"
#include "copy/throttle.h"
#include "copy/translate.h"
#include "ferry/copy.h"
#include "io/buffer_pool.h"
#include "io/reactor.h"

namespace ferry::copy {

class Job;

// What the jobs of one engine share. Reactor thread only, except the pool (thread-safe).
struct EngineShared {
  EngineShared(io::Reactor* r, const EngineOptions& o);
  io::Reactor* const reactor;
  const EngineOptions options;
  io::BufferPool pool;
  TokenBucket bucket;
  // Jobs until completion (CopyEngine::active_jobs).
  std::unordered_map<const Job*, std::shared_ptr<Job>> active;
  // Jobs queued in pool.WaitForBuffer. While there are any, other jobs queue behind them
  // instead of taking a returned buffer first, so jobs share the pool in turn.
  uint32_t buffer_waiters = 0;
};

class Job : public CopyJob, public std::enable_shared_from_this<Job> {
 public:
  // `t` is the translation of `desc` (translate.h): its pieces, and the pins the job holds
  // until it completes. The caller puts the job in shared->active; the job takes itself out
  // just before calling `done`.
  Job(std::shared_ptr<EngineShared> shared, CopyDescriptor desc, Translation t, CopyDoneFn done);
  ~Job() override;

  // Plans and starts the copy. Reactor thread, from a posted task (never inside
  // CopyEngine::Submit), so completion is never inline.
  void Start();

  void Cancel() override;
  CopyCounters progress() const override;

  // A volume asked the copy to release its pins (a suspend deadline passed): stop issuing
  // translated work, drop the pins once none is in flight, and finish on the descriptor's
  // devices. Reactor thread.
  void OnReleaseRequested();

 private:
  // A run of a piece to emulate, for the destinations in `mask`.
  struct EmuRange {
    Piece piece;
    uint32_t mask = 0;
    bool backward = false;  // issue chunks from the end (ordered lane only)
  };
  struct Lane {
    std::vector<EmuRange> ranges;
    size_t next = 0;      // first range not fully issued
    uint64_t issued = 0;  // bytes of ranges[next] issued
    uint32_t in_flight = 0;
    bool HasWork() const { return next < ranges.size(); }
  };
  // One emulated chunk in flight: one read, then a write per destination in `mask`.
  struct Chunk {
    bool busy = false;
    Lane* lane = nullptr;
    io::PooledBuffer buf;
    iovec iov{};
    Piece part;
    uint32_t mask = 0;
    uint32_t pending_writes = 0;
    block::IoRequest read;
    std::array<block::IoRequest, kMaxDestinations> writes;
  };
  // One native copy leg: segments of `src` copied into `dev`, destination `dst`.
  struct Leg {
    size_t dst = 0;
    block::BlockDevice* src = nullptr;
    block::BlockDevice* dev = nullptr;
    std::vector<block::CopySegment> segments;
    std::vector<uint64_t> stream_offsets;  // of each segment
    uint64_t bytes = 0;
    bool translated = false;  // its places were mapped through pinned volumes
    bool dropped = false;     // retargeted before it was issued (pins.cc)
    bool in_flight = false;   // submitted and not completed
    block::CopyLegRequest req;
  };
  // CanCopyFrom and limits of one (source leaf, destination leaf) pair, asked once.
  struct PairAlign {
    const block::BlockDevice* src;
    const block::BlockDevice* dst;
    uint64_t align;  // 0: no native copy for the pair
  };

  // job.cc
  void Plan();
  void Pump();
  void CancelLegsInFlight();  // offload.cc
  bool Throttled(uint64_t bytes);
  void Fail(const RangeError& e);
  void AddNote(std::string note);
  void Count(block::CopyMechanism m, uint64_t bytes);
  void MaybeFinish();
  void Finish();

  // offload.cc
  uint64_t OffloadAlign(block::BlockDevice* src, block::BlockDevice* dst);
  std::array<OffloadSpan, kMaxDestinations> PlanOffload(const Piece& p);
  void AddToLeg(size_t k, const Piece& part, uint64_t align);
  void NoteUnaligned();
  bool CanIssueLeg() const;
  void IssueLeg();
  void OnLeg(Leg* leg, IoStatus st);
  void EmulateLeg(const Leg& leg);

  // pins.cc
  bool MayIssue(bool translated);
  void StartFallback();
  void Retarget();
  void RetargetLane(Lane* lane);
  void AddTopLevel(const Piece& leaf, uint32_t mask, std::vector<EmuRange>* out);

  // emulate.cc
  void PlanEmulation(const Piece& p, const std::array<OffloadSpan, kMaxDestinations>& spans,
                     bool ordered);
  Lane* NextLane();
  bool IssueChunk(Lane* lane);
  void WaitForBuffer();
  void OnBufferReturned();
  void OnRead(Chunk* c, IoStatus st);
  void OnWrite(Chunk* c, size_t k, IoStatus st);
  void ReleaseChunk(Chunk* c);

  const std::shared_ptr<EngineShared> shared_;
  io::Reactor* const reactor_;
  CopyDescriptor desc_;
  std::vector<Piece> pieces_;  // freed once planned
  std::shared_ptr<PinSet> pins_;
  std::vector<Piece> top_pieces_;      // the descriptor's pieces, made when retargeting
  bool fallback_ = false;              // translated work is no longer issued
  bool retargeted_ = false;            // pins dropped, the rest runs on the top-level devices
  uint32_t translated_in_flight_ = 0;  // legs and chunks of translated pieces
  CopyDoneFn done_;
  const size_t num_dsts_;
  const uint64_t total_bytes_;  // stream bytes times destinations
  uint32_t depth_ = 1;          // legs and chunks in flight, each
  uint64_t unit_ = 512;         // largest block size of every device in the copy
  uint64_t chunk_bytes_ = 0;

  std::vector<PairAlign> pair_align_;
  std::array<uint64_t, kMaxDestinations> unaligned_bytes_{};
  std::array<uint64_t, kMaxDestinations> unaligned_align_{};
  std::array<Leg*, kMaxDestinations> open_leg_{};
  std::deque<Leg> legs_;  // stable addresses: requests point into them
  size_t next_leg_ = 0;
  uint32_t legs_in_flight_ = 0;

  Lane parallel_;
  Lane ordered_;
  std::vector<Chunk> chunks_;
  uint32_t chunks_in_flight_ = 0;
  io::PooledBuffer spare_;  // acquired, waiting for throttle tokens

  bool started_ = false;
  bool stopping_ = false;  // no new work: first error or cancel
  bool finished_ = false;
  bool waiting_for_buffer_ = false;
  io::Reactor::TimerId throttle_timer_ = 0;
  IoStatus status_ = IoStatus::kOk;
  std::vector<RangeError> errors_;
  std::vector<std::string> notes_;

  std::atomic<bool> cancel_requested_{false};
  std::atomic<bool> completed_{false};
  std::atomic<uint64_t> done_bytes_{0};
  std::atomic<uint64_t> offloaded_bytes_{0};
  std::atomic<uint64_t> emulated_bytes_{0};
  std::array<std::atomic<uint64_t>, kNumMechanisms> by_mechanism_{};
};

}  // namespace ferry::copy
