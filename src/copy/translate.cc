#include "copy/translate.h"

#include <algorithm>

#include "io/reactor.h"

namespace ferry::copy {

// ---- PinSet ----

std::shared_ptr<PinSet> PinSet::Create(io::Reactor* reactor) {
  std::shared_ptr<PinSet> s(new PinSet(reactor));
  s->self_ = s;
  return s;
}

bool PinSet::Valid() const {
  if (release_requested()) return false;
  for (const Entry& e : entries_) {
    if (!e.pin.held() || e.vol->generation() != e.pin.generation()) return false;
  }
  return true;
}

void PinSet::ReleaseAll() {
  // Pins first: a suspend waiting for them completes; the volumes and tables stay alive
  // until the entries go.
  for (Entry& e : entries_) e.pin.Release();
  entries_.clear();
}

// From the suspending volume's reactor: marks the set and tells the job on its reactor.
void PinSet::RequestRelease(const std::weak_ptr<PinSet>& weak) {
  std::shared_ptr<PinSet> s = weak.lock();
  if (s == nullptr) return;
  if (s->release_requested_.exchange(true, std::memory_order_acq_rel)) return;
  s->reactor_->Post([s] {
    if (s->on_release) s->on_release();
  });
}

const volume::Table* PinSet::Pin(volume::Stack* vol) {
  for (const Entry& e : entries_) {
    if (e.vol.get() == vol) return e.table.get();
  }
  if (std::find(refused_.begin(), refused_.end(), vol) != refused_.end()) return nullptr;
  auto pin = vol->PinForCopy([weak = self_] { RequestRelease(weak); });
  if (!pin.ok()) {
    refused_.push_back(vol);
    return nullptr;
  }
  // The pin keeps the table from being swapped (Resume waits for pins), so this is the
  // table of the pin's generation.
  std::shared_ptr<volume::Table> table = vol->active_table();
  if (table == nullptr || vol->generation() != pin->generation()) {
    refused_.push_back(vol);
    return nullptr;
  }
  entries_.push_back({vol->shared_stack(), table, std::move(*pin)});
  return table.get();
}

namespace {

// A run of one list (source or a destination) of a piece after the walk.
struct Seg {
  uint64_t len = 0;
  Place place;
  bool walked = false;  // a leaf range reached through at least one pinned volume
};

// Appends `s`, merging it into the previous run when it continues it on the same device.
void Push(const Seg& s, std::vector<Seg>* out) {
  if (!out->empty()) {
    Seg& b = out->back();
    if (b.place.dev == s.place.dev && b.place.byte + b.len == s.place.byte &&
        b.walked == s.walked) {
      b.len += s.len;
      return;
    }
  }
  out->push_back(s);
}

// Maps `len` bytes at `at` down the stack under it; `top` is where those bytes lie on the
// descriptor's device. Only leaves are translated: a range that cannot reach a leaf below
// a walked volume (a non-transparent line, a volume that refused its pin) goes back to
// `top` as ordinary I/O, so no request the copy waits for can queue on a volume it pins.
void Walk(PinSet* pins, Place at, Place top, uint64_t len, int depth, block::IoOp op,
          std::vector<Seg>* out) {
  volume::Stack* vol = at.dev->stack();
  if (vol == nullptr) {
    Push({len, at, depth > 0}, out);
    return;
  }
  const volume::Table* table = depth < 64 ? pins->Pin(vol) : nullptr;
  std::vector<volume::MappedPiece> mapped;
  if (table == nullptr || !table->Map(op, at.byte, len, &mapped).ok()) {
    Push({len, top, false}, out);
    return;
  }
  for (const volume::MappedPiece& m : mapped) {
    const Place m_top{top.dev, top.byte + (m.volume_offset_bytes - at.byte)};
    const bool through = m.kind == volume::PieceKind::kDevice && m.dev != nullptr &&
                         table->target(m.target_index).copy_transparent();
    if (through) {
      Walk(pins, {m.dev, m.dev_offset_bytes}, m_top, m.len_bytes, depth + 1, op, out);
    } else {
      // Not transparent: ordinary I/O on the descriptor's device, which reaches this
      // target through the volumes' own Submit and gets its behaviour.
      Push({m.len_bytes, m_top, false}, out);
    }
  }
}

// Cuts piece `p` wherever one of the walked lists (`lists[0]` the source, `lists[1 + k]`
// destination k) moves on to its next run. Empty when a cut is not a multiple of `unit`.
// A part that reaches leaves on one side but stays on a volume on another is copied on the
// descriptor's devices (untranslated): a translated chunk must never wait for a request
// queued on a volume whose suspend waits for the copy's pins.
std::vector<Piece> Cut(const Piece& p, const std::vector<std::vector<Seg>>& lists, uint64_t unit) {
  std::vector<Piece> out;
  std::vector<size_t> idx(lists.size(), 0);
  std::vector<uint64_t> used(lists.size(), 0);
  for (uint64_t off = 0; off < p.len;) {
    uint64_t n = p.len - off;
    for (size_t l = 0; l < lists.size(); ++l) n = std::min(n, lists[l][idx[l]].len - used[l]);
    if (n % unit != 0) return {};
    Piece q;
    q.stream_offset = p.stream_offset + off;
    q.len = n;
    bool on_volume = false;
    for (size_t l = 0; l < lists.size(); ++l) {
      const Seg& s = lists[l][idx[l]];
      Place& place = l == 0 ? q.src : q.dst[l - 1];
      place = {s.place.dev, s.place.byte + used[l]};
      if (place.byte % place.dev->geometry().block_size != 0) return {};
      q.translated |= s.walked;
      on_volume |= !s.walked && s.place.dev->stack() != nullptr;
      used[l] += n;
      if (used[l] == s.len) {
        ++idx[l];
        used[l] = 0;
      }
    }
    out.push_back(q.translated && on_volume ? SubPiece(p, off, n) : q);
    off += n;
  }
  return out;
}

bool HasVolume(const Piece& p, size_t num_dsts) {
  if (p.src.dev->stack() != nullptr) return true;
  for (size_t k = 0; k < num_dsts; ++k) {
    if (p.dst[k].dev->stack() != nullptr) return true;
  }
  return false;
}

bool SourceIsDestination(const Piece& p, size_t num_dsts) {
  for (size_t k = 0; k < num_dsts; ++k) {
    if (p.dst[k].dev == p.src.dev) return true;
  }
  return false;
}

}  // namespace

Result<Translation> Translate(std::vector<Piece> pieces, size_t num_dsts, uint64_t unit,
                              io::Reactor* reactor) {
  Translation t;
  t.pins = PinSet::Create(reactor);
  for (const Piece& p : pieces) {
    if (!HasVolume(p, num_dsts) || SourceIsDestination(p, num_dsts)) {
      t.pieces.push_back(p);
      continue;
    }
    std::vector<std::vector<Seg>> lists(1 + num_dsts);
    Walk(t.pins.get(), p.src, p.src, p.len, 0, block::IoOp::kRead, &lists[0]);
    for (size_t k = 0; k < num_dsts; ++k) {
      Walk(t.pins.get(), p.dst[k], p.dst[k], p.len, 0, block::IoOp::kWrite, &lists[1 + k]);
    }
    std::vector<Piece> cut = Cut(p, lists, unit);
    if (cut.empty()) {
      t.pieces.push_back(p);  // not whole blocks of the copy below: copy it as named
      continue;
    }
    t.pieces.insert(t.pieces.end(), cut.begin(), cut.end());
  }
  return t;
}

}  // namespace ferry::copy
