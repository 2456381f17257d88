#include "copy/plan.h"

#include <algorithm>

namespace ferry::copy {
namespace {

uint64_t ExtentBytes(const block::BlockDevice& dev, const std::vector<Extent>& ex) {
  uint64_t total = 0;
  for (const Extent& e : ex) total += e.blocks.value() * dev.geometry().block_size;
  return total;
}

Status CheckExtents(const block::BlockDevice& dev, const std::vector<Extent>& ex,
                    const std::string& who) {
  if (ex.empty()) return InvalidArgument(who + " has no extents");
  const uint64_t n = dev.geometry().num_blocks.value();
  for (size_t i = 0; i < ex.size(); ++i) {
    const Extent& e = ex[i];
    if (e.blocks.value() == 0) {
      return InvalidArgument(who + " extent " + std::to_string(i) + " is empty");
    }
    if (e.lba.value() >= n || e.blocks.value() > n - e.lba.value()) {
      return OutOfRange(who + " extent " + std::to_string(i) + " (lba " +
                        std::to_string(e.lba.value()) + ", " + std::to_string(e.blocks.value()) +
                        " blocks) lies past the end of '" + std::string(dev.name()) + "' (" +
                        std::to_string(n) + " blocks)");
    }
  }
  return Status::Ok();
}

}  // namespace

uint64_t MaxBlockSize(const CopyDescriptor& d) {
  uint64_t m = d.src->geometry().block_size;
  for (const CopyDestination& c : d.dsts) m = std::max<uint64_t>(m, c.dev->geometry().block_size);
  return m;
}

uint64_t StreamBytes(const CopyDescriptor& d) { return ExtentBytes(*d.src, d.src_extents); }

Status ValidateDescriptor(const CopyDescriptor& d) {
  if (d.src == nullptr) return InvalidArgument("copy has no source device");
  if (d.dsts.empty() || d.dsts.size() > kMaxDestinations) {
    return InvalidArgument("a copy needs 1 to " + std::to_string(kMaxDestinations) +
                           " destinations, not " + std::to_string(d.dsts.size()));
  }
  FERRY_RETURN_IF_ERROR(CheckExtents(*d.src, d.src_extents, "source"));
  for (const CopyDestination& dst : d.dsts) {
    if (dst.dev == nullptr) return InvalidArgument("a destination has no device");
  }
  // Extent lengths must be whole blocks on every device, so that every piece is too.
  const uint64_t align = MaxBlockSize(d);
  auto check_len = [align](const block::BlockDevice& dev, const std::vector<Extent>& ex,
                           const std::string& who) -> Status {
    for (size_t i = 0; i < ex.size(); ++i) {
      if (ex[i].blocks.value() * dev.geometry().block_size % align != 0) {
        return InvalidArgument(who + " extent " + std::to_string(i) + " is not a multiple of " +
                               std::to_string(align) +
                               " bytes, the largest block size in the copy");
      }
    }
    return Status::Ok();
  };
  FERRY_RETURN_IF_ERROR(check_len(*d.src, d.src_extents, "source"));
  for (size_t i = 0; i < d.dsts.size(); ++i) {
    FERRY_RETURN_IF_ERROR(
        check_len(*d.dsts[i].dev, d.dsts[i].extents, "destination " + std::to_string(i)));
  }
  const uint64_t total = StreamBytes(d);
  for (size_t i = 0; i < d.dsts.size(); ++i) {
    const CopyDestination& dst = d.dsts[i];
    const std::string who = "destination " + std::to_string(i);
    if (dst.dev == nullptr) return InvalidArgument(who + " has no device");
    if (dst.dev->read_only()) {
      return FailedPrecondition(who + " '" + std::string(dst.dev->name()) + "' is read-only");
    }
    FERRY_RETURN_IF_ERROR(CheckExtents(*dst.dev, dst.extents, who));
    uint64_t bytes = ExtentBytes(*dst.dev, dst.extents);
    if (bytes != total) {
      return InvalidArgument(who + " extents hold " + std::to_string(bytes) +
                             " bytes but the source extents hold " + std::to_string(total));
    }
  }
  return Status::Ok();
}

std::vector<Piece> MakePieces(const CopyDescriptor& d) {
  const size_t nd = d.dsts.size();
  // Cursor per list: extent index and bytes used of it.
  struct Cursor {
    const std::vector<Extent>* ex;
    uint32_t bs;
    size_t i = 0;
    uint64_t used = 0;
    uint64_t Byte() const { return (*ex)[i].lba.value() * bs + used; }
    uint64_t Left() const { return (*ex)[i].blocks.value() * bs - used; }
    void Take(uint64_t n) {
      used += n;
      if (used == (*ex)[i].blocks.value() * bs) {
        ++i;
        used = 0;
      }
    }
  };
  Cursor src{&d.src_extents, d.src->geometry().block_size};
  std::vector<Cursor> dst;
  for (const CopyDestination& c : d.dsts) dst.push_back({&c.extents, c.dev->geometry().block_size});
  std::vector<Piece> out;
  const uint64_t total = StreamBytes(d);
  uint64_t stream = 0;
  while (stream < total) {
    Piece p;
    p.stream_offset = stream;
    p.src_byte = src.Byte();
    p.len = src.Left();
    for (size_t k = 0; k < nd; ++k) {
      p.dst_byte[k] = dst[k].Byte();
      p.len = std::min(p.len, dst[k].Left());
    }
    src.Take(p.len);
    for (size_t k = 0; k < nd; ++k) dst[k].Take(p.len);
    stream += p.len;
    out.push_back(p);
  }
  return out;
}

CopyDescriptor TranslateToLeaves(CopyDescriptor d) { return d; }

bool HasSelfOverlap(const CopyDescriptor& d, size_t k) {
  const CopyDestination& dst = d.dsts[k];
  if (dst.dev != d.src) return false;
  for (const Extent& s : d.src_extents) {
    for (const Extent& e : dst.extents) {
      if (s.lba.value() < e.lba.value() + e.blocks.value() &&
          e.lba.value() < s.lba.value() + s.blocks.value()) {
        return true;
      }
    }
  }
  return false;
}

uint64_t AlignDown(uint64_t want, uint64_t align) { return std::max(align, want / align * align); }

}  // namespace ferry::copy
