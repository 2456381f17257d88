// Pins and generations at execution (DESIGN.md, "The copy path", step 2): translated work is
// issued only while every pin of the copy holds at its generation. Once that stops being
// true (a suspend deadline asked the pins back, or a generation moved), the job issues no
// more translated work, drops the pins when none is in flight, and runs what is left as
// ordinary reads and writes on the descriptor's devices, which queue while a volume is
// suspended and then follow its new table. A stale mapping is never written through: the
// tables under pinned volumes cannot be swapped while the pins are held, and nothing
// translated is issued after they are dropped.
#include <algorithm>

#include "copy/job.h"

namespace ferry::copy {

void Job::OnReleaseRequested() {
  if (finished_ || retargeted_) return;
  StartFallback();
  Pump();
}

void Job::StartFallback() {
  if (fallback_) return;
  fallback_ = true;
  AddNote(pins_->release_requested()
              ? "a volume of the copy was suspended past its deadline; the remaining ranges "
                "were copied as ordinary reads and writes"
              : "a volume of the copy changed its table; the remaining ranges were copied as "
                "ordinary reads and writes");
}

// Whether work of a translated piece may be issued now (untranslated work always may).
bool Job::MayIssue(bool translated) {
  if (!translated) return true;
  if (fallback_) return false;
  if (pins_->Valid()) return true;
  StartFallback();
  return false;
}

// Drops the pins and replaces every translated leg and range not yet issued by ranges on
// the descriptor's devices. Nothing translated is in flight.
void Job::Retarget() {
  retargeted_ = true;
  pins_->ReleaseAll();
  std::vector<EmuRange> from_legs;
  for (size_t i = next_leg_; i < legs_.size(); ++i) {
    Leg& leg = legs_[i];
    if (!leg.translated || leg.dropped) continue;
    leg.dropped = true;  // IssueLeg skips it
    leg.translated = false;
    leg.bytes = 0;
    for (size_t j = 0; j < leg.segments.size(); ++j) {
      const block::CopySegment& s = leg.segments[j];
      Piece p;
      p.stream_offset = leg.stream_offsets[j];
      p.len = s.len_bytes;
      AddTopLevel(p, 1u << leg.dst, &from_legs);
    }
  }
  RetargetLane(&ordered_);
  RetargetLane(&parallel_);
  parallel_.ranges.insert(parallel_.ranges.end(), from_legs.begin(), from_legs.end());
}

// Rewrites what `lane` has not issued yet; ranges in flight keep their chunks.
void Job::RetargetLane(Lane* lane) {
  std::vector<EmuRange> out;
  for (size_t i = lane->next; i < lane->ranges.size(); ++i) {
    EmuRange r = lane->ranges[i];
    if (i == lane->next && lane->issued > 0) {
      // Backward ranges issue from their end: what is left is their beginning.
      const uint64_t left = r.piece.len - lane->issued;
      r.piece = SubPiece(r.piece, r.backward ? 0 : lane->issued, left);
    }
    if (!r.piece.translated) {
      out.push_back(r);
    } else {
      AddTopLevel(r.piece, r.mask, &out);
    }
  }
  lane->ranges = std::move(out);
  lane->next = 0;
  lane->issued = 0;
}

// The stream bytes of `leaf` as ranges on the descriptor's devices, appended to `out` in
// stream order for the destinations in `mask`.
void Job::AddTopLevel(const Piece& leaf, uint32_t mask, std::vector<EmuRange>* out) {
  if (top_pieces_.empty()) top_pieces_ = MakePieces(desc_);
  const uint64_t begin = leaf.stream_offset;
  const uint64_t end = begin + leaf.len;
  auto it = std::upper_bound(top_pieces_.begin(), top_pieces_.end(), begin,
                             [](uint64_t off, const Piece& p) { return off < p.stream_offset; });
  if (it != top_pieces_.begin()) --it;
  for (; it != top_pieces_.end() && it->stream_offset < end; ++it) {
    const uint64_t a = std::max(begin, it->stream_offset);
    const uint64_t b = std::min(end, it->stream_offset + it->len);
    if (a >= b) continue;
    out->push_back({SubPiece(*it, a - it->stream_offset, b - a), mask, false});
  }
}

}  // namespace ferry::copy
