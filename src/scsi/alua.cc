#include "scsi/alua.h"

#include <algorithm>

#include "base/endian.h"

namespace ferry::scsi {
namespace {

constexpr uint8_t kOpInquiry = 0x12;
constexpr uint8_t kOpRequestSense = 0x03;
constexpr uint8_t kOpReportLuns = 0xa0;
constexpr uint8_t kOpMaintenanceIn = 0xa3;
constexpr uint8_t kOpMaintenanceOut = 0xa4;
constexpr uint8_t kSaTargetPortGroups = 0x0a;  // REPORT (A3h) and SET (A4h)
constexpr uint8_t kOpReadBuffer = 0x3c;
constexpr uint8_t kOpWriteBuffer = 0x3b;
constexpr uint8_t kBufferModeEcho = 0x0a;

// Commands every state allows (SPC-4 5.15.2.4.5, the unavailable state's list, which the
// standby state's list contains).
bool AllowedWhenUnavailable(const uint8_t* c) {
  switch (c[0]) {
    case kOpInquiry:
    case kOpRequestSense:
    case kOpReportLuns: return true;
    case kOpMaintenanceIn:
    case kOpMaintenanceOut: return (c[1] & 0x1f) == kSaTargetPortGroups;
    case kOpReadBuffer:
    case kOpWriteBuffer: return (c[1] & 0x1f) == kBufferModeEcho;
    default: return false;
  }
}

// SPC-4 5.15.2.4.4: standby adds the commands that configure and diagnose the LU and the
// reservation commands (a cluster fences through its standby paths too).
bool AllowedWhenStandby(const uint8_t* c) {
  switch (c[0]) {
    case 0x4c:  // LOG SELECT
    case 0x4d:  // LOG SENSE
    case 0x15:  // MODE SELECT(6)
    case 0x55:  // MODE SELECT(10)
    case 0x1a:  // MODE SENSE(6)
    case 0x5a:  // MODE SENSE(10)
    case 0x1c:  // RECEIVE DIAGNOSTIC RESULTS
    case 0x1d:  // SEND DIAGNOSTIC
    case 0x5e:  // PERSISTENT RESERVE IN
    case 0x5f:  // PERSISTENT RESERVE OUT
      return true;
    default: return AllowedWhenUnavailable(c);
  }
}

}  // namespace

std::string_view AluaStateName(AluaState s) {
  switch (s) {
    case AluaState::kActiveOptimized: return "active/optimized";
    case AluaState::kActiveNonOptimized: return "active/non-optimized";
    case AluaState::kStandby: return "standby";
    case AluaState::kUnavailable: return "unavailable";
  }
  return "?";
}

std::optional<AluaState> ParseAluaState(std::string_view name) {
  if (name == "active/optimized" || name == "ao") return AluaState::kActiveOptimized;
  if (name == "active/non-optimized" || name == "ano") return AluaState::kActiveNonOptimized;
  if (name == "standby") return AluaState::kStandby;
  if (name == "unavailable") return AluaState::kUnavailable;
  return std::nullopt;
}

std::vector<uint8_t> EncodeTargetPortGroups(std::span<const TargetPortGroup> groups,
                                            bool extended) {
  const size_t header = extended ? 8 : 4;
  std::vector<uint8_t> d(header, 0);
  if (extended) d[4] = 0x10;  // FORMAT TYPE 001b; IMPLICIT TRANSITION TIME 0
  for (const TargetPortGroup& g : groups) {
    uint8_t desc[8] = {};
    desc[0] = static_cast<uint8_t>((g.preferred ? 0x80 : 0) | static_cast<uint8_t>(g.state));
    desc[1] = 0x0f;  // U_SUP, S_SUP, AN_SUP, AO_SUP (no transitioning, offline, LBD)
    StoreBe16(&desc[2], g.id);
    desc[5] = static_cast<uint8_t>(g.status);
    desc[7] = static_cast<uint8_t>(std::min<size_t>(g.relative_ports.size(), 255));
    d.insert(d.end(), desc, desc + 8);
    for (size_t i = 0; i < desc[7]; ++i) {
      uint8_t port[4] = {};
      StoreBe16(&port[2], g.relative_ports[i]);
      d.insert(d.end(), port, port + 4);
    }
  }
  // RETURN DATA LENGTH: the bytes after it (the descriptors, and the extended header's rest).
  StoreBe32(d.data(), static_cast<uint32_t>(d.size() - 4));
  return d;
}

std::variant<std::vector<TpgChange>, Sense> DecodeSetTargetPortGroups(
    std::span<const uint8_t> params, std::span<const uint16_t> known) {
  std::vector<TpgChange> out;
  if (params.empty()) return out;
  if (params.size() < 4 || (params.size() - 4) % 4 != 0) {
    return MakeSense(SenseKey::kIllegalRequest, Asc::kParameterListLengthError);
  }
  for (size_t off = 4; off < params.size(); off += 4) {
    const uint8_t state = params[off] & 0x0f;
    if (state > static_cast<uint8_t>(AluaState::kUnavailable)) {
      return InvalidFieldInParameterList(static_cast<uint16_t>(off), 3);
    }
    const uint16_t group = LoadBe16(&params[off + 2]);
    const bool exists = std::find(known.begin(), known.end(), group) != known.end();
    const bool twice =
        std::any_of(out.begin(), out.end(), [&](const TpgChange& c) { return c.group == group; });
    if (!exists || twice) return InvalidFieldInParameterList(static_cast<uint16_t>(off + 2));
    out.push_back({group, static_cast<AluaState>(state)});
  }
  return out;
}

std::optional<Sense> AluaRefusal(AluaState state, const uint8_t* cdb) {
  switch (state) {
    case AluaState::kActiveOptimized:
    case AluaState::kActiveNonOptimized: return std::nullopt;
    case AluaState::kStandby:
      if (AllowedWhenStandby(cdb)) return std::nullopt;
      return MakeSense(SenseKey::kNotReady, Asc::kLogicalUnitNotAccessibleTargetPortInStandbyState);
    case AluaState::kUnavailable:
      if (AllowedWhenUnavailable(cdb)) return std::nullopt;
      return MakeSense(SenseKey::kNotReady,
                       Asc::kLogicalUnitNotAccessibleTargetPortInUnavailableState);
  }
  return std::nullopt;
}

void AluaGroups::AddPort(uint16_t group, uint16_t relative_port, AluaState state, bool preferred) {
  std::lock_guard lock(mu_);
  auto it = std::lower_bound(groups_.begin(), groups_.end(), group,
                             [](const TargetPortGroup& g, uint16_t id) { return g.id < id; });
  if (it == groups_.end() || it->id != group) {
    it = groups_.insert(it, TargetPortGroup{.id = group, .state = state, .preferred = preferred});
  }
  auto& ports = it->relative_ports;
  auto p = std::lower_bound(ports.begin(), ports.end(), relative_port);
  if (p == ports.end() || *p != relative_port) ports.insert(p, relative_port);
}

bool AluaGroups::empty() const {
  std::lock_guard lock(mu_);
  return groups_.empty();
}

AluaState AluaGroups::StateOf(uint16_t group) const {
  std::lock_guard lock(mu_);
  for (const TargetPortGroup& g : groups_) {
    if (g.id == group) return g.state;
  }
  return AluaState::kActiveOptimized;
}

bool AluaGroups::Has(uint16_t group) const {
  std::lock_guard lock(mu_);
  return std::any_of(groups_.begin(), groups_.end(),
                     [&](const TargetPortGroup& g) { return g.id == group; });
}

std::vector<TargetPortGroup> AluaGroups::Snapshot() const {
  std::lock_guard lock(mu_);
  return groups_;
}

size_t AluaGroups::Apply(std::span<const TpgChange> changes) {
  std::lock_guard lock(mu_);
  size_t changed = 0;
  for (const TpgChange& c : changes) {
    for (TargetPortGroup& g : groups_) {
      if (g.id != c.group) continue;
      if (g.state != c.state) ++changed;
      g.state = c.state;
      g.status = AluaStatus::kSetTargetPortGroups;
    }
  }
  return changed;
}

}  // namespace ferry::scsi
