// The copy manager (SPC-4 5.17 third-party copy; SBC-3 4.26 ROD tokens): EXTENDED COPY
// (LID1, LID4), RECEIVE COPY RESULTS, COPY OPERATION ABORT, POPULATE TOKEN, WRITE USING
// TOKEN, RECEIVE ROD TOKEN INFORMATION and REPORT ALL ROD TOKENS for every logical unit of
// one ferryd, with the data moved by one copy engine.
//
// Access. A copy reaches only the logical units of the requesting I_T nexus's view (the
// NexusView of nexus.h that the transport puts in each Task: the LUNs its ACL maps, with
// their per-nexus write protection). A CSCD designator is looked up in that view and nowhere
// else, so a designator of an LU the initiator cannot see is simply unreachable. A ROD token is a
// bearer capability, but WRITE USING TOKEN also requires the token's source LU to be in the
// writer's view.
//
// Threads. CopyOut/CopyIn run on the task's reactor (the connection's) and complete there.
// The data moves on the manager's own reactor (the engine's), which must outlive the
// manager; segments and token ranges become copy-engine requests there. Records, tokens and
// metrics are shared between reactors under a mutex or atomic.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "ferry/copy.h"
#include "scsi/offload_fallback.h"
#include "scsi/task.h"
#include "scsi/tpc_params.h"

namespace ferry::io {
class Reactor;
}

namespace ferry::scsi {

class LogicalUnit;
class TokenStore;
struct CopyOp;

struct CopyManagerOptions {
  std::array<uint8_t, 32> token_key{};  // HMAC-SHA256 key of ROD tokens (keep it secret)
  copy::EngineOptions engine;           // throttle_bytes_per_sec caps all copies together
  uint32_t default_token_timeout_s = 60;
  uint32_t max_token_timeout_s = 600;
  size_t max_tokens = 4096;           // live ROD tokens
  size_t max_records_per_nexus = 64;  // held copy results
};

// Byte counts per copy mechanism (block::CopyMechanism), and command counts.
struct CopyMetrics {
  uint64_t extended_copy_commands = 0;
  uint64_t populate_token_commands = 0;
  uint64_t write_using_token_commands = 0;
  uint64_t failed_commands = 0;
  uint64_t aborted_commands = 0;
  uint64_t active = 0;
  uint64_t bytes_offloaded = 0;
  uint64_t bytes_emulated = 0;
  uint64_t bytes_zeroed = 0;  // block device zero token
  std::array<uint64_t, copy::kNumMechanisms> by_mechanism{};
  uint64_t tokens_created = 0;
  uint64_t tokens_live = 0;
  uint64_t tokens_revoked = 0;
  // Copies that fell back to emulation (in part), by OffloadFallback (offload_fallback.h).
  std::array<uint64_t, kOffloadFallbackKinds> fallbacks{};
  // Why parts of recent copies were not offloaded (the copy engine's notes), newest last,
  // each once: the last kMaxOffloadNotes distinct ones.
  std::vector<std::string> offload_notes;
};
inline constexpr size_t kMaxOffloadNotes = 16;

class CopyManager : public std::enable_shared_from_this<CopyManager> {
 public:
  // `reactor` is where the copies run; it must outlive the manager.
  static Result<std::shared_ptr<CopyManager>> Create(io::Reactor* reactor,
                                                     CopyManagerOptions options);
  ~CopyManager();
  CopyManager(const CopyManager&) = delete;
  CopyManager& operator=(const CopyManager&) = delete;

  // 83h THIRD-PARTY COPY OUT (EXTENDED COPY, POPULATE TOKEN, WRITE USING TOKEN, COPY
  // OPERATION ABORT) sent to `lu`. `done` runs exactly once, later, on the calling reactor.
  void CopyOut(LogicalUnit& lu, Task& t, TaskDone done);
  // 84h THIRD-PARTY COPY IN (RECEIVE COPY RESULTS service actions, RECEIVE ROD TOKEN
  // INFORMATION, REPORT ALL ROD TOKENS): answered from the records, at once.
  void CopyIn(LogicalUnit& lu, Task& t);

  // A write to `lu` (before it is submitted and again when it completes): revokes the
  // ROD tokens that represent any of these blocks (point-in-time, change vulnerable). Cheap
  // when no token exists. Any thread.
  void NoteWrite(const LogicalUnit& lu, uint64_t lba, uint64_t blocks);
  // SAM-5 6.3.4 I_T nexus loss: held results of the nexus are discarded.
  void NexusLost(uint64_t nexus);
  // Stops every copy in progress (the daemon is stopping). Any thread.
  void CancelAll();
  // SAM-5 6.3.3 LOGICAL UNIT RESET (and TARGET WARM RESET, per LU): stops every copy that
  // `lu` received, from any nexus, background ones included.
  void LuReset(const LogicalUnit& lu);

  // VPD 8Fh (SPC-4 7.8.17) for `lu`.
  std::vector<uint8_t> ThirdPartyCopyVpd(const LogicalUnit& lu) const;
  CopyMetrics metrics() const;
  const CopyManagerOptions& options() const { return options_; }

 private:
  friend class CopyRunner;
  CopyManager(io::Reactor* reactor, CopyManagerOptions options);

  void ExtendedCopy(LogicalUnit& lu, Task& t, TaskDone done, bool lid4);
  void PopulateToken(LogicalUnit& lu, Task& t, TaskDone done);
  void WriteUsingToken(LogicalUnit& lu, Task& t, TaskDone done);
  void AbortCopy(Task& t);
  void ReceiveCopyStatusLid1(Task& t);
  void ReceiveFailureDetails(Task& t);
  void ReceiveOperatingParameters(LogicalUnit& lu, Task& t);
  void ReceiveCopyStatusLid4(Task& t, bool rod_token_info);
  void ReportAllRodTokens(LogicalUnit& lu, Task& t);

  // Registers a new operation of the nexus under `list_id`; nullptr (with the task failed
  // OPERATION IN PROGRESS) when one with that id is still running.
  std::shared_ptr<CopyOp> StartOp(const LogicalUnit& lu, Task& t, uint32_t list_id,
                                  uint8_t service_action, ListIdUsage usage);
  std::shared_ptr<CopyOp> FindOp(uint64_t nexus, uint32_t list_id) const;
  // Every operation that may still run: listed ones and those without a list id.
  std::vector<std::shared_ptr<CopyOp>> RunningOps();
  // The operation ended: counts it, drops its record unless it is held.
  void EndOp(const std::shared_ptr<CopyOp>& op);
  // Adds one finished engine copy's counters and offload notes to the metrics.
  void CountCopy(const copy::CopyResult& r);
  copy::CopyEngine& engine() { return *engine_; }

  io::Reactor* const reactor_;
  const CopyManagerOptions options_;
  std::unique_ptr<copy::CopyEngine> engine_;  // used on reactor_ only
  std::unique_ptr<TokenStore> tokens_;

  mutable std::mutex mu_;
  // Operations by (nexus, list id): running ones, and finished ones that are held.
  std::map<std::pair<uint64_t, uint32_t>, std::shared_ptr<CopyOp>> ops_;  // guarded by mu_
  // Operations without a list identifier (LIST ID USAGE 11b), for CancelAll and LuReset.
  std::vector<std::weak_ptr<CopyOp>> unlisted_;  // guarded by mu_
  uint64_t op_seq_ = 0;                          // guarded by mu_

  std::atomic<uint64_t> n_xcopy_{0}, n_populate_{0}, n_wut_{0}, n_failed_{0}, n_aborted_{0};
  std::atomic<uint64_t> active_{0};
  std::atomic<uint64_t> bytes_offloaded_{0}, bytes_emulated_{0}, bytes_zeroed_{0};
  std::array<std::atomic<uint64_t>, copy::kNumMechanisms> by_mechanism_{};
  std::array<std::atomic<uint64_t>, kOffloadFallbackKinds> fallbacks_{};
  std::vector<std::string> offload_notes_;  // guarded by mu_
};

}  // namespace ferry::scsi
