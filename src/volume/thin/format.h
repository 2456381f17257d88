// On-disk format of thin-pool metadata (docs/targets/thin-metadata.md has the long form).
//
// The metadata device is an array of 4 KiB metadata blocks. All integers are big-endian.
//
//   block 0, block 1   superblock slots; commits alternate between them
//   block 2..          record blocks, allocated anywhere, never overwritten while the
//                      newest durable superblock can reach them
//
// Superblock (one block):
//    0 u32 magic "FTSB"          4 u32 CRC32C of bytes 8..4095
//    8 u32 version (1)          12 u32 metadata block bytes (4096)
//   16 u64 transaction id       24 u64 metadata blocks (device size at format)
//   32 u64 data blocks          40 u32 data block bytes      44 u32 zero
//   48 u64 head record          first block of the newest record (its txn is the superblock's)
//   56 u64 records              records on the chain from head to the newest full record
//   64 u64 chain blocks         record blocks on that chain
//   rest zero
//
// Record block (one block; a record is a linked list of these):
//    0 u32 magic "FTRB"          4 u32 CRC32C of bytes 8..4095
//    8 u64 transaction id of the record
//   16 u64 previous record's first block (0: none; only in the record's first block)
//   24 u64 next block of this record (0: last)
//   32 u32 index of this block in the record
//   36 u16 payload bytes (<= 4056)   38 u8 kind (1 full, 2 delta)   39 u8 zero
//   40 payload
//
// A record's payload is the concatenation of its blocks' payloads: a sequence of entries,
// each a one-byte type and fixed-size fields:
//   kDevice      u32 dev, u64 virtual blocks, u32 origin (kNoOrigin), u64 creation txn
//   kDelete      u32 dev                     (the device and all its mappings go away)
//   kMapRun      u32 dev, u64 vblock, u64 dblock, u32 len   (vblock+i -> dblock+i)
//   kUnmapRun    u32 dev, u64 vblock, u32 len
//   kRefRun      u64 dblock, u32 len, u32 count             (refcount of dblock+i = count)
// A full record holds the whole state (devices, their mappings, every non-zero
// refcount); a delta record holds what changed since the previous record, and replays in
// entry order (deletes, devices, mappings, refcounts).
//
// Why a log of records and two superblocks (rather than a copy-on-write B-tree): the
// in-memory index is loaded whole at open, so on-disk structure only has to be durable
// and atomic, not searchable. A commit writes one new record into blocks that nothing
// durable refers to, flushes, and only then writes the superblock that points at it into
// the slot *not* holding the newest durable superblock, and flushes again. A power cut
// before the second flush leaves either superblock valid; a torn superblock fails its
// CRC and the other slot (the previous commit, whose blocks were never touched) wins.
// Deltas keep a commit's cost proportional to what changed; when the chain grows past
// the size of the last full record a full record is written instead and the old chain's
// blocks become free after that commit.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/crc32c.h"
#include "base/status.h"

namespace ferry::volume::thin::format {

inline constexpr uint32_t kBlockBytes = 4096;
inline constexpr uint32_t kSuperMagic = 0x46545342;   // "FTSB"
inline constexpr uint32_t kRecordMagic = 0x46545242;  // "FTRB"
inline constexpr uint32_t kVersion = 1;
inline constexpr uint64_t kSuperSlots = 2;  // blocks 0 and 1
inline constexpr uint32_t kRecordHeaderBytes = 40;
inline constexpr uint32_t kPayloadBytes = kBlockBytes - kRecordHeaderBytes;
inline constexpr uint32_t kNoOrigin = 0xffffffffu;
// Smallest useful metadata device: two superblocks and room for a few records.
inline constexpr uint64_t kMinMetaBlocks = 8;

enum class RecordKind : uint8_t { kFull = 1, kDelta = 2 };

enum class EntryType : uint8_t {
  kDevice = 1,
  kDelete = 2,
  kMapRun = 3,
  kUnmapRun = 4,
  kRefRun = 5,
};

struct Superblock {
  uint64_t txn = 0;
  uint64_t meta_blocks = 0;
  uint64_t data_blocks = 0;
  uint32_t data_block_bytes = 0;
  uint64_t head_record = 0;
  uint64_t records = 0;
  uint64_t chain_blocks = 0;
};

// Fills `block` (kBlockBytes) with `sb`, checksummed.
void EncodeSuperblock(const Superblock& sb, std::span<uint8_t> block);
// Checks magic, CRC, version and field sanity; DataLoss says what is wrong.
Result<Superblock> DecodeSuperblock(std::span<const uint8_t> block);

struct RecordBlockHeader {
  uint64_t txn = 0;
  uint64_t prev_record = 0;
  uint64_t next_block = 0;
  uint32_t index = 0;
  uint16_t payload_bytes = 0;
  RecordKind kind = RecordKind::kDelta;
};

// Fills `block` with the header and payload (payload.size() <= kPayloadBytes), checksummed.
void EncodeRecordBlock(const RecordBlockHeader& h, std::span<const uint8_t> payload,
                       std::span<uint8_t> block);
// Checks magic, CRC and header sanity; the payload is block[40, 40 + payload_bytes).
Result<RecordBlockHeader> DecodeRecordBlock(std::span<const uint8_t> block);

// Recomputes the CRC of every block of `image` that carries a superblock or record magic
// (for the fuzz target, so that mutations reach the decoders behind the checksums).
void ResealImage(std::span<uint8_t> image);

// Appends entries to a payload.
class EntryWriter {
 public:
  void Device(uint32_t dev, uint64_t virtual_blocks, uint32_t origin, uint64_t created_txn);
  void Delete(uint32_t dev);
  void MapRun(uint32_t dev, uint64_t vblock, uint64_t dblock, uint32_t len);
  void UnmapRun(uint32_t dev, uint64_t vblock, uint32_t len);
  void RefRun(uint64_t dblock, uint32_t len, uint32_t count);
  std::vector<uint8_t>& bytes() { return out_; }

 private:
  uint8_t* Grow(EntryType type, size_t field_bytes);
  std::vector<uint8_t> out_;
};

// One decoded entry; fields not used by its type are zero.
struct Entry {
  EntryType type = EntryType::kDevice;
  uint32_t dev = 0;
  uint64_t vblock = 0;  // kDevice: virtual blocks
  uint64_t dblock = 0;  // kDevice: creation txn
  uint32_t len = 0;     // kDevice: origin
  uint32_t count = 0;
};

// Reads entries from a payload; bounds-checked.
class EntryReader {
 public:
  explicit EntryReader(std::span<const uint8_t> payload) : in_(payload) {}
  bool done() const { return pos_ >= in_.size(); }
  // The next entry; DataLoss on an unknown type or a truncated entry.
  Result<Entry> Next();

 private:
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
};

}  // namespace ferry::volume::thin::format
