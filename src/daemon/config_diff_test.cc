#include "daemon/config_diff.h"

#include <gtest/gtest.h>

namespace ferry::daemon {
namespace {

constexpr const char* kA = R"({
  "auth_groups": {"g": {"user": "u", "secret_file": "/s/g"}},
  "backstores": {"r0": {"type": "ram", "size": "1M"}, "r1": {"type": "ram", "size": "1M"},
                 "r2": {"type": "ram", "size": "1M"}, "old": {"type": "ram", "size": "1M"}},
  "volumes": [{"name": "v", "table": "0 8 linear r2 0"}],
  "targets": {
    "iqn.2026-11.org.ferry:a": {
      "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:3260"]}],
      "luns": [{"lun": 0, "backstore": "r0"}]
    },
    "iqn.2026-11.org.ferry:b": {
      "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:3260"]}],
      "luns": [{"lun": 0, "backstore": "r1"}, {"lun": 1, "backstore": "v"}],
      "acls": [{"initiators": ["iqn.2026-11.org.ferry:i1"]}]
    },
    "iqn.2026-11.org.ferry:gone": {
      "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:3260"]}],
      "luns": [{"lun": 0, "backstore": "old"}]
    }
  }
})";

Config Parse(const std::string& text) {
  auto c = ParseConfig(text);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : Config{};
}

// kA with `from` replaced by `to` (each must occur once).
std::string Edit(std::string text, const std::vector<std::pair<std::string, std::string>>& e) {
  for (const auto& [from, to] : e) {
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
  }
  return text;
}

const PlanItem* Find(const ReloadPlan& p, std::string_view what, std::string_view name) {
  for (const PlanItem& i : p.items) {
    if (i.what == what && i.name == name) return &i;
  }
  return nullptr;
}

bool Mentions(const PlanItem* i, std::string_view text) {
  if (i == nullptr) return false;
  for (const std::string& d : i->details) {
    if (d.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST(ConfigDiff, SameConfigurationNoChanges) {
  const ReloadPlan p = PlanReload(Parse(kA), Parse(kA));
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(PlanText(p), "no changes\n");
  EXPECT_TRUE(PlanJson(p).empty());
}

TEST(ConfigDiff, TargetsAddedRemovedChanged) {
  const std::string b = Edit(
      kA, {{R"("luns": [{"lun": 0, "backstore": "r1"}, {"lun": 1, "backstore": "v"}],)",
            R"("luns": [{"lun": 0, "backstore": "r1", "write_protect": true},
                        {"lun": 2, "backstore": "new"}],)"},
           {R"("old": {"type": "ram", "size": "1M"})", R"("new": {"type": "ram", "size": "2M"})"},
           {R"("iqn.2026-11.org.ferry:i1")", R"("iqn.2026-11.org.ferry:i2")"},
           {R"("iqn.2026-11.org.ferry:gone")", R"("iqn.2026-11.org.ferry:fresh")"},
           {R"({"lun": 0, "backstore": "old"})", R"({"lun": 0, "backstore": "r2"})"},
           {R"("volumes": [{"name": "v", "table": "0 8 linear r2 0"}],)", ""}});
  const ReloadPlan p = PlanReload(Parse(kA), Parse(b));
  EXPECT_EQ(Find(p, "target", "iqn.2026-11.org.ferry:a"), nullptr);  // untouched
  const PlanItem* tb = Find(p, "target", "iqn.2026-11.org.ferry:b");
  ASSERT_NE(tb, nullptr) << PlanText(p);
  EXPECT_EQ(tb->kind, ChangeKind::kChange);
  EXPECT_TRUE(Mentions(tb, "LUN 0 write protection on: INQUIRY DATA HAS CHANGED")) << PlanText(p);
  EXPECT_TRUE(Mentions(tb, "LUN 1 removed (v): REPORTED LUNS DATA HAS CHANGED")) << PlanText(p);
  EXPECT_TRUE(Mentions(tb, "LUN 2 added (new): REPORTED LUNS DATA HAS CHANGED")) << PlanText(p);
  EXPECT_TRUE(Mentions(tb, "ACL changed")) << PlanText(p);
  const PlanItem* gone = Find(p, "target", "iqn.2026-11.org.ferry:gone");
  ASSERT_NE(gone, nullptr);
  EXPECT_EQ(gone->kind, ChangeKind::kRemove);
  EXPECT_TRUE(Mentions(gone, "logged out"));
  ASSERT_NE(Find(p, "target", "iqn.2026-11.org.ferry:fresh"), nullptr);
  EXPECT_EQ(Find(p, "target", "iqn.2026-11.org.ferry:fresh")->kind, ChangeKind::kAdd);
  EXPECT_EQ(p.Names("backstore", ChangeKind::kAdd), std::set<std::string>{"new"});
  EXPECT_EQ(p.Names("backstore", ChangeKind::kRemove), std::set<std::string>{"old"});
  EXPECT_EQ(p.Names("volume", ChangeKind::kRemove), std::set<std::string>{"v"});
  // Applied in dependency order: what targets need comes before the targets.
  EXPECT_EQ(p.items.front().what, "backstore");
  EXPECT_EQ(p.items.back().what, "target");
  const std::string text = PlanText(p);
  EXPECT_NE(text.find("+ target iqn.2026-11.org.ferry:fresh\n"), std::string::npos) << text;
  EXPECT_NE(text.find("- backstore old\n"), std::string::npos) << text;
  EXPECT_NE(text.find("~ target iqn.2026-11.org.ferry:b\n    "), std::string::npos) << text;
  EXPECT_EQ(PlanJson(p).size(), p.items.size());
  EXPECT_EQ(PlanJson(p)[0]["change"], "add");
}

TEST(ConfigDiff, ReopenedBackstoreAndChangedSecretsTouchTheirTargets) {
  const std::string b = Edit(
      kA, {{R"("r0": {"type": "ram", "size": "1M"})", R"("r0": {"type": "ram", "size": "2M"})"},
           {R"("acls": [{"initiators": ["iqn.2026-11.org.ferry:i1"]}])",
            R"("auth_group": "g", "acls": [{"initiators": ["iqn.2026-11.org.ferry:i1"]}])"}});
  ReloadPlan p = PlanReload(Parse(kA), Parse(b));
  const PlanItem* ta = Find(p, "target", "iqn.2026-11.org.ferry:a");
  ASSERT_NE(ta, nullptr) << PlanText(p);
  EXPECT_TRUE(Mentions(ta, "backstore r0 reopened: INQUIRY DATA HAS CHANGED")) << PlanText(p);
  EXPECT_TRUE(Mentions(Find(p, "target", "iqn.2026-11.org.ferry:b"), "CHAP credentials changed"));
  // The same files, other secrets in them: the group and the targets using it change.
  p = PlanReload(Parse(b), Parse(b), {"g"});
  ASSERT_NE(Find(p, "auth_group", "g"), nullptr);
  EXPECT_TRUE(Mentions(Find(p, "auth_group", "g"), "secrets changed"));
  EXPECT_TRUE(Mentions(Find(p, "target", "iqn.2026-11.org.ferry:b"), "CHAP credentials changed"));
  EXPECT_EQ(Find(p, "target", "iqn.2026-11.org.ferry:a"), nullptr);
}

TEST(ConfigDiff, VolumesAndSettings) {
  const std::string b = Edit(kA, {{R"("0 8 linear r2 0")", R"(["0 8 linear r2 0", "8 8 zero"])"},
                                  {R"("auth_groups")", R"("nop_interval_s": 5, "auth_groups")"}});
  const ReloadPlan p = PlanReload(Parse(kA), Parse(b));
  const PlanItem* v = Find(p, "volume", "v");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->kind, ChangeKind::kChange);
  EXPECT_TRUE(Mentions(v, "suspends"));
  EXPECT_EQ(p.RestartOnly(), std::vector<std::string>{"nop_interval_s"});
  EXPECT_TRUE(Mentions(Find(p, "setting", "nop_interval_s"), "30 -> 5"));
  // The LUN on the volume stays: its target is not touched by a new table.
  EXPECT_EQ(Find(p, "target", "iqn.2026-11.org.ferry:b"), nullptr);
}

}  // namespace
}  // namespace ferry::daemon
