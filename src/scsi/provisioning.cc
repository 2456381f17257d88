// SBC-3 logical block provisioning and pattern writes: WRITE SAME(10/16) (5.42, 5.43),
// UNMAP (5.28), GET LBA STATUS (5.6). Every one that changes blocks holds their range
// (range_lock.h) until its last device request completes.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "base/endian.h"
#include "block/splitter.h"
#include "scsi/logical_unit.h"
#include "scsi/opcodes.h"

namespace ferry::scsi {
namespace {

// Device requests of one command, submitted one after another under one range lock.
struct RangeOp {
  struct Piece {
    block::IoOp op;
    uint64_t lba;
    uint64_t blocks;
  };
  LogicalUnit* lu;
  Task* task;
  TaskDone done;
  uint64_t lock_lba = 0;
  uint64_t lock_blocks = 0;
  std::vector<Piece> pieces;
  size_t next = 0;
  // WRITE SAME's pattern: one buffer of whole blocks, repeated by the iovecs.
  uint8_t* pattern = nullptr;
  uint64_t pattern_bytes = 0;
  std::vector<iovec> iovs;
  block::IoRequest req;
  RangeLock::Holder* lock = nullptr;

  ~RangeOp() { std::free(pattern); }

  void Start() {
    lock = lu->range_lock().Acquire(lock_lba, lock_blocks, [this] { SubmitNext(); });
  }

  void SubmitNext() {
    if (next == pieces.size()) return Finish();
    const Piece& p = pieces[next++];
    const uint32_t bs = lu->device().geometry().block_size;
    req = block::IoRequest{.op = p.op, .lba = Lba(p.lba), .blocks = BlockCount(p.blocks)};
    if (p.op == block::IoOp::kWriteSame) {  // the device repeats one block itself
      iovs.assign(1, iovec{pattern, bs});
      req.iov = iovs.data();
      req.iovcnt = 1;
    }
    if (p.op == block::IoOp::kWrite) {
      iovs.clear();
      for (uint64_t left = p.blocks * bs; left > 0;) {
        const uint64_t n = std::min(left, pattern_bytes);
        iovs.push_back({pattern, n});
        left -= n;
      }
      req.iov = iovs.data();
      req.iovcnt = static_cast<uint32_t>(iovs.size());
    }
    req.done = [this, p](IoStatus st) {
      lu->NoteWrite(p.lba, p.blocks);
      if (st == IoStatus::kOk) return SubmitNext();
      if (st == IoStatus::kNotSupported && p.op == block::IoOp::kWriteSame) {
        pieces[--next].op = block::IoOp::kWrite;  // nothing written: write the pattern here
        return SubmitNext();
      }
      task->status = StatusForIoStatus(st);
      if (task->status == Status::kCheckCondition) task->Fail(SenseForIoStatus(st, true));
      Finish();
    };
    lu->NoteWrite(p.lba, p.blocks);
    if (p.op == block::IoOp::kWriteSame) return lu->device().Submit(req);  // within its limit
    block::SubmitSplit(lu->device(), req);
  }

  void Finish() {
    lu->range_lock().Release(lock);
    TaskDone d = std::move(done);
    delete this;
    d();
  }
};

bool AllZero(std::span<const uint8_t> b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

}  // namespace

// Whether UNMAP and WRITE SAME with UNMAP deallocate (LBPME): the device can discard and a
// discarded block reads back as zeroes (LBPRZ), so that deallocation is never visible.
bool LogicalUnit::ThinProvisioned() const {
  const block::QueueLimits& l = dev_->limits();
  return l.max_discard_bytes > 0 && l.discard_zeroes_data;
}

// SBC-3 5.42 WRITE SAME(10), 5.43 WRITE SAME(16).
bool LogicalUnit::WriteSame(Task& t, TaskDone& done) {
  const uint8_t* c = t.cdb.data();
  const bool sixteen = c[0] == kWriteSame16;
  const bool anchor = c[1] & 0x10;
  const bool unmap = c[1] & 0x08;
  const bool ndob = sixteen && (c[1] & 0x01);
  if (c[1] & 0xe0) return t.Fail(InvalidFieldInCdb(1, 7)), false;  // WRPROTECT: no PI
  // ANCHOR: no anchored state here (ANC_SUP 0); ANCHOR without UNMAP is invalid anyway.
  if (anchor) return t.Fail(InvalidFieldInCdb(1, 4)), false;
  if (!sixteen && (c[1] & 0x06)) return t.Fail(InvalidFieldInCdb(1, 2)), false;  // PBDATA/LBDATA
  if (sixteen && (c[1] & 0x06)) return t.Fail(InvalidFieldInCdb(1, 2)), false;
  const uint64_t lba = sixteen ? LoadBe64(c + 2) : LoadBe32(c + 2);
  uint64_t blocks = sixteen ? LoadBe32(c + 10) : LoadBe16(c + 7);
  const uint64_t cap = dev_->geometry().num_blocks.value();
  if (!CheckRange(t, lba, blocks)) return false;
  if (blocks == 0) blocks = cap - lba;  // WSNZ 0: to the end of the medium
  if (blocks > MaxWriteSameBlocks()) return t.Fail(InvalidFieldInCdb(sixteen ? 10 : 7)), false;
  if (!CheckWritable(t)) return false;
  const uint32_t bs = dev_->geometry().block_size;
  // One block of data, or none with NDOB (the block is zeroes).
  const uint32_t want = ndob ? 0 : bs;
  if ((t.data_out_expected != UINT32_MAX && t.data_out_expected != want) ||
      t.data_out.size() < want) {
    return t.Fail(InvalidFieldInCdb(sixteen ? 10 : 7)), false;
  }
  if (blocks == 0) return false;  // LBA at the end of the medium: nothing to write
  const bool zeroes = ndob || AllZero(t.data_out.first(bs));
  auto* op = new RangeOp{this, &t, std::move(done), lba, blocks};
  // UNMAP on a thin LU deallocates whatever the data-out block holds (SBC-3 5.42: the
  // device server unmaps; with LBPRZ the blocks then read as zeroes), as libiscsi's
  // WriteSame*.UnmapUntilEnd expects. Elsewhere a zero block is written as write-zeroes.
  // A device that repeats the block itself (an RBD image: in the cluster) gets WRITE SAME
  // whole; the pattern buffer stays for when it declines.
  block::IoOp io = block::IoOp::kWrite;
  if (unmap && ThinProvisioned()) {
    io = block::IoOp::kDiscard;
  } else if (zeroes) {
    io = block::IoOp::kWriteZeroes;
  } else if (blocks * bs <= dev_->limits().max_write_same_bytes) {
    io = block::IoOp::kWriteSame;
  }
  op->pieces.push_back({io, lba, blocks});
  if (io == block::IoOp::kWrite || io == block::IoOp::kWriteSame) {
    // A pattern buffer of up to 1 MiB of whole blocks; the iovecs repeat it.
    const uint64_t copies = std::clamp<uint64_t>((1u << 20) / bs, 1, blocks);
    op->pattern_bytes = copies * bs;
    // aligned_alloc wants a size that is a multiple of the alignment (O_DIRECT backends).
    op->pattern =
        static_cast<uint8_t*>(std::aligned_alloc(4096, (op->pattern_bytes + 4095) / 4096 * 4096));
    if (op->pattern == nullptr) {
      done = std::move(op->done);
      delete op;
      return t.Fail(MakeSense(SenseKey::kAbortedCommand, Asc::kInsufficientResources)), false;
    }
    for (uint64_t i = 0; i < copies; ++i) std::memcpy(op->pattern + i * bs, t.data_out.data(), bs);
  }
  op->Start();
  return true;
}

// SBC-3 5.28 UNMAP. All descriptors are checked before any block is deallocated.
bool LogicalUnit::Unmap(Task& t, TaskDone& done) {
  const uint8_t* c = t.cdb.data();
  if (c[1] & 0x01) return t.Fail(InvalidFieldInCdb(1, 0)), false;  // ANCHOR (ANC_SUP 0)
  if (!ThinProvisioned()) {
    return t.Fail(MakeSense(SenseKey::kIllegalRequest, Asc::kInvalidCommandOperationCode)), false;
  }
  if (!CheckWritable(t)) return false;
  const uint32_t len = LoadBe16(c + 7);
  if (len == 0) return false;  // nothing to do (SBC-3 5.28)
  std::span<const uint8_t> p = t.data_out.first(std::min<size_t>(len, t.data_out.size()));
  if (p.size() < 8)
    return t.Fail(MakeSense(SenseKey::kIllegalRequest, Asc::kParameterListLengthError)), false;
  const uint32_t data_len = LoadBe16(p.data());
  const uint32_t desc_len = LoadBe16(p.data() + 2);
  if (desc_len % 16 != 0) return t.Fail(InvalidFieldInParameterList(2)), false;
  if (desc_len + 8u > p.size() || data_len + 2u > p.size() || data_len < desc_len + 6u) {
    return t.Fail(MakeSense(SenseKey::kIllegalRequest, Asc::kParameterListLengthError)), false;
  }
  const uint32_t n = desc_len / 16;
  if (n > kMaxUnmapDescriptors) return t.Fail(InvalidFieldInParameterList(2)), false;
  const uint64_t cap = dev_->geometry().num_blocks.value();
  auto* op = new RangeOp{this, &t, std::move(done)};
  uint64_t lo = UINT64_MAX, hi = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t* d = p.data() + 8 + 16 * i;
    const uint64_t lba = LoadBe64(d);
    const uint64_t blocks = LoadBe32(d + 8);
    if (lba > cap || blocks > cap - lba) {
      done = std::move(op->done);
      delete op;
      Sense s = MakeSense(SenseKey::kIllegalRequest, Asc::kLbaOutOfRange);
      s.information = lba;
      return t.Fail(s), false;
    }
    if (blocks > kMaxUnmapBlocks) {
      done = std::move(op->done);
      delete op;
      return t.Fail(InvalidFieldInParameterList(static_cast<uint16_t>(8 + 16 * i + 8))), false;
    }
    if (blocks == 0) continue;
    op->pieces.push_back({block::IoOp::kDiscard, lba, blocks});
    lo = std::min(lo, lba);
    hi = std::max(hi, lba + blocks);
  }
  if (op->pieces.empty()) {
    done = std::move(op->done);
    delete op;
    return false;
  }
  op->lock_lba = lo;
  op->lock_blocks = hi - lo;
  op->Start();
  return true;
}

// SBC-3 5.6 GET LBA STATUS: runs of mapped and deallocated blocks from the LBA, as many
// descriptors as the allocation length holds (at most 64), up to the end of the medium.
bool LogicalUnit::GetLbaStatus(Task& t, TaskDone& done) {
  const uint8_t* c = t.cdb.data();
  const uint64_t lba = LoadBe64(c + 2);
  const uint32_t alloc = LoadBe32(c + 10);
  const uint64_t cap = dev_->geometry().num_blocks.value();
  if (lba >= cap) {
    Sense s = MakeSense(SenseKey::kIllegalRequest, Asc::kLbaOutOfRange);
    s.information = lba;
    t.Fail(s);
    return false;
  }
  const size_t max_desc = std::clamp<size_t>(alloc < 8 ? 1 : (alloc - 8) / 16, 1, 64);
  // Asked of the device asynchronously: a remote LU answers with its own GET LBA STATUS.
  auto finish = std::make_shared<TaskDone>(std::move(done));
  dev_->QueryProvisioning(
      Lba(lba), BlockCount(cap - lba), static_cast<uint32_t>(max_desc),
      [&t, lba, finish](IoStatus st, std::vector<block::ProvisioningExtent> runs) {
        if (st != IoStatus::kOk) {
          t.Fail(SenseForIoStatus(st, /*is_write=*/false));
          return (*finish)();
        }
        std::vector<uint8_t> d(8, 0);
        uint64_t at = lba;
        for (const block::ProvisioningExtent& e : runs) {
          const uint64_t n = std::clamp<uint64_t>(e.blocks.value(), 1, UINT32_MAX);
          uint8_t desc[16] = {};
          StoreBe64(desc, at);
          StoreBe32(desc + 8, static_cast<uint32_t>(n));
          desc[12] = e.mapped ? 0x0 : 0x1;  // provisioning status: mapped / deallocated
          d.insert(d.end(), desc, desc + 16);
          at += n;
        }
        StoreBe32(d.data(), static_cast<uint32_t>(d.size() - 4));
        t.Reply(d);
        (*finish)();
      });
  return true;
}

}  // namespace ferry::scsi
