#include "scsi/nexus.h"

#include <algorithm>

#include "base/endian.h"
#include "scsi/logical_unit.h"
#include "scsi/opcodes.h"
#include "scsi/task.h"
#include "scsi/tpc_params.h"

namespace ferry::scsi {

const NexusLu* NexusView::Find(const LogicalUnit* lu) const {
  for (const NexusLu& n : lus) {
    if (n.lu.get() == lu) return &n;
  }
  return nullptr;
}

const NexusLu* NexusView::FindLun(uint64_t lun) const {
  auto it = std::lower_bound(lus.begin(), lus.end(), lun,
                             [](const NexusLu& n, uint64_t l) { return n.lun < l; });
  return it != lus.end() && it->lun == lun ? &*it : nullptr;
}

const NexusLu* NexusView::FindByDesignator(const CscdId& id) const {
  for (const NexusLu& n : lus) {
    if (n.lu->HasDesignator(id.designator_type, id.designator_bytes())) return &n;
  }
  return nullptr;
}

bool DecodeLun(uint64_t field, uint64_t* lun) {
  const uint8_t b0 = static_cast<uint8_t>(field >> 56);
  const uint8_t b1 = static_cast<uint8_t>(field >> 48);
  if ((field & 0x0000ffffffffffffull) != 0) return false;  // second level: not used here
  switch (b0 >> 6) {
    case 0:  // peripheral device addressing, bus 0
      if ((b0 & 0x3f) != 0) return false;
      *lun = b1;
      return true;
    case 1:  // flat space addressing
      *lun = static_cast<uint64_t>(b0 & 0x3f) << 8 | b1;
      return true;
    default: return false;
  }
}

uint64_t EncodeLun(uint64_t lun) {
  if (lun < 256) return lun << 48;
  return (0x4000ull | (lun & 0x3fff)) << 48;
}

LogicalUnit* AddressTask(const std::shared_ptr<const NexusView>& view, std::optional<uint64_t> lun,
                         Task& t) {
  t.view = view;
  const NexusLu* n = view != nullptr && lun ? view->FindLun(*lun) : nullptr;
  t.write_protected = n != nullptr && n->write_protect;
  return n != nullptr ? n->lu.get() : nullptr;
}

namespace {

// SPC-4 6.33 REPORT LUNS.
void ReportLuns(const NexusView* view, Task& t) {
  const uint8_t* cdb = t.cdb.data();
  const uint32_t alloc = LoadBe32(cdb + 6);
  if (cdb[2] > 2 && cdb[2] != 0x10 && cdb[2] != 0x11 && cdb[2] != 0x12) {
    return t.Fail(InvalidFieldInCdb(2));
  }
  if (alloc < 16) return t.Fail(InvalidFieldInCdb(6));
  std::vector<uint8_t> d(8, 0);
  if (view != nullptr && cdb[2] != 0x01) {  // select 1: well-known LUNs only (none)
    for (const NexusLu& n : view->lus) {
      uint8_t e[8];
      StoreBe64(e, EncodeLun(n.lun));
      d.insert(d.end(), e, e + 8);
    }
  }
  StoreBe32(d.data(), static_cast<uint32_t>(d.size() - 8));
  t.Reply(d);
}

// A command to a LUN that does not exist (SPC-4 4.6.4 and 6.6.2).
void NoSuchLun(Task& t) {
  if (t.cdb[0] == kInquiry) {
    uint8_t d[36] = {0x7f, 0, 0x06, 0x12, 31};  // qualifier 3: no LU here
    return t.Reply(d);
  }
  if (t.cdb[0] == kRequestSense) {
    uint8_t buf[kMaxSenseBytes];
    size_t n = EncodeSense(MakeSense(SenseKey::kIllegalRequest, Asc::kLogicalUnitNotSupported),
                           t.cdb[1] & 1, buf);
    return t.Reply({buf, n});
  }
  t.Fail(MakeSense(SenseKey::kIllegalRequest, Asc::kLogicalUnitNotSupported));
}

}  // namespace

bool AnswerForNexus(const NexusView* view, const LogicalUnit* lu, Task& t) {
  if (t.cdb[0] == kReportLuns) {
    ReportLuns(view, t);
    return true;
  }
  if (lu != nullptr) return false;
  NoSuchLun(t);
  return true;
}

}  // namespace ferry::scsi
