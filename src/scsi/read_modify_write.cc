// SBC-3 read-modify-write commands, atomic against every other write to their blocks
// (range_lock.h): COMPARE AND WRITE (5.2) and ORWRITE(16) (5.11).
#include <algorithm>
#include <memory>
#include <vector>

#include "base/endian.h"
#include "block/splitter.h"
#include "scsi/logical_unit.h"
#include "scsi/opcodes.h"

namespace ferry::scsi {
namespace {

struct RmwOp {
  LogicalUnit* lu;
  Task* task;
  TaskDone done;
  bool compare = false;  // COMPARE AND WRITE; else ORWRITE
  uint64_t lba = 0;
  uint32_t blocks = 0;
  uint8_t flags = 0;  // FUA
  uint64_t bytes = 0;
  std::vector<uint8_t> medium;
  iovec iov{};
  block::IoRequest req;
  RangeLock::Holder* lock = nullptr;

  // The range lock orders this against the LU's other writes here. A device that compares
  // and writes itself (an RBD image: in the OSD, so atomic for other gateways too) gets the
  // whole command; otherwise read, compare and write under the lock.
  void Start() {
    lock = lu->range_lock().Acquire(lba, blocks, [this] {
      if (compare && bytes <= lu->device().limits().max_compare_write_bytes) {
        return SubmitCompareAndWrite();
      }
      Submit(block::IoOp::kRead);
    });
  }

  void SubmitCompareAndWrite() {
    iov = {const_cast<uint8_t*>(task->data_out.data()), 2 * bytes};
    req = block::IoRequest{.op = block::IoOp::kCompareAndWrite,
                           .flags = flags,
                           .lba = Lba(lba),
                           .blocks = BlockCount(blocks),
                           .iov = &iov,
                           .iovcnt = 1};
    req.done = [this](IoStatus st) {
      lu->NoteWrite(lba, blocks);
      if (st == IoStatus::kNotSupported) return Submit(block::IoOp::kRead);  // not compared
      if (st == IoStatus::kMiscompare) return Miscompare(req.miscompare_offset);
      if (st != IoStatus::kOk) return Failed(st, /*write=*/true);
      Finish();
    };
    lu->NoteWrite(lba, blocks);
    lu->device().Submit(req);
  }

  // The device failed the request: its status and sense end the command.
  void Failed(IoStatus st, bool write) {
    task->status = StatusForIoStatus(st);
    if (task->status == Status::kCheckCondition) task->Fail(SenseForIoStatus(st, write));
    Finish();
  }

  // SBC-3 5.2: MISCOMPARE, the INFORMATION field the offset of the first differing byte;
  // nothing is written.
  void Miscompare(uint64_t offset) {
    Sense s = MakeSense(SenseKey::kMiscompare, Asc::kMiscompareDuringVerify);
    s.information = offset;
    task->Fail(s);
    Finish();
  }

  void Submit(block::IoOp op) {
    const uint8_t* data = medium.data();
    if (op == block::IoOp::kWrite && compare) data = task->data_out.data() + bytes;
    iov = {const_cast<uint8_t*>(data), bytes};
    req = block::IoRequest{.op = op,
                           .flags = op == block::IoOp::kWrite ? flags : uint8_t{0},
                           .lba = Lba(lba),
                           .blocks = BlockCount(blocks),
                           .iov = &iov,
                           .iovcnt = 1};
    req.done = [this, op](IoStatus st) { OnDone(op, st); };
    if (op == block::IoOp::kWrite) lu->NoteWrite(lba, blocks);
    block::SubmitSplit(lu->device(), req);
  }

  void OnDone(block::IoOp op, IoStatus st) {
    const bool write = op == block::IoOp::kWrite;
    if (write) lu->NoteWrite(lba, blocks);
    if (st != IoStatus::kOk) return Failed(st, write);
    if (write) return Finish();
    const uint8_t* out = task->data_out.data();
    if (compare) {
      auto m = std::mismatch(medium.begin(), medium.end(), out);
      if (m.first != medium.end())
        return Miscompare(static_cast<uint64_t>(m.first - medium.begin()));
    } else {
      for (uint64_t i = 0; i < bytes; ++i) medium[i] |= out[i];
    }
    Submit(block::IoOp::kWrite);
  }

  void Finish() {
    lu->range_lock().Release(lock);
    TaskDone d = std::move(done);
    delete this;
    d();
  }
};

}  // namespace

// SBC-3 5.2 COMPARE AND WRITE and 5.11 ORWRITE(16). Returns true when it took `done`.
bool LogicalUnit::ReadModifyWrite(Task& t, TaskDone& done) {
  const uint8_t* c = t.cdb.data();
  const bool compare = c[0] == kCompareAndWrite;
  if (c[1] & 0xe0) {  // WRPROTECT / ORPROTECT: no protection information
    t.Fail(InvalidFieldInCdb(1, 7));
    return false;
  }
  const uint64_t lba = LoadBe64(c + 2);
  const uint32_t blocks = compare ? c[13] : LoadBe32(c + 10);
  const uint32_t bs = dev_->geometry().block_size;
  if (compare && blocks > MaxCompareAndWriteBlocks()) {
    t.Fail(InvalidFieldInCdb(13));
    return false;
  }
  if (!compare && uint64_t{blocks} * bs > kMaxTransferBytes) {
    t.Fail(InvalidFieldInCdb(10));
    return false;
  }
  if (!CheckRange(t, lba, blocks) || !CheckWritable(t)) return false;
  const uint64_t bytes = uint64_t{blocks} * bs;
  const uint64_t want = compare ? 2 * bytes : bytes;
  // The initiator must send exactly the verify and write data the CDB names (SBC-3 5.2:
  // the data-out buffer is 2 x NUMBER OF LOGICAL BLOCKS blocks).
  if ((t.data_out_expected != UINT32_MAX && t.data_out_expected != want) ||
      t.data_out.size() < want) {
    t.Fail(InvalidFieldInCdb(compare ? 13 : 10));
    return false;
  }
  if (blocks == 0) return false;  // GOOD: nothing compared, nothing written
  auto* op = new RmwOp{this,
                       &t,
                       std::move(done),
                       compare,
                       lba,
                       blocks,
                       static_cast<uint8_t>((c[1] & 0x08) ? block::kIoFua : 0),
                       bytes};
  op->medium.resize(bytes);  // also for a device that declines to compare itself
  op->Start();
  return true;
}

}  // namespace ferry::scsi
