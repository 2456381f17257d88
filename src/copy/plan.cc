#include "copy/plan.h"

#include <algorithm>
#include <string>

namespace ferry::copy {
namespace {

std::string Quoted(const block::BlockDevice& dev) { return "'" + std::string(dev.name()) + "'"; }

uint64_t ExtentBytes(const block::BlockDevice& dev, const std::vector<Extent>& ex) {
  uint64_t total = 0;
  for (const Extent& e : ex) total += e.blocks.value() * dev.geometry().block_size;
  return total;
}

// Extents present, non-empty, inside the device and whole multiples of `unit` bytes.
Status CheckExtents(const block::BlockDevice& dev, const std::vector<Extent>& ex,
                    const std::string& who, uint32_t unit) {
  if (ex.empty()) return InvalidArgument(who + " " + Quoted(dev) + " has no extents");
  const uint64_t n = dev.geometry().num_blocks.value();
  const uint32_t bs = dev.geometry().block_size;
  for (size_t i = 0; i < ex.size(); ++i) {
    const Extent& e = ex[i];
    const std::string where = who + " " + Quoted(dev) + " extent " + std::to_string(i);
    if (e.blocks.value() == 0) return InvalidArgument(where + " is empty (0 blocks)");
    if (e.lba.value() >= n || e.blocks.value() > n - e.lba.value()) {
      return InvalidArgument(where + " (lba " + std::to_string(e.lba.value()) + ", " +
                             std::to_string(e.blocks.value()) + " blocks) lies past the end (" +
                             std::to_string(n) + " blocks)");
    }
    // Pieces must be whole blocks on every device of the copy.
    if (e.blocks.value() * bs % unit != 0) {
      return InvalidArgument(where + " is " + std::to_string(e.blocks.value() * bs) +
                             " bytes, not a multiple of " + std::to_string(unit) +
                             " bytes, the largest block size in the copy");
    }
  }
  return Status::Ok();
}

}  // namespace

Piece SubPiece(const Piece& p, uint64_t offset, uint64_t len) {
  Piece s = p;
  s.stream_offset += offset;
  s.len = len;
  s.src.byte += offset;
  for (Place& d : s.dst) d.byte += offset;
  return s;
}

uint32_t MaxBlockSize(const CopyDescriptor& d) {
  uint32_t m = d.src->geometry().block_size;
  for (const CopyDestination& c : d.dsts) m = std::max(m, c.dev->geometry().block_size);
  return m;
}

uint64_t StreamBytes(const CopyDescriptor& d) { return ExtentBytes(*d.src, d.src_extents); }

Status ValidateDescriptor(const CopyDescriptor& d) {
  if (d.src == nullptr) return InvalidArgument("the copy has no source device");
  if (d.dsts.empty() || d.dsts.size() > kMaxDestinations) {
    return InvalidArgument("a copy needs 1 to " + std::to_string(kMaxDestinations) +
                           " destinations, not " + std::to_string(d.dsts.size()));
  }
  for (size_t i = 0; i < d.dsts.size(); ++i) {
    if (d.dsts[i].dev == nullptr) {
      return InvalidArgument("destination " + std::to_string(i) + " has no device");
    }
  }
  const uint32_t unit = MaxBlockSize(d);
  FERRY_RETURN_IF_ERROR(CheckExtents(*d.src, d.src_extents, "source", unit));
  const uint64_t total = StreamBytes(d);
  for (size_t i = 0; i < d.dsts.size(); ++i) {
    const CopyDestination& dst = d.dsts[i];
    const std::string who = "destination " + std::to_string(i);
    if (dst.dev->read_only()) {
      return FailedPrecondition(who + " " + Quoted(*dst.dev) +
                                " is read-only; copy to a writable device");
    }
    FERRY_RETURN_IF_ERROR(CheckExtents(*dst.dev, dst.extents, who, unit));
    const uint64_t bytes = ExtentBytes(*dst.dev, dst.extents);
    if (bytes != total) {
      return InvalidArgument(who + " " + Quoted(*dst.dev) + " extents hold " +
                             std::to_string(bytes) + " bytes but the source extents hold " +
                             std::to_string(total) + "; the lengths must match");
    }
  }
  return Status::Ok();
}

namespace {

// A walk along one extent list, in bytes.
struct Cursor {
  block::BlockDevice* dev;
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

// True when `next` starts where `prev` ends on the source and on every destination.
bool Continues(const Piece& prev, const Piece& next, size_t nd) {
  if (prev.src.dev != next.src.dev || prev.src.byte + prev.len != next.src.byte) return false;
  for (size_t k = 0; k < nd; ++k) {
    if (prev.dst[k].dev != next.dst[k].dev || prev.dst[k].byte + prev.len != next.dst[k].byte) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::vector<Piece> MakePieces(const CopyDescriptor& d) {
  const size_t nd = d.dsts.size();
  Cursor src{d.src, &d.src_extents, d.src->geometry().block_size};
  std::vector<Cursor> dst;
  for (const CopyDestination& c : d.dsts) {
    dst.push_back({c.dev, &c.extents, c.dev->geometry().block_size});
  }
  std::vector<Piece> out;
  const uint64_t total = StreamBytes(d);
  for (uint64_t stream = 0; stream < total;) {
    Piece p;
    p.stream_offset = stream;
    p.src = {src.dev, src.Byte()};
    p.len = src.Left();
    for (size_t k = 0; k < nd; ++k) {
      p.dst[k] = {dst[k].dev, dst[k].Byte()};
      p.len = std::min(p.len, dst[k].Left());
    }
    src.Take(p.len);
    for (size_t k = 0; k < nd; ++k) dst[k].Take(p.len);
    stream += p.len;
    if (!out.empty() && Continues(out.back(), p, nd)) {
      out.back().len += p.len;
    } else {
      out.push_back(p);
    }
  }
  return out;
}

namespace {

struct Interval {
  const block::BlockDevice* dev;
  uint64_t begin;
  uint64_t end;
  size_t piece;
};

bool ByDeviceThenBegin(const Interval& a, const Interval& b) {
  return a.dev != b.dev ? std::less<const block::BlockDevice*>()(a.dev, b.dev) : a.begin < b.begin;
}

// Marks every interval of `a` that overlaps some interval of `b` on the same device.
// `b` is sorted by device then begin; `b_max_end[i]` is the largest end of b[0..i] on
// b[i]'s device. With `same`, a and b are one list and an interval does not count itself.
void MarkOverlaps(const std::vector<Interval>& a, const std::vector<Interval>& b,
                  const std::vector<uint64_t>& b_max_end, bool same, std::vector<bool>* mark) {
  for (size_t i = 0; i < a.size(); ++i) {
    const Interval& x = a[i];
    bool hit = false;
    if (same) {
      // Sorted list: an earlier interval reaching past x.begin, or the next one starting
      // before x.end.
      hit = (i > 0 && b[i - 1].dev == x.dev && b_max_end[i - 1] > x.begin) ||
            (i + 1 < b.size() && b[i + 1].dev == x.dev && b[i + 1].begin < x.end);
    } else {
      // The intervals of b on x's device that begin before x.end; one of them reaches past
      // x.begin exactly when the largest end among them does.
      auto lo = std::lower_bound(b.begin(), b.end(), Interval{x.dev, 0, 0, 0}, ByDeviceThenBegin);
      auto hi =
          std::lower_bound(b.begin(), b.end(), Interval{x.dev, x.end, 0, 0}, ByDeviceThenBegin);
      hit = hi != lo && b_max_end[static_cast<size_t>(hi - b.begin()) - 1] > x.begin;
    }
    if (hit) (*mark)[x.piece] = true;
  }
}

std::vector<uint64_t> RunningMaxEnd(const std::vector<Interval>& v) {
  std::vector<uint64_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const bool same_dev = i > 0 && v[i - 1].dev == v[i].dev;
    out[i] = same_dev ? std::max(out[i - 1], v[i].end) : v[i].end;
  }
  return out;
}

}  // namespace

std::vector<bool> FindHazards(const std::vector<Piece>& pieces, size_t num_dsts) {
  std::vector<Interval> reads, writes;
  for (size_t i = 0; i < pieces.size(); ++i) {
    const Piece& p = pieces[i];
    reads.push_back({p.src.dev, p.src.byte, p.src.byte + p.len, i});
    for (size_t k = 0; k < num_dsts; ++k) {
      writes.push_back({p.dst[k].dev, p.dst[k].byte, p.dst[k].byte + p.len, i});
    }
  }
  std::sort(reads.begin(), reads.end(), ByDeviceThenBegin);
  std::sort(writes.begin(), writes.end(), ByDeviceThenBegin);
  const std::vector<uint64_t> reads_max = RunningMaxEnd(reads);
  const std::vector<uint64_t> writes_max = RunningMaxEnd(writes);
  std::vector<bool> hazard(pieces.size(), false);
  MarkOverlaps(writes, writes, writes_max, /*same=*/true, &hazard);
  MarkOverlaps(reads, writes, writes_max, /*same=*/false, &hazard);
  MarkOverlaps(writes, reads, reads_max, /*same=*/false, &hazard);
  return hazard;
}

bool CopyBackward(const Piece& p, size_t num_dsts) {
  for (size_t k = 0; k < num_dsts; ++k) {
    const Place& d = p.dst[k];
    if (d.dev == p.src.dev && d.byte > p.src.byte && d.byte < p.src.byte + p.len) return true;
  }
  return false;
}

OffloadSpan SplitForOffload(const Piece& p, size_t k, uint64_t align, uint64_t unit) {
  const uint64_t head = (align - p.src.byte % align) % align;
  if (head % unit != 0 || (p.dst[k].byte + head) % align != 0 || head >= p.len) return {};
  return {head, (p.len - head) / align * align};
}

uint64_t AlignDown(uint64_t want, uint64_t align) { return want / align * align; }

}  // namespace ferry::copy
