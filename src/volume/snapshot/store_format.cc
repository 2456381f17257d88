#include "volume/snapshot/store_format.h"

#include <cstring>
#include <string>
#include <unordered_set>

#include "base/endian.h"

namespace ferry::volume::snapshot {

uint64_t Layout::slots() const {
  if (per_area_ == 0 || cow_chunks_ < 3) return 0;
  // Full areas take per_area + 1 chunks; a last partial area holds what remains after its
  // metadata chunk.
  const uint64_t after_header = cow_chunks_ - 1;
  const uint64_t full = after_header / (per_area_ + 1);
  const uint64_t rest = after_header % (per_area_ + 1);
  return full * per_area_ + (rest > 1 ? rest - 1 : 0);
}

void EncodeHeader(const Header& h, std::span<uint8_t> block) {
  std::memset(block.data(), 0, kHeaderBytes);
  uint8_t* p = block.data();
  StoreBe32(p, kMagic);
  StoreBe32(p + 8, kVersion);
  StoreBe32(p + 12, h.valid ? kFlagValid : 0);
  StoreBe32(p + 16, h.chunk_sectors);
  StoreBe64(p + 24, h.store_id);
  StoreBe32(p + 4, Crc32c(block.subspan(8, 56)));
}

Result<std::optional<Header>> DecodeHeader(std::span<const uint8_t> block) {
  if (block.size() < kHeaderBytes) {
    return InvalidArgument("snapshot store header needs " + std::to_string(kHeaderBytes) +
                           " bytes, got " + std::to_string(block.size()));
  }
  const uint8_t* p = block.data();
  bool blank = true;
  for (size_t i = 0; i < kHeaderBytes && blank; ++i) blank = p[i] == 0;
  if (blank) return std::optional<Header>();
  if (LoadBe32(p) != kMagic) {
    return DataLoss(
        "COW device holds no snapshot store (bad magic); zero its first 4 KiB to format it");
  }
  if (LoadBe32(p + 4) != Crc32c(block.subspan(8, 56))) {
    return DataLoss("snapshot store header checksum mismatch (the header is corrupt)");
  }
  if (LoadBe32(p + 8) != kVersion) {
    return Unimplemented("snapshot store version " + std::to_string(LoadBe32(p + 8)) +
                         " is not supported (this build reads version 1)");
  }
  Header h;
  const uint32_t flags = LoadBe32(p + 12);
  h.chunk_sectors = LoadBe32(p + 16);
  h.store_id = LoadBe64(p + 24);
  if ((flags & ~kFlagValid) != 0 || LoadBe32(p + 20) != 0) {
    return DataLoss("snapshot store header has unknown flags or reserved bits set");
  }
  h.valid = (flags & kFlagValid) != 0;
  const uint32_t cs = h.chunk_sectors;
  if (cs < kMinChunkSectors || cs > kMaxChunkSectors || (cs & (cs - 1)) != 0) {
    return DataLoss("snapshot store header has chunk size " + std::to_string(cs) +
                    " sectors, not a power of two in 8..16384");
  }
  return std::optional<Header>(h);
}

namespace {
uint32_t RecordCrc(const uint8_t* rec, uint64_t store_id) {
  uint8_t buf[8 + 28];
  StoreBe64(buf, store_id);
  std::memcpy(buf + 8, rec, 28);
  return Crc32c(buf);
}
}  // namespace

void EncodeRecord(const Record& r, uint64_t store_id, std::span<uint8_t, kRecordBytes> out) {
  uint8_t* p = out.data();
  std::memset(p, 0, kRecordBytes);
  if (r.state == RecordState::kEmpty) return;
  StoreBe64(p, r.origin_chunk);
  StoreBe64(p + 8, r.cow_chunk);
  StoreBe32(p + 16, static_cast<uint32_t>(r.state));
  StoreBe32(p + 24, static_cast<uint32_t>(store_id));
  StoreBe32(p + 28, RecordCrc(p, store_id));
}

Record DecodeRecord(std::span<const uint8_t, kRecordBytes> in, uint64_t store_id) {
  const uint8_t* p = in.data();
  const uint32_t state = LoadBe32(p + 16);
  if (LoadBe32(p + 24) != static_cast<uint32_t>(store_id) || LoadBe32(p + 20) != 0 ||
      (state != 1 && state != 2) || LoadBe32(p + 28) != RecordCrc(p, store_id)) {
    return {};
  }
  return {LoadBe64(p), LoadBe64(p + 8), static_cast<RecordState>(state)};
}

Status DecodeArea(std::span<const uint8_t> bytes, const Layout& layout, uint64_t area,
                  uint64_t store_id, uint64_t origin_chunks, std::vector<Record>* out) {
  const uint64_t per = layout.per_area();
  if (bytes.size() / kRecordBytes < per) {
    return InvalidArgument("metadata area buffer is shorter than one area");
  }
  const uint64_t first = area * per;
  const uint64_t slots = layout.slots();
  for (uint64_t i = 0; i < per && first + i < slots; ++i) {
    Record r = DecodeRecord(bytes.subspan(i * kRecordBytes).first<kRecordBytes>(), store_id);
    if (r.state != RecordState::kEmpty) {
      if (r.cow_chunk != layout.DataChunk(first + i)) {
        return DataLoss("snapshot store slot " + std::to_string(first + i) + " names COW chunk " +
                        std::to_string(r.cow_chunk) + " instead of its own chunk " +
                        std::to_string(layout.DataChunk(first + i)));
      }
      if (r.origin_chunk >= origin_chunks) {
        return DataLoss("snapshot store slot " + std::to_string(first + i) +
                        " names origin chunk " + std::to_string(r.origin_chunk) +
                        " past the origin's " + std::to_string(origin_chunks) +
                        " chunks (is this the right origin?)");
      }
    }
    out->push_back(r);
  }
  return Status::Ok();
}

Result<StoreImage> DecodeStoreImage(std::span<const uint8_t> image, uint64_t origin_chunks) {
  StoreImage out;
  FERRY_ASSIGN_OR_RETURN(out.header, DecodeHeader(image));
  if (!out.header) return out;
  const uint64_t chunk_bytes = uint64_t{out.header->chunk_sectors} * 512;
  const Layout layout(chunk_bytes, image.size() / chunk_bytes);
  for (uint64_t a = 0; a < layout.areas(); ++a) {
    const auto area = image.subspan(layout.AreaChunk(a) * chunk_bytes, chunk_bytes);
    FERRY_RETURN_IF_ERROR(
        DecodeArea(area, layout, a, out.header->store_id, origin_chunks, &out.slots));
  }
  while (!out.slots.empty() && out.slots.back().state == RecordState::kEmpty) {
    out.slots.pop_back();
  }
  FERRY_RETURN_IF_ERROR(CheckSlots(out.slots, layout, origin_chunks));
  return out;
}

Status CheckSlots(std::span<const Record> slots, const Layout& layout, uint64_t origin_chunks) {
  if (slots.size() > layout.slots()) {
    return DataLoss("snapshot store has " + std::to_string(slots.size()) +
                    " slots, more than the device's " + std::to_string(layout.slots()));
  }
  std::unordered_set<uint64_t> live;
  for (uint64_t s = 0; s < slots.size(); ++s) {
    const Record& r = slots[s];
    if (r.state == RecordState::kEmpty) continue;
    if (r.cow_chunk != layout.DataChunk(s)) {
      return DataLoss("slot " + std::to_string(s) + " owns COW chunk " +
                      std::to_string(r.cow_chunk) + ", not its own");
    }
    if (r.origin_chunk >= origin_chunks) {
      return DataLoss("slot " + std::to_string(s) + " maps origin chunk " +
                      std::to_string(r.origin_chunk) + " past the origin");
    }
    if (r.state == RecordState::kException && !live.insert(r.origin_chunk).second) {
      return DataLoss("origin chunk " + std::to_string(r.origin_chunk) +
                      " has two live exceptions (slot " + std::to_string(s) + ")");
    }
  }
  return Status::Ok();
}

}  // namespace ferry::volume::snapshot
