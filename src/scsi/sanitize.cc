// SBC-3 5.30 SANITIZE: OVERWRITE (every block, OWCOUNT passes of the initialization
// pattern, INVERT between passes), BLOCK ERASE (every block deallocated, on LUs that can:
// ThinProvisioned()) and EXIT FAILURE MODE. CRYPTO ERASE is not offered: nothing here is
// encrypted at rest, so there is no key to change.
//
// A sanitize that fails leaves the LU in failure mode (SBC-3 4.11.4): commands but
// INQUIRY, REPORT LUNS, REQUEST SENSE and SANITIZE end in MEDIUM ERROR, SANITIZE COMMAND
// FAILED until a sanitize succeeds or, when the failed one had AUSE set, EXIT FAILURE MODE.
//
// While it runs the LU answers NOT READY, SANITIZE IN PROGRESS (with progress) to all but
// INQUIRY, REPORT LUNS and REQUEST SENSE, from every nexus. It runs to the end across task
// aborts, resets and nexus loss (SBC-3 4.11.2): an aborted SANITIZE completes its task at
// once and goes on alone. Overwrite goes at most at the LU's sanitize rate, so that one LU
// being wiped does not starve the others.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/endian.h"
#include "block/splitter.h"
#include "io/reactor.h"
#include "scsi/logical_unit.h"
#include "scsi/opcodes.h"

namespace ferry::scsi {
namespace {

constexpr uint8_t kSaOverwrite = 0x01;
constexpr uint8_t kSaBlockErase = 0x02;
constexpr uint8_t kSaExitFailureMode = 0x1f;
constexpr uint64_t kChunkBytes = 1u << 20;

struct SanitizeOp {
  LogicalUnit* lu;
  Task* task = nullptr;  // null once the task has completed (IMMED, or aborted)
  TaskDone done;
  bool erase = false;
  bool ause = false;
  uint32_t passes = 1;
  bool invert = false;
  uint8_t* buf = nullptr;  // one chunk of the pattern (whole blocks)
  uint64_t chunk_blocks = 0;
  uint64_t total_blocks = 0;
  uint32_t pass = 0;
  uint64_t next = 0;  // first block of the next request in this pass
  uint64_t rate = 0;  // bytes per second, 0: no cap
  io::Reactor* reactor = nullptr;
  io::Reactor::Clock::time_point start;
  uint64_t written_bytes = 0;
  block::IoRequest req;
  iovec iov{};

  ~SanitizeOp() { std::free(buf); }

  void Step() {
    if (next >= total_blocks) {
      if (++pass >= passes) return Finish(IoStatus::kOk);
      next = 0;
      if (invert) {
        for (uint64_t i = 0; i < chunk_blocks * lu->device().geometry().block_size; ++i) {
          buf[i] = static_cast<uint8_t>(~buf[i]);
        }
      }
    }
    const uint32_t bs = lu->device().geometry().block_size;
    const uint64_t n = erase ? total_blocks : std::min(chunk_blocks, total_blocks - next);
    req = block::IoRequest{.op = erase ? block::IoOp::kDiscard : block::IoOp::kWrite,
                           .lba = Lba(next),
                           .blocks = BlockCount(n)};
    if (!erase) {
      iov = {buf, n * bs};
      req.iov = &iov;
      req.iovcnt = 1;
    }
    req.done = [this, n, bs](IoStatus st) {
      lu->NoteWrite(next, n);
      if (st != IoStatus::kOk) return Finish(st);
      next += n;
      written_bytes += n * bs;
      lu->SetSanitizeProgress(Progress());
      Pace();
    };
    lu->NoteWrite(next, n);
    block::SubmitSplit(lu->device(), req);
  }

  // Waits until the bytes written so far fit the rate, then goes on.
  void Pace() {
    if (rate == 0) return Step();
    const auto due = start + std::chrono::microseconds(written_bytes * 1'000'000 / rate);
    const auto now = io::Reactor::Clock::now();
    if (due <= now) return Step();
    reactor->RunAfter(due - now, [this] { Step(); });
  }

  uint16_t Progress() const {
    const double all = static_cast<double>(passes) * static_cast<double>(total_blocks);
    const double done_blocks = static_cast<double>(pass) * total_blocks + next;
    return static_cast<uint16_t>(std::min(65535.0, 65536.0 * done_blocks / all));
  }

  // The task, if still there, gets the outcome; the LU is ready again (or, after a failed
  // sanitize, reports the failure until a new SANITIZE: SBC-3 4.11.3).
  void Finish(IoStatus st) {
    lu->EndSanitize(st == IoStatus::kOk, ause);
    if (task != nullptr) {
      task->cancel = nullptr;
      if (st != IoStatus::kOk) {
        task->status = StatusForIoStatus(st);
        if (task->status == Status::kCheckCondition) task->Fail(SenseForIoStatus(st, true));
      }
      TaskDone d = std::move(done);
      delete this;
      return d();
    }
    delete this;
  }

  // Completes the task (soon: never inside the transport's abort loop); the sanitize goes
  // on (IMMED, abort, nexus loss).
  void Detach() {
    if (task == nullptr) return;
    task->cancel = nullptr;
    task = nullptr;
    reactor->Post([d = std::move(done)]() mutable { d(); });
  }
};

// SBC-3 5.30.2.2 OVERWRITE parameter list: the pattern, repeated over a block.
bool DecodeOverwrite(Task& t, uint32_t list_len, uint32_t bs, SanitizeOp* op) {
  // A list shorter than a header and one pattern byte, or longer than a block's pattern.
  if (list_len < 5 || list_len > bs + 4 || t.data_out.size() < list_len) {
    t.Fail(InvalidFieldInCdb(7));
    return false;
  }
  const uint8_t* p = t.data_out.data();
  const uint32_t plen = LoadBe16(p + 2);
  if (plen == 0 || plen > bs || plen + 4 != list_len) {
    t.Fail(InvalidFieldInCdb(7));
    return false;
  }
  if ((p[0] & 0x60) != 0) {  // TEST
    t.Fail(InvalidFieldInParameterList(0, 6));
    return false;
  }
  op->passes = p[0] & 0x1f;
  if (op->passes == 0) {  // OWCOUNT 0 is reserved
    t.Fail(InvalidFieldInParameterList(0, 4));
    return false;
  }
  op->invert = p[0] & 0x80;
  return true;
}

}  // namespace

void LogicalUnit::SetSanitizeProgress(uint16_t p) { sanitize_progress_.store(p); }

void LogicalUnit::EndSanitize(bool ok, bool ause) {
  sanitize_failed_ause_.store(!ok && ause);
  sanitize_failed_.store(!ok);
  sanitizing_.store(false);
}

std::optional<Sense> LogicalUnit::SanitizeInProgress() const {
  if (sanitize_failed_.load()) {
    return MakeSense(SenseKey::kMediumError, Asc::kSanitizeCommandFailed);
  }
  if (!sanitizing_.load()) return std::nullopt;
  Sense s = MakeSense(SenseKey::kNotReady, Asc::kLogicalUnitNotReadySanitizeInProgress);
  s.progress = sanitize_progress_.load();
  return s;
}

bool LogicalUnit::SanitizeSupported(uint8_t sa) const {
  if (write_protected_) return false;
  return sa == kSaOverwrite || sa == kSaExitFailureMode ||
         (sa == kSaBlockErase && ThinProvisioned());
}

// SBC-3 5.30 SANITIZE. Returns true when it took `done`.
bool LogicalUnit::Sanitize(Task& t, TaskDone& done) {
  const uint8_t* c = t.cdb.data();
  const uint8_t sa = c[1] & 0x1f;
  const bool immed = c[1] & 0x80;
  const uint32_t list_len = LoadBe16(c + 7);
  if (c[1] & 0x40) return t.Fail(InvalidFieldInCdb(1, 6)), false;  // reserved
  for (uint16_t i = 2; i <= 6; ++i) {
    if (c[i] != 0) return t.Fail(InvalidFieldInCdb(i)), false;  // reserved bytes
  }
  if (!CheckWritable(t)) return false;
  if (!SanitizeSupported(sa)) return t.Fail(InvalidFieldInCdb(1, 4)), false;
  if (sa == kSaExitFailureMode) {  // SBC-3 5.30.2.5: no parameter list
    if (list_len != 0) return t.Fail(InvalidFieldInCdb(7)), false;
    if (sanitize_failed_.load() && !sanitize_failed_ause_.load()) {
      return t.Fail(InvalidFieldInCdb(1, 5)), false;  // the failed one had AUSE 0
    }
    sanitize_failed_.store(false);
    return false;  // GOOD
  }
  const block::Geometry& g = dev_->geometry();
  auto* op = new SanitizeOp{.lu = this, .task = &t};
  op->ause = c[1] & 0x20;
  op->erase = sa == kSaBlockErase;
  if (op->erase && list_len != 0) {  // BLOCK ERASE takes no parameter list
    delete op;
    return t.Fail(InvalidFieldInCdb(7)), false;
  }
  if (!op->erase && !DecodeOverwrite(t, list_len, g.block_size, op)) {
    delete op;
    return false;
  }
  if (sanitizing_.exchange(true)) {  // cannot happen through Execute, which refuses first
    delete op;
    return t.Fail(*SanitizeInProgress()), false;
  }
  op->total_blocks = g.num_blocks.value();
  if (!op->erase) {
    op->chunk_blocks =
        std::max<uint64_t>(1, std::min(kChunkBytes / g.block_size, op->total_blocks));
    const uint64_t bytes = op->chunk_blocks * g.block_size;
    op->buf = static_cast<uint8_t*>(std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096));
    if (op->buf == nullptr) {
      sanitizing_.store(false);
      delete op;
      return t.Fail(MakeSense(SenseKey::kAbortedCommand, Asc::kInsufficientResources)), false;
    }
    const uint8_t* pattern = t.data_out.data() + 4;
    const uint32_t plen = LoadBe16(t.data_out.data() + 2);
    for (uint64_t i = 0; i < bytes; ++i) op->buf[i] = pattern[i % g.block_size % plen];
  }
  op->rate = op->erase ? 0 : sanitize_rate_;
  op->reactor = io::Reactor::Current();
  op->start = io::Reactor::Clock::now();
  op->done = std::move(done);
  sanitize_progress_.store(0);
  t.cancel = [op] { op->Detach(); };
  // IMMED: GOOD now; the sanitize goes on (progress through REQUEST SENSE and TEST UNIT
  // READY).
  if (immed) op->Detach();
  op->reactor->Post([op] { op->Step(); });
  return true;
}

}  // namespace ferry::scsi
