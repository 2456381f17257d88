// Asymmetric logical unit access (SPC-4 5.15): target port groups, their access states, the
// REPORT TARGET PORT GROUPS data (6.37), the SET TARGET PORT GROUPS parameter list (6.45)
// and which commands each state lets through (5.15.2.4).
//
// Ferry's model. Over iSCSI a SCSI target port is a target name plus a target portal group
// tag (RFC 7143 4.4.1), so each portal group of a target is one target port, and one
// target port group: the portal group's tag is both its relative target port identifier
// and its target port group number. A logical unit keeps its own access state per group
// (two LUs behind the same portal group may be optimized on different paths); the state
// starts as configured and changes with SET TARGET PORT GROUPS (explicit transitions
// only: TPGS 10b, Ferry never changes a state by itself).
//
// The codecs are pure functions of the bytes (fuzzed by fuzz/alua_fuzz.cc); AluaGroups is
// the thread-safe state one logical unit holds.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "scsi/sense.h"

namespace ferry::scsi {

// SPC-4 table 307 (ASYMMETRIC ACCESS STATE); the four Ferry supports.
enum class AluaState : uint8_t {
  kActiveOptimized = 0x0,
  kActiveNonOptimized = 0x1,
  kStandby = 0x2,
  kUnavailable = 0x3,
};
// "active/optimized", "active/non-optimized", "standby", "unavailable".
std::string_view AluaStateName(AluaState s);
// The names above, and their short forms "ao", "ano"; nullopt for anything else.
std::optional<AluaState> ParseAluaState(std::string_view name);

// SPC-4 table 308 STATUS CODE: why the group is in its state.
enum class AluaStatus : uint8_t {
  kNone = 0x00,
  kSetTargetPortGroups = 0x01,  // altered by SET TARGET PORT GROUPS
  kImplicit = 0x02,             // altered by implicit behaviour
};

struct TargetPortGroup {
  uint16_t id = 1;
  AluaState state = AluaState::kActiveOptimized;
  bool preferred = false;  // PREF: the preferred group for this LU
  AluaStatus status = AluaStatus::kNone;
  std::vector<uint16_t> relative_ports;  // ascending
};

// REPORT TARGET PORT GROUPS parameter data: the length-only header format (0) or the
// extended header (1, with an implicit transition time of 0: Ferry makes none).
std::vector<uint8_t> EncodeTargetPortGroups(std::span<const TargetPortGroup> groups, bool extended);

// One descriptor of a SET TARGET PORT GROUPS parameter list.
struct TpgChange {
  uint16_t group = 0;
  AluaState state = AluaState::kActiveOptimized;
};

// Decodes a SET TARGET PORT GROUPS parameter list (4 reserved bytes, then 4-byte
// descriptors). PARAMETER LIST LENGTH ERROR when the list is not the header plus whole
// descriptors; INVALID FIELD IN PARAMETER LIST at the state of a state Ferry cannot enter
// (logical block dependent, offline, transitioning, reserved), at the group number of a group
// not in `known` or that appears twice. An empty list (length 0) decodes to no change.
std::variant<std::vector<TpgChange>, Sense> DecodeSetTargetPortGroups(
    std::span<const uint8_t> params, std::span<const uint16_t> known);

// SPC-4 5.15.2.4.4 / 5.15.2.4.5: the NOT READY sense that ends `cdb` on a target port in
// `state`, or nullopt when the state lets it run. Active states let everything run.
std::optional<Sense> AluaRefusal(AluaState state, const uint8_t* cdb);

// The target port groups of one logical unit and their states. Thread-safe.
class AluaGroups {
 public:
  // The LU is reachable through target port `relative_port` of group `group`, whose state
  // is `state` until changed. A group added twice keeps its first state and preference and
  // gathers the ports.
  void AddPort(uint16_t group, uint16_t relative_port, AluaState state, bool preferred);
  bool empty() const;
  // The state of `group`; active/optimized for a group the LU does not know (a path that
  // has no configuration: every LU is reachable through it as usual).
  AluaState StateOf(uint16_t group) const;
  std::vector<TargetPortGroup> Snapshot() const;  // ascending group number
  bool Has(uint16_t group) const;
  // Applies decoded changes (every group exists); returns how many groups changed state.
  size_t Apply(std::span<const TpgChange> changes);

 private:
  mutable std::mutex mu_;
  std::vector<TargetPortGroup> groups_;  // guarded by mu_, ascending id
};

}  // namespace ferry::scsi
