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
  kReserve6 = 0x16,
  kRelease6 = 0x17,
  kModeSelect6 = 0x15,
  kModeSense6 = 0x1a,
  kStartStopUnit = 0x1b,
  kPreventAllowMediumRemoval = 0x1e,
  kReadCapacity10 = 0x25,
  kRead10 = 0x28,
  kWrite10 = 0x2a,
  kWriteAndVerify10 = 0x2e,
  kVerify10 = 0x2f,
  kPreFetch10 = 0x34,
  kSynchronizeCache10 = 0x35,
  kReadDefectData10 = 0x37,
  kWriteSame10 = 0x41,
  kUnmap = 0x42,
  kSanitize = 0x48,
  kModeSelect10 = 0x55,
  kModeSense10 = 0x5a,
  kPersistentReserveIn = 0x5e,
  kPersistentReserveOut = 0x5f,
  kRead16 = 0x88,
  kWrite16 = 0x8a,
  kWriteAndVerify16 = 0x8e,
  kVerify16 = 0x8f,
  kCompareAndWrite = 0x89,
  kOrWrite16 = 0x8b,
  kPreFetch16 = 0x90,
  kWriteSame16 = 0x93,
  kWriteAtomic16 = 0x9c,
  kThirdPartyCopyOut = 0x83,  // EXTENDED COPY, POPULATE TOKEN, WRITE USING TOKEN, ...
  kThirdPartyCopyIn = 0x84,   // RECEIVE COPY RESULTS, RECEIVE ROD TOKEN INFORMATION, ...
  kSynchronizeCache16 = 0x91,
  kServiceActionIn16 = 0x9e,  // SA 10h READ CAPACITY(16)
  kReportLuns = 0xa0,
  kMaintenanceIn = 0xa3,   // SA 0Ah REPORT TARGET PORT GROUPS, 0Ch ... OPERATION CODES, 0Dh ... TMF
  kMaintenanceOut = 0xa4,  // SA 0Ah SET TARGET PORT GROUPS
  kRead12 = 0xa8,
  kWrite12 = 0xaa,
  kWriteAndVerify12 = 0xae,
  kVerify12 = 0xaf,
  kReadDefectData12 = 0xb7,
};

inline constexpr uint8_t kSaReadCapacity16 = 0x10;
inline constexpr uint8_t kSaGetLbaStatus = 0x12;
inline constexpr uint8_t kSaTargetPortGroups = 0x0a;  // REPORT (A3h) and SET (A4h)
inline constexpr uint8_t kSaReportSupportedOpcodes = 0x0c;
inline constexpr uint8_t kSaReportSupportedTmfs = 0x0d;

// Commands whose byte 1 bits 4-0 are a service action.
inline bool HasServiceAction(uint8_t opcode) {
  return opcode == kServiceActionIn16 || opcode == kMaintenanceIn || opcode == kMaintenanceOut ||
         opcode == kThirdPartyCopyOut || opcode == kThirdPartyCopyIn ||
         opcode == kPersistentReserveIn || opcode == kPersistentReserveOut || opcode == kSanitize;
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
// COMPARE AND WRITE (2 x NUMBER OF LOGICAL BLOCKS blocks) and WRITE SAME (one block, none
// with NDOB): the data-out bytes the CDB implies; nullopt for other commands.
std::optional<uint64_t> ImpliedDataOutBytes(const uint8_t* cdb, uint32_t block_size);
// Rewrites the transfer length field (the CDB stays valid: blocks fits its field).
void SetTransferLength(uint8_t* cdb, const BlockTransfer& bt, uint32_t blocks);
// SAM-5 5.4.3: a block write (data_out) whose transport expects `data_out_bytes`, less than
// its transfer length, writes only what comes: its CDB is cut to that many whole blocks.
// Returns the transfer length in bytes before any cut (nullopt: not a block write). Data
// that ends inside a block (or that would cut WRITE(6), where 0 means 256, to no block)
// cannot be written: the CDB stays and `*partial_block` is set, to refuse the command.
std::optional<uint64_t> FitWriteToDataOut(uint8_t* cdb, uint32_t block_size,
                                          uint32_t data_out_bytes, bool* partial_block);

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
