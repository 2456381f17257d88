// Test fixture for snapshot targets: VolumeFixture plus a copy engine and its DataMover as
// the tables' environment, and helpers that prepare tables and check bytes.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "copy/engine_mover.h"
#include "ferry/copy.h"
#include "volume/snapshot/snapshot_target.h"
#include "volume/testing/volume_fixture.h"

namespace ferry::volume::snapshot::testing {

using Bytes = std::vector<uint8_t>;

class SnapshotFixture : public volume::testing::VolumeFixture {
 protected:
  void SetUp() override {
    VolumeFixture::SetUp();
    engine_ = std::move(copy::CopyEngine::Create(reactor_.get(), {})).value();
    mover_ = copy::MakeEngineMover(engine_.get(), reactor_.get());
  }
  void TearDown() override { Drain(); }

  TableOptions Env() {
    TableOptions o = Options();
    o.env = {.reactor = reactor_.get(), .mover = mover_.get()};
    return o;
  }
  // Parses with the environment and runs PrepareTable; the status of whichever failed.
  Result<std::shared_ptr<Table>> Prepared(const std::string& text) {
    auto t = Table::Parse(text, Env());
    if (!t.ok()) return t.status();
    std::optional<ferry::Status> st;
    PrepareTable(*t, [&](ferry::Status s) { st = std::move(s); });
    reactor_->RunUntil([&] { return st.has_value(); });
    if (!st->ok()) return *st;
    return *t;
  }
  std::string PrepareError(const std::string& text) {
    auto t = Prepared(text);
    EXPECT_FALSE(t.ok()) << text;
    return t.ok() ? std::string() : std::string(t.status().message());
  }
  std::shared_ptr<Volume> Vol(const std::string& name, const std::string& text) {
    auto t = Prepared(text);
    EXPECT_TRUE(t.ok()) << t.status().ToString() << "\n" << text;
    if (!t.ok()) return nullptr;
    return std::move(Volume::Create(name, *t)).value();
  }
  static SnapshotCore& CoreOf(Volume& v) {
    return *static_cast<SnapshotTarget&>(v.active_table()->target(0)).core();
  }
  std::string Line(uint64_t sectors, const std::string& type, const std::string& args) {
    return "0 " + std::to_string(sectors) + " " + type + " " + args;
  }

  IoStatus WriteBytes(block::BlockDevice& dev, uint64_t lba, const Bytes& data) {
    const uint64_t blocks = data.size() / dev.geometry().block_size;
    auto p = Start(dev, block::IoOp::kWrite, lba, blocks, 0, 0, &data);
    return Wait(*p);
  }
  Bytes Random(size_t n, std::mt19937_64& rng) {
    Bytes b(n);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    return b;
  }
  void ExpectBytes(block::BlockDevice& dev, const Bytes& model, const std::string& what) {
    Bytes got = Read(dev, 0, model.size() / dev.geometry().block_size);
    ASSERT_EQ(got.size(), model.size());
    for (size_t i = 0; i < model.size(); ++i) {
      ASSERT_EQ(got[i], model[i]) << what << ": first difference at byte " << i;
    }
  }
  void SuspendAndWait(Volume& v) {
    std::optional<ferry::Status> st;
    v.Suspend(std::chrono::seconds(1), [&](ferry::Status s) { st = std::move(s); });
    reactor_->RunUntil([&] { return st.has_value(); });
    ASSERT_TRUE(st->ok()) << st->ToString();
  }

  std::unique_ptr<copy::CopyEngine> engine_;
  std::unique_ptr<DataMover> mover_;
};

}  // namespace ferry::volume::snapshot::testing
