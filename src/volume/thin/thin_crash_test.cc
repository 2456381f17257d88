// Crash consistency at the target level: a write workload on a thin volume whose pool keeps
// metadata and data on crash-simulating devices (testing/crash_device.h). At every reactor
// step of the workload both devices lose power together (each unflushed block survives in a
// random version, or not at all); a new pool table over what survived must open, pass the
// metadata check, and every block must read as a version it could hold: the last one a
// completed flush covered, or one written after that.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "copy/engine_mover.h"
#include "ferry/copy.h"
#include "io/reactor.h"
#include "volume/table.h"
#include "volume/thin/testing/crash_device.h"
#include "volume/thin/thin_pool_target.h"
#include "volume/volume.h"

namespace ferry::volume::thin {
namespace {

using testing::CrashDevice;

constexpr uint64_t kBlock = 65536;
constexpr uint64_t kVblocks = 6;
constexpr uint64_t kDataBlocks = 8;

struct Rig {
  io::Reactor* reactor;
  DataMover* mover;
  block::DeviceRegistry registry;
  std::vector<std::shared_ptr<Volume>> vols;

  Status Build(const std::string& name, const std::string& text) {
    TableOptions o{.lookup = LookupIn(registry), .env = {.reactor = reactor, .mover = mover}};
    FERRY_ASSIGN_OR_RETURN(auto t, Table::Parse(text, o));
    std::optional<Status> st;
    PrepareTable(t, [&](Status s) { st.emplace(std::move(s)); });
    reactor->RunUntil([&] { return st.has_value(); });
    FERRY_RETURN_IF_ERROR(*st);
    FERRY_ASSIGN_OR_RETURN(auto v, Volume::Create(name, t));
    FERRY_RETURN_IF_ERROR(registry.Add(v));
    vols.push_back(v);
    return Status::Ok();
  }
  Status Open(std::shared_ptr<CrashDevice> meta, std::shared_ptr<CrashDevice> data) {
    FERRY_RETURN_IF_ERROR(registry.Add(meta));
    FERRY_RETURN_IF_ERROR(registry.Add(data));
    FERRY_RETURN_IF_ERROR(Build(
        "pool", "0 " + std::to_string(kDataBlocks * kBlock / 512) + " thin-pool meta data 128 0"));
    return Status::Ok();
  }
};

// Every 512-byte sector of a block written with `version` holds (vblock, version).
void Fill(std::vector<uint8_t>& buf, uint64_t vblock, uint32_t version) {
  for (size_t i = 0; i < buf.size(); i += 8) {
    const uint64_t w = vblock << 32 | version;
    std::memcpy(buf.data() + i, &w, 8);
  }
}

struct Op {
  bool flush = false;
  uint64_t vblock = 0;
  uint32_t version = 0;
  bool fua = false;
};

class ThinCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reactor_ = std::move(io::Reactor::Create()).value();
    engine_ = std::move(copy::CopyEngine::Create(reactor_.get(), {})).value();
    mover_ = copy::MakeEngineMover(engine_.get(), reactor_.get());
  }
  void Drain() {
    while (reactor_->RunOnce(false) > 0) {
    }
  }

  // Runs `ops` one after another; after `crash_step` reactor steps, both devices lose power.
  // Returns false when the workload finished before the crash step.
  bool Trial(const std::vector<Op>& ops, size_t crash_step, uint64_t seed);

  std::unique_ptr<io::Reactor> reactor_;
  std::unique_ptr<copy::CopyEngine> engine_;
  std::unique_ptr<DataMover> mover_;
};

bool ThinCrashTest::Trial(const std::vector<Op>& ops, size_t crash_step, uint64_t seed) {
  auto meta = *CrashDevice::Create({.name = "meta", .size_bytes = 1 << 20, .block_size = 4096});
  auto data = *CrashDevice::Create({.name = "data", .size_bytes = kDataBlocks * kBlock});
  std::shared_ptr<CrashDevice> meta_cut, data_cut;
  // allowed[v]: versions block v may read as (0: zeroes, never written durably).
  std::vector<std::vector<uint32_t>> allowed(kVblocks, std::vector<uint32_t>{0});
  {
    Rig rig{reactor_.get(), mover_.get()};
    EXPECT_TRUE(rig.Open(meta, data).ok());
    std::vector<std::string> create = {"create_thin", "1"};
    EXPECT_TRUE(rig.vols[0]->Message(0, create).ok());
    EXPECT_TRUE(
        rig.Build("t", "0 " + std::to_string(kVblocks * kBlock / 512) + " thin pool 1").ok());
    Volume& thin = *rig.vols[1];
    size_t next = 0;
    bool busy = false;
    bool crashed = false;  // completions after the power cut do not count
    block::IoRequest req;
    std::vector<uint8_t> buf(kBlock);
    iovec iov{buf.data(), buf.size()};
    auto issue = [&] {
      const Op& op = ops[next];
      req = block::IoRequest{};
      req.op = op.flush ? block::IoOp::kFlush : block::IoOp::kWrite;
      if (!op.flush) {
        Fill(buf, op.vblock, op.version);
        req.flags = op.fua ? block::kIoFua : 0;
        req.lba = Lba(op.vblock * kBlock / thin.geometry().block_size);
        req.blocks = BlockCount(kBlock / thin.geometry().block_size);
        req.iov = &iov;
        req.iovcnt = 1;
        allowed[op.vblock].push_back(op.version);
      }
      req.done = [&, durable = op.flush || op.fua](IoStatus st) {
        EXPECT_EQ(st, IoStatus::kOk);
        if (!crashed && durable) {  // everything completed before is durable
          for (uint64_t v = 0; v < kVblocks; ++v)
            allowed[v].erase(allowed[v].begin(), allowed[v].end() - 1);
        }
        busy = false;
        ++next;
      };
      busy = true;
      thin.Submit(req);
    };
    size_t step = 0;
    while (next < ops.size() && step < crash_step) {
      if (!busy) issue();
      reactor_->RunOnce(true);
      ++step;
    }
    std::mt19937_64 rng(seed);
    meta_cut = meta->Crash(&rng);
    data_cut = data->Crash(&rng);
    crashed = true;
    // The old stack finishes what is in flight before it is torn down.
    reactor_->RunUntil([&] { return !busy; });
    Drain();
    if (step < crash_step) return false;
  }
  Drain();
  Rig rig{reactor_.get(), mover_.get()};
  Status st = rig.Open(meta_cut, data_cut);
  EXPECT_TRUE(st.ok()) << st.ToString() << " (crash step " << crash_step << ")";
  if (!st.ok()) return true;
  const PoolLine* pool = rig.vols[0]->active_table()->target(0).pool_line();
  EXPECT_TRUE(pool->pool()->meta().Check().ok());
  if (pool->pool()->meta().FindDevice(1) == nullptr) return true;  // create not committed yet
  EXPECT_TRUE(rig.Build("t", "0 " + std::to_string(kVblocks * kBlock / 512) + " thin pool 1").ok());
  for (uint64_t v = 0; v < kVblocks; ++v) {
    std::vector<uint8_t> got(kBlock);
    iovec iov{got.data(), got.size()};
    std::optional<IoStatus> done;
    const uint32_t bs = rig.vols[1]->geometry().block_size;
    block::IoRequest r{.op = block::IoOp::kRead,
                       .lba = Lba(v * kBlock / bs),
                       .blocks = BlockCount(kBlock / bs),
                       .iov = &iov,
                       .iovcnt = 1};
    r.done = [&](IoStatus s) { done = s; };
    rig.vols[1]->Submit(r);
    reactor_->RunUntil([&] { return done.has_value(); });
    for (size_t s = 0; s < kBlock; s += 512) {
      uint64_t w = 0;
      std::memcpy(&w, got.data() + s, 8);
      const uint32_t version = static_cast<uint32_t>(w);
      const bool ok = (w == 0 && allowed[v].front() == 0) ||
                      ((w >> 32) == v && std::find(allowed[v].begin(), allowed[v].end(), version) !=
                                             allowed[v].end());
      EXPECT_TRUE(ok) << "crash step " << crash_step << " vblock " << v << " sector " << s / 512
                      << " reads version " << version;
      if (!ok) return true;
    }
  }
  Drain();
  return true;
}

TEST_F(ThinCrashTest, EveryStepReadsOldOrNewData) {
  std::mt19937 rng(11);
  std::vector<Op> ops;
  uint32_t version = 1;
  for (int i = 0; i < 24; ++i) {
    if (rng() % 5 == 0) {
      ops.push_back({.flush = true});
    } else {
      ops.push_back({.vblock = rng() % kVblocks, .version = version++, .fua = rng() % 7 == 0});
    }
  }
  ops.push_back({.flush = true});
  size_t trials = 0;
  for (size_t step = 1; step < 10000; ++step) {
    if (!Trial(ops, step, step)) break;
    ++trials;
    if (HasFailure()) break;
  }
  EXPECT_GT(trials, 20u);
}

}  // namespace
}  // namespace ferry::volume::thin
