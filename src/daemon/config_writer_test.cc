#include "daemon/config_writer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "daemon/config_errors.h"

namespace ferry::daemon {
namespace {

using Kind = backends::ParamValue::Kind;

constexpr const char* kEverything = R"({
  "state_dir": "/var/lib/ferry", "admin_socket": "/run/ferry/ferryd.sock",
  "chap_algorithms": ["SHA3-256", "MD5"], "nop_interval_s": 0, "nop_timeout_s": 7,
  "login_timeout_s": 20, "first_pdu_timeout_s": 2, "max_connections": 100,
  "max_prelogin_connections": 200, "max_prelogin_per_address": 10,
  "discovery": {"auth_group": "disc"},
  "copy": {"bandwidth": "100M", "token_timeout_s": 30}, "sanitize": {"bandwidth": 4096},
  "metrics": {"listen": "127.0.0.1"}, "log": {"format": "json", "file": "/var/log/ferryd.log"},
  "auth_groups": {
    "disc": {"user": "d", "secret_file": "/etc/ferry/disc"},
    "esx": {"user": "esx", "secret_file": "/etc/ferry/esx",
            "mutual_user": "array", "mutual_secret_file": "/etc/ferry/esx-mutual"}
  },
  "backstores": {
    "ram0": {"type": "ram", "size": "64M", "product": "fast"},
    "disk-1": {"type": "file", "path": "/srv/disk.img", "size": 1073741824, "create": true,
               "block_size": 4096, "direct": true},
    "meta": {"type": "ram", "size": "4M"}, "data": {"type": "ram", "size": "64M"}
  },
  "volumes": [
    {"name": "pool", "table": "0 131072 thin-pool meta data 128 0"},
    {"name": "thin1", "table": ["0 2048 thin pool 0", "2048 2048 zero"]}
  ],
  "fuse": {"mount_point": "/mnt/ferry", "devices": ["ram0"], "read_only": true},
  "targets": {
    "iqn.2026-11.org.ferry:vm": {
      "alias": "vm store",
      "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:3260", "[::1]:3261"]},
                        {"tag": 2, "portals": ["127.0.0.2"], "alua_state": "standby",
                         "preferred": true}],
      "luns": [{"lun": 0, "backstore": "ram0"}, {"lun": 1, "backstore": "disk-1",
                "write_protect": true}],
      "auth_group": "esx",
      "acls": [
        {"initiators": ["iqn.1998-01.com.vmware:esx01"],
         "networks": ["127.0.0.0/8", "fd00:1::/64", "10.1.2.3"]},
        {"initiators": ["*"], "write_protect": true, "auth_group": "disc",
         "luns": [{"lun": 1, "as": 0, "write_protect": true}]}
      ]
    },
    "iqn.2026-11.org.ferry:thin": {
      "portal_groups": [{"tag": 1, "portals": ["0.0.0.0:0"]}],
      "luns": [{"lun": 3, "backstore": "thin1"}]
    }
  }
})";

Config MustParse(const std::string& text) {
  auto c = ParseConfig(text);
  EXPECT_TRUE(c.ok()) << c.status().ToString() << "\n" << text;
  return c.ok() ? *c : Config{};
}

TEST(ConfigWriter, EveryKeyRoundTrips) {
  const Config c = MustParse(kEverything);
  ASSERT_EQ(c.targets.size(), 2u);
  const std::string text = SerializeConfig(c);
  EXPECT_EQ(MustParse(text), c) << text;
  EXPECT_EQ(SerializeConfig(MustParse(text)), text);      // a fixed point
  EXPECT_EQ(text.find("\"secret\""), std::string::npos);  // secrets stay file references
  EXPECT_NE(text.find("\"secret_file\": \"/etc/ferry/esx\""), std::string::npos);
}

TEST(ConfigWriter, NetworksPrintAsParsed) {
  for (const char* n : {"10.0.0.0/8", "192.0.2.7/32", "0.0.0.0/0", "fd00:1::/64", "::1/128"}) {
    auto net = iscsi::ParseNetwork(n);
    ASSERT_TRUE(net.ok()) << n;
    EXPECT_EQ(NetworkText(*net), n);
  }
}

// Random valid configurations (sections sorted by name, as ParseConfig makes them).
class RandomConfig {
 public:
  explicit RandomConfig(uint32_t seed) : rng_(seed) {}
  Config Make() {
    Config c;
    c.nop_interval_s = Pick(0, 3600);
    c.login_timeout_s = Pick(1, 3600);
    c.first_pdu_timeout_s = Pick(1, c.login_timeout_s);
    c.max_prelogin_connections = Pick(1, 65536);
    c.max_prelogin_per_address = Pick(1, c.max_prelogin_connections);
    c.copy_bandwidth = Pick(0, 1) ? Pick(1, 1u << 30) : 0;
    if (Pick(0, 1)) c.chap_algorithms = {iscsi::ChapAlgorithm::kSha256};
    const int groups = Pick(0, 3), stores = Pick(1, 6), targets = Pick(1, 3);
    for (int i = 0; i < groups; ++i) {
      AuthGroupConfig a{.name = "g" + std::to_string(i),
                        .user = "u" + std::to_string(i),
                        .secret_file = "/s/" + std::to_string(i)};
      if (Pick(0, 1)) a.mutual_user = "m", a.mutual_secret_file = "/m/" + std::to_string(i);
      c.auth_groups.push_back(a);
    }
    for (int i = 0; i < stores; ++i) {
      BackstoreConfig b{.name = "b" + std::to_string(i), .type = "ram"};
      b.params["size"] = {Kind::kNumber, std::to_string(Pick(1, 4096) * 4096)};
      if (Pick(0, 1)) b.product = "p" + std::to_string(i);
      c.backstores.push_back(b);
    }
    if (Pick(0, 1)) c.volumes.push_back({.name = "v", .table = "0 8 linear b0 0\n8 8 zero"});
    int next_store = 0;
    for (int i = 0; i < targets && next_store < stores; ++i) {
      c.targets.push_back(Target(i, stores, groups, &next_store));
    }
    std::sort(c.targets.begin(), c.targets.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    return c;
  }

 private:
  uint32_t Pick(uint32_t lo, uint32_t hi) {
    return std::uniform_int_distribution<uint32_t>(lo, hi)(rng_);
  }
  TargetConfig Target(int i, int stores, int groups, int* next_store) {
    TargetConfig t{.name = "iqn.2026-11.org.ferry:t" + std::to_string(i)};
    if (Pick(0, 1)) t.alias = "alias " + std::to_string(i);
    PortalGroupConfig g{.tag = static_cast<uint16_t>(Pick(1, 65535))};
    g.portals.push_back(
        *ParsePortal(Pick(0, 1) ? "127.0.0.1:" + std::to_string(Pick(0, 65535)) : "[::1]:3260"));
    g.alua_state = Pick(0, 1) ? scsi::AluaState::kStandby : scsi::AluaState::kActiveOptimized;
    g.preferred = Pick(0, 1);
    t.portal_groups.push_back(g);
    const int luns = static_cast<int>(Pick(1, static_cast<uint32_t>(stores - *next_store)));
    for (int l = 0; l < luns; ++l) {
      t.luns.push_back({.lun = static_cast<uint64_t>(l * 3),
                        .backstore = "b" + std::to_string((*next_store)++),
                        .write_protect = Pick(0, 1) == 1});
    }
    if (groups > 0 && Pick(0, 1)) t.auth_group = "g" + std::to_string(Pick(0, groups - 1));
    for (int a = 0, n = static_cast<int>(Pick(0, 2)); a < n; ++a) {
      AclConfig acl;
      if (Pick(0, 1)) acl.initiators = {"iqn.2026-11.org.ferry:i" + std::to_string(a)};
      acl.networks.push_back(*iscsi::ParseNetwork(
          Pick(0, 1) ? "10." + std::to_string(Pick(0, 255)) + ".0.0/16" : "fd00::/16"));
      acl.write_protect = Pick(0, 1);
      if (Pick(0, 1)) acl.luns = std::vector<LunMapConfig>{{.lun = 0, .as = Pick(0, 9)}};
      t.acls.push_back(acl);
    }
    return t;
  }
  std::mt19937 rng_;
};

TEST(ConfigWriter, RandomConfigsRoundTrip) {
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    const Config c = RandomConfig(seed).Make();
    const std::string text = SerializeConfig(c);
    auto back = ParseConfig(text);
    ASSERT_TRUE(back.ok()) << "seed " << seed << ": " << back.status().ToString() << "\n" << text;
    ASSERT_EQ(*back, c) << "seed " << seed << "\n" << text;
  }
}

class ConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ferry_config_writer_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static std::string Read(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::filesystem::path dir_;
};

TEST_F(ConfigFile, AtomicWithTenBackups) {
  const std::string path = (dir_ / "ferryd.json").string();
  for (int i = 1; i <= 12; ++i) {
    ASSERT_TRUE(WriteConfigFile(path, "save " + std::to_string(i) + "\n").ok());
  }
  EXPECT_EQ(Read(path), "save 12\n");
  for (int i = 1; i <= 10; ++i) {
    EXPECT_EQ(Read(path + "." + std::to_string(i)), "save " + std::to_string(12 - i) + "\n");
  }
  EXPECT_FALSE(std::filesystem::exists(path + ".11"));  // save 1 went with the twelfth save
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) files += e.is_regular_file();
  EXPECT_EQ(files, 11u);  // no temporary file left
}

TEST_F(ConfigFile, FailedWriteLeavesTheFile) {
  const std::string path = (dir_ / "ferryd.json").string();
  ASSERT_TRUE(WriteConfigFile(path, "first\n").ok());
  EXPECT_FALSE(WriteConfigFile((dir_ / "missing" / "ferryd.json").string(), "x").ok());
  EXPECT_EQ(Read(path), "first\n");
}

TEST(ConfigErrors, EveryErrorWithItsPath) {
  const std::string text = R"({
    "nop_timeout_s": 0,
    "backstores": {"r0": {"type": "ram", "size": "1M"}, "r1": {"type": "nope"},
                   "r2": {"type": "ram", "size": "1M"}},
    "targets": {
      "iqn.2026-11.org.ferry:a": {
        "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:3260"]}],
        "luns": [{"lun": 0, "backstore": "missing"}, {"lun": 1, "backstore": "r0"},
                 {"lun": 2, "backstore": "r1"}, {"lun": 3, "backstore": "nothere"}],
        "acls": [{"initiators": ["*"], "luns": [{"lun": 1}]}, {"initiators": ["bad name"]}]
      },
      "iqn.2026-11.org.ferry:b": {
        "portal_groups": [{"tag": 0, "portals": ["127.0.0.1:3260"]}],
        "luns": [{"lun": 0, "backstore": "r2"}]
      }
    }
  })";
  const std::vector<std::string> e = ConfigErrors(text);
  auto has = [&](const std::string& prefix) {
    return std::any_of(e.begin(), e.end(), [&](const auto& x) { return x.starts_with(prefix); });
  };
  std::string all;
  for (const auto& x : e) all += x + "\n";
  EXPECT_EQ(e.size(), 6u) << all;
  EXPECT_TRUE(has("$.nop_timeout_s: must be at least 1")) << all;
  EXPECT_TRUE(has("$.backstores.r1.type: unknown backstore type 'nope'")) << all;
  EXPECT_TRUE(has("$.targets[\"iqn.2026-11.org.ferry:a\"].luns[0].backstore: no backstore")) << all;
  EXPECT_TRUE(has("$.targets[\"iqn.2026-11.org.ferry:a\"].luns[3].backstore: no backstore")) << all;
  EXPECT_TRUE(has("$.targets[\"iqn.2026-11.org.ferry:a\"].acls[1].initiators[0]: ")) << all;
  EXPECT_TRUE(has("$.targets[\"iqn.2026-11.org.ferry:b\"].portal_groups[0].tag: ")) << all;
  // LUN 2 names r1, whose error is reported once, at r1.
  EXPECT_FALSE(has("$.targets[\"iqn.2026-11.org.ferry:a\"].luns[2]")) << all;
}

TEST(ConfigErrors, NoneForAGoodFileOneForBadJson) {
  EXPECT_TRUE(ConfigErrors(kEverything).empty());
  const auto e = ConfigErrors("{\"targets\": ");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_TRUE(e[0].starts_with("$: not valid JSON")) << e[0];
}

}  // namespace
}  // namespace ferry::daemon
