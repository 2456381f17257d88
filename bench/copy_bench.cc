// RAM -> RAM copies through the copy engine: native (memmove inside one arena, "offloaded")
// against emulated (read into pooled bounce buffers, write back), same sizes, same run.
// Bytes per second are what to compare; bench/run-all prints the ratio.
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <vector>

#include "backends/ram/ram_device.h"
#include "ferry/copy.h"
#include "io/reactor.h"

namespace ferry {
namespace {

struct Rig {
  std::unique_ptr<io::Reactor> reactor;
  std::unique_ptr<copy::CopyEngine> engine;
  std::shared_ptr<backends::RamDevice> src, dst;
};

Rig MakeRig(uint64_t bytes, bool same_arena) {
  Rig r;
  r.reactor = io::Reactor::Create().value();
  copy::EngineOptions opts;
  r.engine = copy::CopyEngine::Create(r.reactor.get(), opts).value();
  auto arena = std::make_shared<backends::RamArena>();
  r.src = *backends::RamDevice::Create({.name = "src", .size_bytes = bytes, .arena = arena});
  r.dst = *backends::RamDevice::Create(
      {.name = "dst",
       .size_bytes = bytes,
       .arena = same_arena ? arena : std::make_shared<backends::RamArena>()});
  // Fill the source so no chunk is a hole (holes would make native copies free).
  std::vector<uint8_t> buf(1 << 20, 0xA5);
  for (uint64_t off = 0; off < bytes; off += buf.size()) {
    iovec iov{buf.data(), buf.size()};
    bool done = false;
    block::IoRequest req{.op = block::IoOp::kWrite,
                         .lba = Lba(off / 512),
                         .blocks = BlockCount(buf.size() / 512),
                         .iov = &iov,
                         .iovcnt = 1};
    req.done = [&](IoStatus) { done = true; };
    r.src->Submit(req);
    r.reactor->RunUntil([&] { return done; });
  }
  return r;
}

void RunCopy(benchmark::State& state, bool offload) {
  const uint64_t bytes = static_cast<uint64_t>(state.range(0)) << 20;
  Rig r = MakeRig(bytes, offload);
  copy::CopyResult last;
  auto copy_once = [&]() {
    copy::CopyDescriptor d;
    d.src = r.src.get();
    d.src_extents = {{Lba(0), BlockCount(bytes / 512)}};
    d.dsts = {{r.dst.get(), {{Lba(0), BlockCount(bytes / 512)}}}};
    d.allow_offload = offload;
    bool done = false;
    auto job = r.engine->Submit(std::move(d), [&](copy::CopyResult res) {
      last = std::move(res);
      done = true;
    });
    if (!job.ok()) return false;
    r.reactor->RunUntil([&] { return done; });
    return true;
  };
  // One untimed copy first, so the destination's memory is allocated outside the timing.
  if (!copy_once()) {
    state.SkipWithError("submit failed");
    return;
  }
  for (auto _ : state) {
    if (!copy_once()) {
      state.SkipWithError("submit failed");
      return;
    }
  }
  if (last.status != IoStatus::kOk) state.SkipWithError("copy failed");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["offloaded_pct"] =
      last.counters.done_bytes ? 100.0 * last.counters.offloaded_bytes / last.counters.done_bytes
                               : 0;
}

void BM_RamCopyOffloaded(benchmark::State& s) { RunCopy(s, true); }
void BM_RamCopyEmulated(benchmark::State& s) { RunCopy(s, false); }

BENCHMARK(BM_RamCopyOffloaded)->Arg(64)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RamCopyEmulated)->Arg(64)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace ferry

BENCHMARK_MAIN();
