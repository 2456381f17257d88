// What a remote target's answer means for a Ferry request: THE table from SCSI status and
// sense data to IoStatus, the inverse of the target side's table (SenseForIoStatus in
// src/scsi/sense.cc), so a Ferry-to-Ferry hop keeps the status it started with.
//
// Pure (no libiscsi), unit-tested in iscsi_sense_test.cc.
#pragma once

#include <cstdint>

#include "backends/iscsi/scsi_channel.h"
#include "base/io_status.h"

namespace ferry::backends::iscsi {

enum class SenseAction : uint8_t {
  kComplete,              // complete the request with `status`
  kRetry,                 // send it again (a few times); `status` if the retries run out
  kRetryOnce,             // send it again once; `status` if that fails too
  kRetryCapacityChanged,  // UNIT ATTENTION CAPACITY DATA HAS CHANGED: re-read, then retry
};

struct SenseVerdict {
  IoStatus status = IoStatus::kOk;
  SenseAction action = SenseAction::kComplete;
};

// SAM-5 5.3 status (with SPC-4 4.5 sense for CHECK CONDITION) -> verdict.
SenseVerdict ClassifyScsiResult(uint8_t scsi_status, const SenseView& sense);

}  // namespace ferry::backends::iscsi
