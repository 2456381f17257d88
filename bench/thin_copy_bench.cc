// A copy between two thin volumes of one pool (blocks shared in the metadata, no data moved)
// against the same copy emulated (allow_offload = false) and against copies between two
// linear volumes, all through the copy engine, over RAM devices.
//
// RAM, not files: the numbers are then the cost of the copy path itself (metadata updates
// and the commit for sharing; memcpy-speed reads and writes for emulation) without disk and
// page-cache noise. Emulation on RAM is an upper bound: on disks the emulated copies are
// slower and sharing costs the same, so the ratios here understate the gain.
//
// Usage: thin_copy_bench [SIZE_GIB]   (default 4). Peak memory: about 2 x SIZE_GIB (every
// case is built, run and freed in turn). Prints a markdown table (bench/run-all).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/ram/ram_device.h"
#include "block/registry.h"
#include "copy/engine_mover.h"
#include "ferry/copy.h"
#include "io/reactor.h"
#include "volume/table.h"
#include "volume/volume.h"

namespace ferry {
namespace {

constexpr uint64_t kBlock = 65536;

struct Rig {
  std::unique_ptr<io::Reactor> reactor;
  std::unique_ptr<copy::CopyEngine> engine;
  std::unique_ptr<volume::DataMover> mover;
  block::DeviceRegistry registry;
  std::vector<std::shared_ptr<volume::Volume>> vols;

  Rig() {
    reactor = io::Reactor::Create().value();
    engine = copy::CopyEngine::Create(reactor.get(), {}).value();
    mover = copy::MakeEngineMover(engine.get(), reactor.get());
  }
  ~Rig() {
    vols.clear();
    while (reactor->RunOnce(false) > 0) {
    }
  }
  void Ram(const std::string& name, uint64_t bytes, std::shared_ptr<backends::RamArena> arena) {
    auto d = backends::RamDevice::Create({.name = name, .size_bytes = bytes, .arena = arena});
    if (!d.ok() || !registry.Add(*d).ok()) Die("ram " + name);
  }
  std::shared_ptr<volume::Volume> Vol(const std::string& name, const std::string& text) {
    volume::TableOptions o{.lookup = volume::LookupIn(registry),
                           .env = {.reactor = reactor.get(), .mover = mover.get()}};
    auto t = volume::Table::Parse(text, o);
    if (!t.ok()) Die(t.status().ToString());
    std::optional<Status> st;
    volume::PrepareTable(*t, [&](Status s) { st.emplace(std::move(s)); });
    reactor->RunUntil([&] { return st.has_value(); });
    if (!st->ok()) Die(st->ToString());
    auto v = volume::Volume::Create(name, *t).value();
    if (!registry.Add(v).ok()) Die("add " + name);
    vols.push_back(v);
    return v;
  }
  void Io(block::BlockDevice& dev, block::IoOp op, uint64_t off, std::vector<uint8_t>* buf) {
    iovec iov{buf ? buf->data() : nullptr, buf ? buf->size() : 0};
    std::optional<IoStatus> st;
    block::IoRequest req{.op = op,
                         .lba = Lba(off / 512),
                         .blocks = BlockCount(buf ? buf->size() / 512 : 0),
                         .iov = buf ? &iov : nullptr,
                         .iovcnt = buf ? 1u : 0u};
    req.done = [&](IoStatus s) { st = s; };
    dev.Submit(req);
    reactor->RunUntil([&] { return st.has_value(); });
    if (*st != IoStatus::kOk) Die("I/O failed on " + std::string(dev.name()));
  }
  void Fill(block::BlockDevice& dev, uint64_t bytes) {
    std::vector<uint8_t> buf(1 << 20);
    for (uint64_t off = 0; off < bytes; off += buf.size()) {
      for (size_t i = 0; i < buf.size(); i += 512) buf[i] = static_cast<uint8_t>(off >> 20);
      Io(dev, block::IoOp::kWrite, off, &buf);
    }
    Io(dev, block::IoOp::kFlush, 0, nullptr);
  }
  copy::CopyResult Copy(block::BlockDevice& src, block::BlockDevice& dst, uint64_t bytes,
                        bool offload) {
    copy::CopyDescriptor d;
    d.src = &src;
    d.src_extents = {{Lba(0), BlockCount(bytes / 512)}};
    d.dsts = {{&dst, {{Lba(0), BlockCount(bytes / 512)}}}};
    d.allow_offload = offload;
    std::optional<copy::CopyResult> out;
    if (!engine->Submit(std::move(d), [&](copy::CopyResult r) { out.emplace(std::move(r)); })
             .ok()) {
      Die("copy submit");
    }
    reactor->RunUntil([&] { return out.has_value(); });
    if (out->status != IoStatus::kOk) Die("copy failed");
    return *out;
  }
  [[noreturn]] static void Die(const std::string& what) {
    std::fprintf(stderr, "thin_copy_bench: %s\n", what.c_str());
    std::exit(1);
  }
};

struct Row {
  std::string name;
  double seconds = 0;
  uint64_t offloaded = 0;
};

Row ThinCase(uint64_t bytes, bool offload) {
  Rig r;
  r.Ram("meta", 64 << 20, nullptr);
  r.Ram("data", 2 * bytes + 16 * kBlock, nullptr);
  const std::string sectors = std::to_string(bytes / 512);
  auto pool = r.Vol("pool", "0 " + std::to_string((2 * bytes + 16 * kBlock) / 512) +
                                " thin-pool meta data 128 0");
  for (const char* id : {"1", "2"}) {
    if (!pool->Message(0, std::vector<std::string>{"create_thin", id}).ok()) r.Die("create");
  }
  auto a = r.Vol("a", "0 " + sectors + " thin pool 1");
  auto b = r.Vol("b", "0 " + sectors + " thin pool 2");
  r.Fill(*a, bytes);
  const auto t0 = std::chrono::steady_clock::now();
  copy::CopyResult res = r.Copy(*a, *b, bytes, offload);
  const auto t1 = std::chrono::steady_clock::now();
  return {offload ? "thin -> thin, shared blocks" : "thin -> thin, emulated",
          std::chrono::duration<double>(t1 - t0).count(), res.counters.offloaded_bytes};
}

Row LinearCase(uint64_t bytes, bool same_arena) {
  Rig r;
  auto arena = std::make_shared<backends::RamArena>();
  r.Ram("r0", bytes, arena);
  r.Ram("r1", bytes, same_arena ? arena : std::make_shared<backends::RamArena>());
  const std::string sectors = std::to_string(bytes / 512);
  auto a = r.Vol("a", "0 " + sectors + " linear r0 0");
  auto b = r.Vol("b", "0 " + sectors + " linear r1 0");
  r.Fill(*a, bytes);
  const auto t0 = std::chrono::steady_clock::now();
  copy::CopyResult res = r.Copy(*a, *b, bytes, true);
  const auto t1 = std::chrono::steady_clock::now();
  return {same_arena ? "linear -> linear, one RAM arena (memmove)"
                     : "linear -> linear, two RAM arenas (emulated)",
          std::chrono::duration<double>(t1 - t0).count(), res.counters.offloaded_bytes};
}

}  // namespace
}  // namespace ferry

int main(int argc, char** argv) {
  const uint64_t gib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 4;
  if (gib == 0 || gib > 64) {
    std::fprintf(stderr, "usage: thin_copy_bench [SIZE_GIB 1..64]\n");
    return 2;
  }
  const uint64_t bytes = gib << 30;
  std::vector<ferry::Row> rows = {ferry::ThinCase(bytes, true), ferry::ThinCase(bytes, false),
                                  ferry::LinearCase(bytes, false), ferry::LinearCase(bytes, true)};
  const double base = rows[1].seconds;
  std::printf("| copy of %llu GiB | seconds | GiB/s | offloaded | speed vs emulated thin (x) |\n",
              static_cast<unsigned long long>(gib));
  std::printf("|---|---|---|---|---|\n");
  for (const ferry::Row& r : rows) {
    std::printf("| %s | %.4f | %.2f | %llu%% | %.1f |\n", r.name.c_str(), r.seconds,
                static_cast<double>(gib) / r.seconds,
                static_cast<unsigned long long>(r.offloaded * 100 / bytes), base / r.seconds);
  }
  return 0;
}
