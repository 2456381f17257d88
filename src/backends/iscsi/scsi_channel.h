// The seam between the iSCSI backend's connection code and its SCSI users (the block
// commands of IscsiDevice and the third-party copy initiator in remote_copy.h).
//
// A ScsiChannel sends one raw CDB to one LUN of a remote target and reports what came back.
// It knows nothing of what the command means, so the copy initiator can be tested against
// a fake array (remote_copy_test.cc) and runs unchanged over libiscsi.
//
// Threads. Execute() is called on a reactor thread; `done` runs later on that same reactor
// thread, exactly once, never inside Execute().
//
// Ownership. The caller owns the ScsiCommand and the data_out bytes it points to and keeps
// both alive and unchanged until `done` has run.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "base/io_status.h"

namespace ferry::backends::iscsi {

// SAM-5 status codes the callers look at.
inline constexpr uint8_t kScsiStatusGood = 0x00;
inline constexpr uint8_t kScsiStatusCheckCondition = 0x02;
inline constexpr uint8_t kScsiStatusBusy = 0x08;
inline constexpr uint8_t kScsiStatusReservationConflict = 0x18;
inline constexpr uint8_t kScsiStatusTaskSetFull = 0x28;

// Fixed-format view of sense data (SPC-4 4.5), decoded from fixed or descriptor format.
struct SenseView {
  uint8_t key = 0;
  uint8_t asc = 0;
  uint8_t ascq = 0;
  bool info_valid = false;
  uint64_t information = 0;
};

struct ScsiCommand {
  // The CDB, cdb_len bytes of it (6..16).
  uint8_t cdb[16] = {};
  uint8_t cdb_len = 0;
  // Data-Out payload, borrowed until `done`; empty for commands without one.
  std::span<const uint8_t> data_out;
  // Largest Data-In payload expected; 0 for commands without one.
  uint32_t data_in_len = 0;

  // Filled in before `done` runs:
  // kOk when the target answered (any SCSI status); otherwise why it could not be asked:
  // kTimeout, kIoError (connection lost and not recovered), kAborted (cancelled).
  IoStatus transport = IoStatus::kOk;
  uint8_t scsi_status = kScsiStatusGood;
  SenseView sense;               // valid when scsi_status is CHECK CONDITION
  std::vector<uint8_t> data_in;  // what the target returned (<= data_in_len bytes)
  uint32_t residual = 0;         // bytes of the expected transfer not moved
  std::function<void()> done;
};

class ScsiChannel {
 public:
  virtual ~ScsiChannel() = default;
  // Sends `cmd` to `lun` of this channel's target. See the header comment for threads.
  virtual void Execute(uint64_t lun, ScsiCommand& cmd) = 0;
  // Asks the target to abort `cmd` (ABORT TASK) if it is still in flight; its `done` then
  // runs with whatever the target answered. No effect when it has completed.
  virtual void Abort(ScsiCommand& cmd) = 0;
};

}  // namespace ferry::backends::iscsi
