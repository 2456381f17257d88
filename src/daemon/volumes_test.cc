// Volumes in ferryd: the configuration's volumes opened in dependency order (every error
// naming the volume, the line and what is missing) and the admin socket's volume methods.
#include "daemon/volumes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "daemon/admin_methods.h"
#include "io/reactor.h"

namespace ferry::daemon {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
constexpr const char* kIqn = "iqn.2026-11.org.ferry:t";

class VolumesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ferry-volumes-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    reactor_ = std::move(io::Reactor::Create().value());
  }
  void TearDown() override {
    d_.volume_env.reset();
    std::filesystem::remove_all(dir_);
  }

  // A configuration of two RAM backstores (r0: 1 MiB, r1: 1 MiB), `volumes` and a target
  // whose LUN 0 is `lun0`.
  static Config Parsed(const std::string& volumes, const std::string& lun0 = "r0") {
    auto c = ParseConfig(R"({"backstores": {"r0": {"type": "ram", "size": "1M"},
        "r1": {"type": "ram", "size": "1M"}}, "volumes": )" +
                         volumes + R"(, "targets": {")" + kIqn +
                         R"(": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
        "luns": [{"lun": 0, "backstore": ")" +
                         lun0 + R"("}]}}})");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : Config{};
  }

  // Prepare + OpenVolumes into d_ (and the target into server_ when it opened).
  Status Open(const Config& c) {
    d_.config = c;
    d_.state_dir = dir_.string();
    auto s = Prepare(c, d_.state_dir);
    if (!s.ok()) return s.status();
    d_.setup = std::move(*s);
    d_.volume_env = std::move(VolumeEnv::Create(reactor_.get(), d_.setup.registry).value());
    FERRY_RETURN_IF_ERROR(OpenVolumes(c, d_.state_dir, *d_.volume_env, &d_.setup));
    server_ = std::make_unique<iscsi::Server>(reactor_.get());
    for (auto& t : MakeTargets(c, d_.setup, {{"127.0.0.1:0#0", "127.0.0.1:4000"}})) {
      server_->AddTarget(std::move(t));
    }
    d_.server = server_.get();
    return Status::Ok();
  }

  // One admin request, answered on the reactor as ferryd answers it.
  Result<json> Call(const std::string& method, json params = json::object()) {
    bool done = false;
    Status st;
    json out;
    AdminRequest req{.id = 1, .method = method, .params = std::move(params)};
    reactor_->Post([&] {
      HandleAdmin(d_, req, [&](Status s, json r) {
        st = std::move(s);
        out = std::move(r);
        done = true;
      });
    });
    reactor_->RunUntil([&] { return done; });
    if (!st.ok()) return st;
    return out;
  }
  static std::string Message(const Result<json>& r) {
    return r.ok() ? "(ok)" : std::string(r.status().message());
  }

  std::filesystem::path dir_;
  std::unique_ptr<io::Reactor> reactor_;
  std::unique_ptr<iscsi::Server> server_;
  DaemonState d_;
};

TEST_F(VolumesTest, OpensInDependencyOrderWhateverTheFileOrder) {
  ASSERT_TRUE(Open(Parsed(R"([{"name": "top", "table": "0 1024 linear mid 0"},
      {"name": "mid", "table": ["0 1024 linear bottom 0", "1024 1024 linear r1 0"]},
      {"name": "bottom", "table": "0 2048 linear r0 0"}])",
                          "top"))
                  .ok());
  for (const char* n : {"top", "mid", "bottom"}) {
    Backstore* b = FindVolume(d_.setup, n);
    ASSERT_NE(b, nullptr) << n;
    EXPECT_TRUE(b->config.is_volume());
    EXPECT_TRUE(b->from_config);
    EXPECT_EQ(d_.setup.registry->Find(n), b->device);
    EXPECT_EQ(b->volume->open_count(), 1) << n << ": a LUN or a table holds each";
  }
  EXPECT_EQ(FindVolume(d_.setup, "mid")->volume->geometry().size_bytes(), 1u << 20);
  EXPECT_EQ(FindVolume(d_.setup, "r0"), nullptr);
  EXPECT_THAT(VolumeUsers(d_.setup, *FindVolume(d_.setup, "top")->volume, server_->targets()),
              ::testing::ElementsAre(std::string("LUN 0 of ") + kIqn));
  EXPECT_THAT(VolumeUsers(d_.setup, *FindVolume(d_.setup, "bottom")->volume, {}),
              ::testing::ElementsAre("volume 'mid' (line 1)"));
}

TEST_F(VolumesTest, RefusesMissingDevicesNamingVolumeAndLine) {
  Status st = Open(Parsed(R"([{"name": "ok", "table": "0 8 zero"},
      {"name": "v", "table": ["0 8 zero", "8 8 linear nowhere 0"]}])"));
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("$.volumes[1] (v): line 2: linear: device 'nowhere' does not exist"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("no backstore or volume of that name"));
}

TEST_F(VolumesTest, RefusesCyclesNamingTheLoop) {
  Status st = Open(Parsed(R"([{"name": "x", "table": "0 8 linear a 0"},
      {"name": "a", "table": "0 8 linear b 0"}, {"name": "b", "table": ["0 8 zero",
      "8 8 linear c 0"]}, {"name": "c", "table": "0 16 linear a 0"}])"));
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("$.volumes[1] (a): line 1 uses volume 'b', and volumes name each other "
                        "in a cycle (a -> b -> c -> a)"));
  st = Open(Parsed(R"([{"name": "self", "table": ["0 8 zero", "8 8 linear self 0"]}])"));
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("$.volumes[0] (self): line 2 uses volume 'self', and volumes name each "
                        "other in a cycle (self -> self)"));
}

TEST_F(VolumesTest, RefusesBadTablesAndRangesWithTheParsersWords) {
  Status st = Open(Parsed(R"([{"name": "big", "table": "0 4096 linear r0 0"}])"));
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("$.volumes[0] (big): line 1: linear: device 'r0' has 2048 sectors"));
  st = Open(Parsed(R"([{"name": "t", "table": "0 8 nosuch"}])"));
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("$.volumes[0] (t): line 1: unknown target type 'nosuch'"));
}

TEST_F(VolumesTest, AdminCreatesAndReportsVolumes) {
  ASSERT_TRUE(Open(Parsed(R"([{"name": "v", "table": "0 1024 linear r0 0"}])")).ok());
  auto r = Call("volume_create", {{"name", "rt"}, {"table", "0 512 linear r1 0\n512 x zero"}});
  EXPECT_THAT(Message(r), HasSubstr("volume 'rt': line 2: "));
  r = Call("volume_create", {{"name", "rt"}, {"table", "0 512 linear r1 0\n512 512 zero"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["size_bytes"], 1u << 19);
  EXPECT_EQ((*r)["from_config"], false);
  EXPECT_NE(d_.setup.registry->Find("rt"), nullptr);
  EXPECT_THAT(Message(Call("volume_create", {{"name", "rt"}, {"table", "0 8 zero"}})),
              HasSubstr("'rt' is already a backstore or volume"));
  EXPECT_THAT(Message(Call("volume_create", {{"name", "r0"}, {"table", "0 8 zero"}})),
              HasSubstr("'r0' is already a backstore or volume"));
  EXPECT_THAT(Message(Call("volume_create", {{"name", "a/b"}, {"table", "0 8 zero"}})),
              HasSubstr("volume names are 1..64"));
  EXPECT_THAT(Message(Call("volume_create", {{"name", "n"}})), HasSubstr("\"table\""));
  r = Call("volume_list");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0]["name"], "rt");
  EXPECT_EQ((*r)[1]["from_config"], true);
  r = Call("volume_table", {{"name", "rt"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["table"], "0 512 linear r1 0\n512 512 zero\n");
  EXPECT_THAT(Message(Call("volume_status", {{"name", "nope"}})), HasSubstr("no volume 'nope'"));
  EXPECT_THAT(Message(Call("volume_status", {{"name", "r0"}})),
              HasSubstr("'r0' is a backstore, not a volume"));
  EXPECT_EQ(Call("volume_frob").status().code(), StatusCode::kUnimplemented);
}

TEST_F(VolumesTest, AdminLoadSuspendResumeSwapsTheTable) {
  ASSERT_TRUE(Open(Parsed(R"([{"name": "v", "table": "0 1024 linear r0 0"}])", "v")).ok());
  EXPECT_THAT(Message(Call("volume_load", {{"name", "v"}, {"table", "0 1024 linear gone 0"}})),
              HasSubstr("volume 'v': line 1: linear: device 'gone' does not exist"));
  const std::string split = "0 512 linear r0 0\n512 512 linear r0 512\n";
  auto r = Call("volume_load", {{"name", "v"}, {"table", split}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["inactive_table"], split);
  EXPECT_EQ((*Call("volume_table", {{"name", "v"}, {"inactive", true}}))["table"], split);
  EXPECT_THAT(Message(Call("volume_resume", {{"name", "v"}})), HasSubstr("suspend it before"));
  EXPECT_THAT(Message(Call("volume_suspend", {{"name", "v"}, {"deadline_ms", 700000}})),
              HasSubstr("\"deadline_ms\" is 0..600000"));
  r = Call("volume_suspend", {{"name", "v"}, {"deadline_ms", 10}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE((*Call("volume_status", {{"name", "v"}}))["suspended"]);
  r = Call("volume_resume", {{"name", "v"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["generation"], 2);
  EXPECT_EQ((*r)["new_table"], true);
  auto s = Call("volume_status", {{"name", "v"}});
  EXPECT_EQ((*s)["table"], split);
  EXPECT_EQ((*s)["inactive_table"], "");
  EXPECT_EQ((*s)["suspended"], false);
  EXPECT_EQ(FindVolume(d_.setup, "v")->loaded, nullptr);
}

TEST_F(VolumesTest, AdminMessagesGoToTheLineOfTheSector) {
  ASSERT_TRUE(Open(Parsed(R"([{"name": "v", "table": ["0 8 linear r0 0",
      "8 8 flakey r0 8 1 1"]}])"))
                  .ok());
  auto r = Call("volume_message", {{"name", "v"}, {"sector", 9}, {"args", {"down"}}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT((*Call("volume_status", {{"name", "v"}}))["status"].get<std::string>(),
              HasSubstr("flakey down forced"));
  EXPECT_THAT(Message(Call("volume_message", {{"name", "v"}, {"sector", 1}, {"args", {"x"}}})),
              HasSubstr("volume 'v': linear: target takes no messages"));
  EXPECT_THAT(Message(Call("volume_message", {{"name", "v"}, {"sector", 99}, {"args", {"x"}}})),
              HasSubstr("sector 99 is past its end"));
  EXPECT_THAT(Message(Call("volume_message", {{"name", "v"}, {"sector", 1}})),
              HasSubstr("\"args\""));
}

TEST_F(VolumesTest, AdminRemoveIsRefusedWhileUsedAndNamesTheUser) {
  ASSERT_TRUE(Open(Parsed(R"([{"name": "lun", "table": "0 1024 linear r0 0"},
      {"name": "low", "table": "0 1024 linear r1 0"},
      {"name": "high", "table": "0 1024 linear low 0"}])",
                          "lun"))
                  .ok());
  EXPECT_THAT(Message(Call("volume_remove", {{"name", "lun"}})),
              HasSubstr(std::string("volume 'lun' is in use by LUN 0 of ") + kIqn));
  EXPECT_THAT(Message(Call("volume_remove", {{"name", "low"}})),
              HasSubstr("volume 'low' is in use by volume 'high' (line 1)"));
  // A loaded (inactive) table holds the volume too.
  ASSERT_TRUE(Call("volume_load", {{"name", "high"}, {"table", "0 1024 linear low 0"}}).ok());
  ASSERT_TRUE(Call("volume_create", {{"name", "other"}, {"table", "0 8 zero"}}).ok());
  ASSERT_TRUE(Call("volume_load", {{"name", "other"}, {"table", "0 8 linear low 8"}}).ok());
  EXPECT_THAT(Message(Call("volume_remove", {{"name", "low"}})),
              HasSubstr("the inactive table of volume 'other' (line 1)"));
  // Unmapped, the LUN's volume goes; with the holders gone, so does the lower one.
  ASSERT_TRUE(Call("lun_unmap", {{"target", kIqn}, {"lun", 0u}}).ok());
  EXPECT_EQ(FindVolume(d_.setup, "lun")->volume->open_count(), 0);
  ASSERT_TRUE(Call("volume_remove", {{"name", "lun"}}).ok());
  EXPECT_EQ(d_.setup.registry->Find("lun"), nullptr);
  EXPECT_THAT(Message(Call("volume_status", {{"name", "lun"}})), HasSubstr("no volume 'lun'"));
  ASSERT_TRUE(Call("volume_remove", {{"name", "other"}}).ok());
  ASSERT_TRUE(Call("volume_remove", {{"name", "high"}}).ok());
  ASSERT_TRUE(Call("volume_remove", {{"name", "low"}}).ok());
  // A volume mapped at run time is held by its LUN until unmapped.
  ASSERT_TRUE(Call("volume_create", {{"name", "rt"}, {"table", "0 8 linear r0 0"}}).ok());
  ASSERT_TRUE(Call("lun_map", {{"target", kIqn}, {"lun", 3u}, {"backstore", "rt"}}).ok());
  EXPECT_THAT(Message(Call("volume_remove", {{"name", "rt"}})), HasSubstr("LUN 3 of"));
  ASSERT_TRUE(Call("lun_unmap", {{"target", kIqn}, {"lun", 3u}}).ok());
  EXPECT_TRUE(Call("volume_remove", {{"name", "rt"}}).ok());
}

}  // namespace
}  // namespace ferry::daemon
