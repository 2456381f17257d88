// Test fixture for mirror tests: the volume fixture plus a copy engine and its data mover
// on the same reactor, and helpers that prepare tables and read the mirror's counters.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "copy/engine_mover.h"
#include "volume/mirror/mirror_target.h"
#include "volume/testing/volume_fixture.h"

namespace ferry::volume::mirror::testing {

class MirrorFixture : public volume::testing::VolumeFixture {
 protected:
  void SetUp() override {
    VolumeFixture::SetUp();
    engine_ = std::move(copy::CopyEngine::Create(reactor_.get(), {})).value();
    mover_ = copy::MakeEngineMover(engine_.get(), reactor_.get());
  }

  TableOptions MirrorOptions() {
    TableOptions o = Options();
    o.env = {.reactor = reactor_.get(), .mover = mover_.get()};
    return o;
  }
  Status Prepare(const std::shared_ptr<Table>& t) {
    bool done = false;
    Status out = Status::Ok();
    PrepareTable(t, [&](Status st) {
      out = st;
      done = true;
    });
    reactor_->RunUntil([&] { return done; });
    return out;
  }
  // Parses and prepares `text`; the error of either step.
  Result<std::shared_ptr<Table>> Build(const std::string& text) {
    FERRY_ASSIGN_OR_RETURN(auto t, Table::Parse(text, MirrorOptions()));
    FERRY_RETURN_IF_ERROR(Prepare(t));
    return t;
  }
  std::shared_ptr<Volume> Mirror(const std::string& text, const std::string& name = "m") {
    auto t = Build(text);
    EXPECT_TRUE(t.ok()) << t.status().ToString() << "\n" << text;
    if (!t.ok()) return nullptr;
    return std::move(Volume::Create(name, *t)).value();
  }
  std::string BuildError(const std::string& text) {
    auto t = Build(text);
    EXPECT_FALSE(t.ok()) << text;
    return t.ok() ? std::string() : std::string(t.status().message());
  }

  // "stats" as key -> value; reads= and writes= keep their comma lists as text.
  std::map<std::string, std::string> Stats(Volume& v) {
    auto text = v.Message(0, std::vector<std::string>{"stats"});
    EXPECT_TRUE(text.ok());
    std::map<std::string, std::string> out;
    std::istringstream in(text.ok() ? *text : "");
    std::string kv;
    while (in >> kv) {
      const size_t eq = kv.find('=');
      out[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    return out;
  }
  uint64_t Stat(Volume& v, const std::string& key) { return std::stoull(Stats(v)[key]); }
  // The "<in>/<total>" field of the status line.
  std::string SyncField(Volume& v) {
    std::istringstream in(v.StatusText());
    std::string w, prev;
    while (in >> w) {
      if (w.find('/') != std::string::npos) return w;
    }
    return "";
  }
  bool InSync(Volume& v) {
    const std::string f = SyncField(v);
    const size_t slash = f.find('/');
    return slash != std::string::npos && f.substr(0, slash) == f.substr(slash + 1);
  }
  void WaitInSync(Volume& v) {
    reactor_->RunUntil([&] { return InSync(v); });
    Drain();
  }
  Status Msg(Volume& v, std::vector<std::string> args) {
    auto r = v.Message(0, args);
    return r.ok() ? Status::Ok() : r.status();
  }

  std::unique_ptr<copy::CopyEngine> engine_;
  std::unique_ptr<DataMover> mover_;
};

}  // namespace ferry::volume::mirror::testing
