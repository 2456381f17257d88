#include "volume/builtin.h"

#include "volume/basic_targets.h"
#include "volume/delay_target.h"
#include "volume/flakey_target.h"
#include "volume/mirror/mirror_target.h"
#include "volume/snapshot/snapshot_target.h"
#include "volume/thin/thin_pool_target.h"
#include "volume/thin/thin_target.h"

namespace ferry::volume {

namespace {
constexpr TargetType kTargets[] = {
    {"linear", &LinearTarget::Create},
    {"striped", &StripedTarget::Create},
    {"zero", &ZeroTarget::Create},
    {"error", &ErrorTarget::Create},
    {"flakey", &FlakeyTarget::Create},
    {"delay", &DelayTarget::Create},
    {"mirror", &mirror::MirrorTarget::Create},
    {"snapshot", &snapshot::SnapshotTarget::CreateSnapshot},
    {"snapshot-origin", &snapshot::OriginTarget::Create},
    {"snapshot-merge", &snapshot::SnapshotTarget::CreateMerge},
    {"thin-pool", &thin::ThinPoolTarget::Create},
    {"thin", &thin::ThinTarget::Create},
};
}  // namespace

std::span<const TargetType> BuiltinTargets() { return kTargets; }

const TargetType* FindTargetType(std::string_view name) {
  for (const TargetType& t : kTargets) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::string TargetTypeNames() {
  std::string s;
  for (const TargetType& t : kTargets) {
    if (!s.empty()) s += ", ";
    s += t.name;
  }
  return s;
}

}  // namespace ferry::volume
