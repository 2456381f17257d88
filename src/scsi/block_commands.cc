// SBC-3 data commands: READ, WRITE, WRITE AND VERIFY, VERIFY (6/10/12/16 where they exist),
// WRITE ATOMIC(16), SYNCHRONIZE CACHE (10/16), PRE-FETCH (10/16) and READ DEFECT DATA
// (10/12), over the logical unit's block device.
#include <cstring>
#include <memory>
#include <vector>

#include "base/endian.h"
#include "block/splitter.h"
#include "scsi/logical_unit.h"
#include "scsi/opcodes.h"

namespace ferry::scsi {
namespace {

struct Rw {
  uint64_t lba = 0;
  uint32_t blocks = 0;
  bool write = false;
  bool verify = false;  // VERIFY or WRITE AND VERIFY
  uint8_t bytchk = 0;   // 0: check the medium only, 1: compare with data-out
  bool fua = false;
  uint16_t len_byte = 0;  // where the transfer length sits (for field pointers)
};

// Decodes the CDB; false after failing the task with the right sense.
bool Decode(Task& t, Rw* rw) {
  const uint8_t* c = t.cdb.data();
  const uint8_t op = c[0];
  switch (op) {
    case kRead6:
    case kWrite6:  // SBC-3 5.10 / 5.32: 21-bit LBA, length 0 means 256
      rw->lba = LoadBe24(c + 1) & 0x1fffff;
      rw->blocks = c[4] == 0 ? 256 : c[4];
      rw->len_byte = 4;
      break;
    case kRead10:
    case kWrite10:
    case kWriteAndVerify10:
    case kVerify10:
      rw->lba = LoadBe32(c + 2);
      rw->blocks = LoadBe16(c + 7);
      rw->len_byte = 7;
      break;
    case kRead12:
    case kWrite12:
    case kWriteAndVerify12:
    case kVerify12:
      rw->lba = LoadBe32(c + 2);
      rw->blocks = LoadBe32(c + 6);
      rw->len_byte = 6;
      break;
    case kWriteAtomic16:  // SBC-4 5.48: no ATOMIC BOUNDARY (VPD B0h reports none)
      rw->lba = LoadBe64(c + 2);
      rw->blocks = LoadBe16(c + 12);
      rw->len_byte = 12;
      if (LoadBe16(c + 10) != 0) {
        t.Fail(InvalidFieldInCdb(10));
        return false;
      }
      break;
    default:  // the 16-byte forms
      rw->lba = LoadBe64(c + 2);
      rw->blocks = LoadBe32(c + 10);
      rw->len_byte = 10;
      break;
  }
  rw->write = op == kWrite6 || op == kWrite10 || op == kWrite12 || op == kWrite16 ||
              op == kWriteAtomic16 || op == kWriteAndVerify10 || op == kWriteAndVerify12 ||
              op == kWriteAndVerify16;
  rw->verify = op == kVerify10 || op == kVerify12 || op == kVerify16 || op == kWriteAndVerify10 ||
               op == kWriteAndVerify12 || op == kWriteAndVerify16;
  if (op != kRead6 && op != kWrite6) {
    // RDPROTECT / WRPROTECT / VRPROTECT: no protection information here (SBC-3 4.22).
    if (c[1] & 0xe0) {
      t.Fail(InvalidFieldInCdb(1, 7));
      return false;
    }
    rw->fua = (c[1] & 0x08) && !rw->verify;
    if (rw->verify) {
      rw->bytchk = (c[1] >> 1) & 0x3;
      if (rw->bytchk > 1) {
        t.Fail(InvalidFieldInCdb(1, 2));
        return false;
      }
    }
  }
  return true;
}

// One command's I/O in flight: a read or write, then for verifies a read and a compare.
struct RwOp {
  LogicalUnit* lu;
  Task* task;
  TaskDone done;
  Rw rw;
  uint64_t bytes = 0;
  std::vector<uint8_t> bounce;  // compare data, or reads that do not fit data_in
  iovec iov{};
  block::IoRequest req;
  bool read_back = false;             // the verify read of WRITE AND VERIFY / VERIFY
  bool medium_verify = false;         // VERIFY with BYTCHK 0: read and discard
  RangeLock::Holder* lock = nullptr;  // writes: their blocks, until the last request ends

  void Submit(block::IoOp op, uint8_t* buf) {
    const uint32_t bs = lu->device().geometry().block_size;
    iov = {buf, bytes};
    req = block::IoRequest{.op = op,
                           .flags = rw.fua ? block::kIoFua : uint8_t{0},
                           .lba = Lba(rw.lba),
                           .blocks = BlockCount(bytes / bs),
                           .iov = &iov,
                           .iovcnt = 1};
    req.done = [this](IoStatus st) { OnDone(st); };
    if (op == block::IoOp::kWrite) lu->NoteWrite(rw.lba, rw.blocks);
    block::SubmitSplit(lu->device(), req);
  }

  void OnDone(IoStatus st) {
    // Again at completion: a token made while the write was in flight must not outlive it.
    if (rw.write && !read_back) lu->NoteWrite(rw.lba, rw.blocks);
    if (st != IoStatus::kOk) {
      task->status = StatusForIoStatus(st);
      if (task->status == Status::kCheckCondition) {
        task->Fail(SenseForIoStatus(st, rw.write && !read_back));
      }
      return Finish();
    }
    if (rw.verify && rw.bytchk == 1 && !read_back) {
      read_back = true;  // now read what is on the medium and compare
      bounce.resize(bytes);
      rw.fua = false;
      return Submit(block::IoOp::kRead, bounce.data());
    }
    if (read_back) {
      auto m = std::mismatch(bounce.begin(), bounce.end(), task->data_out.begin());
      if (m.first != bounce.end()) {
        Sense s = MakeSense(SenseKey::kMiscompare, Asc::kMiscompareDuringVerify);
        s.information = static_cast<uint64_t>(m.first - bounce.begin());
        task->Fail(s);
      }
    } else if (!rw.write && !rw.verify && !medium_verify) {
      if (!bounce.empty()) {
        task->Reply(bounce);  // truncated to what the initiator's buffer holds
      } else {
        task->data_in_bytes = static_cast<uint32_t>(bytes);
        task->data_in_wanted = static_cast<uint32_t>(bytes);
      }
    }
    Finish();
  }

  void Finish() {
    if (lock != nullptr) lu->range_lock().Release(lock);
    TaskDone d = std::move(done);
    delete this;
    d();
  }
};

}  // namespace

bool LogicalUnit::CheckRange(Task& t, uint64_t lba, uint64_t blocks) const {
  const uint64_t cap = dev_->geometry().num_blocks.value();
  if (lba <= cap && blocks <= cap - lba) return true;
  Sense s = MakeSense(SenseKey::kIllegalRequest, Asc::kLbaOutOfRange);
  s.information = lba;
  t.Fail(s);
  return false;
}

bool LogicalUnit::CheckWritable(Task& t) const {
  if (!write_protected() && !t.write_protected) return true;
  t.Fail(MakeSense(SenseKey::kDataProtect, Asc::kWriteProtected));
  return false;
}

uint32_t LogicalUnit::MaxCompareAndWriteBlocks() const {
  // Twice the blocks travel as data-out: keep that within the maximum transfer length.
  return static_cast<uint32_t>(
      std::min<uint64_t>(255, kMaxTransferBytes / 2 / dev_->geometry().block_size));
}

uint64_t LogicalUnit::MaxWriteSameBlocks() const {
  return kMaxWriteSameBytes / dev_->geometry().block_size;
}

uint32_t LogicalUnit::MaxAtomicBlocks() const {
  // One device request, so that no crash can tear it (SBC-4 4.29).
  return static_cast<uint32_t>(std::min(dev_->limits().max_io_bytes, kMaxTransferBytes) /
                               dev_->geometry().block_size);
}

bool LogicalUnit::ReadWrite(Task& t, TaskDone& done) {
  Rw rw;
  if (!Decode(t, &rw)) return false;
  const block::Geometry& g = dev_->geometry();
  if (rw.lba > g.num_blocks.value() || rw.blocks > g.num_blocks.value() - rw.lba) {
    Sense s = MakeSense(SenseKey::kIllegalRequest, Asc::kLbaOutOfRange);
    s.information = rw.lba;
    t.Fail(s);
    return false;
  }
  // SBC-3 6.5.3: above the MAXIMUM TRANSFER LENGTH of VPD B0h the command is refused (and
  // the transport never holds more than that for one command).
  if (static_cast<uint64_t>(rw.blocks) * g.block_size > kMaxTransferBytes) {
    t.Fail(InvalidFieldInCdb(rw.len_byte));
    return false;
  }
  if (t.cdb[0] == kWriteAtomic16 && rw.blocks > MaxAtomicBlocks()) {
    t.Fail(InvalidFieldInCdb(rw.len_byte));
    return false;
  }
  if (rw.write && !CheckWritable(t)) return false;
  if (rw.blocks == 0) return false;  // GOOD, nothing to transfer (SBC-3 5.x)
  auto* op = new RwOp{this, &t, std::move(done), rw};
  op->bytes = static_cast<uint64_t>(rw.blocks) * g.block_size;
  const bool needs_data_out = rw.write || (rw.verify && rw.bytchk == 1);
  if (needs_data_out && t.data_out.size() < op->bytes) {
    done = std::move(op->done);
    delete op;
    t.Fail(InvalidFieldInCdb(rw.len_byte));
    return false;
  }
  if (rw.write) {
    op->lock = range_lock_.Acquire(rw.lba, rw.blocks, [op, &t] {
      op->Submit(block::IoOp::kWrite, const_cast<uint8_t*>(t.data_out.data()));
    });
  } else if (rw.verify) {
    op->read_back = rw.bytchk == 1;
    op->medium_verify = !op->read_back;
    op->bounce.resize(op->bytes);
    op->Submit(block::IoOp::kRead, op->bounce.data());
  } else if (t.data_in.size() >= op->bytes) {
    op->Submit(block::IoOp::kRead, t.data_in.data());
  } else {
    op->bounce.resize(op->bytes);
    op->Submit(block::IoOp::kRead, op->bounce.data());
  }
  return true;
}

// SBC-3 5.22 / 5.23 SYNCHRONIZE CACHE(10/16).
bool LogicalUnit::SyncCache(Task& t, TaskDone& done) {
  const uint8_t* c = t.cdb.data();
  const bool ten = c[0] == kSynchronizeCache10;
  const uint64_t lba = ten ? LoadBe32(c + 2) : LoadBe64(c + 2);
  const uint64_t n = ten ? LoadBe16(c + 7) : LoadBe32(c + 10);
  const uint64_t cap = dev_->geometry().num_blocks.value();
  if (lba > cap || n > cap - lba) {
    t.Fail(MakeSense(SenseKey::kIllegalRequest, Asc::kLbaOutOfRange));
    return false;
  }
  struct Flush {
    Task* task;
    TaskDone done;
    block::IoRequest req;
  };
  auto* f = new Flush{&t, std::move(done), {}};
  f->req.op = block::IoOp::kFlush;
  f->req.done = [f](IoStatus st) {
    if (st != IoStatus::kOk) {
      f->task->status = StatusForIoStatus(st);
      if (f->task->status == Status::kCheckCondition) {
        f->task->Fail(SenseForIoStatus(st, true));
      }
    }
    TaskDone d = std::move(f->done);
    delete f;
    d();
  };
  dev_->Submit(f->req);
  return true;
}

}  // namespace ferry::scsi

namespace ferry::scsi {

// SBC-3 5.9 / 5.10 PRE-FETCH(10/16): there is no cache to fill, so GOOD (not CONDITION MET:
// the blocks are not guaranteed to be cached), once the range is checked.
void LogicalUnit::PreFetch(Task& t) {
  const uint8_t* c = t.cdb.data();
  const bool ten = c[0] == kPreFetch10;
  const uint64_t lba = ten ? LoadBe32(c + 2) : LoadBe64(c + 2);
  const uint64_t blocks = ten ? LoadBe16(c + 7) : LoadBe32(c + 10);
  CheckRange(t, lba, blocks);
}

// SBC-3 5.18 / 5.19 READ DEFECT DATA(10/12): a logical unit in memory or in a file has no
// grown or primary defects; the list is empty, in the format asked for.
void LogicalUnit::ReadDefectData(Task& t) {
  const uint8_t* c = t.cdb.data();
  const bool ten = c[0] == kReadDefectData10;
  const uint8_t req = ten ? c[2] : c[1];
  const uint8_t format = req & 0x07;
  // Short block, long block, bytes from index, physical sector, and vendor-specific (6).
  if (format == 1 || format == 2 || format == 7) return t.Fail(InvalidFieldInCdb(ten ? 2 : 1, 2));
  const uint8_t lists = static_cast<uint8_t>((req & 0x18) | format);  // PLISTV, GLISTV
  std::vector<uint8_t> d(ten ? 4 : 8, 0);
  d[1] = lists;
  t.Reply(d);
}

}  // namespace ferry::scsi
