// Operation codes of the commands Ferry's logical units implement (SPC-4, SBC-3).
#pragma once

#include <cstdint>
#include <optional>
#include <span>

namespace ferry::scsi {

enum Opcode : uint8_t {
  kTestUnitReady = 0x00,
  kRequestSense = 0x03,
  kRead6 = 0x08,
  kWrite6 = 0x0a,
  kInquiry = 0x12,
  kModeSelect6 = 0x15,
  kModeSense6 = 0x1a,
  kStartStopUnit = 0x1b,
  kPreventAllowMediumRemoval = 0x1e,
  kReadCapacity10 = 0x25,
  kRead10 = 0x28,
  kWrite10 = 0x2a,
  kWriteAndVerify10 = 0x2e,
  kVerify10 = 0x2f,
  kSynchronizeCache10 = 0x35,
  kModeSelect10 = 0x55,
  kModeSense10 = 0x5a,
  kRead16 = 0x88,
  kWrite16 = 0x8a,
  kWriteAndVerify16 = 0x8e,
  kVerify16 = 0x8f,
  kThirdPartyCopyOut = 0x83,  // EXTENDED COPY, POPULATE TOKEN, WRITE USING TOKEN, ...
  kThirdPartyCopyIn = 0x84,   // RECEIVE COPY RESULTS, RECEIVE ROD TOKEN INFORMATION, ...
  kSynchronizeCache16 = 0x91,
  kServiceActionIn16 = 0x9e,  // SA 10h READ CAPACITY(16)
  kReportLuns = 0xa0,
  kMaintenanceIn = 0xa3,  // SA 0Ch REPORT SUPPORTED OPERATION CODES, 0Dh ... TMF
  kRead12 = 0xa8,
  kWrite12 = 0xaa,
  kWriteAndVerify12 = 0xae,
  kVerify12 = 0xaf,
};

inline constexpr uint8_t kSaReadCapacity16 = 0x10;
inline constexpr uint8_t kSaReportSupportedOpcodes = 0x0c;
inline constexpr uint8_t kSaReportSupportedTmfs = 0x0d;

// Commands whose byte 1 bits 4-0 are a service action.
inline bool HasServiceAction(uint8_t opcode) {
  return opcode == kServiceActionIn16 || opcode == kMaintenanceIn || opcode == kThirdPartyCopyOut ||
         opcode == kThirdPartyCopyIn;
}

// CDB length from the operation code's group (SPC-4 4.2.5.1); 0 for vendor/reserved groups.
inline uint8_t CdbLength(uint8_t opcode) {
  switch (opcode >> 5) {
    case 0: return 6;
    case 1:
    case 2: return 10;
    case 4: return 16;
    case 5: return 12;
    default: return 0;
  }
}

// The ALLOCATION LENGTH of commands that return parameter data (SPC-4 4.2.5.6), or
// UINT32_MAX for commands without one.
uint32_t AllocationLength(const uint8_t* cdb);

// For READ, WRITE, WRITE AND VERIFY and VERIFY: the transfer length in blocks (READ(6) and
// WRITE(6): 0 means 256), where it sits in the CDB, and whether data flows to the target.
struct BlockTransfer {
  uint32_t blocks = 0;
  uint8_t len_offset = 0;
  uint8_t len_bytes = 0;
  bool data_out = false;  // WRITE, WRITE AND VERIFY, VERIFY with BYTCHK 01b
  bool data_in = false;   // READ
};
std::optional<BlockTransfer> DecodeBlockTransfer(const uint8_t* cdb);
// Rewrites the transfer length field (the CDB stays valid: blocks fits its field).
void SetTransferLength(uint8_t* cdb, const BlockTransfer& bt, uint32_t blocks);

// One implemented command: opcode, service action (or none) and the CDB usage data of
// REPORT SUPPORTED OPERATION CODES (SPC-4 6.35.3): which bits of each CDB byte we look at.
struct CommandInfo {
  uint8_t opcode;
  bool has_sa;
  uint8_t sa;
  uint8_t cdb_len;
  uint8_t usage[16];
};
std::span<const CommandInfo> SupportedCommands();
const CommandInfo* FindCommand(uint8_t opcode, uint8_t sa);

}  // namespace ferry::scsi
