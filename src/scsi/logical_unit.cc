#include "scsi/logical_unit.h"

#include <algorithm>
#include <vector>

#include "base/endian.h"
#include "io/reactor.h"
#include "scsi/copy_manager.h"
#include "scsi/opcodes.h"

namespace ferry::scsi {

void Task::Reply(std::span<const uint8_t> bytes) {
  const size_t wanted = std::min<size_t>(bytes.size(), allocation_length);
  const size_t n = std::min(wanted, data_in.size());
  std::copy_n(bytes.begin(), n, data_in.begin());
  data_in_bytes = static_cast<uint32_t>(n);
  data_in_wanted = static_cast<uint32_t>(wanted);
}

LogicalUnit::LogicalUnit(std::shared_ptr<block::BlockDevice> dev, LuIdentity id,
                         bool write_protected)
    : dev_(std::move(dev)),
      id_(std::move(id)),
      write_protected_(write_protected),
      pr_(std::make_unique<PersistentReservations>(std::filesystem::path())),
      capacity_blocks_(dev_->geometry().num_blocks.value()) {}

LogicalUnit::ModeState LogicalUnit::mode() const {
  std::lock_guard lock(mu_);
  return mode_;
}

void LogicalUnit::RaiseUnitAttention(Asc asc) {
  std::lock_guard lock(mu_);
  for (uint64_t n : seen_nexus_) pending_ua_[n].push_back(asc);
}

void LogicalUnit::RaiseUnitAttentionExcept(uint64_t except, Asc asc) {
  std::lock_guard lock(mu_);
  for (uint64_t n : seen_nexus_) {
    if (n != except) pending_ua_[n].push_back(asc);
  }
}

void LogicalUnit::RaiseUnitAttentionFor(uint64_t nexus, Asc asc) {
  std::lock_guard lock(mu_);
  seen_nexus_.insert(nexus);
  pending_ua_[nexus].push_back(asc);
}

// SAM-5 5.14. A nexus first seen after start gets no POWER ON unit attention: it did not
// exist at power on (iSCSI creates nexuses at login), and initiators such as libiscsi's
// tools treat a unit attention on their first command as a failure.
bool LogicalUnit::TakeUnitAttention(Task& t) {
  std::lock_guard lock(mu_);
  // SBC-3 4.10: a device whose size changed underneath (a remote LU or an image resized, a
  // volume's table reloaded) gives every nexus that knew the old size CAPACITY DATA HAS
  // CHANGED, noticed here, at the next command through any nexus.
  const uint64_t blocks = dev_->geometry().num_blocks.value();
  if (blocks != capacity_blocks_) {
    capacity_blocks_ = blocks;
    for (uint64_t n : seen_nexus_) pending_ua_[n].push_back(Asc::kCapacityDataHasChanged);
  }
  seen_nexus_.insert(t.nexus);
  auto it = pending_ua_.find(t.nexus);
  if (it == pending_ua_.end() || it->second.empty()) return false;
  const uint8_t op = t.cdb[0];
  if (op == kInquiry || op == kReportLuns || op == kRequestSense) return false;
  t.Fail(MakeSense(SenseKey::kUnitAttention, it->second.front()));
  it->second.pop_front();
  return true;
}

void CompleteLater(TaskDone& done) {
  io::Reactor::Current()->Post([d = std::move(done)]() mutable { d(); });
}

void LogicalUnit::Finish(Task&, TaskDone& done) { CompleteLater(done); }

uint8_t LogicalUnit::PhysicalBlockExponent() const {
  const uint32_t bs = dev_->geometry().block_size;
  const uint32_t phys = dev_->limits().physical_block_bytes;
  uint8_t e = 0;
  while (phys > bs && (bs << (e + 1)) <= phys && e < 15) ++e;
  return e;
}

// Commands in the table that this LU does not offer: third-party copy without a copy
// manager, UNMAP without deallocation (LBPU 0).
bool LogicalUnit::Supports(uint8_t opcode, uint8_t sa) const {
  if (opcode == kThirdPartyCopyOut || opcode == kThirdPartyCopyIn) return tpc_ != nullptr;
  if (opcode == kUnmap) return ThinProvisioned();
  if (opcode == kSanitize) return SanitizeSupported(sa);
  return true;
}

void LogicalUnit::FailUnsupported(Task& t, TaskDone& done) {
  t.Fail(MakeSense(SenseKey::kIllegalRequest, Asc::kInvalidCommandOperationCode));
  Finish(t, done);
}

void LogicalUnit::NoteWrite(uint64_t lba, uint64_t blocks) const {
  if (tpc_ != nullptr) tpc_->NoteWrite(*this, lba, blocks);
}

std::array<uint8_t, 8> LogicalUnit::Eui64() const {
  std::array<uint8_t, 8> e;
  std::copy(id_.naa.begin() + 8, id_.naa.end(), e.begin());  // the NAA's random extension
  return e;
}

std::string LogicalUnit::T10VendorId() const {
  std::string t10(8, ' ');
  std::copy_n(id_.vendor.begin(), std::min<size_t>(8, id_.vendor.size()), t10.begin());
  // At most 20 bytes, so that a CSCD descriptor (SPC-4 6.4.5.6) can carry it.
  return t10 + id_.serial.substr(0, 12);
}

bool LogicalUnit::HasDesignator(uint8_t type, std::span<const uint8_t> d) const {
  auto same = [&](auto&& v) { return std::equal(d.begin(), d.end(), v.begin(), v.end()); };
  switch (type) {
    case 1: return same(T10VendorId());
    case 2: return same(Eui64());
    case 3: return same(id_.naa);
    default: return false;
  }
}

void LogicalUnit::Execute(Task& t, TaskDone done) {
  // The transport's completion waits in the task while a 16-byte one counts the command:
  // no allocation, and `done` still runs exactly once, later, on this reactor.
  t.start_ns = stats_.Started();
  t.transport_done = std::move(done);
  Dispatch(t, [this, &t] {
    stats_.Completed(t, t.start_ns, dev_->geometry().block_size);
    TaskDone d = std::move(t.transport_done);
    d();
  });
}

void LogicalUnit::Dispatch(Task& t, TaskDone done) {
  t.descriptor_sense = mode().descriptor_sense;
  t.allocation_length = AllocationLength(t.cdb.data());
  const uint8_t* c = t.cdb.data();
  const uint8_t op = c[0];
  const uint8_t len = CdbLength(op);
  if (TakeUnitAttention(t)) return Finish(t, done);
  if (FindCommand(op, c[1] & 0x1f) == nullptr) {
    t.Fail(HasServiceAction(op)
               ? InvalidFieldInCdb(1, 4)
               : MakeSense(SenseKey::kIllegalRequest, Asc::kInvalidCommandOperationCode));
    return Finish(t, done);
  }
  if (len != 0 && (c[len - 1] & 0x04)) {  // NACA: no ACA support (SAM-5 5.9)
    t.Fail(InvalidFieldInCdb(len - 1, 2));
    return Finish(t, done);
  }
  if (AluaRefuses(t)) return Finish(t, done);
  if (op != kInquiry && op != kReportLuns && op != kRequestSense &&
      (op != kSanitize || sanitizing_.load())) {
    if (auto s = SanitizeInProgress()) {  // SBC-3 4.11.2, 4.11.4
      t.Fail(*s);
      return Finish(t, done);
    }
  }
  if (ReservationConflict(t)) return Finish(t, done);
  switch (op) {
    case kPersistentReserveIn:
    case kPersistentReserveOut:
    case kReserve6:
    case kRelease6: Reservations(t); break;
    case kTestUnitReady:              // SPC-4 6.47
    case kStartStopUnit:              // SBC-3 5.25: nothing to spin
    case kPreventAllowMediumRemoval:  // SPC-4 6.13: not removable
      break;
    case kRequestSense: RequestSense(t); break;
    case kInquiry: Inquiry(t); break;
    case kModeSense6: ModeSense(t, false); break;
    case kModeSense10: ModeSense(t, true); break;
    case kModeSelect6: ModeSelect(t, false); break;
    case kModeSelect10: ModeSelect(t, true); break;
    case kReadCapacity10: ReadCapacity10(t); break;
    case kServiceActionIn16:
      if ((c[1] & 0x1f) != kSaGetLbaStatus) {
        ReadCapacity16(t);
      } else if (GetLbaStatus(t, done)) {
        return;
      }
      break;
    case kPreFetch10:
    case kPreFetch16: PreFetch(t); break;
    case kReadDefectData10:
    case kReadDefectData12: ReadDefectData(t); break;
    case kCompareAndWrite:
    case kOrWrite16:
      if (ReadModifyWrite(t, done)) return;
      break;
    case kWriteSame10:
    case kWriteSame16:
      if (WriteSame(t, done)) return;
      break;
    case kSanitize:
      if (!SanitizeSupported(c[1] & 0x1f)) {
        t.Fail(write_protected_ ? MakeSense(SenseKey::kDataProtect, Asc::kWriteProtected)
                                : InvalidFieldInCdb(1, 4));
        break;
      }
      if (Sanitize(t, done)) return;
      break;
    case kUnmap:
      if (!Supports(op)) return FailUnsupported(t, done);
      if (Unmap(t, done)) return;
      break;
    case kMaintenanceIn:
      if ((c[1] & 0x1f) == kSaTargetPortGroups)
        ReportTargetPortGroups(t);
      else if ((c[1] & 0x1f) == kSaReportSupportedOpcodes)
        ReportSupportedOpcodes(t);
      else
        ReportSupportedTmfs(t);
      break;
    case kMaintenanceOut: SetTargetPortGroups(t); break;
    case kSynchronizeCache10:
    case kSynchronizeCache16:
      if (SyncCache(t, done)) return;
      break;
    case kThirdPartyCopyOut:
      if (tpc_ == nullptr) return FailUnsupported(t, done);
      return tpc_->CopyOut(*this, t, std::move(done));
    case kThirdPartyCopyIn:
      if (tpc_ == nullptr) return FailUnsupported(t, done);
      tpc_->CopyIn(*this, t);
      break;
    case kReportLuns:  // answered by the target; a bare LU reports only itself
      t.Fail(MakeSense(SenseKey::kIllegalRequest, Asc::kInvalidCommandOperationCode));
      break;
    default:
      if (ReadWrite(t, done)) return;
      break;
  }
  Finish(t, done);
}

// SPC-4 6.39 REQUEST SENSE: a pending unit attention, else NO SENSE.
void LogicalUnit::RequestSense(Task& t) {
  const bool desc = t.cdb[1] & 0x01;
  Sense s;
  {
    std::lock_guard lock(mu_);
    seen_nexus_.insert(t.nexus);
    auto it = pending_ua_.find(t.nexus);
    if (it != pending_ua_.end() && !it->second.empty()) {
      s = MakeSense(SenseKey::kUnitAttention, it->second.front());
      it->second.pop_front();
    } else if (auto sp = SanitizeInProgress()) {
      s = *sp;  // SBC-3 4.11.2: NOT READY, SANITIZE IN PROGRESS, with the progress
    }
  }
  uint8_t buf[kMaxSenseBytes];
  size_t n = EncodeSense(s, desc, buf);
  t.Reply({buf, n});
}

// SBC-3 5.16 READ CAPACITY(10).
void LogicalUnit::ReadCapacity10(Task& t) {
  const uint8_t* c = t.cdb.data();
  if (!(c[8] & 0x01) && LoadBe32(c + 2) != 0) return t.Fail(InvalidFieldInCdb(2));
  const block::Geometry& g = dev_->geometry();
  const uint64_t last = g.num_blocks.value() - 1;
  uint8_t d[8];
  StoreBe32(d, last > 0xffffffffull ? 0xffffffffu : static_cast<uint32_t>(last));
  StoreBe32(d + 4, g.block_size);
  t.Reply(d);
}

// SBC-3 5.17 READ CAPACITY(16).
void LogicalUnit::ReadCapacity16(Task& t) {
  const block::Geometry& g = dev_->geometry();
  uint8_t d[32] = {};
  StoreBe64(d, g.num_blocks.value() - 1);
  StoreBe32(d + 8, g.block_size);
  if (ThinProvisioned()) d[14] = 0xc0;  // LBPME, LBPRZ
  d[13] = PhysicalBlockExponent();      // logical blocks per physical block exponent
  const uint32_t alloc = LoadBe32(t.cdb.data() + 10);
  t.Reply({d, std::min<size_t>(32, alloc)});
}

// SPC-4 6.35 REPORT SUPPORTED OPERATION CODES.
void LogicalUnit::ReportSupportedOpcodes(Task& t) {
  const uint8_t* c = t.cdb.data();
  const uint8_t options = c[2] & 0x07;
  const bool rctd = c[2] & 0x80;
  const uint8_t req_op = c[3];
  const uint16_t req_sa = LoadBe16(c + 4);
  std::vector<uint8_t> d;
  if (options == 0) {
    d.assign(4, 0);
    for (const CommandInfo& ci : SupportedCommands()) {
      if (!Supports(ci.opcode, ci.sa)) continue;
      uint8_t e[8] = {ci.opcode, 0, 0, ci.sa, 0, 0, 0, ci.cdb_len};
      e[5] = static_cast<uint8_t>((ci.has_sa ? 0x01 : 0) | (rctd ? 0x02 : 0));
      d.insert(d.end(), e, e + 8);
      if (rctd) {  // command timeouts descriptor: length 10, no timeouts given
        uint8_t to[12] = {0, 0x0a};
        d.insert(d.end(), to, to + 12);
      }
    }
    StoreBe32(d.data(), static_cast<uint32_t>(d.size() - 4));
  } else if (options <= 3) {
    // Service actions are at most 8 bits here: a larger one is not supported, not aliased.
    const CommandInfo* ci = req_sa > 0xff || !Supports(req_op, static_cast<uint8_t>(req_sa))
                                ? nullptr
                                : FindCommand(req_op, static_cast<uint8_t>(req_sa));
    const bool op_has_sa = HasServiceAction(req_op);
    if ((options == 1 && op_has_sa) || (options == 2 && !op_has_sa)) {
      return t.Fail(InvalidFieldInCdb(2));
    }
    if (options == 2 && req_sa > 0x1f) return t.Fail(InvalidFieldInCdb(4));
    d.assign(4, 0);
    if (ci != nullptr) {
      d[1] = static_cast<uint8_t>((rctd ? 0x80 : 0) | 0x03);  // supported as the standard says
      StoreBe16(&d[2], ci->cdb_len);
      d.insert(d.end(), ci->usage, ci->usage + ci->cdb_len);
      if (ci->has_sa) d[5] = static_cast<uint8_t>((d[5] & 0xe0) | ci->sa);  // SPC-4 6.35.3
      if (rctd) {
        uint8_t to[12] = {0, 0x0a};
        d.insert(d.end(), to, to + 12);
      }
    } else {
      d[1] = 0x01;  // not supported
    }
  } else {
    return t.Fail(InvalidFieldInCdb(2));
  }
  const uint32_t alloc = LoadBe32(c + 6);
  t.Reply({d.data(), std::min<size_t>(d.size(), alloc)});
}

// SPC-4 6.36 REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS.
void LogicalUnit::ReportSupportedTmfs(Task& t) {
  const bool repd = t.cdb[2] & 0x80;
  std::vector<uint8_t> d(repd ? 16 : 4, 0);
  d[0] = 0xda;            // ABORT TASK, ABORT TASK SET, CLEAR TASK SET, LU RESET, TARGET RESET
  if (repd) d[3] = 0x0c;  // additional data length
  const uint32_t alloc = LoadBe32(t.cdb.data() + 6);
  if (alloc < 4) return t.Fail(InvalidFieldInCdb(6));
  t.Reply({d.data(), std::min<size_t>(d.size(), alloc)});
}

}  // namespace ferry::scsi
