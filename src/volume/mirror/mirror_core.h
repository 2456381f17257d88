// The state and machinery behind MirrorTarget (mirror_target.h): legs, regions, the region
// log and resync. Everything here runs on the home reactor except the members marked
// "any thread" (atomics read by Status and Message).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/inline_function.h"
#include "io/reactor.h"
#include "volume/mirror/log_format.h"
#include "volume/target.h"

namespace ferry::volume::mirror {

enum class SyncMode : uint8_t { kDefault, kSync, kNoSync };

struct MirrorConfig {
  bool disk_log = false;
  std::string log_name;
  std::shared_ptr<block::BlockDevice> log_dev;
  uint32_t region_sectors = 0;
  SyncMode sync = SyncMode::kDefault;
  bool handle_errors = false;
  bool rate_given = false;   // resync_rate was a table feature (prints back)
  uint64_t resync_rate = 0;  // bytes per second, 0: unthrottled
};

struct Leg {
  Leg(std::shared_ptr<block::BlockDevice> d, std::string n, uint64_t off)
      : dev(std::move(d)), name(std::move(n)), offset_sectors(off) {}
  DeviceRef dev;
  std::string name;
  uint64_t offset_sectors;
  std::atomic<char> health{'A'};   // any thread: A alive, D write, R read, F flush, S sync failure
  std::atomic<uint64_t> reads{0};  // any thread
  std::atomic<uint64_t> writes{0};
  bool catching_up = false;  // readded, not yet a valid resync source
};

// One piece (or flush) being run by the mirror on the home reactor.
struct MirrorOp {
  PieceIo* io = nullptr;
  io::Reactor* origin = nullptr;
  block::IoOp op = block::IoOp::kRead;
  uint64_t off = 0;  // bytes, from the start of the target
  uint64_t len = 0;
  uint64_t region = 0;
  size_t flush_leg = 0;
  uint32_t remaining = 0;
  uint32_t ok_mask = 0;
  uint32_t err_mask = 0;
  uint32_t tried_mask = 0;
  size_t read_leg = 0;  // the leg the read in flight went to
  IoStatus first_error = IoStatus::kOk;
  std::vector<block::IoRequest> children;  // one per leg
};

class MirrorCore : public std::enable_shared_from_this<MirrorCore> {
 public:
  MirrorCore(MirrorConfig cfg, uint64_t target_bytes, io::Reactor* home, DataMover* mover);
  ~MirrorCore();

  void AddLeg(std::shared_ptr<block::BlockDevice> dev, std::string name, uint64_t off) {
    legs_.push_back(std::make_unique<Leg>(std::move(dev), std::move(name), off));
  }
  const MirrorConfig& config() const { return cfg_; }
  const std::vector<std::unique_ptr<Leg>>& legs() const { return legs_; }
  uint64_t region_bytes() const { return region_bytes_; }
  uint64_t num_regions() const { return num_regions_; }

  // Any thread.
  void Submit(PieceIo& io);
  void Prepare(Target::PrepareDone done);
  void Presuspend();
  void Resume();
  void Shutdown();
  std::string StatusText() const;
  std::string StatsText() const;
  void PostReadd(size_t leg);
  void PostFullResync();
  void SetRate(uint64_t bytes_per_s) { rate_.store(bytes_per_s, std::memory_order_relaxed); }

 private:
  enum RegionFlag : uint8_t {
    kLogDirty = 1,       // dirty bit set in memory (writes in flight or not yet cleaned)
    kDurable = 2,        // ... and a commit holding it completed
    kNeedSync = 4,       // legs may differ: copy from the primary to the other live legs
    kStale = 8,          // written while some leg was failed
    kRecovering = 16,    // a resync copy is running or waiting for writes to drain
    kCleanPending = 32,  // no write in flight; clean once a flush of the legs covered it
  };
  struct Region {
    uint32_t pending = 0;  // writes in flight
    uint8_t flags = 0;
  };
  using CommitDone = InlineFunction<void(), 48>;

  // Log (mirror_log.cc).
  void OpenLog(Target::PrepareDone done);
  void ApplyLog(const LogImage& img);
  void StartFresh();
  LogImage Snapshot() const;
  void RequestCommit(CommitDone done);
  void StartCommit();
  void CommitFinished(IoStatus st);
  // Marks `r` (no write in flight, legs identical) for a lazy clean.
  void MarkClean(uint64_t r);
  void ScheduleClean();
  void CleanNow();
  // Flag changes that keep in_sync_ (regions with neither kNeedSync nor kStale) counted.
  void SetFlag(uint64_t r, uint8_t f);
  void ClearFlag(uint64_t r, uint8_t f);

  // Data path (mirror_io.cc).
  MirrorOp* NewOp(PieceIo& io, io::Reactor* origin);
  void Run(MirrorOp* op);
  void StartRead(MirrorOp* op);
  void ReadDone(MirrorOp* op, IoStatus st);
  void StartWrite(MirrorOp* op);
  void IssueWrite(MirrorOp* op);
  void LegWriteDone(MirrorOp* op, size_t leg, IoStatus st);
  void FinishWrite(MirrorOp* op);
  void StartFlush(MirrorOp* op);
  void Complete(MirrorOp* op, IoStatus st);
  void WriteDrained(uint64_t r);
  void FailLeg(size_t leg, char why);
  int Primary() const;
  bool Alive(size_t leg) const { return legs_[leg]->health.load() == 'A'; }
  uint32_t failed_mask() const;
  void PrepChild(MirrorOp* op, size_t leg);

  // Resync (mirror_sync.cc).
  void KickResync();
  void ResyncNext();
  void StartCopy(uint64_t r);
  void CopyDone(uint64_t r, uint32_t failed_dsts, uint32_t copied_dsts, uint32_t src_mask);
  void Readd(size_t leg);
  void FullResync();

  MirrorConfig cfg_;
  const uint64_t target_bytes_;
  io::Reactor* const home_;
  DataMover* const mover_;
  std::vector<std::unique_ptr<Leg>> legs_;
  uint64_t region_bytes_ = 0;
  uint64_t num_regions_ = 0;

  std::vector<Region> regions_;
  std::unordered_map<uint64_t, std::vector<MirrorOp*>> held_;  // writes waiting for a copy
  std::vector<std::unique_ptr<MirrorOp>> free_ops_;
  uint32_t rr_ = 0;  // read round-robin cursor

  // Log commits: one in flight; requests made meanwhile wait for the next one.
  bool commit_running_ = false;
  std::vector<CommitDone> commit_waiters_;  // of the running commit
  std::vector<CommitDone> next_waiters_;    // want a commit started after their change
  bool commit_wanted_ = false;              // a lazy clean wants a commit
  std::vector<uint64_t> marking_;           // marked dirty since the last commit started
  std::vector<uint64_t> committing_;        // marked dirty, in the running commit
  uint32_t durable_failed_ = 0;             // failed mask the log last committed
  uint32_t committing_failed_ = 0;
  uint64_t sequence_ = 0;
  bool clean_timer_ = false;
  std::vector<uint64_t> to_clean_;       // regions marked kCleanPending
  std::atomic<bool> log_failed_{false};  // any thread

  // Resync.
  bool resync_running_ = false;  // a region copy is running or its timer is pending
  uint64_t cursor_ = 0;
  std::chrono::steady_clock::time_point next_copy_at_{};
  std::atomic<uint64_t> rate_{0};          // any thread
  std::atomic<uint64_t> in_sync_{0};       // any thread: regions without kNeedSync
  std::atomic<uint64_t> resync_bytes_{0};  // any thread
  std::atomic<uint64_t> resync_regions_{0};
  std::atomic<uint64_t> log_commits_{0};
  uint64_t need_sync_ = 0;              // regions with kNeedSync
  std::atomic<uint64_t> resync_ns_{0};  // time from the first copy to the last one's end
  std::chrono::steady_clock::time_point first_copy_{};
  bool first_copy_set_ = false;
  std::atomic<bool> suspended_{false};  // any thread
  std::atomic<bool> stopped_{false};
  bool prepared_ = false;
};

}  // namespace ferry::volume::mirror
