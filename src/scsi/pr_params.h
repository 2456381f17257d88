// Persistent reservation wire formats: the PERSISTENT RESERVE OUT CDB (SPC-4 6.16.1) and
// parameter lists (6.16.3 basic, 6.16.4 REGISTER AND MOVE), iSCSI TransportIDs (7.6.4.6),
// and the access class of a CDB under a reservation (SPC-4 table 65, SBC-4 table 13).
//
// Pure functions of the bytes (base layer and sense.h only), fuzzed by fuzz/pr_out_fuzz.cc.
// Decoders check what the bytes alone decide, lengths first (PARAMETER LIST LENGTH ERROR),
// then fields; an error is the Sense to fail the command with, its field pointer into the
// CDB or the parameter list. Whether a key matches, a nexus is registered and so on is the
// state machine's business (persistent_reservations.h).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "scsi/sense.h"

namespace ferry::scsi {

// The I_T nexus id of an iSCSI initiator port, the value the transport puts in Task::nexus:
// std::hash of initiator name + ",i," + the six raw ISID bytes (the target port is not part
// of it: Ferry's nexus ids name initiator ports).
inline uint64_t NexusIdFor(std::string_view initiator_name, std::span<const uint8_t, 6> isid) {
  std::string id(initiator_name);
  id += ",i,";
  for (uint8_t b : isid) id += static_cast<char>(b);
  return std::hash<std::string>{}(id);
}

// iSCSI names compare without regard to ASCII case (RFC 3722 maps names to lower case; some
// initiators send TransportIDs in another case than their login name).
bool IscsiNamesEqual(std::string_view a, std::string_view b);
// 1 to 223 bytes, no control characters, no comma (what a TransportID can carry).
bool IsValidIscsiName(std::string_view name);

// SPC-4 6.16.2 PERSISTENT RESERVE OUT service actions.
enum class PrOutAction : uint8_t {
  kRegister = 0x0,
  kReserve = 0x1,
  kRelease = 0x2,
  kClear = 0x3,
  kPreempt = 0x4,
  kPreemptAndAbort = 0x5,
  kRegisterAndIgnoreExistingKey = 0x6,
  kRegisterAndMove = 0x7,
  // 08h REPLACE LOST RESERVATION is refused (RLR_C 0: Ferry never loses reservation state
  // silently; an unreadable APTPL file is reported and starts empty).
};

// SPC-4 6.15.3.4 persistent reservation types (the TYPE field).
enum class PrType : uint8_t {
  kWriteExclusive = 0x1,
  kExclusiveAccess = 0x3,
  kWriteExclusiveRegistrantsOnly = 0x5,
  kExclusiveAccessRegistrantsOnly = 0x6,
  kWriteExclusiveAllRegistrants = 0x7,
  kExclusiveAccessAllRegistrants = 0x8,
};
bool IsValidPrType(uint8_t type);
// Every registrant holds an all registrants reservation (SPC-4 5.13.10).
inline bool IsAllRegistrants(PrType t) {
  return t == PrType::kWriteExclusiveAllRegistrants || t == PrType::kExclusiveAccessAllRegistrants;
}
// Registrants only or all registrants ("RR" in SPC-4 table 65): registrants have access.
inline bool IsRegistrantsType(PrType t) { return static_cast<uint8_t>(t) >= 0x5; }
// Write Exclusive flavours restrict writes only.
inline bool IsWriteExclusive(PrType t) {
  return t == PrType::kWriteExclusive || t == PrType::kWriteExclusiveRegistrantsOnly ||
         t == PrType::kWriteExclusiveAllRegistrants;
}

// SPC-4 6.16.1 PERSISTENT RESERVE OUT CDB: 5Fh, SERVICE ACTION (byte 1 bits 4-0), SCOPE
// (byte 2 bits 7-4), TYPE (bits 3-0), PARAMETER LIST LENGTH (bytes 5-8).
struct PrOutCdb {
  PrOutAction action = PrOutAction::kRegister;
  uint8_t scope_type = 0;  // byte 2 as sent
  uint32_t param_len = 0;
  PrType type() const { return static_cast<PrType>(scope_type & 0x0f); }
};
// INVALID FIELD IN CDB unless `scope_type` (CDB byte 2) is LU_SCOPE (6.15.3.3) and one of
// the six types (6.15.3.4).
std::optional<Sense> CheckPrScopeAndType(uint8_t scope_type);
// INVALID FIELD IN CDB for a service action other than 00h-07h, and for RESERVE and RELEASE
// the CheckPrScopeAndType error. PREEMPT and PREEMPT AND ABORT use SCOPE and TYPE only when
// they preempt a reservation, and ignore them when they only remove registrations
// (5.13.11.2.5): the state machine checks them then. REGISTER*, CLEAR and REGISTER AND MOVE
// ignore them (5.13.7, 5.13.8, 5.13.11.2.7).
std::variant<PrOutCdb, Sense> DecodePrOutCdb(const uint8_t* cdb);

// The largest parameter list Ferry processes (SPC-4 6.16.1: larger ones end in PARAMETER
// LIST LENGTH ERROR). Room for a hundred maximal TransportIDs; keeps field pointers 16-bit.
inline constexpr uint32_t kMaxPrOutParamBytes = 32 * 1024;
// SPC-4 7.6.4.6: an iSCSI name is at most 223 bytes.
inline constexpr size_t kMaxIscsiNameBytes = 223;
inline constexpr uint8_t kProtocolIdIscsi = 0x5;

// An iSCSI TransportID (SPC-4 7.6.4.6): format 00b names an initiator device (name only),
// format 01b an initiator port (name ",i,0x" ISID).
struct IscsiTransportId {
  std::string name;                            // as sent; compare with IscsiNamesEqual
  std::optional<std::array<uint8_t, 6>> isid;  // format 01b only
  uint16_t offset = 0;                         // of the TransportID in the parameter list
  uint16_t bytes = 0;                          // 4 + ADDITIONAL LENGTH
};
// Decodes the TransportID at `offset` of `list`, which must end before `end` (the end of the
// TransportIDs it belongs to). Errors: INVALID FIELD IN PARAMETER LIST at the PROTOCOL
// IDENTIFIER (not 5h), the FORMAT CODE (10b, 11b), the ADDITIONAL LENGTH (under 20, not a
// multiple of 4, or running past `end`), or the name/ISID (empty, too long, not terminated,
// a control character or comma, an ISID that is not 12 hex digits).
std::variant<IscsiTransportId, Sense> DecodeIscsiTransportId(std::span<const uint8_t> list,
                                                             size_t offset, size_t end);
// Appends the format 01b TransportID of an initiator port (READ FULL STATUS): name, ",i,0x",
// the ISID as 12 lower-case hex digits, a null, padded with nulls to a multiple of 4.
void EncodeIscsiTransportId(std::string_view name, std::span<const uint8_t, 6> isid,
                            std::vector<uint8_t>* out);

// SPC-4 6.16.3 basic PERSISTENT RESERVE OUT parameter list.
struct PrOutParams {
  uint64_t reservation_key = 0;                 // bytes 0-7
  uint64_t sa_reservation_key = 0;              // bytes 8-15
  bool spec_i_pt = false;                       // byte 20 bit 3
  bool all_tg_pt = false;                       // byte 20 bit 2
  bool aptpl = false;                           // byte 20 bit 0
  std::vector<IscsiTransportId> transport_ids;  // SPEC_I_PT: bytes 28.., in order
};
// Length rules (6.16.1, 6.16.3): 24 bytes unless SPEC_I_PT; with SPEC_I_PT (REGISTER only,
// else INVALID FIELD IN PARAMETER LIST at byte 20 bit 3) exactly 28 + TRANSPORTID PARAMETER
// DATA LENGTH. TransportIDs must tile that length exactly.
std::variant<PrOutParams, Sense> DecodePrOutParams(PrOutAction action,
                                                   std::span<const uint8_t> params);

// SPC-4 6.16.4 REGISTER AND MOVE parameter list.
struct RegisterAndMoveParams {
  uint64_t reservation_key = 0;       // bytes 0-7
  uint64_t sa_reservation_key = 0;    // bytes 8-15
  bool unreg = false;                 // byte 17 bit 1
  bool aptpl = false;                 // byte 17 bit 0
  uint16_t relative_target_port = 0;  // bytes 18-19
  IscsiTransportId transport_id;      // bytes 24..; exactly one
};
// At least 24 + 24 bytes, exactly 24 + TRANSPORTID PARAMETER DATA LENGTH, which holds one
// TransportID exactly.
std::variant<RegisterAndMoveParams, Sense> DecodeRegisterAndMoveParams(
    std::span<const uint8_t> params);

// How a command fares under a persistent reservation it does not hold (SPC-4 5.13.1 table
// 65, SBC-4 4.17 table 13), for a device server reporting ALLOW COMMANDS 100b.
enum class PrAccess : uint8_t {
  kAllowed,  // "Allowed" in every column (INQUIRY, TEST UNIT READY, READ CAPACITY, ...)
  kRead,     // Allowed through Write Exclusive types, conflicts with Exclusive Access types
  kWrite,    // conflicts with every type (writes, and anything not known to be harmless)
};
PrAccess ClassifyForReservations(const uint8_t* cdb);

}  // namespace ferry::scsi
