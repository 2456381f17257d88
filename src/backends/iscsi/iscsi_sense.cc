#include "backends/iscsi/iscsi_sense.h"

namespace ferry::backends::iscsi {
namespace {

// SPC-4 4.5.6 sense keys.
enum : uint8_t {
  kNoSense = 0x0,
  kRecoveredError = 0x1,
  kNotReady = 0x2,
  kMediumError = 0x3,
  kHardwareError = 0x4,
  kIllegalRequest = 0x5,
  kUnitAttention = 0x6,
  kDataProtect = 0x7,
  kAbortedCommand = 0xb,
  kMiscompare = 0xe,
};

constexpr uint16_t Code(const SenseView& s) { return uint16_t(s.asc) << 8 | s.ascq; }

SenseVerdict Complete(IoStatus st) { return {st, SenseAction::kComplete}; }

SenseVerdict IllegalRequest(uint16_t code) {
  switch (code) {
    case 0x2000: return Complete(IoStatus::kNotSupported);  // INVALID COMMAND OPERATION CODE
    case 0x2500: return Complete(IoStatus::kIoError);       // LOGICAL UNIT NOT SUPPORTED
    default: return Complete(IoStatus::kInvalid);  // LBA OUT OF RANGE, INVALID FIELD IN CDB...
  }
}

SenseVerdict AbortedCommand(uint16_t code) {
  switch (code) {
    case 0x5503: return Complete(IoStatus::kNoResources);  // INSUFFICIENT RESOURCES
    case 0x2e02: return Complete(IoStatus::kTimeout);      // COMMAND TIMEOUT DURING PROCESSING
    default: return {IoStatus::kIoError, SenseAction::kRetryOnce};
  }
}

}  // namespace

SenseVerdict ClassifyScsiResult(uint8_t scsi_status, const SenseView& sense) {
  switch (scsi_status) {
    case kScsiStatusGood: return Complete(IoStatus::kOk);
    case kScsiStatusBusy:
    case kScsiStatusTaskSetFull: return Complete(IoStatus::kNoResources);
    case kScsiStatusCheckCondition: break;
    default: return Complete(IoStatus::kIoError);  // RESERVATION CONFLICT, ACA ACTIVE, ...
  }
  const uint16_t code = Code(sense);
  switch (sense.key) {
    case kNoSense:
    case kRecoveredError: return Complete(IoStatus::kOk);
    case kNotReady:
      // LOGICAL UNIT IS IN PROCESS OF BECOMING READY: worth waiting for.
      if (code == 0x0401) return {IoStatus::kIoError, SenseAction::kRetry};
      return Complete(IoStatus::kIoError);
    case kMediumError:
    case kHardwareError: return Complete(IoStatus::kIoError);
    case kIllegalRequest: return IllegalRequest(code);
    case kUnitAttention:
      if (code == 0x2a09) return {IoStatus::kIoError, SenseAction::kRetryCapacityChanged};
      return {IoStatus::kIoError, SenseAction::kRetry};
    case kDataProtect:
      // SPACE ALLOCATION FAILED WRITE PROTECT: the thin pool behind the LU is full.
      if (code == 0x2707) return Complete(IoStatus::kNoSpace);
      return Complete(IoStatus::kReadOnly);
    case kAbortedCommand: return AbortedCommand(code);
    case kMiscompare: return Complete(IoStatus::kMiscompare);
    default: return Complete(IoStatus::kIoError);
  }
}

}  // namespace ferry::backends::iscsi
