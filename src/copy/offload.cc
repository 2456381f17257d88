// Offload: native copy legs into destinations whose backend can copy from the source
// (block::CopyOffload), within the destination's copy limits.
#include <numeric>

#include "copy/job.h"

namespace ferry::copy {
namespace {

std::string Name(const block::BlockDevice& dev) { return std::string(dev.name()); }

}  // namespace

// The alignment of legs from `src` into `dst`: the destination's copy granularity and every
// block size of the copy (CopySegment: offsets and lengths are whole blocks on both sides).
// 0 when the pair cannot copy natively; the reason goes to the notes once.
uint64_t Job::OffloadAlign(block::BlockDevice* src, block::BlockDevice* dst) {
  for (const PairAlign& p : pair_align_) {
    if (p.src == src && p.dst == dst) return p.align;
  }
  uint64_t align = 0;
  std::string why;
  block::CopyOffload* offload = dst->copy_offload();
  if (offload == nullptr) {
    why = Name(*dst) + " (" + std::string(dst->type()) + ") has no native copy";
  } else if (!offload->CanCopyFrom(*src, &why)) {
    if (why.empty()) why = "native copy not possible";
  } else {
    const block::QueueLimits& lim = dst->limits();
    align = std::lcm(std::max<uint64_t>(lim.copy_granularity_bytes, 1), unit_);
    if (AlignDown(lim.max_copy_bytes, align) == 0) {
      why = "max_copy_bytes " + std::to_string(lim.max_copy_bytes) +
            " is below the copy alignment of " + std::to_string(align) + " bytes";
      align = 0;
    }
  }
  if (align == 0) AddNote(Name(*src) + " -> " + Name(*dst) + ": " + why);
  pair_align_.push_back({src, dst, align});
  return align;
}

// Puts the aligned middle of piece `p` into legs, per destination that can copy natively;
// returns what each destination offloads (the rest is emulated).
std::array<OffloadSpan, kMaxDestinations> Job::PlanOffload(const Piece& p) {
  std::array<OffloadSpan, kMaxDestinations> spans{};
  for (size_t k = 0; k < num_dsts_; ++k) {
    const uint64_t align = OffloadAlign(p.src.dev, p.dst[k].dev);
    if (align == 0) continue;
    spans[k] = SplitForOffload(p, k, align, unit_);
    if (p.len > spans[k].middle) {
      unaligned_bytes_[k] += p.len - spans[k].middle;
      unaligned_align_[k] = std::max(unaligned_align_[k], align);
    }
    if (spans[k].middle > 0) AddToLeg(k, SubPiece(p, spans[k].head, spans[k].middle), align);
  }
  return spans;
}

// Appends `part` to destination k's open leg, opening new legs at max_copy_bytes and
// max_copy_segments. Cuts fall on multiples of `align`, so no leg is split below the
// granularity.
void Job::AddToLeg(size_t k, const Piece& part, uint64_t align) {
  block::BlockDevice* dev = part.dst[k].dev;
  const block::QueueLimits& lim = dev->limits();
  uint64_t max_bytes = AlignDown(lim.max_copy_bytes, align);
  // Throttled: legs no larger than the burst, so that the bucket paces offloaded bytes too
  // (one leg of the whole copy would pass at once).
  const TokenBucket& bucket = shared_->bucket;
  if (!bucket.unlimited()) {
    max_bytes = std::min(max_bytes, std::max(align, AlignDown(bucket.burst_bytes(), align)));
  }
  const size_t max_segs = std::max<uint32_t>(lim.max_copy_segments, 1);
  for (uint64_t off = 0; off < part.len;) {
    Leg* leg = open_leg_[k];
    if (leg == nullptr || leg->src != part.src.dev || leg->dev != dev || leg->bytes == max_bytes ||
        leg->segments.size() == max_segs || leg->translated != part.translated) {
      leg = open_leg_[k] = &legs_.emplace_back();
      leg->dst = k;
      leg->src = part.src.dev;
      leg->dev = dev;
      leg->translated = part.translated;
    }
    const uint64_t n = std::min(part.len - off, max_bytes - leg->bytes);
    leg->segments.push_back({part.src.byte + off, part.dst[k].byte + off, n});
    leg->stream_offsets.push_back(part.stream_offset + off);
    leg->bytes += n;
    off += n;
  }
}

void Job::NoteUnaligned() {
  for (size_t k = 0; k < num_dsts_; ++k) {
    if (unaligned_bytes_[k] == 0) continue;
    AddNote(Name(*desc_.dsts[k].dev) + ": " + std::to_string(unaligned_bytes_[k]) +
            " bytes not aligned to the native copy granularity (" +
            std::to_string(unaligned_align_[k]) + " bytes); emulated");
  }
}

// A cancelled copy asks the devices of its legs in flight to stop them (a remote array
// aborts its EXTENDED COPY or token copy); each leg still completes through OnLeg.
void Job::CancelLegsInFlight() {
  for (Leg& leg : legs_) {
    if (!leg.in_flight) continue;
    if (block::CopyOffload* offload = leg.dev->copy_offload()) offload->CancelCopy(leg.req);
  }
}

bool Job::CanIssueLeg() const { return next_leg_ < legs_.size() && legs_in_flight_ < depth_; }

void Job::IssueLeg() {
  Leg* leg = &legs_[next_leg_++];
  if (leg->dropped) return;  // retargeted (pins.cc)
  // A device may lose its capability after planning (a fault injector's rule cleared).
  block::CopyOffload* offload = leg->dev->copy_offload();
  if (offload == nullptr) {
    AddNote(Name(*leg->dev) + ": native copy refused for some ranges; emulated");
    return EmulateLeg(*leg);
  }
  ++legs_in_flight_;
  leg->in_flight = true;
  if (leg->translated) ++translated_in_flight_;
  leg->req.src = leg->src;
  leg->req.segments = leg->segments;
  leg->req.mechanism = block::CopyMechanism::kNone;
  leg->req.reflinked_bytes = 0;
  leg->req.secondary = block::CopyMechanism::kNone;
  leg->req.secondary_bytes = 0;
  leg->req.refusal.clear();
  leg->req.done = [this, leg](IoStatus st) { OnLeg(leg, st); };
  offload->SubmitCopy(leg->req);
}

void Job::OnLeg(Leg* leg, IoStatus st) {
  --legs_in_flight_;
  leg->in_flight = false;
  if (leg->translated) --translated_in_flight_;
  if (st == IoStatus::kOk) {
    block::CopyMechanism m = leg->req.mechanism;
    // kNone in the counters: moved natively by a device that did not say how.
    if (m == block::CopyMechanism::kEmulated) m = block::CopyMechanism::kNone;
    offloaded_bytes_.fetch_add(leg->bytes, std::memory_order_relaxed);
    const uint64_t cloned =
        m == block::CopyMechanism::kReflink ? 0 : std::min(leg->req.reflinked_bytes, leg->bytes);
    Count(block::CopyMechanism::kReflink, cloned);
    const uint64_t second = std::min(leg->req.secondary_bytes, leg->bytes - cloned);
    Count(leg->req.secondary, second);
    Count(m, leg->bytes - cloned - second);
    // A lesser mechanism than the device's best, and why (block_device.h).
    if (!leg->req.refusal.empty()) AddNote(Name(*leg->dev) + ": " + leg->req.refusal);
  } else if (st == IoStatus::kNotSupported) {
    AddNote(Name(*leg->dev) + ": native copy refused" +
            (leg->req.refusal.empty() ? std::string(" for some ranges")
                                      : " (" + leg->req.refusal + ")") +
            "; emulated");
    EmulateLeg(*leg);
  } else {
    const uint32_t bs = leg->dev->geometry().block_size;
    for (size_t i = 0; i < leg->segments.size(); ++i) {
      const block::CopySegment& s = leg->segments[i];
      Fail({.on_source = false,
            .dst_index = leg->dst,
            .dev = leg->dev,
            .lba = Lba(s.dst_offset_bytes / bs),
            .stream_offset_bytes = leg->stream_offsets[i],
            .len_bytes = s.len_bytes,
            .status = st});
    }
  }
  Pump();
}

// "Completing with kNotSupported means emulate this leg" (block_device.h): the destination
// may be partly written, so every segment is rewritten, for this destination only. Legs
// hold only pieces that commute with the rest, so the parallel lane takes them.
void Job::EmulateLeg(const Leg& leg) {
  for (size_t i = 0; i < leg.segments.size(); ++i) {
    const block::CopySegment& s = leg.segments[i];
    EmuRange r;
    r.piece.stream_offset = leg.stream_offsets[i];
    r.piece.len = s.len_bytes;
    r.piece.src = {leg.src, s.src_offset_bytes};
    r.piece.dst[leg.dst] = {leg.dev, s.dst_offset_bytes};
    r.piece.translated = leg.translated;
    r.mask = 1u << leg.dst;
    parallel_.ranges.push_back(r);
  }
}

}  // namespace ferry::copy
