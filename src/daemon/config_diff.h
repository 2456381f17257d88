// What a reload would do: the difference between the running configuration and a new one,
// object by object, with what each change does to the sessions (docs/ferryd-config.md,
// "Reload"). A pure function of two configurations (and of which auth groups' secret files
// now hold other secrets): `ferryctl config diff` prints it, the reload applies it.
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "daemon/config.h"

namespace ferry::daemon {

enum class ChangeKind { kAdd, kRemove, kChange };

struct PlanItem {
  std::string what;  // "auth_group", "backstore", "volume", "target", "setting"
  std::string name;  // the object's name (a setting: its JSON key)
  ChangeKind kind = ChangeKind::kChange;
  std::vector<std::string> details;  // what changed, and what that does to sessions
  bool operator==(const PlanItem&) const = default;
};

struct ReloadPlan {
  // In the order the reload applies them: auth groups, backstores, volumes, targets; then
  // settings that only take effect when ferryd starts again (the reload leaves them).
  std::vector<PlanItem> items;
  bool empty() const { return items.empty(); }
  // The names of the objects of one sort that change in one way.
  std::set<std::string> Names(std::string_view what, ChangeKind kind) const;
  // Settings: keys whose change waits for a restart.
  std::vector<std::string> RestartOnly() const;
};

// `secrets_changed`: auth groups whose configuration is the same but whose secret files now
// hold other credentials (the reload reads them again).
ReloadPlan PlanReload(const Config& running, const Config& next,
                      const std::set<std::string>& secrets_changed = {});

// "no changes", or one line per object ("+ target iqn...", "- backstore b", "~ volume v")
// with its details indented below it.
std::string PlanText(const ReloadPlan& plan);
// [{"what", "name", "change": "add"|"remove"|"change", "details": [...]}, ...]
nlohmann::json PlanJson(const ReloadPlan& plan);

}  // namespace ferry::daemon
