// The on-disk format of a persistent snapshot exception store (docs/targets/snapshot-store.md).
// Pure, allocation-light, bounds-checked codecs: no I/O, so the fuzz target and the store
// share them.
//
// The COW device is cut into chunks of the snapshot's chunk size:
//
//   chunk 0            header (first kHeaderBytes; the rest of the chunk is unused)
//   chunk 1            metadata area 0: kRecordBytes-byte record slots, one per data chunk
//   chunks 2..E+1      data chunks of area 0 (E = chunk bytes / kRecordBytes)
//   chunk E+2          metadata area 1, then its data chunks, and so on
//
// Slot i of area a describes exactly one data chunk, so a COW chunk can never be owned by
// two records. Header (big endian):
//
//    0 u32 magic "FSNP"        4 u32 CRC32C of bytes 8..63
//    8 u32 version (1)        12 u32 flags (bit 0: valid)
//   16 u32 chunk sectors      20 u32 0
//   24 u64 store id (random, chosen at format)
//
// Record (32 bytes, never straddles a 512-byte sector, so a torn write keeps or loses each
// record whole):
//
//    0 u64 origin chunk        8 u64 COW chunk (must be the slot's own data chunk)
//   16 u32 state (1 exception, 2 merged)       20 u32 0
//   24 u32 low 32 bits of the store id         28 u32 CRC32C of store id (8 bytes) + 0..27
//
// A slot that is all zeroes, fails its CRC or carries another store id is empty: records of
// an earlier format of the same device or torn, never-acknowledged writes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/crc32c.h"
#include "base/status.h"

namespace ferry::volume::snapshot {

inline constexpr uint32_t kMagic = 0x46534e50;  // "FSNP"
inline constexpr uint32_t kVersion = 1;
inline constexpr size_t kHeaderBytes = 4096;  // the header block; chunks are at least this
inline constexpr size_t kRecordBytes = 32;
inline constexpr uint32_t kFlagValid = 1;
inline constexpr uint32_t kMinChunkSectors = 8;
inline constexpr uint32_t kMaxChunkSectors = 1u << 14;  // 8 MiB

struct Header {
  uint32_t chunk_sectors = 0;
  bool valid = true;
  uint64_t store_id = 0;
  bool operator==(const Header&) const = default;
};

enum class RecordState : uint32_t { kEmpty = 0, kException = 1, kMerged = 2 };

struct Record {
  uint64_t origin_chunk = 0;
  uint64_t cow_chunk = 0;
  RecordState state = RecordState::kEmpty;
  bool operator==(const Record&) const = default;
};

// Where things are on a COW device of `cow_chunks` chunks of `chunk_bytes`.
class Layout {
 public:
  Layout(uint64_t chunk_bytes, uint64_t cow_chunks)
      : per_area_(chunk_bytes / kRecordBytes), cow_chunks_(cow_chunks) {}
  uint64_t per_area() const { return per_area_; }
  uint64_t AreaChunk(uint64_t area) const { return 1 + area * (per_area_ + 1); }
  uint64_t DataChunk(uint64_t slot) const {
    return AreaChunk(slot / per_area_) + 1 + slot % per_area_;
  }
  // Slots whose data chunk fits on the device.
  uint64_t slots() const;
  // Areas holding at least one usable slot.
  uint64_t areas() const { return (slots() + per_area_ - 1) / per_area_; }

 private:
  uint64_t per_area_;
  uint64_t cow_chunks_;
};

// Writes the header into `block` (at least kHeaderBytes; the first kHeaderBytes are set).
void EncodeHeader(const Header& h, std::span<uint8_t> block);
// All zeroes: a blank device (std::nullopt). Otherwise the header, or DataLoss / Unimplemented
// saying what is wrong.
Result<std::optional<Header>> DecodeHeader(std::span<const uint8_t> block);

void EncodeRecord(const Record& r, uint64_t store_id, std::span<uint8_t, kRecordBytes> out);
// kEmpty when the slot holds no record of this store.
Record DecodeRecord(std::span<const uint8_t, kRecordBytes> in, uint64_t store_id);

// Decodes one metadata area (`bytes` is the area chunk, at least per_area * kRecordBytes)
// into `out` (appended, one per slot of the area that the layout allows). Records must name
// their slot's data chunk and an origin chunk below `origin_chunks`: DataLoss otherwise.
Status DecodeArea(std::span<const uint8_t> bytes, const Layout& layout, uint64_t area,
                  uint64_t store_id, uint64_t origin_chunks, std::vector<Record>* out);

// What DecodeStoreImage found.
struct StoreImage {
  std::optional<Header> header;  // nullopt: blank
  std::vector<Record> slots;     // trailing empty slots trimmed
};
// The whole open sequence over an in-memory image of a COW device (tests, fuzzing; the
// store does the same with reads): header, every area, CheckSlots. `origin_chunks` bounds
// origin chunk numbers. Any bytes give a result or an error, never a crash.
Result<StoreImage> DecodeStoreImage(std::span<const uint8_t> image, uint64_t origin_chunks);

// Invariants over decoded slots: every exception sits in its slot's chunk inside the
// device, origin chunks are in range, and no origin chunk has two live exceptions.
Status CheckSlots(std::span<const Record> slots, const Layout& layout, uint64_t origin_chunks);

}  // namespace ferry::volume::snapshot
