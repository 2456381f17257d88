#include "crash_workload.h"

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <poll.h>

#include <cstdio>
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
constexpr uint32_t kRrtiBytes = 1024;

struct Runner;

// One command in flight. An ODX copy is three in a row (POPULATE TOKEN, RRTI, WRITE USING
// TOKEN) carried by one Op: its source stays pinned and its destination in flight throughout.
struct Op {
  enum Kind { kWrite, kSync, kCopy, kPopulate, kRrti, kWut } kind = kWrite;
  Runner* r = nullptr;
  uint64_t id = 0;
  scsi_task* task = nullptr;  // libiscsi's, while in flight
  uint64_t lba = 0, src = 0;  // the model's blocks
  uint32_t n = 0, list_id = 0;
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
  std::vector<uint8_t> reading;  // source blocks of the copies in flight
  bool sync_live = false, tmf_live = false;
  // A LOGICAL UNIT RESET is in flight: nothing new is sent, since commands that reach the
  // target after it would run while their cancellation here lets their blocks be reused.
  bool reset_live = false;
  bool abort_due = false;
  uint64_t sent = 0, writes_since_sync = 0, next_id = 0;

  // The bytes of a block name its LU and LBA, so that a write landing on another client's
  // blocks (or another LU) never passes for one of theirs.
  uint64_t Origin(uint64_t lba) const {
    return (static_cast<uint64_t>(o.lun) << 48) | (o.first_lba + lba);
  }
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
  bool SendNext(Op* op);
  bool SendAbort();
  bool SendReset();
  void Complete(Op* op, bool good);
  void EndCopy(Op* op, bool good);
};

extern "C" void OnDone(iscsi_context*, int status, void* data, void* priv) {
  auto* op = static_cast<Op*>(priv);
  auto* t = static_cast<scsi_task*>(data);
  // RRTI's answer carries the token the next step sends.
  if (op->kind == Op::kRrti && status == SCSI_STATUS_GOOD && t != nullptr) {
    op->buf.assign(t->datain.data, t->datain.data + t->datain.size);
  }
  if (t != nullptr) scsi_free_scsi_task(t);
  op->task = nullptr;
  op->r->Complete(op, status == SCSI_STATUS_GOOD);
}

// A third-party copy CDB (83h) with its parameter list, or RRTI (84h).
scsi_task* CopyTask(iscsi_context* c, int lun, Op* p) {
  tpc_test::Cdb cdb{};
  int dir = SCSI_XFER_WRITE;
  int len = static_cast<int>(p->buf.size());
  if (p->kind == Op::kPopulate) cdb = tpc_test::PopulateToken(p->list_id, len);
  if (p->kind == Op::kWut) cdb = tpc_test::WriteUsingToken(p->list_id, len);
  if (p->kind == Op::kRrti) {
    cdb = tpc_test::ThirdPartyCopyIn(tpc_test::kSaRrti, p->list_id, kRrtiBytes);
    dir = SCSI_XFER_READ;
    len = kRrtiBytes;
  }
  scsi_task* t = scsi_create_task(16, cdb.data(), dir, len);
  if (t == nullptr) return nullptr;
  p->param = {.size = p->buf.size(), .data = p->buf.data()};
  if (iscsi_scsi_command_async(c, lun, t, OnDone, dir == SCSI_XFER_WRITE ? &p->param : nullptr,
                               p) != 0) {
    scsi_free_scsi_task(t);
    return nullptr;
  }
  return t;
}

bool Runner::Send(std::unique_ptr<Op> op) {
  Op* p = op.get();
  p->r = this;
  p->id = ++next_id;
  scsi_task* t = nullptr;
  switch (p->kind) {
    case Op::kWrite:
      t = iscsi_write16_task(c, o.lun, o.first_lba + p->lba, p->buf.data(),
                             static_cast<uint32_t>(p->buf.size()), static_cast<int>(bs), 0, 0,
                             p->fua ? 1 : 0, 0, 0, OnDone, p);
      break;
    case Op::kSync: t = iscsi_synchronizecache16_task(c, o.lun, 0, 0, 0, 0, OnDone, p); break;
    case Op::kCopy:
      p->param = {.size = p->buf.size(), .data = p->buf.data()};
      t = iscsi_extended_copy_task(c, o.lun, &p->param, OnDone, p);
      break;
    case Op::kPopulate:
    case Op::kRrti:
    case Op::kWut: t = CopyTask(c, o.lun, p); break;
  }
  if (t == nullptr) return false;  // the context is broken: the caller ends the run
  p->task = t;
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
    const Content content{.origin_lba = Origin(lba + i), .gen = m->NewGen()};
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

// 8 blocks whose content is known onto 8 free blocks that do not overlap them: an EXTENDED
// COPY, or with Options::odx every other time a token copy.
bool Runner::SendCopy() {
  const uint64_t src = Pick(kCopyBlocks), dst = Pick(kCopyBlocks);
  if (src + kCopyBlocks > dst && dst + kCopyBlocks > src) return true;
  if (!Free(src, kCopyBlocks) || !Free(dst, kCopyBlocks)) return true;
  for (uint32_t i = 0; i < kCopyBlocks; ++i) {
    if (!m->Known(src + i)) return true;
  }
  auto op = std::make_unique<Op>();
  op->kind = o.odx && (o.xcopy ? rng() % 2 == 0 : true) ? Op::kPopulate : Op::kCopy;
  op->lba = dst;
  op->src = src;
  op->n = kCopyBlocks;
  if (op->kind == Op::kCopy) {
    tpc_test::CopyList l{.list_id = 0, .usage = tpc_test::kUsageDisable};
    l.cscds.push_back(tpc_test::CscdE4(naa, bs));
    l.segments.push_back(
        tpc_test::SegmentB2B(0, 0, kCopyBlocks, o.first_lba + src, o.first_lba + dst));
    op->buf = tpc_test::EncodeLid1(l);
  } else {
    op->list_id = static_cast<uint32_t>(rng());
    const tpc_test::Range r{.lba = o.first_lba + src, .blocks = kCopyBlocks};
    op->buf = tpc_test::PopulateTokenParams({&r, 1});
  }
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

// The next step of a token copy whose previous step completed GOOD. False when it could
// not be sent (the copy then ends).
bool Runner::SendNext(Op* prev) {
  auto op = std::make_unique<Op>(*prev);
  op->task = nullptr;
  if (prev->kind == Op::kPopulate) {
    op->kind = Op::kRrti;
    op->buf.clear();
  } else {
    const auto st = tpc_test::ParseCopyStatus4(prev->buf);
    if (!st || !st->token) return false;
    op->kind = Op::kWut;
    const tpc_test::Range r{.lba = o.first_lba + prev->lba, .blocks = prev->n};
    op->buf = tpc_test::WriteUsingTokenParams(*st->token, {&r, 1});
  }
  return Send(std::move(op));
}

// ABORT TASK of a command in flight. Once the target answers "function complete" the task
// is gone there and its outcome unknown: libiscsi is told to drop it (failed, in the model).
bool Runner::SendAbort() {
  if (live.empty() || tmf_live || iscsi_out_queue_length(c) != 0) return true;
  abort_due = false;
  auto it = live.begin();
  std::advance(it, static_cast<long>(rng() % live.size()));
  if (it->first->task == nullptr) return true;
  struct Ctx {
    Runner* r;
    uint64_t id;
  };
  auto* ctx = new Ctx{this, it->first->id};
  auto done = [](iscsi_context* ic, int status, void* data, void* priv) {
    std::unique_ptr<Ctx> x(static_cast<Ctx*>(priv));
    x->r->tmf_live = false;
    const uint32_t response = data != nullptr ? *static_cast<uint32_t*>(data) : 0xff;
    if (status != SCSI_STATUS_GOOD || response != 0) return;  // it had completed already
    ++x->r->s->aborts;
    for (auto& [p, op] : x->r->live) {
      (void)op;
      if (p->id == x->id && p->task != nullptr) {
        iscsi_scsi_cancel_task(ic, p->task);  // OnDone: failed
        return;
      }
    }
  };
  if (iscsi_task_mgmt_abort_task_async(c, it->first->task, done, ctx) != 0) {
    delete ctx;
    return false;
  }
  tmf_live = true;
  return true;
}

// LOGICAL UNIT RESET: the target drops this nexus's commands on the LU without an answer
// (others get TASK ABORTED), so ours are cancelled here once it completes. Sent only once
// libiscsi has put every command on the wire: one still queued would reach the target after
// the reset and run, and libiscsi 1.19 leaves a hole in the CmdSNs when a queued command is
// cancelled.
bool Runner::SendReset() {
  if (tmf_live || iscsi_out_queue_length(c) != 0) return true;
  auto done = [](iscsi_context* ic, int status, void* data, void* priv) {
    auto* r = static_cast<Runner*>(priv);
    r->tmf_live = false;
    r->reset_live = false;
    const uint32_t response = data != nullptr ? *static_cast<uint32_t*>(data) : 0xff;
    if (status != SCSI_STATUS_GOOD || response != 0) return;
    ++r->s->resets;
    std::vector<scsi_task*> tasks;
    for (auto& [p, op] : r->live) {
      (void)op;
      if (p->task != nullptr) tasks.push_back(p->task);
    }
    for (scsi_task* t : tasks) iscsi_scsi_cancel_task(ic, t);
  };
  if (iscsi_task_mgmt_lun_reset_async(c, static_cast<uint32_t>(o.lun), done, this) != 0) {
    return false;
  }
  tmf_live = true;
  reset_live = true;
  return true;
}

void Runner::EndCopy(Op* op, bool good) {
  for (uint32_t i = 0; i < op->n; ++i) reading[op->src + i] = 0;
  if (op->kind == Op::kCopy) s->copies += good;
  if (op->kind == Op::kWut) s->token_copies += good;
  for (uint32_t i = 0; i < op->n; ++i) {
    if (good) {
      m->Ack(op->lba + i, false);
    } else if (op->kind == Op::kPopulate || op->kind == Op::kRrti) {
      m->Cancel(op->lba + i);  // WRITE USING TOKEN was never sent
    } else {
      m->Fail(op->lba + i);
    }
  }
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
    case Op::kPopulate:
    case Op::kRrti:
      if (good && SendNext(op)) return;
      if (good) ++s->failed;  // RRTI without a token, or the context broke
      return EndCopy(op, false);
    case Op::kCopy:
    case Op::kWut: return EndCopy(op, good);
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

// Fills the queue: a SYNCHRONIZE CACHE when due, a copy every kCopyEvery commands, else a
// write; an ABORT TASK is due every Options::abort_every commands. False when the context
// broke.
bool Fill(Runner& r) {
  while (r.live.size() < r.o.queue_depth) {
    const size_t before = r.live.size();
    bool ok = true;
    if (!r.sync_live && r.writes_since_sync >= kSyncEvery) {
      ok = r.SendSync();
    } else if ((r.o.xcopy || r.o.odx) && r.sent % kCopyEvery == kCopyEvery - 1) {
      ++r.sent;  // one attempt per period, whether or not a range was free
      ok = r.SendCopy();
    } else {
      ok = r.SendWrite();
    }
    if (r.o.abort_every != 0 && r.sent % r.o.abort_every == 0 && r.live.size() > before) {
      r.abort_due = true;  // sent once libiscsi's queue is on the wire
    }
    if (!ok) return false;
    if (r.live.size() == before) break;  // nothing free to send now: serve first
  }
  return true;
}

constexpr auto kDrainLimit = std::chrono::seconds(30);

const char* KindName(Op::Kind k) {
  switch (k) {
    case Op::kWrite: return "WRITE(16)";
    case Op::kSync: return "SYNCHRONIZE CACHE(16)";
    case Op::kCopy: return "EXTENDED COPY";
    case Op::kPopulate: return "POPULATE TOKEN";
    case Op::kRrti: return "RECEIVE ROD TOKEN INFORMATION";
    case Op::kWut: return "WRITE USING TOKEN";
  }
  return "?";
}

// The drain did not end: what is still waiting for an answer.
void ReportStuck(const Runner& r) {
  std::fprintf(stderr, "crash_workload: LUN %d: %zu commands unanswered %lld s after the end%s\n",
               r.o.lun, r.live.size(), static_cast<long long>(kDrainLimit.count()),
               r.tmf_live ? ", a task management function too" : "");
  for (const auto& [p, op] : r.live) {
    (void)op;
    std::fprintf(stderr, "  %s, block %llu (+%llu), %u blocks, ITT 0x%x\n", KindName(p->kind),
                 static_cast<unsigned long long>(p->lba),
                 static_cast<unsigned long long>(r.o.first_lba), p->n,
                 p->task != nullptr ? p->task->itt : 0);
  }
}

}  // namespace

bool RunWorkload(iscsi_context* c, const Options& o, uint32_t bs, const tpc_test::Designator& naa,
                 Model* m, Stats* s) {
  Runner r{.c = c, .o = o, .bs = bs, .naa = naa, .m = m, .s = s};
  r.reading.assign(m->blocks(), 0);
  const auto start = Clock::now();
  const auto end = start + std::chrono::milliseconds(static_cast<int64_t>(o.seconds * 1000));
  auto next_reset = start + std::chrono::milliseconds(static_cast<int64_t>(o.reset_every * 1000));
  bool gone = false;
  for (;;) {
    const bool time_up = o.seconds > 0 && Clock::now() >= end;
    if (time_up && o.drain && Clock::now() >= end + kDrainLimit) {
      ReportStuck(r);
      gone = true;
      break;
    }
    if (gone || (time_up && (!o.drain || (r.live.empty() && !r.tmf_live)))) break;
    const bool reset_due = o.reset_every > 0 && Clock::now() >= next_reset;
    if (!time_up && reset_due && !r.tmf_live) {
      gone = !r.SendReset();
      if (r.reset_live) {
        next_reset += std::chrono::milliseconds(static_cast<int64_t>(o.reset_every * 1000));
      }
    } else if (!time_up && !reset_due && !r.reset_live) {
      gone = !Fill(r);
    }
    pollfd p{
        .fd = iscsi_get_fd(c), .events = static_cast<short>(iscsi_which_events(c)), .revents = 0};
    if (poll(&p, 1, r.live.empty() && !time_up ? 0 : 100) < 0) break;
    if (iscsi_service(c, p.revents) < 0) gone = true;
    if (!gone && r.abort_due && !time_up) gone = !r.SendAbort();
  }
  if (!gone && o.drain && iscsi_logout_sync(c) == 0) ++s->logouts;
  // Commands still held are cancelled by the destruction (their callbacks run: failed); a
  // context that already dropped them leaves them here.
  iscsi_destroy_context(c);
  while (!r.live.empty()) r.Complete(r.live.begin()->first, false);
  return gone;
}

}  // namespace ferry::crash_test
