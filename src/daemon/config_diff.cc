#include "daemon/config_diff.h"

#include <algorithm>
#include <map>

#include "daemon/config_writer.h"

namespace ferry::daemon {
namespace {

using json = nlohmann::json;

constexpr const char* kReportedLuns = "REPORTED LUNS DATA HAS CHANGED";
constexpr const char* kInquiry = "INQUIRY DATA HAS CHANGED";

// Objects of one sort by name, in both configurations: added, removed, changed.
template <typename T, typename Name>
void DiffNamed(const std::vector<T>& a, const std::vector<T>& b, const char* what, Name name,
               const std::set<std::string>& also_changed, ReloadPlan* plan) {
  std::map<std::string, const T*> before, after;
  for (const T& x : a) before[name(x)] = &x;
  for (const T& x : b) after[name(x)] = &x;
  for (const auto& [n, x] : after) {
    auto it = before.find(n);
    if (it == before.end()) {
      plan->items.push_back({what, n, ChangeKind::kAdd, {}});
    } else if (!(*it->second == *x) || also_changed.contains(n)) {
      plan->items.push_back({what, n, ChangeKind::kChange, {}});
    }
  }
  for (const auto& [n, x] : before) {
    (void)x;
    if (!after.contains(n)) plan->items.push_back({what, n, ChangeKind::kRemove, {}});
  }
}

std::string Lun(uint64_t n) { return "LUN " + std::to_string(n); }

// The LUN-by-LUN changes of a target, with the unit attention each raises.
void LunDetails(const TargetConfig& a, const TargetConfig& b, const std::set<std::string>& reopened,
                std::vector<std::string>* out) {
  std::map<uint64_t, TargetLunConfig> before, after;
  for (const auto& l : a.luns) before[l.lun] = l;
  for (const auto& l : b.luns) after[l.lun] = l;
  for (const auto& [n, l] : after) {
    auto it = before.find(n);
    if (it == before.end()) {
      out->push_back(Lun(n) + " added (" + l.backstore + "): " + kReportedLuns);
    } else if (it->second.backstore != l.backstore) {
      out->push_back(Lun(n) + " now " + l.backstore + " (was " + it->second.backstore +
                     "): " + kReportedLuns);
    } else {
      if (it->second.write_protect != l.write_protect) {
        out->push_back(Lun(n) + " write protection " + (l.write_protect ? "on" : "off") + ": " +
                       kInquiry);
      }
      if (reopened.contains(l.backstore)) {
        out->push_back(Lun(n) + ": backstore " + l.backstore + " reopened: " + kInquiry +
                       " (and CAPACITY DATA HAS CHANGED if its size changed)");
      }
    }
  }
  for (const auto& [n, l] : before) {
    if (!after.contains(n))
      out->push_back(Lun(n) + " removed (" + l.backstore + "): " + kReportedLuns);
  }
}

bool UsesGroup(const TargetConfig& t, const std::set<std::string>& groups) {
  if (groups.contains(t.auth_group)) return true;
  for (const AclConfig& a : t.acls) {
    if (groups.contains(a.auth_group.empty() ? t.auth_group : a.auth_group)) return true;
  }
  return false;
}

void TargetDetails(const TargetConfig& a, const TargetConfig& b,
                   const std::set<std::string>& reopened, const std::set<std::string>& groups,
                   std::vector<std::string>* out) {
  LunDetails(a, b, reopened, out);
  if (a.acls != b.acls) {
    out->push_back(
        "ACL changed: sessions it no longer admits are logged out; the others keep their "
        "session and see their LUN map's changes as unit attentions");
  }
  if (a.auth_group != b.auth_group || UsesGroup(b, groups)) {
    out->push_back("CHAP credentials changed: sessions that logged in with others are logged out");
  }
  if (a.portal_groups != b.portal_groups) {
    out->push_back(
        "portal groups changed: sessions through a portal group that went or changed its "
        "tag are logged out");
  }
  if (a.alias != b.alias) out->push_back("alias changed (sessions logging in from now on see it)");
}

// Every setting but the named sections, as the configuration file writes them.
json Settings(const Config& c) {
  json j = ConfigToJson(c);
  for (const char* k : {"auth_groups", "backstores", "volumes", "targets"}) j.erase(k);
  return j;
}

void SettingItems(const Config& running, const Config& next, ReloadPlan* plan) {
  const json a = Settings(running), b = Settings(next);
  std::set<std::string> keys;
  for (const auto& [k, v] : a.items()) keys.insert(k);
  for (const auto& [k, v] : b.items()) keys.insert(k);
  for (const std::string& k : keys) {
    const json va = a.value(k, json()), vb = b.value(k, json());
    if (va == vb) continue;
    plan->items.push_back({"setting",
                           k,
                           ChangeKind::kChange,
                           {(va.is_null() ? std::string("(unset)") : va.dump()) + " -> " +
                            (vb.is_null() ? std::string("(unset)") : vb.dump()) +
                            ": takes effect when ferryd starts again"}});
  }
}

}  // namespace

std::set<std::string> ReloadPlan::Names(std::string_view what, ChangeKind kind) const {
  std::set<std::string> out;
  for (const PlanItem& i : items) {
    if (i.what == what && i.kind == kind) out.insert(i.name);
  }
  return out;
}

std::vector<std::string> ReloadPlan::RestartOnly() const {
  std::vector<std::string> out;
  for (const PlanItem& i : items) {
    if (i.what == "setting") out.push_back(i.name);
  }
  return out;
}

ReloadPlan PlanReload(const Config& running, const Config& next,
                      const std::set<std::string>& secrets_changed) {
  ReloadPlan plan;
  auto by_name = [](const auto& x) { return x.name; };
  DiffNamed(running.auth_groups, next.auth_groups, "auth_group", by_name, secrets_changed, &plan);
  DiffNamed(running.backstores, next.backstores, "backstore", by_name, {}, &plan);
  DiffNamed(running.volumes, next.volumes, "volume", by_name, {}, &plan);
  const std::set<std::string> groups = plan.Names("auth_group", ChangeKind::kChange);
  const std::set<std::string> reopened = plan.Names("backstore", ChangeKind::kChange);
  std::set<std::string> touched;  // targets whose own configuration is the same
  for (const TargetConfig& t : next.targets) {
    const TargetConfig* old = nullptr;
    for (const TargetConfig& r : running.targets) old = r.name == t.name ? &r : old;
    if (old == nullptr || !(*old == t)) continue;
    bool reopens = UsesGroup(t, groups);
    for (const TargetLunConfig& l : t.luns) reopens |= reopened.contains(l.backstore);
    if (reopens) touched.insert(t.name);
  }
  DiffNamed(running.targets, next.targets, "target", by_name, touched, &plan);
  for (PlanItem& i : plan.items) {
    if (i.what == "volume" && i.kind == ChangeKind::kChange) {
      i.details.push_back("new table: the volume suspends, swaps it in and resumes");
    }
    if (i.what == "backstore" && i.kind == ChangeKind::kChange) {
      i.details.push_back("reopened with its new settings (same identity)");
    }
    if (i.what == "auth_group" && i.kind == ChangeKind::kChange) {
      i.details.push_back(secrets_changed.contains(i.name) ? "secrets changed" : "changed");
    }
    if (i.what == "target" && i.kind == ChangeKind::kRemove) {
      i.details.push_back("its sessions are logged out");
    }
    if (i.what != "target" || i.kind != ChangeKind::kChange) continue;
    const TargetConfig *a = nullptr, *b = nullptr;
    for (const TargetConfig& t : running.targets) a = t.name == i.name ? &t : a;
    for (const TargetConfig& t : next.targets) b = t.name == i.name ? &t : b;
    TargetDetails(*a, *b, reopened, groups, &i.details);
  }
  SettingItems(running, next, &plan);
  return plan;
}

std::string PlanText(const ReloadPlan& plan) {
  if (plan.empty()) return "no changes\n";
  std::string out;
  for (const PlanItem& i : plan.items) {
    const char* sign = i.kind == ChangeKind::kAdd ? "+" : i.kind == ChangeKind::kRemove ? "-" : "~";
    std::string what = i.what;
    std::replace(what.begin(), what.end(), '_', ' ');
    out += std::string(sign) + " " + what + " " + i.name + "\n";
    for (const std::string& d : i.details) out += "    " + d + "\n";
  }
  return out;
}

json PlanJson(const ReloadPlan& plan) {
  json out = json::array();
  for (const PlanItem& i : plan.items) {
    out.push_back({{"what", i.what},
                   {"name", i.name},
                   {"change", i.kind == ChangeKind::kAdd      ? "add"
                              : i.kind == ChangeKind::kRemove ? "remove"
                                                              : "change"},
                   {"details", i.details}});
  }
  return out;
}

}  // namespace ferry::daemon
