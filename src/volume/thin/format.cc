#include "volume/thin/format.h"

#include <cstring>

#include "base/endian.h"

namespace ferry::volume::thin::format {
namespace {

uint32_t BlockCrc(std::span<const uint8_t> block) { return Crc32c(block.subspan(8)); }

// Field sizes of each entry type, after the type byte.
constexpr size_t kDeviceBytes = 4 + 8 + 4 + 8;
constexpr size_t kDeleteBytes = 4;
constexpr size_t kMapRunBytes = 4 + 8 + 8 + 4;
constexpr size_t kUnmapRunBytes = 4 + 8 + 4;
constexpr size_t kRefRunBytes = 8 + 4 + 4;

}  // namespace

void EncodeSuperblock(const Superblock& sb, std::span<uint8_t> block) {
  std::memset(block.data(), 0, kBlockBytes);
  uint8_t* p = block.data();
  StoreBe32(p, kSuperMagic);
  StoreBe32(p + 8, kVersion);
  StoreBe32(p + 12, kBlockBytes);
  StoreBe64(p + 16, sb.txn);
  StoreBe64(p + 24, sb.meta_blocks);
  StoreBe64(p + 32, sb.data_blocks);
  StoreBe32(p + 40, sb.data_block_bytes);
  StoreBe64(p + 48, sb.head_record);
  StoreBe64(p + 56, sb.records);
  StoreBe64(p + 64, sb.chain_blocks);
  StoreBe32(p + 4, BlockCrc(block.first(kBlockBytes)));
}

Result<Superblock> DecodeSuperblock(std::span<const uint8_t> block) {
  if (block.size() < kBlockBytes) return DataLoss("superblock: short block");
  block = block.first(kBlockBytes);
  const uint8_t* p = block.data();
  if (LoadBe32(p) != kSuperMagic) return DataLoss("superblock: bad magic (not thin metadata)");
  if (LoadBe32(p + 4) != BlockCrc(block)) return DataLoss("superblock: checksum mismatch");
  if (LoadBe32(p + 8) != kVersion) {
    return DataLoss("superblock: unsupported version " + std::to_string(LoadBe32(p + 8)));
  }
  if (LoadBe32(p + 12) != kBlockBytes) return DataLoss("superblock: metadata block size");
  Superblock sb;
  sb.txn = LoadBe64(p + 16);
  sb.meta_blocks = LoadBe64(p + 24);
  sb.data_blocks = LoadBe64(p + 32);
  sb.data_block_bytes = LoadBe32(p + 40);
  sb.head_record = LoadBe64(p + 48);
  sb.records = LoadBe64(p + 56);
  sb.chain_blocks = LoadBe64(p + 64);
  if (sb.meta_blocks < kMinMetaBlocks) return DataLoss("superblock: metadata device too small");
  if (sb.head_record < kSuperSlots || sb.head_record >= sb.meta_blocks) {
    return DataLoss("superblock: head record " + std::to_string(sb.head_record) +
                    " outside the metadata device");
  }
  if (sb.records == 0 || sb.chain_blocks < sb.records || sb.chain_blocks > sb.meta_blocks) {
    return DataLoss("superblock: inconsistent record chain size");
  }
  if (sb.txn == 0) return DataLoss("superblock: transaction id 0");
  return sb;
}

void EncodeRecordBlock(const RecordBlockHeader& h, std::span<const uint8_t> payload,
                       std::span<uint8_t> block) {
  std::memset(block.data(), 0, kBlockBytes);
  uint8_t* p = block.data();
  StoreBe32(p, kRecordMagic);
  StoreBe64(p + 8, h.txn);
  StoreBe64(p + 16, h.prev_record);
  StoreBe64(p + 24, h.next_block);
  StoreBe32(p + 32, h.index);
  StoreBe16(p + 36, static_cast<uint16_t>(payload.size()));
  p[38] = static_cast<uint8_t>(h.kind);
  if (!payload.empty()) std::memcpy(p + kRecordHeaderBytes, payload.data(), payload.size());
  StoreBe32(p + 4, BlockCrc(block.first(kBlockBytes)));
}

Result<RecordBlockHeader> DecodeRecordBlock(std::span<const uint8_t> block) {
  if (block.size() < kBlockBytes) return DataLoss("record block: short block");
  block = block.first(kBlockBytes);
  const uint8_t* p = block.data();
  if (LoadBe32(p) != kRecordMagic) return DataLoss("record block: bad magic");
  if (LoadBe32(p + 4) != BlockCrc(block)) return DataLoss("record block: checksum mismatch");
  RecordBlockHeader h;
  h.txn = LoadBe64(p + 8);
  h.prev_record = LoadBe64(p + 16);
  h.next_block = LoadBe64(p + 24);
  h.index = LoadBe32(p + 32);
  h.payload_bytes = LoadBe16(p + 36);
  if (h.payload_bytes > kPayloadBytes) return DataLoss("record block: payload too long");
  if (p[38] != static_cast<uint8_t>(RecordKind::kFull) &&
      p[38] != static_cast<uint8_t>(RecordKind::kDelta)) {
    return DataLoss("record block: unknown kind " + std::to_string(p[38]));
  }
  h.kind = static_cast<RecordKind>(p[38]);
  return h;
}

void ResealImage(std::span<uint8_t> image) {
  for (size_t off = 0; off + kBlockBytes <= image.size(); off += kBlockBytes) {
    std::span<uint8_t> block = image.subspan(off, kBlockBytes);
    const uint32_t magic = LoadBe32(block.data());
    if (magic == kSuperMagic || magic == kRecordMagic) StoreBe32(block.data() + 4, BlockCrc(block));
  }
}

uint8_t* EntryWriter::Grow(EntryType type, size_t field_bytes) {
  const size_t at = out_.size();
  out_.resize(at + 1 + field_bytes);
  out_[at] = static_cast<uint8_t>(type);
  return out_.data() + at + 1;
}

void EntryWriter::Device(uint32_t dev, uint64_t virtual_blocks, uint32_t origin,
                         uint64_t created_txn) {
  uint8_t* p = Grow(EntryType::kDevice, kDeviceBytes);
  StoreBe32(p, dev);
  StoreBe64(p + 4, virtual_blocks);
  StoreBe32(p + 12, origin);
  StoreBe64(p + 16, created_txn);
}

void EntryWriter::Delete(uint32_t dev) { StoreBe32(Grow(EntryType::kDelete, kDeleteBytes), dev); }

void EntryWriter::MapRun(uint32_t dev, uint64_t vblock, uint64_t dblock, uint32_t len) {
  uint8_t* p = Grow(EntryType::kMapRun, kMapRunBytes);
  StoreBe32(p, dev);
  StoreBe64(p + 4, vblock);
  StoreBe64(p + 12, dblock);
  StoreBe32(p + 20, len);
}

void EntryWriter::UnmapRun(uint32_t dev, uint64_t vblock, uint32_t len) {
  uint8_t* p = Grow(EntryType::kUnmapRun, kUnmapRunBytes);
  StoreBe32(p, dev);
  StoreBe64(p + 4, vblock);
  StoreBe32(p + 12, len);
}

void EntryWriter::RefRun(uint64_t dblock, uint32_t len, uint32_t count) {
  uint8_t* p = Grow(EntryType::kRefRun, kRefRunBytes);
  StoreBe64(p, dblock);
  StoreBe32(p + 8, len);
  StoreBe32(p + 12, count);
}

Result<Entry> EntryReader::Next() {
  if (pos_ >= in_.size()) return DataLoss("record: read past the last entry");
  Entry e;
  const uint8_t type = in_[pos_];
  size_t need = 0;
  switch (type) {
    case static_cast<uint8_t>(EntryType::kDevice): need = kDeviceBytes; break;
    case static_cast<uint8_t>(EntryType::kDelete): need = kDeleteBytes; break;
    case static_cast<uint8_t>(EntryType::kMapRun): need = kMapRunBytes; break;
    case static_cast<uint8_t>(EntryType::kUnmapRun): need = kUnmapRunBytes; break;
    case static_cast<uint8_t>(EntryType::kRefRun): need = kRefRunBytes; break;
    default:
      return DataLoss("record: unknown entry type " + std::to_string(type) + " at offset " +
                      std::to_string(pos_));
  }
  if (in_.size() - pos_ - 1 < need) {
    return DataLoss("record: truncated entry at offset " + std::to_string(pos_));
  }
  const uint8_t* p = in_.data() + pos_ + 1;
  pos_ += 1 + need;
  e.type = static_cast<EntryType>(type);
  switch (e.type) {
    case EntryType::kDevice:
      e.dev = LoadBe32(p);
      e.vblock = LoadBe64(p + 4);
      e.len = LoadBe32(p + 12);
      e.dblock = LoadBe64(p + 16);
      break;
    case EntryType::kDelete: e.dev = LoadBe32(p); break;
    case EntryType::kMapRun:
      e.dev = LoadBe32(p);
      e.vblock = LoadBe64(p + 4);
      e.dblock = LoadBe64(p + 12);
      e.len = LoadBe32(p + 20);
      break;
    case EntryType::kUnmapRun:
      e.dev = LoadBe32(p);
      e.vblock = LoadBe64(p + 4);
      e.len = LoadBe32(p + 12);
      break;
    case EntryType::kRefRun:
      e.dblock = LoadBe64(p);
      e.len = LoadBe32(p + 8);
      e.count = LoadBe32(p + 12);
      break;
  }
  return e;
}

}  // namespace ferry::volume::thin::format
