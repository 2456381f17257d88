// The logical unit's side of reservations (persistent_reservations.h): the conflict check
// every command passes, PERSISTENT RESERVE IN/OUT and SPC-2 RESERVE/RELEASE, and the SAM-5
// events that release SPC-2 reservations.
#include <vector>

#include "base/endian.h"
#include "scsi/copy_manager.h"
#include "scsi/logical_unit.h"
#include "scsi/nexus.h"
#include "scsi/opcodes.h"

namespace ferry::scsi {
namespace {

PrNexus NexusOf(const Task& t) {
  PrNexus n{.id = t.nexus};
  if (t.view != nullptr) {
    n.initiator_name = t.view->initiator_name;
    n.isid = t.view->isid;
    n.relative_target_port = t.view->relative_target_port;
  }
  return n;
}

}  // namespace

std::string LogicalUnit::PersistReservationsIn(std::filesystem::path file) {
  pr_ = std::make_unique<PersistentReservations>(std::move(file));
  return pr_->load_error();
}

void LogicalUnit::Reset() {
  RaiseUnitAttention(Asc::kPowerOnResetOrBusDeviceReset);
  if (tpc_ != nullptr) tpc_->LuReset(*this);
  pr_->OnLuReset();
}

void LogicalUnit::NexusLost(uint64_t nexus) { pr_->OnNexusLoss(nexus); }

// SPC-4 5.13.1: a command the reservation holder's type forbids this nexus ends in
// RESERVATION CONFLICT, before it touches anything.
bool LogicalUnit::ReservationConflict(Task& t) const {
  if (!pr_->Conflicts(NexusOf(t), t.cdb.data())) return false;
  t.status = Status::kReservationConflict;
  return true;
}

// SPC-4 6.15 PERSISTENT RESERVE IN, 6.16 PERSISTENT RESERVE OUT; SPC-2 7.21 RESERVE(6),
// 7.22 RELEASE(6).
void LogicalUnit::Reservations(Task& t) {
  const uint8_t* c = t.cdb.data();
  if (c[0] == kPersistentReserveIn) {
    std::vector<uint8_t> d;
    if (auto s = pr_->In(c, &d)) return t.Fail(*s);
    return t.Reply(d);
  }
  const PrNexus n = NexusOf(t);
  PersistentReservations::OutResult r;
  switch (c[0]) {
    case kPersistentReserveOut: r = pr_->Out(n, c, t.data_out); break;
    case kReserve6: r = pr_->Reserve(n, c); break;
    default: r = pr_->Release(n, c); break;
  }
  if (r.sense) {
    t.Fail(*r.sense);
  } else {
    t.status = r.status;
  }
  for (const auto& [nexus, asc] : r.effects.unit_attentions) RaiseUnitAttentionFor(nexus, asc);
  // PREEMPT AND ABORT: the transport aborts the preempted nexuses' tasks (task.h).
  t.abort_tasks_of = std::move(r.effects.abort_tasks_of);
}

}  // namespace ferry::scsi
