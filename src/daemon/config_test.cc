#include "daemon/config.h"

#include <gtest/gtest.h>

namespace ferry::daemon {
namespace {

constexpr const char* kGood = R"({
  "state_dir": "/var/lib/ferry",
  "chap_algorithms": ["SHA-256", "MD5"],
  "nop_interval_s": 10,
  "login_timeout_s": 20,
  "max_connections": 100,
  "first_pdu_timeout_s": 2,
  "max_prelogin_connections": 200,
  "max_prelogin_per_address": 10,
  "discovery": {"auth_group": "disc"},
  "auth_groups": {
    "disc": {"user": "d", "secret_file": "/etc/ferry/disc"},
    "esx": {"user": "esx", "secret_file": "/etc/ferry/esx",
            "mutual_user": "array", "mutual_secret_file": "/etc/ferry/esx-mutual"}
  },
  "backstores": {
    "ram0": {"type": "ram", "size": "64M"},
    "disk": {"type": "file", "path": "/srv/disk.img", "size": 1073741824, "create": true,
             "block_size": 4096, "direct": true}
  },
  "targets": {
    "iqn.2026-11.org.ferry:vm": {
      "alias": "vm store",
      "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:3260", "[::1]:3261"]},
                        {"tag": 2, "portals": ["127.0.0.2"]}],
      "luns": [{"lun": 0, "backstore": "ram0"}, {"lun": 1, "backstore": "disk"}],
      "auth_group": "esx",
      "acls": [
        {"initiators": ["iqn.1998-01.com.vmware:esx01"], "networks": ["127.0.0.0/8"]},
        {"initiators": ["*"], "write_protect": true, "luns": [{"lun": 1, "as": 0}]}
      ]
    }
  }
})";

TEST(Config, ParsesEverything) {
  auto c = ParseConfig(kGood);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->state_dir, "/var/lib/ferry");
  EXPECT_EQ(c->chap_algorithms.size(), 2u);
  EXPECT_EQ(c->nop_interval_s, 10u);
  EXPECT_EQ(c->login_timeout_s, 20u);
  EXPECT_EQ(c->max_connections, 100u);
  EXPECT_EQ(c->first_pdu_timeout_s, 2u);
  EXPECT_EQ(c->max_prelogin_connections, 200u);
  EXPECT_EQ(c->max_prelogin_per_address, 10u);
  EXPECT_EQ(c->discovery_auth_group, "disc");
  ASSERT_EQ(c->backstores.size(), 2u);
  const BackstoreConfig* disk = c->FindBackstore("disk");
  ASSERT_NE(disk, nullptr);
  EXPECT_EQ(disk->type, "file");
  EXPECT_EQ(disk->params.at("size").text, "1073741824");
  EXPECT_EQ(disk->params.at("block_size").text, "4096");
  EXPECT_EQ(disk->params.at("create").kind, backends::ParamValue::Kind::kBool);
  EXPECT_EQ(disk->params.at("direct").text, "true");
  EXPECT_EQ(c->FindBackstore("ram0")->params.at("size").text, "64M");
  ASSERT_EQ(c->targets.size(), 1u);
  const TargetConfig& t = c->targets[0];
  EXPECT_EQ(t.alias, "vm store");
  ASSERT_EQ(t.portal_groups.size(), 2u);
  EXPECT_EQ(t.portal_groups[0].portals[1].Text(), "[::1]:3261");
  EXPECT_EQ(t.portal_groups[1].portals[0].Text(), "127.0.0.2:3260");  // default port
  EXPECT_EQ(t.luns.size(), 2u);
  EXPECT_EQ(t.auth_group, "esx");
  ASSERT_EQ(t.acls.size(), 2u);
  EXPECT_FALSE(t.acls[0].luns.has_value());
  ASSERT_TRUE(t.acls[1].luns.has_value());
  EXPECT_EQ((*t.acls[1].luns)[0].lun, 1u);
  EXPECT_EQ((*t.acls[1].luns)[0].as, 0u);
  EXPECT_TRUE(t.acls[1].write_protect);
}

// Every refusal names the JSON path and the reason.
struct Bad {
  const char* json;
  const char* message;  // a substring of the error
};

const Bad kBad[] = {
    {R"({"targets": )", "$: not valid JSON: line 1"},
    {R"([])", "$: expected an object"},
    {R"({"targetz": {}})", "$.targetz: unknown key"},
    {R"({})", "$.targets: no targets"},
    {R"({"backstores": {"a": {"type": "tape"}}, "targets": {}})",
     "$.backstores.a.type: unknown backstore type 'tape'"},
    {R"({"backstores": {"a": {"type": "ram"}}})",
     "$.backstores.a.size: a ram backstore needs a size"},
    {R"({"backstores": {"a": {"type": "ram", "size": "12Q"}}})", "$.backstores.a.size:"},
    {R"({"backstores": {"a": {"type": "ram", "size": "1M", "block_size": 1000}}})",
     "$.backstores.a.block_size: must be a power of two"},
    {R"({"backstores": {"a": {"type": "ram", "size": 1000}}})",
     "$.backstores.a.size: must be a multiple of block_size 512"},
    {R"({"backstores": {"a": {"type": "file"}}})", "$.backstores.a.path: required"},
    {R"({"backstores": {"a": {"type": "file", "path": "/x", "create": true}}})",
     "$.backstores.a.size: \"create\": true needs a size"},
    {R"({"backstores": {"a/b": {"type": "ram", "size": "1M"}}})",
     "$.backstores[\"a/b\"]: backstore names"},
    {R"({"backstores": {"a": {"type": "ram", "size": "1M", "read_only": "yes"}}})",
     "$.backstores.a.read_only: expected true or false"},
    {R"({"auth_groups": {"g": {"user": "u", "secret": "inline-secret"}}})",
     "$.auth_groups.g: secrets are never written in the configuration"},
    {R"({"auth_groups": {"g": {"user": "u", "secret_file": "/s", "mutual_user": "m"}}})",
     "$.auth_groups.g: mutual CHAP needs both"},
    {R"({"auth_groups": {"g": {"user": "u", "secret_file": "/s", "mutual_user": "m",
         "mutual_secret_file": "/s"}}})",
     "$.auth_groups.g.mutual_secret_file: must differ"},
    {R"({"discovery": {"auth_group": "nope"}})",
     "$.discovery.auth_group: no auth group named 'nope'"},
    {R"({"login_timeout_s": 0})", "$.login_timeout_s: must be at least 1"},
    {R"({"max_connections": -1})", "$.max_connections: expected a whole number"},
    {R"({"first_pdu_timeout_s": 0})", "$.first_pdu_timeout_s: must be from 1 to login_timeout_s"},
    {R"({"login_timeout_s": 5, "first_pdu_timeout_s": 6})",
     "$.first_pdu_timeout_s: must be from 1 to login_timeout_s (5)"},
    {R"({"max_prelogin_connections": 0})", "$.max_prelogin_connections: must be at least 1"},
    {R"({"max_prelogin_connections": 8, "max_prelogin_per_address": 9})",
     "$.max_prelogin_per_address: must be from 1 to max_prelogin_connections (8)"},
    {R"({"max_prelogin_per_address": "64"})", "$.max_prelogin_per_address: expected a whole"},
    {R"({"chap_algorithms": ["MD4"]})", "$.chap_algorithms[0]: unknown CHAP algorithm 'MD4'"},
    {R"({"targets": {"target1": {}}})", "$.targets.target1: iSCSI names start with"},
    {R"({"targets": {"iqn.2026-11.org.ferry:t": {"luns": []}}})",
     "$.targets[\"iqn.2026-11.org.ferry:t\"].portal_groups: required"},
    {R"({"targets": {"iqn.2026-11.org.ferry:t": {"portal_groups": [{"tag": 0, "portals": ["127.0.0.1"]}]}}})",
     "$.targets[\"iqn.2026-11.org.ferry:t\"].portal_groups[0].tag: portal group tags are 1..65535"},
    {R"({"targets": {"iqn.2026-11.org.ferry:t": {"portal_groups": [{"tag": 1, "portals": ["::1:3260"]}]}}})",
     "portal_groups[0].portals[0]: write IPv6 portals as [address]:port"},
    {R"({"targets": {"iqn.2026-11.org.ferry:t": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1:70000"]}]}}})",
     "portals[0]: bad port"},
    {R"({"targets": {"iqn.2026-11.org.ferry:t": {"portal_groups": [{"tag": 1, "portals": ["localhost:3260"]}]}}})",
     "portals[0]: 'localhost' is not an IP address"},
    {R"({"targets": {"iqn.2026-11.org.ferry:t": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1"]}],
         "luns": [{"lun": 0, "backstore": "missing"}]}}})",
     "luns[0].backstore: no backstore or volume named 'missing'"},
    {R"({"backstores": {"a": {"type": "ram", "size": "1M"}},
         "targets": {"iqn.2026-11.org.ferry:t": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1"]}],
         "luns": [{"lun": 0, "backstore": "a"}, {"lun": 0, "backstore": "a"}]}}})",
     "luns[1].lun: LUN 0 is used twice"},
    {R"({"backstores": {"a": {"type": "ram", "size": "1M"}},
         "targets": {"iqn.2026-11.org.ferry:t": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1"]}],
         "luns": [{"lun": 16384, "backstore": "a"}]}}})",
     "luns[0].lun: must be at most 16383"},
    {R"({"backstores": {"a": {"type": "ram", "size": "1M"}},
         "targets": {"iqn.2026-11.org.ferry:t": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1"]}],
         "luns": [{"lun": 0, "backstore": "a"}], "acls": [{}]}}})",
     "acls[0]: an ACL entry needs \"initiators\" or \"networks\""},
    {R"({"backstores": {"a": {"type": "ram", "size": "1M"}},
         "targets": {"iqn.2026-11.org.ferry:t": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1"]}],
         "luns": [{"lun": 0, "backstore": "a"}], "acls": [{"networks": ["10.0.0.1/8"]}]}}})",
     "acls[0].networks[0]: '10.0.0.1/8' has host bits set"},
    {R"({"backstores": {"a": {"type": "ram", "size": "1M"}},
         "targets": {"iqn.2026-11.org.ferry:t": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1"]}],
         "luns": [{"lun": 0, "backstore": "a"}], "acls": [{"initiators": ["IQN.X"]}]}}})",
     "acls[0].initiators[0]: iSCSI names are lower case"},
    {R"({"backstores": {"a": {"type": "ram", "size": "1M"}},
         "targets": {"iqn.2026-11.org.ferry:t": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1"]}],
         "luns": [{"lun": 0, "backstore": "a"}],
         "acls": [{"initiators": ["*"], "luns": [{"lun": 5}]}]}}})",
     "acls[0].luns[0].lun: the target has no LUN 5"},
    {R"({"backstores": {"a": {"type": "ram", "size": "1M"}},
         "targets": {"iqn.2026-11.org.ferry:t": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1"]}],
         "luns": [{"lun": 0, "backstore": "a"}],
         "acls": [{"initiators": ["*"], "luns": [{"lun": 0, "as": 1}, {"lun": 0, "as": 1}]}]}}})",
     "acls[0].luns[1].as: LUN 1 is mapped twice"},
    {R"({"backstores": {"a": {"type": "ram", "size": "1M"}},
         "targets": {"iqn.2026-11.org.ferry:t": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1"]}],
         "luns": [{"lun": 0, "backstore": "a"}], "auth_group": "x"}}})",
     "$.targets[\"iqn.2026-11.org.ferry:t\"].auth_group: no auth group named 'x'"},
    {R"({"backstores": {"a": {"type": "ram", "size": "1M"}},
         "targets": {"iqn.2026-11.org.ferry:t": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1"]}],
                                                  "luns": [{"lun": 0, "backstore": "a"}]},
                     "iqn.2026-11.org.ferry:u": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1"]}],
                                                  "luns": [{"lun": 0, "backstore": "a"}]}}})",
     "$.targets[\"iqn.2026-11.org.ferry:u\"].luns[0].backstore: backstore 'a' is already a LUN"},
};

TEST(Config, RefusesWithPathAndReason) {
  for (const Bad& b : kBad) {
    auto c = ParseConfig(b.json);
    ASSERT_FALSE(c.ok()) << b.json;
    EXPECT_NE(c.status().message().find(b.message), std::string_view::npos)
        << "want: " << b.message << "\ngot:  " << c.status().message();
  }
}

TEST(Config, PreloginDefaults) {
  const std::string target = R"("backstores": {"a": {"type": "ram", "size": "1M"}},
      "targets": {"iqn.2026-11.org.ferry:t": {"portal_groups": [{"tag": 1,
      "portals": ["127.0.0.1"]}], "luns": [{"lun": 0, "backstore": "a"}]}}})";
  auto c = ParseConfig("{" + target);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->first_pdu_timeout_s, 3u);
  EXPECT_EQ(c->max_prelogin_connections, 512u);
  EXPECT_EQ(c->max_prelogin_per_address, 64u);
  // Unset, the first-PDU deadline follows a shorter login timeout.
  c = ParseConfig(R"({"login_timeout_s": 1, )" + target);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->first_pdu_timeout_s, 1u);
}

TEST(Config, Portals) {
  auto p = ParsePortal("192.0.2.1:3261");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->Text(), "192.0.2.1:3261");
  p = ParsePortal("[2001:db8::1]");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->Text(), "[2001:db8::1]:3260");
  for (const char* bad :
       {"", ":3260", "1.2.3.4:", "1.2.3.4:x", "[::1", "[::1]x", "1.2.3.4:123456"}) {
    EXPECT_FALSE(ParsePortal(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace ferry::daemon

namespace ferry::daemon {
namespace {

// A configuration with volumes and a target whose LUN names `lun_backstore`.
std::string WithVolumes(const std::string& volumes, const std::string& lun_backstore = "r0") {
  return R"({"backstores": {"r0": {"type": "ram", "size": "1M"}}, "volumes": )" + volumes +
         R"(, "targets": {"iqn.2026-11.org.ferry:t": {"portal_groups": [{"tag": 1,
         "portals": ["127.0.0.1"]}], "luns": [{"lun": 0, "backstore": ")" +
         lun_backstore + R"("}]}}})";
}

TEST(ConfigVolumes, ParsesStringsAndLineArrays) {
  auto c = ParseConfig(WithVolumes(R"([{"name": "top", "table": "0 8 linear v 0"},
      {"name": "v", "table": ["0 1024 linear r0 0", "# a comment", "1024 1024 zero"]}])",
                                   "top"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->volumes.size(), 2u);
  EXPECT_EQ(c->FindVolume("top")->table, "0 8 linear v 0");
  EXPECT_EQ(c->FindVolume("v")->table, "0 1024 linear r0 0\n# a comment\n1024 1024 zero");
  EXPECT_EQ(c->targets[0].luns[0].backstore, "top");
  EXPECT_EQ(c->FindVolume("r0"), nullptr);
}

TEST(ConfigVolumes, RefusesWithPathAndReason) {
  const std::pair<std::string, std::string> bad[] = {
      {R"({"name": "v"})", "$.volumes: expected an array"},
      {R"([{"name": "v"}])", "$.volumes[0].table: required"},
      {R"([{"table": "0 8 zero"}])", "$.volumes[0].name: required"},
      {R"([{"name": "a b", "table": "0 8 zero"}])", "$.volumes[0].name: volume names are 1..64"},
      {R"([{"name": "v", "table": "0 8 zero", "size": 1}])", "$.volumes[0].size: unknown key"},
      {R"([{"name": "v", "table": 5}])", "$.volumes[0].table: expected a string or an array"},
      {R"([{"name": "v", "table": ["0 8 zero", 1]}])", "$.volumes[0].table[1]: expected a table"},
      {R"([{"name": "v", "table": ["0 8 zero\n8 8 zero"]}])",
       "$.volumes[0].table[0]: one table line per string"},
      {R"([{"name": "v", "table": " \n "}])", "$.volumes[0].table: the table is empty"},
      {R"([{"name": "v", "table": []}])", "$.volumes[0].table: the table is empty"},
      {R"([{"name": "v", "table": "0 8 zero"}, {"name": "v", "table": "0 8 zero"}])",
       "$.volumes[1].name: a second volume named 'v'"},
      {R"([{"name": "r0", "table": "0 8 zero"}])",
       "$.volumes[0].name: 'r0' is already a backstore"},
  };
  for (const auto& [volumes, want] : bad) {
    auto c = ParseConfig(WithVolumes(volumes));
    ASSERT_FALSE(c.ok()) << volumes;
    EXPECT_NE(c.status().message().find(want), std::string_view::npos)
        << volumes << "\n  got: " << c.status().message() << "\n  want: " << want;
  }
  auto c = ParseConfig(WithVolumes(R"([{"name": "v", "table": "0 8 zero"}])", "w"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("no backstore or volume named 'w'"), std::string_view::npos);
}

}  // namespace
}  // namespace ferry::daemon
