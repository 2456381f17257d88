// Fuzz target: ferryd's configuration decoder (ParseConfig).
// Invariants: never crashes; an accepted configuration has no dangling reference (every LUN
// names a backstore or a volume, every auth group named exists), volume names are unique
// and apart from backstore names, volume tables are not empty, and every error names a
// JSON path.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "backends/builtin.h"
#include "daemon/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ferry::daemon::Config;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = ferry::daemon::ParseConfig(text);
  if (!c.ok()) {
    if (!c.status().message().starts_with("$")) std::abort();
    return 0;
  }
  if (c->targets.empty()) std::abort();
  if (!c->discovery_auth_group.empty() && !c->FindAuthGroup(c->discovery_auth_group)) {
    std::abort();
  }
  for (const auto& t : c->targets) {
    if (t.portal_groups.empty() || t.luns.empty()) std::abort();
    for (const auto& l : t.luns) {
      if (!c->FindBackstore(l.backstore) && !c->FindVolume(l.backstore)) std::abort();
    }
    if (!t.auth_group.empty() && !c->FindAuthGroup(t.auth_group)) std::abort();
    for (const auto& a : t.acls) {
      if (!a.auth_group.empty() && !c->FindAuthGroup(a.auth_group)) std::abort();
    }
  }
  for (const auto& b : c->backstores) {
    // Every accepted backstore passes its backend's own check, and names a known backend.
    if (!ferry::backends::CheckBackend(b.type, b.params).ok()) std::abort();
    if (!b.auth_group().empty() && !c->FindAuthGroup(b.auth_group())) std::abort();
  }
  for (const auto& v : c->volumes) {
    if (c->FindVolume(v.name) != &v || c->FindBackstore(v.name) != nullptr) std::abort();
    if (!ferry::daemon::ValidDeviceName(v.name) || v.table.empty()) std::abort();
  }
  return 0;
}
