#include "crash_workload.h"

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <poll.h>

#include <map>
#include <memory>
#include <random>
#include <vector>

namespace ferry::crash_test {
namespace {

constexpr uint32_t kMaxWriteBlocks = 8;
constexpr uint32_t kCopyBlocks = 8;
constexpr uint64_t kSyncEvery = 16;  // writes
constexpr uint64_t kCopyEvery = 32;  // commands

struct Runner;

struct Op {
  enum Kind { kWrite, kSync, kCopy } kind = kWrite;
  Runner* r = nullptr;
  uint64_t lba = 0, src = 0;
  uint32_t n = 0;
  bool fua = false;
  uint64_t mark = 0;  // kSync: Model::SyncIssued()
  std::vector<uint8_t> buf;
  iscsi_data param{};
};

struct Runner {
  iscsi_context* c;
  const Options& o;
  uint32_t bs;
  const tpc_test::Designator& naa;
  Model* m;
  Stats* s;
  std::mt19937_64 rng{std::random_device{}()};
  std::map<Op*, std::unique_ptr<Op>> live;
  std::vector<uint8_t> reading;  // source blocks of the EXTENDED COPY in flight
  bool sync_live = false;
  uint64_t sent = 0, writes_since_sync = 0;

  bool Free(uint64_t lba, uint32_t n) const {
    for (uint32_t i = 0; i < n; ++i) {
      if (m->busy(lba + i) || reading[lba + i]) return false;
    }
    return true;
  }
  uint64_t Pick(uint32_t n) {
    return std::uniform_int_distribution<uint64_t>(0, m->blocks() - n)(rng);
  }
  bool Send(std::unique_ptr<Op> op);
  bool SendWrite();
  bool SendSync();
  bool SendCopy();
  void Complete(Op* op, bool good);
};

extern "C" void OnDone(iscsi_context*, int status, void* data, void* priv) {
  auto* op = static_cast<Op*>(priv);
  if (data != nullptr) scsi_free_scsi_task(static_cast<scsi_task*>(data));
  op->r->Complete(op, status == SCSI_STATUS_GOOD);
}

bool Runner::Send(std::unique_ptr<Op> op) {
  Op* p = op.get();
  p->r = this;
  scsi_task* t = nullptr;
  switch (p->kind) {
    case Op::kWrite:
      t = iscsi_write16_task(c, o.lun, p->lba, p->buf.data(), static_cast<uint32_t>(p->buf.size()),
                             static_cast<int>(bs), 0, 0, p->fua ? 1 : 0, 0, 0, OnDone, p);
      break;
    case Op::kSync: t = iscsi_synchronizecache16_task(c, o.lun, 0, 0, 0, 0, OnDone, p); break;
    case Op::kCopy:
      p->param = {.size = p->buf.size(), .data = p->buf.data()};
      t = iscsi_extended_copy_task(c, o.lun, &p->param, OnDone, p);
      break;
  }
  if (t == nullptr) return false;  // the context is broken: the caller ends the run
  live.emplace(p, std::move(op));
  ++sent;
  return true;
}

bool Runner::SendWrite() {
  const uint32_t n = std::uniform_int_distribution<uint32_t>(1, kMaxWriteBlocks)(rng);
  uint64_t lba = Pick(n);
  for (int tries = 0; !Free(lba, n); ++tries) {
    if (tries == 8) return true;  // crowded: another time
    lba = Pick(n);
  }
  auto op = std::make_unique<Op>();
  op->lba = lba;
  op->n = n;
  op->fua = rng() % 4 == 0;
  op->buf.resize(size_t{n} * bs);
  for (uint32_t i = 0; i < n; ++i) {
    const Content content{.origin_lba = lba + i, .gen = m->NewGen()};
    FillBlock(content, std::span(op->buf).subspan(size_t{i} * bs, bs));
    m->Issue(lba + i, content);
  }
  if (!Send(std::move(op))) {
    for (uint32_t i = 0; i < n; ++i) m->Fail(lba + i);
    return false;
  }
  ++writes_since_sync;
  return true;
}

bool Runner::SendSync() {
  auto op = std::make_unique<Op>();
  op->kind = Op::kSync;
  op->mark = m->SyncIssued();
  sync_live = true;
  writes_since_sync = 0;
  if (Send(std::move(op))) return true;
  sync_live = false;
  return false;
}

// 8 blocks whose content is known onto 8 free blocks that do not overlap them.
bool Runner::SendCopy() {
  const uint64_t src = Pick(kCopyBlocks), dst = Pick(kCopyBlocks);
  if (src + kCopyBlocks > dst && dst + kCopyBlocks > src) return true;
  if (!Free(src, kCopyBlocks) || !Free(dst, kCopyBlocks)) return true;
  for (uint32_t i = 0; i < kCopyBlocks; ++i) {
    if (!m->Known(src + i)) return true;
  }
  auto op = std::make_unique<Op>();
  op->kind = Op::kCopy;
  op->lba = dst;
  op->src = src;
  op->n = kCopyBlocks;
  tpc_test::CopyList l{.list_id = 0, .usage = tpc_test::kUsageDisable};
  l.cscds.push_back(tpc_test::CscdE4(naa, bs));
  l.segments.push_back(tpc_test::SegmentB2B(0, 0, kCopyBlocks, src, dst));
  op->buf = tpc_test::EncodeLid1(l);
  for (uint32_t i = 0; i < kCopyBlocks; ++i) {
    m->Issue(dst + i, *m->Known(src + i));
    reading[src + i] = 1;
  }
  if (Send(std::move(op))) return true;
  for (uint32_t i = 0; i < kCopyBlocks; ++i) {
    m->Fail(dst + i);
    reading[src + i] = 0;
  }
  return false;
}

void Runner::Complete(Op* op, bool good) {
  auto it = live.find(op);
  if (it == live.end()) return;
  std::unique_ptr<Op> owned = std::move(it->second);
  live.erase(it);
  if (!good) ++s->failed;
  switch (op->kind) {
    case Op::kSync:
      sync_live = false;
      if (good) m->SyncDone(op->mark);
      s->syncs += good;
      return;
    case Op::kCopy:
      for (uint32_t i = 0; i < op->n; ++i) reading[op->src + i] = 0;
      s->copies += good;
      break;
    case Op::kWrite:
      s->writes += good;
      s->fua += good && op->fua;
      break;
  }
  for (uint32_t i = 0; i < op->n; ++i) {
    if (good) {
      m->Ack(op->lba + i, op->fua);
    } else {
      m->Fail(op->lba + i);
    }
  }
}

}  // namespace

bool RunWorkload(iscsi_context* c, const Options& o, uint32_t bs, const tpc_test::Designator& naa,
                 Model* m, Stats* s) {
  Runner r{.c = c, .o = o, .bs = bs, .naa = naa, .m = m, .s = s};
  r.reading.assign(m->blocks(), 0);
  const auto end = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.seconds * 1000));
  bool gone = false;
  while (!gone && (o.seconds <= 0 || Clock::now() < end)) {
    while (!gone && r.live.size() < o.queue_depth) {
      const size_t before = r.live.size();
      if (!r.sync_live && r.writes_since_sync >= kSyncEvery) {
        gone = !r.SendSync();
      } else if (o.xcopy && r.sent % kCopyEvery == kCopyEvery - 1) {
        ++r.sent;  // one attempt per period, whether or not a range was free
        gone = !r.SendCopy();
      } else {
        gone = !r.SendWrite();
      }
      if (r.live.size() == before) break;  // nothing free to send now: serve first
    }
    pollfd p{
        .fd = iscsi_get_fd(c), .events = static_cast<short>(iscsi_which_events(c)), .revents = 0};
    if (poll(&p, 1, r.live.empty() ? 0 : 100) < 0) break;
    if (iscsi_service(c, p.revents) < 0) gone = true;
  }
  // Commands still held are cancelled by the destruction (their callbacks run: failed); a
  // context that already dropped them leaves them here.
  iscsi_destroy_context(c);
  while (!r.live.empty()) r.Complete(r.live.begin()->first, false);
  return gone;
}

}  // namespace ferry::crash_test
