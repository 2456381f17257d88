// Fuzz target: volume table lines (src/volume/table.h).
//
// Input: the table text. Devices "a" (1 MiB, 512-byte blocks), "b" (4 MiB, 4 KiB blocks)
// and "c" (64 KiB) exist; any other name is missing. The clock is fixed.
//
// Invariants, checked with abort(): when the first parse succeeds, its print parses again
// and prints the same text, with the same length and number of lines; the mapping of the
// start of the volume covers it exactly, in order, with pieces inside their devices; every
// error has a message.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "backends/ram/ram_device.h"
#include "volume/table.h"

namespace ferry::volume {
namespace {

void Expect(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "volume_table_fuzz: invariant broken: %s\n", what);
  std::abort();
}

std::shared_ptr<block::BlockDevice> Ram(const char* name, uint64_t bytes, uint32_t bs) {
  return std::move(
             backends::RamDevice::Create({.name = name, .size_bytes = bytes, .block_size = bs}))
      .value();
}

const TableOptions& Options() {
  static const auto* devices = new std::vector<std::shared_ptr<block::BlockDevice>>{
      Ram("a", 1 << 20, 512), Ram("b", 4 << 20, 4096), Ram("c", 64 << 10, 512)};
  static const auto* options =
      new TableOptions{.lookup = [](std::string_view name) -> std::shared_ptr<block::BlockDevice> {
                         for (const auto& d : *devices) {
                           if (d->name() == name) return d;
                         }
                         return nullptr;
                       },
                       .clock = [] { return std::chrono::steady_clock::time_point(); }};
  return *options;
}

void CheckMapping(const Table& t) {
  const uint64_t total = t.num_sectors() * kSectorBytes;
  const uint64_t len = std::min<uint64_t>(total, 1 << 20);
  std::vector<MappedPiece> pieces;
  Expect(t.Map(block::IoOp::kRead, 0, len, &pieces).ok(), "the start of the volume maps");
  uint64_t at = 0;
  for (const MappedPiece& p : pieces) {
    Expect(p.volume_offset_bytes == at && p.len_bytes > 0, "pieces follow each other");
    Expect(p.target_index < t.size(), "piece names a line");
    if (p.kind == PieceKind::kDevice) {
      Expect(p.dev != nullptr, "device piece has a device");
      Expect(p.dev_offset_bytes + p.len_bytes <= p.dev->geometry().size_bytes(),
             "piece inside its device");
      Expect(p.dev_offset_bytes % p.dev->geometry().block_size == 0, "piece aligned");
    }
    at += p.len_bytes;
  }
  Expect(at == len, "pieces cover the range");
  std::vector<MappedPiece> flush;
  Expect(t.Map(block::IoOp::kFlush, 0, 0, &flush).ok(), "flush maps");
}

void Run(std::string_view text) {
  auto first = Table::Parse(text, Options());
  if (!first.ok()) {
    Expect(!first.status().message().empty(), "an error has a message");
    return;
  }
  const std::string printed = (*first)->ToText();
  auto second = Table::Parse(printed, Options());
  if (!second.ok()) {
    std::fprintf(stderr, "reparse failed: %s\n%s", second.status().ToString().c_str(),
                 printed.c_str());
  }
  Expect(second.ok(), "the print parses");
  Expect((*second)->ToText() == printed, "the print prints the same");
  Expect((*second)->num_sectors() == (*first)->num_sectors(), "same length");
  Expect((*second)->size() == (*first)->size(), "same lines");
  Expect((*second)->block_size() == (*first)->block_size(), "same block size");
  CheckMapping(**first);
  (void)(*first)->StatusText();
}

}  // namespace
}  // namespace ferry::volume

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  ferry::volume::Run({reinterpret_cast<const char*>(data), size});
  return 0;
}
