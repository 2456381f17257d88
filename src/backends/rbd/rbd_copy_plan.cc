#include "backends/rbd/rbd_copy_plan.h"

#include <algorithm>

namespace ferry::backends::rbd {
namespace {

// True when [off, off + len) of the source holds some data. `from` is a hint, moved forward
// past ranges that end before `off` (pieces are asked in increasing source order within a
// segment).
bool HasData(std::span<const ByteRange> data, size_t* from, uint64_t off, uint64_t len) {
  size_t i = *from;
  while (i < data.size() && data[i].off + data[i].len <= off) ++i;
  *from = i;
  return i < data.size() && data[i].off < off + len;
}

void Add(std::vector<CopyStep>* steps, const CopyStep& s, uint64_t max_zero_bytes) {
  if (s.kind == CopyStep::kZero && !steps->empty()) {
    CopyStep& last = steps->back();
    if (last.kind == CopyStep::kZero && last.dst_off + last.len == s.dst_off &&
        last.len + s.len <= max_zero_bytes) {
      last.len += s.len;
      return;
    }
  }
  steps->push_back(s);
}

}  // namespace

void NormalizeRanges(std::vector<ByteRange>* ranges) {
  std::sort(ranges->begin(), ranges->end(),
            [](const ByteRange& a, const ByteRange& b) { return a.off < b.off; });
  std::vector<ByteRange> out;
  for (const ByteRange& r : *ranges) {
    if (r.len == 0) continue;
    if (!out.empty() && r.off <= out.back().off + out.back().len) {
      out.back().len = std::max(out.back().len, r.off + r.len - out.back().off);
    } else {
      out.push_back(r);
    }
  }
  *ranges = std::move(out);
}

std::vector<CopyStep> PlanCopySteps(const CopyPlanInput& in) {
  std::vector<CopyStep> steps;
  const uint64_t os = in.dst_object_bytes;
  const bool same_size = in.src_object_bytes == os;
  for (const block::CopySegment& seg : in.segments) {
    size_t hint = 0;
    // Segments are not sorted by source offset: start the data search over for each.
    for (uint64_t at = 0; at < seg.len_bytes;) {
      const uint64_t src = seg.src_offset_bytes + at;
      const uint64_t dst = seg.dst_offset_bytes + at;
      const uint64_t piece = std::min(seg.len_bytes - at, os - dst % os);
      CopyStep s{CopyStep::kGateway, src, dst, piece};
      if (!HasData(in.src_data, &hint, src, piece)) {
        s.kind = CopyStep::kZero;
        Add(&steps, s, in.max_zero_bytes);
      } else if (in.server_allowed && same_size && piece == os && src % os == 0 && dst % os == 0) {
        s.kind = CopyStep::kServer;
        steps.push_back(s);
      } else {
        for (uint64_t done = 0; done < piece;) {
          const uint64_t n = std::min(piece - done, in.max_io_bytes);
          steps.push_back({CopyStep::kGateway, src + done, dst + done, n});
          done += n;
        }
      }
      at += piece;
    }
  }
  return steps;
}

}  // namespace ferry::backends::rbd
