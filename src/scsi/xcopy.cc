// SPC-4 6.4 EXTENDED COPY(LID1) and 6.5 EXTENDED COPY(LID4): each segment descriptor becomes
// one copy-engine request between logical units of the requesting nexus's view.
#include <algorithm>

#include "base/endian.h"
#include "scsi/copy_manager.h"
#include "scsi/copy_op.h"
#include "scsi/copy_runner.h"
#include "scsi/logical_unit.h"
#include "scsi/nexus.h"

namespace ferry::scsi {
namespace {

// COPY ABORTED with `asc`, pointing at byte `field` of the parameter list (SPC-4 4.5.2.4.5
// segment pointer, SD 0).
Sense Aborted(Asc asc, uint16_t field) {
  return Sense{.key = SenseKey::kCopyAborted,
               .asc = asc,
               .has_field_pointer = true,
               .in_cdb = false,
               .field_byte = field};
}

// One end of a segment, resolved.
struct Endpoint {
  const NexusLu* nlu = nullptr;
  uint32_t bs = 512;
  uint64_t capacity = 0;
  bool write_protected = false;
  block::BlockDevice* dev() const { return &nlu->lu->device(); }
};

class XcopyRunner : public CopyRunner {
 public:
  XcopyRunner(std::shared_ptr<CopyManager> m, std::shared_ptr<CopyOp> op, Task* task, TaskDone done,
              ExtendedCopyList list, std::shared_ptr<const NexusView> view, const LogicalUnit* self)
      : CopyRunner(std::move(m), std::move(op), task, std::move(done)),
        list_(std::move(list)),
        view_(std::move(view)),
        self_(self) {}

  // Bytes the segments will move, as far as they resolve now (for progress estimates).
  uint64_t PlannedBytes() {
    uint64_t total = 0;
    for (size_t i = 0; i < list_.segments.size(); ++i) {
      Step st = Produce(i);
      if (auto* c = std::get_if<Copy>(&st)) {
        total += c->desc.src_extents[0].blocks.value() * c->desc.src->geometry().block_size;
      }
    }
    return total;
  }

 protected:
  Step Produce(size_t i) override {
    if (i >= list_.segments.size()) return End{};
    const Segment& s = list_.segments[i];
    Endpoint src, dst;
    if (auto e = Resolve(s, false, &src)) return *e;
    if (s.type == SegmentType::kVerifyCscd) return Skip{};  // SPC-4 6.4.6.8: reachable
    if (auto e = Resolve(s, true, &dst)) return *e;
    uint64_t bytes = 0, src_lba = s.src_lba, dst_lba = s.dst_lba;
    if (s.type == SegmentType::kBlockToBlock) {
      bytes = uint64_t{s.blocks} * (s.dc ? dst.bs : src.bs);  // 6.4.6.5: DC picks the unit
      if (bytes % src.bs != 0 || bytes % dst.bs != 0) {
        return Aborted(Asc::kUnexpectedInexactSegment, s.offset + 10);
      }
    } else {  // 0Ah: whole blocks only (DATA SEGMENT GRANULARITY is the block size)
      bytes = s.bytes;
      if (bytes % src.bs != 0 || bytes % dst.bs != 0) {
        return Aborted(Asc::kCopySegmentGranularityViolation, s.offset + 8);
      }
      if (s.src_byte_offset % src.bs != 0) {
        return Aborted(Asc::kCopySegmentGranularityViolation, s.offset + 28);
      }
      if (s.dst_byte_offset % dst.bs != 0) {
        return Aborted(Asc::kCopySegmentGranularityViolation, s.offset + 30);
      }
      src_lba += s.src_byte_offset / src.bs;
      dst_lba += s.dst_byte_offset / dst.bs;
    }
    if (bytes > kMaxSegmentBytes) {  // MAXIMUM SEGMENT LENGTH (operating parameters)
      return Aborted(Asc::kInvalidFieldInParameterList,
                     s.offset + (s.type == SegmentType::kBlockToBlock ? 10 : 8));
    }
    if (bytes == 0) return Skip{};
    const uint64_t src_n = bytes / src.bs, dst_n = bytes / dst.bs;
    // Beyond the end: COPY ABORTED pointing at the LBA (libiscsi accepts ASC 00/00 here,
    // not LBA OUT OF RANGE).
    if (src_lba > src.capacity || src_n > src.capacity - src_lba) {
      Sense e = Aborted(Asc::kNoAdditionalSense, s.offset + 12);
      e.information = src_lba;
      return e;
    }
    if (dst_lba > dst.capacity || dst_n > dst.capacity - dst_lba) {
      Sense e = Aborted(Asc::kNoAdditionalSense, s.offset + 20);
      e.information = dst_lba;
      return e;
    }
    if (dst.write_protected) return MakeSense(SenseKey::kDataProtect, Asc::kWriteProtected);
    Copy c;
    c.desc.src = src.dev();
    c.desc.src_extents = {{Lba(src_lba), BlockCount(src_n)}};
    c.desc.dsts = {{dst.dev(), {{Lba(dst_lba), BlockCount(dst_n)}}}};
    c.dst_lu = dst.nlu->lu.get();
    return c;
  }

 private:
  // Resolves the source or destination CSCD of `s`; the sense when it cannot be reached.
  std::optional<Sense> Resolve(const Segment& s, bool dst, Endpoint* out) const {
    const uint16_t id = dst ? s.dst_cscd : s.src_cscd;
    const uint16_t field = s.offset + (dst ? 6 : 4);
    const NexusLu* nlu = nullptr;
    const CscdId* cscd = nullptr;
    if (id == kCscdIdReceivingLu) {
      nlu = view_ ? view_->Find(self_) : nullptr;
    } else if (id < list_.cscds.size()) {
      cscd = &list_.cscds[id];
      nlu = view_ ? view_->FindByDesignator(*cscd) : nullptr;
    }
    // SPC-4 5.17.4.3: a CSCD the copy manager cannot reach; only the nexus's view counts.
    if (nlu == nullptr) return Aborted(Asc::kCopyTargetDeviceNotReachable, field);
    const block::Geometry& g = nlu->lu->device().geometry();
    if (cscd != nullptr && cscd->block_length != 0 && cscd->block_length != g.block_size) {
      return Aborted(Asc::kInvalidFieldInParameterList, cscd->offset + 29);
    }
    out->nlu = nlu;
    out->bs = g.block_size;
    out->capacity = g.num_blocks.value();
    out->write_protected =
        nlu->write_protect || nlu->lu->write_protected() || nlu->lu->device().read_only();
    return std::nullopt;
  }

  const ExtendedCopyList list_;
  const std::shared_ptr<const NexusView> view_;
  const LogicalUnit* const self_;
};

}  // namespace

void CopyManager::ExtendedCopy(LogicalUnit& lu, Task& t, TaskDone done, bool lid4) {
  auto complete = [&] { CompleteLater(done); };
  const uint32_t len = LoadBe32(&t.cdb[10]);
  if (len == 0) return complete();  // SPC-4 6.4.1: not an error, nothing to do
  if (t.data_out.size() < len) {
    t.Fail(MakeSense(SenseKey::kIllegalRequest, Asc::kParameterListLengthError));
    return complete();
  }
  n_xcopy_++;
  ExtendedCopyResult r = DecodeExtendedCopy(t.data_out.first(len), lid4);
  if (auto* s = std::get_if<Sense>(&r)) {
    t.Fail(*s);
    return complete();
  }
  ExtendedCopyList list = std::move(std::get<ExtendedCopyList>(r));
  const bool immed = list.immed;
  std::shared_ptr<CopyOp> op =
      StartOp(lu, t, list.list_id, lid4 ? kSaExtendedCopyLid4 : kSaExtendedCopyLid1, list.usage);
  if (op == nullptr) return complete();
  auto runner = std::make_shared<XcopyRunner>(shared_from_this(), op, immed ? nullptr : &t,
                                              immed ? TaskDone{} : std::move(done), std::move(list),
                                              t.view, &lu);
  {
    const uint64_t planned = runner->PlannedBytes();
    std::lock_guard l(op->mu);
    op->bytes_total = planned;
    op->status = immed ? CopyOpStatus::kInBackground : CopyOpStatus::kInForeground;
  }
  if (!immed)
    t.cancel = [w = std::weak_ptr<CopyOp>(op)] {
      if (auto o = w.lock()) o->Cancel();
    };
  runner->Start();
  if (immed) complete();
}

}  // namespace ferry::scsi
