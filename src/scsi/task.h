// One SCSI command as the SCSI core sees it: the transport fills in the CDB and buffers,
// the logical unit executes it and sets status and sense.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/inline_function.h"
#include "scsi/sense.h"

namespace ferry::scsi {

struct NexusView;

// Completion of a command (LogicalUnit::Execute): called exactly once, on the task's reactor.
using TaskDone = InlineFunction<void(), 32>;
// Calls `done` later on the calling thread's reactor (never inside Execute).
void CompleteLater(TaskDone& done);

struct Task {
  std::array<uint8_t, 16> cdb{};
  uint64_t nexus = 0;  // I_T nexus identity (for unit attentions and, later, reservations)
  // The nexus's ACL maps this LUN write-protected: writes fail as on a write-protected LU
  // and MODE SENSE reports WP (SBC-3 6.5.1), for this nexus only.
  bool write_protected = false;
  // The logical units this nexus may reach (third-party copy resolves CSCDs and token
  // sources here and nowhere else); null: none but the addressed one, by LUN.
  std::shared_ptr<const NexusView> view;
  // Set by commands that run long (copies) while they run: the transport calls it (on the
  // task's reactor) when the task is aborted (ABORT TASK, LUN RESET, nexus loss); the
  // command then completes soon, its response unsent.
  InlineFunction<void(), 32> cancel;
  // Data from the initiator (writes, parameter lists), all of it, owned by the transport.
  std::span<const uint8_t> data_out;
  // How many bytes the initiator said it would send (iSCSI EDTL of a write command; 0
  // without data-out); UINT32_MAX when the transport does not say. COMPARE AND WRITE and
  // WRITE SAME refuse a data-out size other than the one their CDB implies.
  uint32_t data_out_expected = UINT32_MAX;
  // Buffer for data to the initiator, sized by the transport to the expected length; the
  // command fills data_in_bytes of it. Commands that would return more return what fits
  // (allocation length semantics) and the transport reports the residual.
  std::span<uint8_t> data_in;
  uint32_t data_in_bytes = 0;
  // What the command had to return, after its allocation length: more than data_in holds
  // means the initiator's buffer was too small (the transport reports an overflow).
  uint32_t data_in_wanted = 0;
  uint32_t allocation_length = UINT32_MAX;  // set by the logical unit from the CDB
  // Set by PERSISTENT RESERVE OUT PREEMPT AND ABORT: the I_T nexuses whose tasks on this LU
  // the transport aborts when this command completes (SPC-4 5.13.11.2.5), each ending in
  // TASK ABORTED (TAS 1).
  std::vector<uint64_t> abort_tasks_of;
  // Results.
  Status status = Status::kGood;
  bool has_sense = false;
  Sense sense;
  bool descriptor_sense = false;  // D_SENSE of the control mode page
  // Set by LogicalUnit::Execute for its statistics (lu_stats.h): when the command started,
  // and the transport's completion, called after the statistics count the command.
  uint64_t start_ns = 0;
  TaskDone transport_done;

  void Fail(const Sense& s) {
    status = Status::kCheckCondition;
    has_sense = true;
    sense = s;
  }
  // Copies `bytes` into data_in, truncated to its size.
  void Reply(std::span<const uint8_t> bytes);
};

}  // namespace ferry::scsi
