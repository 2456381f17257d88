#include "scsi/nexus.h"

#include "scsi/logical_unit.h"
#include "scsi/tpc_params.h"

namespace ferry::scsi {

const NexusLu* NexusView::Find(const LogicalUnit* lu) const {
  for (const NexusLu& n : lus) {
    if (n.lu.get() == lu) return &n;
  }
  return nullptr;
}

const NexusLu* NexusView::FindByDesignator(const CscdId& id) const {
  for (const NexusLu& n : lus) {
    if (n.lu->HasDesignator(id.designator_type, id.designator_bytes())) return &n;
  }
  return nullptr;
}

}  // namespace ferry::scsi
