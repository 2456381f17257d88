// The logical unit's side of asymmetric access (alua.h): SPC-4 6.37 REPORT TARGET PORT
// GROUPS, 6.45 SET TARGET PORT GROUPS, and the access state every command passes.
#include <variant>
#include <vector>

#include "base/endian.h"
#include "base/log.h"
#include "scsi/logical_unit.h"
#include "scsi/nexus.h"

namespace ferry::scsi {
namespace {

// An LU no transport configured is reachable through target port 1 of group 1.
std::vector<TargetPortGroup> GroupsOrDefault(const AluaGroups& a) {
  std::vector<TargetPortGroup> g = a.Snapshot();
  if (g.empty()) g.push_back(TargetPortGroup{.id = 1, .relative_ports = {1}});
  return g;
}

}  // namespace

bool LogicalUnit::AluaRefuses(Task& t) const {
  const uint16_t group = t.view != nullptr ? t.view->target_port_group : id_.target_port_group;
  const std::optional<Sense> s = AluaRefusal(alua_.StateOf(group), t.cdb.data());
  if (!s) return false;
  t.Fail(*s);
  return true;
}

void LogicalUnit::ReportTargetPortGroups(Task& t) {
  const uint8_t format = t.cdb[1] >> 5;  // PARAMETER DATA FORMAT
  if (format > 1) return t.Fail(InvalidFieldInCdb(1, 7));
  t.Reply(EncodeTargetPortGroups(GroupsOrDefault(alua_), format == 1));
}

void LogicalUnit::SetTargetPortGroups(Task& t) {
  const uint32_t len = LoadBe32(t.cdb.data() + 6);
  if (t.data_out.size() < len) {
    return t.Fail(MakeSense(SenseKey::kIllegalRequest, Asc::kParameterListLengthError));
  }
  const std::vector<TargetPortGroup> groups = GroupsOrDefault(alua_);
  std::vector<uint16_t> known;
  for (const TargetPortGroup& g : groups) known.push_back(g.id);
  auto r = DecodeSetTargetPortGroups(t.data_out.first(len), known);
  if (const Sense* s = std::get_if<Sense>(&r)) return t.Fail(*s);
  const auto& changes = std::get<std::vector<TpgChange>>(r);
  if (changes.empty()) return;
  if (alua_.empty()) alua_.AddPort(1, 1, AluaState::kActiveOptimized, false);
  if (alua_.Apply(changes) == 0) return;
  // SPC-4 5.15.2.6: every other I_T nexus learns of the change from a unit attention.
  RaiseUnitAttentionExcept(t.nexus, Asc::kAsymmetricAccessStateChanged);
  for (const TpgChange& c : changes) {
    FERRY_LOG_INFO("scsi: {}: target port group {} is now {} (SET TARGET PORT GROUPS)",
                   dev_->name(), c.group, AluaStateName(c.state));
  }
}

}  // namespace ferry::scsi
