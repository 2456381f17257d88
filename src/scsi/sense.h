// SCSI status and sense data (SPC-4 4.5), and the one table from IoStatus to sense.
//
// Nothing else in Ferry builds sense bytes: handlers return a Sense value and the
// transport encodes it (fixed format 70h unless the initiator asked for descriptor format).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "base/io_status.h"

namespace ferry::scsi {

// SAM-5 5.3 status codes.
enum class Status : uint8_t {
  kGood = 0x00,
  kCheckCondition = 0x02,
  kConditionMet = 0x04,
  kBusy = 0x08,
  kReservationConflict = 0x18,
  kTaskSetFull = 0x28,
  kAcaActive = 0x30,
  kTaskAborted = 0x40,
};

// SPC-4 4.5.6 sense keys.
enum class SenseKey : uint8_t {
  kNoSense = 0x0,
  kRecoveredError = 0x1,
  kNotReady = 0x2,
  kMediumError = 0x3,
  kHardwareError = 0x4,
  kIllegalRequest = 0x5,
  kUnitAttention = 0x6,
  kDataProtect = 0x7,
  kBlankCheck = 0x8,
  kCopyAborted = 0xa,
  kAbortedCommand = 0xb,
  kVolumeOverflow = 0xd,
  kMiscompare = 0xe,
};

// Additional sense code and qualifier (SPC-4 Annex D), as one 16-bit value ASC << 8 | ASCQ.
enum class Asc : uint16_t {
  kNoAdditionalSense = 0x0000,
  kWriteError = 0x0c00,
  kUnrecoveredReadError = 0x1100,
  kParameterListLengthError = 0x1a00,
  kMiscompareDuringVerify = 0x1d00,
  kInvalidCommandOperationCode = 0x2000,
  kLbaOutOfRange = 0x2100,
  kInvalidFieldInCdb = 0x2400,
  kLogicalUnitNotSupported = 0x2500,
  kInvalidFieldInParameterList = 0x2600,
  kWriteProtected = 0x2700,
  kSpaceAllocationFailedWriteProtect = 0x2707,
  kPowerOnResetOrBusDeviceReset = 0x2900,
  kPowerOnOccurred = 0x2901,
  kParametersChanged = 0x2a00,
  kModeParametersChanged = 0x2a01,
  kCapacityDataHasChanged = 0x2a09,
  kCommandsClearedByAnotherInitiator = 0x2f00,
  kSavingParametersNotSupported = 0x3900,
  kReportedLunsDataHasChanged = 0x3f0e,
  kInquiryDataHasChanged = 0x3f03,
  kInternalTargetFailure = 0x4400,
  kInsufficientResources = 0x5503,
  kCommandTimeoutDuringProcessing = 0x2e02,
  kLogicalUnitNotReadyManualIntervention = 0x0403,
  kLogicalUnitNotReadySanitizeInProgress = 0x041b,
  kSanitizeCommandFailed = 0x3103,
  kInvalidFieldInCommandInformationUnit = 0x0e03,
  kDataPhaseError = 0x4b00,
  // Third-party copy (SPC-4 Annex D; ../shared/reference/scsi-third-party-copy.md 4).
  kOperationInProgress = 0x0016,
  kUnreachableCopyTarget = 0x0804,
  kThirdPartyDeviceFailure = 0x0d01,
  kCopyTargetDeviceNotReachable = 0x0d02,
  kIncorrectCopyTargetDeviceType = 0x0d03,
  kCopyTargetDeviceDataUnderrun = 0x0d04,
  kInvalidTokenOperationCauseNotReportable = 0x2300,
  kInvalidTokenOperationUnsupportedTokenType = 0x2301,
  kInvalidTokenOperationRemoteTokenUsageNotSupported = 0x2302,
  kInvalidTokenOperationTokenUnknown = 0x2304,
  kInvalidTokenOperationTokenCorrupt = 0x2305,
  kInvalidTokenOperationTokenRevoked = 0x2306,
  kInvalidTokenOperationTokenExpired = 0x2307,
  kInvalidTokenOperationTokenCancelled = 0x2308,
  kInvalidTokenOperationTokenDeleted = 0x2309,
  kInvalidTokenOperationInvalidTokenLength = 0x230a,
  kTooManyTargetDescriptors = 0x2606,
  kUnsupportedTargetDescriptorTypeCode = 0x2607,
  kTooManySegmentDescriptors = 0x2608,
  kUnsupportedSegmentDescriptorTypeCode = 0x2609,
  kUnexpectedInexactSegment = 0x260a,
  kInlineDataLengthExceeded = 0x260b,
  kInvalidOperationForCopySourceOrDestination = 0x260c,
  kCopySegmentGranularityViolation = 0x260d,
  kCopySourceOrDestinationNotAuthorized = 0x2615,
  kInsufficientResourcesToCreateRod = 0x550c,
  kInsufficientResourcesToCreateRodToken = 0x550d,
  // Reservations (SPC-4 5.13, Annex D).
  kReservationsPreempted = 0x2a03,
  kReservationsReleased = 0x2a04,
  kRegistrationsPreempted = 0x2a05,
  kInvalidReleaseOfPersistentReservation = 0x2604,
  kInsufficientRegistrationResources = 0x5504,
  // Asymmetric logical unit access (SPC-4 5.15).
  kLogicalUnitNotAccessibleTargetPortInStandbyState = 0x040b,
  kLogicalUnitNotAccessibleTargetPortInUnavailableState = 0x040c,
  kAsymmetricAccessStateChanged = 0x2a06,
};

struct Sense {
  SenseKey key = SenseKey::kNoSense;
  Asc asc = Asc::kNoAdditionalSense;
  std::optional<uint64_t> information;  // e.g. the first failed LBA
  // Sense-key specific field pointer (SPC-4 4.5.2.4.2): which byte and bit of the CDB
  // (or, with in_cdb false, of the parameter list) is wrong. For COPY ABORTED the same
  // bytes are a segment pointer (4.5.2.4.5) with SD 0: an offset into the parameter list.
  bool has_field_pointer = false;
  bool in_cdb = true;
  uint16_t field_byte = 0;
  std::optional<uint8_t> field_bit;
  // Progress indication (SPC-4 4.5.2.4.4), in 65536ths, for NOT READY while an operation
  // such as SANITIZE runs; the sense-key specific bytes when there is no field pointer.
  std::optional<uint16_t> progress;
  // COMMAND-SPECIFIC INFORMATION (SPC-4 4.5.2.3): for copies, the segment number.
  std::optional<uint32_t> command_specific;
};

// ILLEGAL REQUEST / INVALID FIELD IN CDB pointing at `byte` (and `bit`).
Sense InvalidFieldInCdb(uint16_t byte, std::optional<uint8_t> bit = std::nullopt);
Sense InvalidFieldInParameterList(uint16_t byte, std::optional<uint8_t> bit = std::nullopt);
// ILLEGAL REQUEST with `asc` pointing at parameter-list byte `byte` (and `bit`).
Sense ParameterListError(Asc asc, uint16_t byte, std::optional<uint8_t> bit = std::nullopt);
inline Sense MakeSense(SenseKey k, Asc a) { return Sense{.key = k, .asc = a}; }
// ILLEGAL REQUEST / PARAMETER LIST LENGTH ERROR (the list is shorter than its contents say).
inline Sense ParameterListLengthError() {
  return MakeSense(SenseKey::kIllegalRequest, Asc::kParameterListLengthError);
}

// Encodes fixed (70h, 18 bytes) or descriptor (72h) format sense into `out` (at least 18
// bytes for fixed, kMaxSenseBytes for descriptor). Returns the bytes written.
size_t EncodeSense(const Sense& s, bool descriptor_format, std::span<uint8_t> out);
inline constexpr size_t kMaxSenseBytes = 40;

// THE table: how a data-path IoStatus reaches the initiator. kOk maps to GOOD and no sense;
// kNoResources to TASK SET FULL (the initiator retries); everything else to CHECK
// CONDITION with the sense below. `is_write` picks WRITE ERROR vs UNRECOVERED READ ERROR.
Status StatusForIoStatus(IoStatus st);
Sense SenseForIoStatus(IoStatus st, bool is_write);

}  // namespace ferry::scsi
