// One third-party copy operation (an EXTENDED COPY, POPULATE TOKEN or WRITE USING TOKEN)
// as RECEIVE COPY RESULTS reports it. Internal to the copy manager.
//
// Threads: the runner on the manager's reactor updates it; RECEIVE COPY RESULTS and COPY
// OPERATION ABORT read it from other reactors. Fields below `mu` are guarded by it.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>

#include "ferry/copy.h"
#include "scsi/sense.h"
#include "scsi/tpc_params.h"

namespace ferry::scsi {

// SPC-4 6.18.3 COPY OPERATION STATUS.
enum class CopyOpStatus : uint8_t {
  kCompleted = 0x01,
  kCompletedWithErrors = 0x02,
  kCompletedResidualData = 0x04,  // WRITE USING TOKEN: the ROD held less than the ranges
  kInForeground = 0x11,
  kInBackground = 0x12,
  kTerminated = 0x60,  // COPY OPERATION ABORT or a task management function
};

// RECEIVE COPY RESULTS service actions, and the THIRD-PARTY COPY OUT ones an operation
// reports as RESPONSE TO SERVICE ACTION.
inline constexpr uint8_t kSaExtendedCopyLid1 = 0x00;
inline constexpr uint8_t kSaExtendedCopyLid4 = 0x01;
inline constexpr uint8_t kSaPopulateToken = 0x10;
inline constexpr uint8_t kSaWriteUsingToken = 0x11;
inline constexpr uint8_t kSaCopyOperationAbort = 0x1c;
inline constexpr uint8_t kSaReceiveCopyStatusLid1 = 0x00;
inline constexpr uint8_t kSaReceiveCopyFailureDetails = 0x04;
inline constexpr uint8_t kSaReceiveCopyOperatingParameters = 0x03;
inline constexpr uint8_t kSaReceiveCopyStatusLid4 = 0x05;
inline constexpr uint8_t kSaReceiveRodTokenInformation = 0x07;
inline constexpr uint8_t kSaReportAllRodTokens = 0x08;

struct CopyOp {
  uint64_t nexus = 0;
  const void* lu = nullptr;  // the LogicalUnit that received the command (LUN reset)
  uint32_t list_id = 0;
  uint8_t service_action = 0;  // the command that made it
  ListIdUsage usage = ListIdUsage::kHold;
  bool count_blocks = false;  // transfer counts in blocks of block_size (token commands)
  uint32_t block_size = 512;
  uint64_t seq = 0;  // creation order (evicting old records)
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::atomic<bool> cancel{false};

  mutable std::mutex mu;
  bool running = true;
  CopyOpStatus status = CopyOpStatus::kInForeground;
  bool failed = false;    // CHECK CONDITION, with `sense`
  bool residual = false;  // the ROD holds less than the destination ranges
  Sense sense;
  uint32_t segments_done = 0;
  uint64_t bytes_done = 0;  // by finished engine copies
  uint64_t bytes_total = 0;
  std::shared_ptr<copy::CopyJob> job;  // the engine copy in flight
  bool has_token = false;
  std::array<uint8_t, kRodTokenBytes> token{};

  // Stops issuing work (COPY OPERATION ABORT, ABORT TASK, LUN RESET). Any thread.
  void Cancel() {
    cancel = true;
    std::lock_guard l(mu);
    if (job) job->Cancel();
  }
  // Bytes moved so far, including the engine copy in flight. Caller holds mu.
  uint64_t BytesNowLocked() const { return bytes_done + (job ? job->progress().done_bytes : 0); }
};

}  // namespace ferry::scsi
