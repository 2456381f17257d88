// Fuzz target: a snapshot exception store as found on a COW device
// (docs/targets/snapshot-store.md). The input is a device image that DecodeStoreImage()
// decodes the way ExceptionStore::Open() does; corrupt stores must give a clear error,
// never a crash or an allocation beyond the image.
//
// Input:
//   flags(1)  bit 0: reseal the header CRC and every non-zero record (CRC and store id)
//             first, so that mutations reach the checks behind the checksums;
//             bits 4..7: origin size in chunks is 1 << (flags >> 4)
//   image     the COW device's first bytes (at most kMaxImageBytes)
//
// Invariants, checked with abort(): errors have messages; a decoded store re-encodes to
// records that decode to the same slots.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "base/endian.h"
#include "volume/snapshot/store_format.h"

namespace ferry::volume::snapshot {
namespace {

constexpr size_t kMaxImageBytes = 4u << 20;

void Expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "snapshot_store_fuzz: %s\n", what);
    std::abort();
  }
}

void Reseal(std::vector<uint8_t>& image) {
  if (image.size() < kHeaderBytes) return;
  StoreBe32(image.data() + 4, Crc32c(std::span(image).subspan(8, 56)));
  const uint32_t cs = LoadBe32(image.data() + 16);
  if (cs < kMinChunkSectors || cs > kMaxChunkSectors || (cs & (cs - 1)) != 0) return;
  const uint64_t id = LoadBe64(image.data() + 24);
  const uint64_t chunk_bytes = uint64_t{cs} * 512;
  const Layout layout(chunk_bytes, image.size() / chunk_bytes);
  for (uint64_t a = 0; a < layout.areas(); ++a) {
    for (uint64_t i = 0; i < layout.per_area(); ++i) {
      uint8_t* rec = image.data() + layout.AreaChunk(a) * chunk_bytes + i * kRecordBytes;
      bool zero = true;
      for (size_t k = 0; k < kRecordBytes && zero; ++k) zero = rec[k] == 0;
      if (zero) continue;
      const Record r{LoadBe64(rec), LoadBe64(rec + 8),
                     static_cast<RecordState>((LoadBe32(rec + 16) & 3) == 2 ? 2 : 1)};
      EncodeRecord(r, id, std::span<uint8_t, kRecordBytes>(rec, kRecordBytes));
    }
  }
}

}  // namespace
}  // namespace ferry::volume::snapshot

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry::volume::snapshot;  // NOLINT: fuzz entry point
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  std::vector<uint8_t> image(data + 1, data + std::min(size, kMaxImageBytes + 1));
  if (flags & 1) Reseal(image);
  const uint64_t origin_chunks = uint64_t{1} << (flags >> 4);
  auto store = DecodeStoreImage(image, origin_chunks);
  static const bool verbose = std::getenv("SNAPSHOT_STORE_FUZZ_VERBOSE") != nullptr;
  if (verbose) {
    std::fprintf(stderr, "decode: %s\n", store.ok() ? "ok" : store.status().ToString().c_str());
  }
  if (!store.ok()) {
    Expect(!store.status().message().empty(), "an error without a message");
    return 0;
  }
  if (!store->header) return 0;
  // Round trip: every slot re-encodes to a record that decodes the same.
  for (const Record& r : store->slots) {
    uint8_t buf[kRecordBytes];
    EncodeRecord(r, store->header->store_id, std::span<uint8_t, kRecordBytes>(buf, kRecordBytes));
    Expect(DecodeRecord(std::span<const uint8_t, kRecordBytes>(buf, kRecordBytes),
                        store->header->store_id) == r,
           "a record does not round-trip");
  }
  return 0;
}
