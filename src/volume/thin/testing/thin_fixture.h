// Test fixture for the thin-pool and thin targets: the volume fixture plus a copy engine and
// its data mover in the table environment, and helpers that build pools and thins.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "copy/engine_mover.h"
#include "ferry/copy.h"
#include "volume/testing/volume_fixture.h"
#include "volume/thin/thin_pool_target.h"

namespace ferry::volume::thin::testing {

class ThinFixture : public volume::testing::VolumeFixture {
 protected:
  static constexpr uint64_t kBlock = 65536;  // 128-sector data blocks

  void SetUp() override {
    VolumeFixture::SetUp();
    engine_ = std::move(copy::CopyEngine::Create(reactor_.get(), {})).value();
    mover_ = copy::MakeEngineMover(engine_.get(), reactor_.get());
  }
  void TearDown() override {
    Drain();
    vols_.clear();
    Drain();
  }

  TableOptions ThinOptions() {
    TableOptions o = Options();
    o.env = {.reactor = reactor_.get(), .mover = mover_.get()};
    return o;
  }
  // Parses and prepares; the error text on failure.
  Result<std::shared_ptr<Table>> Build(const std::string& text) {
    auto t = Table::Parse(text, ThinOptions());
    if (!t.ok()) return t.status();
    std::optional<Status> st;
    PrepareTable(*t, [&](Status s) { st.emplace(std::move(s)); });
    reactor_->RunUntil([&] { return st.has_value(); });
    if (!st->ok()) return *st;
    return *t;
  }
  std::string BuildError(const std::string& text) {
    auto t = Build(text);
    EXPECT_FALSE(t.ok()) << text;
    return t.ok() ? std::string() : std::string(t.status().message());
  }
  std::shared_ptr<Volume> Vol(const std::string& name, const std::string& text) {
    auto t = Build(text);
    EXPECT_TRUE(t.ok()) << t.status().ToString() << "\n" << text;
    if (!t.ok()) return nullptr;
    auto v = std::move(Volume::Create(name, *t)).value();
    EXPECT_TRUE(registry_.Add(v).ok());
    vols_.push_back(v);
    return v;
  }
  // A pool "pool" over RAM "meta" (1 MiB) and "data" (`data_blocks` 64 KiB blocks).
  std::shared_ptr<Volume> MakePool(uint64_t data_blocks, const std::string& features = "",
                                   bool make_devices = true) {
    if (make_devices) {
      AddRam("meta", 1 << 20);
      data_ = AddRam("data", data_blocks * kBlock);
    }
    return Vol("pool", "0 " + std::to_string(data_blocks * kBlock / 512) +
                           " thin-pool meta data 128 0" + features);
  }
  Result<std::string> Msg(Volume& pool, const std::string& text) {
    std::vector<std::string> args;
    size_t at = 0;
    while (at < text.size()) {
      size_t sp = text.find(' ', at);
      if (sp == std::string::npos) sp = text.size();
      args.push_back(text.substr(at, sp - at));
      at = sp + 1;
    }
    auto r = pool.Message(0, args);
    Drain();
    return r;
  }
  std::shared_ptr<Volume> MakeThin(const std::string& name, uint32_t id, uint64_t bytes,
                                   bool create = true) {
    if (create) {
      EXPECT_TRUE(Msg(*PoolVol(), "create_thin " + std::to_string(id)).ok());
    }
    return Vol(name, "0 " + std::to_string(bytes / 512) + " thin pool " + std::to_string(id));
  }
  std::shared_ptr<Volume> PoolVol() {
    return std::dynamic_pointer_cast<Volume>(registry_.Find("pool"));
  }
  PoolMetadata& Meta() { return PoolVol()->active_table()->target(0).pool_line()->pool()->meta(); }
  void Write(block::BlockDevice& dev, uint64_t lba, const std::vector<uint8_t>& data,
             uint8_t flags = 0) {
    auto p = Start(dev, block::IoOp::kWrite, lba, data.size() / dev.geometry().block_size, 0, flags,
                   &data);
    EXPECT_EQ(Wait(*p), IoStatus::kOk);
  }
  IoStatus Flush(block::BlockDevice& dev) { return Io(dev, block::IoOp::kFlush, 0, 0); }
  // Suspends and resumes `v` (into its loaded table, if any).
  void SuspendResume(Volume& v) {
    std::optional<Status> st;
    v.Suspend(std::chrono::seconds(5), [&](Status s) { st.emplace(std::move(s)); });
    reactor_->RunUntil([&] { return st.has_value(); });
    EXPECT_TRUE(st->ok());
    EXPECT_TRUE(v.Resume().ok());
  }

  std::unique_ptr<copy::CopyEngine> engine_;
  std::unique_ptr<DataMover> mover_;
  std::shared_ptr<backends::RamDevice> data_;
  std::vector<std::shared_ptr<Volume>> vols_;
};

}  // namespace ferry::volume::thin::testing
