// Fuzz target: thin-pool metadata as found on a metadata device. The input is a device
// image that PoolMetadata::Open() loads and Check() verifies; corrupt metadata must give
// a clear error, never a crash, a hang or an allocation beyond the open limits.
//
// Input:
//   flags(1)  bit 0: recompute the CRC32C of every superblock and record block first, so
//             that mutations reach the decoders behind the checksums;
//             bit 1: the device has 4096-byte blocks (else 512)
//   image     the metadata device's first bytes (at most kMaxImageBytes); the device is
//             that long rounded up to 4 KiB, and at least kMinDeviceBytes, zero-filled
//
// Invariants, checked with abort(): Open() completes exactly once; an opened pool whose
// Check() passes can commit a change and reopen to the same state, which passes Check().
// Triage: THIN_METADATA_FUZZ_VERBOSE=1 thin_metadata_replay FILE prints what Open() and
// Check() said.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "io/reactor.h"
#include "volume/thin/format.h"
#include "volume/thin/pool_metadata.h"
#include "volume/thin/testing/crash_device.h"
#include "volume/thin/testing/pool_sync.h"

namespace ferry::volume::thin {
namespace {

constexpr size_t kMaxImageBytes = 1u << 20;
constexpr uint64_t kMinDeviceBytes = 32 * format::kBlockBytes;
constexpr OpenOptions kLimits = {.max_data_blocks = 1u << 20, .max_mappings = 1u << 20};

void Expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "thin_metadata_fuzz: %s\n", what);
    std::abort();
  }
}

io::Reactor& TheReactor() {
  static std::unique_ptr<io::Reactor> r = std::move(io::Reactor::Create()).value();
  return *r;
}

// A change that needs at most one data block: a new thin device with one block written.
void CommitAndReopen(io::Reactor& r, testing::CrashDevice& dev, PoolMetadata& pool) {
  uint32_t id = 0;
  while (pool.FindDevice(id) != nullptr) ++id;
  Expect(pool.CreateThin(id, 4).ok(), "CreateThin on a checked pool");
  Result<WritePlan> plan = pool.PrepareWrite(id, 1);
  Expect(plan.ok() || plan.status().code() == StatusCode::kResourceExhausted,
         "PrepareWrite fails other than out of space");
  Status st = testing::CommitSync(r, pool);
  // A full metadata device is the only expected failure.
  if (!st.ok()) {
    Expect(st.code() == StatusCode::kResourceExhausted, "commit failed unexpectedly");
    return;
  }
  auto again = testing::OpenSync(r, *dev.Crash(), kLimits);
  Expect(again.ok(), "a committed pool does not reopen");
  Expect((*again)->state() == pool.state(), "reopened state differs from the committed one");
  Expect((*again)->Check().ok(), "reopened pool fails Check()");
}

}  // namespace
}  // namespace ferry::volume::thin

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry::volume::thin;  // NOLINT: fuzz entry point
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  std::vector<uint8_t> image(data + 1, data + std::min(size, kMaxImageBytes + 1));
  if (flags & 1) format::ResealImage(image);
  uint64_t dev_bytes =
      (image.size() + format::kBlockBytes - 1) / format::kBlockBytes * format::kBlockBytes;
  dev_bytes = std::max(dev_bytes, kMinDeviceBytes);
  auto dev = testing::CrashDevice::FromImage(
      {.name = "fuzz-meta", .size_bytes = dev_bytes, .block_size = (flags & 2) ? 4096u : 512u},
      image);
  Expect(dev.ok(), "device from image");
  ferry::io::Reactor& r = TheReactor();
  auto pool = testing::OpenSync(r, **dev, kLimits);
  static const bool verbose = std::getenv("THIN_METADATA_FUZZ_VERBOSE") != nullptr;
  if (verbose) {
    std::fprintf(stderr, "open: %s\n", pool.ok() ? "ok" : pool.status().ToString().c_str());
    if (pool.ok()) std::fprintf(stderr, "check: %s\n", (*pool)->Check().ToString().c_str());
  }
  if (!pool.ok()) {
    Expect(!pool.status().message().empty(), "an Open() error without a message");
    return 0;
  }
  ferry::Status check = (*pool)->Check();
  if (!check.ok()) {
    Expect(check.code() == ferry::StatusCode::kDataLoss, "Check() fails other than kDataLoss");
    return 0;
  }
  CommitAndReopen(r, **dev, **pool);
  return 0;
}
