// SCSI commands over iSCSI (RFC 7143 11.3-11.8): immediate and unsolicited data, R2T,
// Data-Out, Data-In with status in the last PDU, SCSI Response with sense and residuals,
// and task management. The nexus (scsi/nexus.h) answers REPORT LUNS and absent LUNs.
#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <utility>

#include "base/endian.h"
#include "base/log.h"
#include "iscsi/connection.h"
#include "iscsi/target.h"
#include "scsi/copy_manager.h"
#include "scsi/logical_unit.h"
#include "scsi/nexus.h"
#include "scsi/opcodes.h"

namespace ferry::iscsi {

namespace {

// Leaves the bytes of resize() uninitialised: write data is sized from the CDB when the
// command arrives and filled as it comes, so that memory is touched (and counted in RSS)
// only as data arrives, not for what a command merely claims.
template <typename T>
struct UninitAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitAllocator<U>;
  };
  UninitAllocator() = default;
  template <typename U>
  UninitAllocator(const UninitAllocator<U>&) {}  // NOLINT(google-explicit-constructor)
  template <typename U>
  void construct(U* p) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

}  // namespace

struct Connection::Command {
  ScsiCommandPdu pdu;
  scsi::LogicalUnit* lu = nullptr;
  uint64_t lun = 0;
  bool lun_ok = false;
  scsi::Task task;
  // Write data the command uses: at most expected_data_length bytes, sized from the CDB
  // (data the initiator sends beyond it is received and dropped). Executed only once all
  // of it has arrived, in order: no uninitialised byte is ever used.
  std::vector<uint8_t, UninitAllocator<uint8_t>> out;
  uint32_t received = 0;  // data received so far: always [0, received) (in order)
  uint32_t next_r2t_offset = 0;
  uint32_t r2ts_outstanding = 0;
  uint32_t r2tsn = 0;
  uint32_t ttt = kReservedTag;
  bool unsolicited_done = true;
  std::vector<uint8_t> in;  // read data: at most expected_data_length bytes, sized from the CDB
  bool aborted = false;
  bool aborted_by_other = false;  // another nexus's task management: ends in TASK ABORTED
  uint64_t seq = 0;               // Server::NextCommandSeq when it arrived
  // Write residuals (RFC 7143 11.4.5), known before execution.
  bool overflow = false;
  bool underflow = false;
  uint32_t residual = 0;
  bool partial_block = false;  // EDTL cuts a block: refused before execution
  uint32_t next_datasn = 0;    // in the current Data-Out sequence (RFC 7143 11.7.5)
  bool data_error = false;     // a sequence error: answered with DATA PHASE ERROR
};

namespace {

// Parameter lists and parameter data (MODE SELECT, REPORT LUNS, ...) are far smaller.
constexpr uint32_t kMaxParameterBytes = 1u << 20;

// How much of the initiator's expected data length a command can use, so that a huge
// EDTL on a small command costs nothing: block transfers by their transfer length (zero
// above the maximum transfer length: the logical unit refuses those unread), others by
// their allocation length, capped.
uint32_t UsableBytes(scsi::LogicalUnit* lu, const uint8_t* cdb, uint32_t edtl, bool out) {
  if (lu == nullptr && cdb[0] != scsi::kReportLuns) return out ? 0 : std::min(edtl, 256u);
  auto bt = scsi::DecodeBlockTransfer(cdb);
  if (bt && lu != nullptr && (bt->data_out || bt->data_in)) {
    const uint64_t tl = uint64_t{bt->blocks} * lu->device().geometry().block_size;
    return tl > scsi::kMaxTransferBytes ? 0 : static_cast<uint32_t>(std::min<uint64_t>(edtl, tl));
  }
  // COMPARE AND WRITE and WRITE SAME: the data their CDB implies (not capped as a
  // parameter list: COMPARE AND WRITE carries twice its blocks).
  if (auto n = lu != nullptr && out
                   ? scsi::ImpliedDataOutBytes(cdb, lu->device().geometry().block_size)
                   : std::nullopt) {
    return static_cast<uint32_t>(std::min<uint64_t>(edtl, *n));
  }
  return std::min({edtl, kMaxParameterBytes, out ? UINT32_MAX : scsi::AllocationLength(cdb)});
}

}  // namespace

void Connection::OnScsiCommand(const ScsiCommandPdu& p) {
  if (!CheckCmdSn(p.cmdsn, p.immediate)) return;
  server_->stats().commands++;
  if (p.immediate && commands_.size() >= kCmdWindow + kImmediateExtra) {
    return Reject(RejectReason::kImmediateCommandReject, "too many commands held");
  }
  if (p.ahs_bytes != 0) return Reject(RejectReason::kCommandNotSupported, "AHS (long CDB)");
  if (commands_.contains(p.itt)) {  // RFC 7143 11.2.1.8: one task per ITT
    return Reject(RejectReason::kInvalidPduField, "ITT of a task in progress");
  }
  auto c = std::make_shared<Command>();
  c->seq = server_->NextCommandSeq();
  c->pdu = p;
  c->lun_ok = scsi::DecodeLun(p.lun, &c->lun);
  commands_seen_++;
  c->lu = scsi::AddressTask(view_, c->lun_ok ? std::optional(c->lun) : std::nullopt, c->task);
  c->task.cdb = p.cdb;
  c->task.nexus = nexus_;
  c->task.allocation_length = scsi::AllocationLength(p.cdb.data());
  c->task.data_out_expected = p.write ? p.expected_data_length : 0;
  const uint32_t edtl = p.expected_data_length;
  if (c->lu != nullptr) FitWriteToEdtl(*c);
  if (p.write) {
    if (p.data_bytes > edtl || p.data_bytes > params_.first_burst_length ||
        (p.data_bytes > 0 && !params_.immediate_data)) {
      return Reject(RejectReason::kProtocolError, "immediate data beyond what was negotiated");
    }
    if (!p.final && params_.initial_r2t) {
      return Reject(RejectReason::kProtocolError, "unsolicited data with InitialR2T=Yes");
    }
    c->out.resize(UsableBytes(c->lu, c->task.cdb.data(), edtl, true));
    const uint32_t keep = std::min<uint32_t>(p.data_bytes, static_cast<uint32_t>(c->out.size()));
    if (keep > 0) std::memcpy(c->out.data(), data().data(), keep);
    c->received = p.data_bytes;
    c->unsolicited_done = p.final;
    // Unsolicited Data-Out PDUs follow up to FirstBurstLength; R2Ts ask for the rest.
    c->next_r2t_offset = p.final ? p.data_bytes : std::min(edtl, params_.first_burst_length);
  }
  if (p.read) c->in.resize(UsableBytes(c->lu, c->task.cdb.data(), edtl, false));
  if (c->received < c->out.size() || !c->unsolicited_done) {
    if (next_ttt_ == kReservedTag) next_ttt_ = 1;
    c->ttt = next_ttt_++;
    commands_[p.itt] = c;
    if (c->unsolicited_done) SendR2ts(*c);
    return;
  }
  Execute(std::move(c));
}

// RFC 7143 11.4.5: when the initiator expects to send less than the CDB's transfer length,
// only what it sends is written (scsi::FitWriteToDataOut cuts the CDB, or refuses a partial
// block) and the difference is an overflow residual; when it expects more, an underflow.
void Connection::FitWriteToEdtl(Command& c) {
  const uint32_t edtl = c.pdu.expected_data_length;
  auto tl = scsi::FitWriteToDataOut(c.task.cdb.data(), c.lu->device().geometry().block_size, edtl,
                                    &c.partial_block);
  if (!tl) return;
  if (edtl < *tl) {
    c.overflow = true;
    c.residual = static_cast<uint32_t>(*tl - edtl);
  } else if (edtl > *tl) {
    c.underflow = true;
    c.residual = static_cast<uint32_t>(edtl - *tl);
  }
}

// RFC 7143 11.8: ask for the rest of the write data, MaxBurstLength at a time, up to
// MaxOutstandingR2T requests in flight.
void Connection::SendR2ts(Command& c) {
  const uint32_t edtl = static_cast<uint32_t>(c.out.size());
  while (c.r2ts_outstanding < params_.max_outstanding_r2t && c.next_r2t_offset < edtl) {
    const uint32_t len = std::min(params_.max_burst_length, edtl - c.next_r2t_offset);
    OutPdu out;
    Encode(R2tPdu{.lun = c.pdu.lun,
                  .itt = c.pdu.itt,
                  .ttt = c.ttt,
                  .seq = NextSeq(false),
                  .r2tsn = c.r2tsn++,
                  .buffer_offset = c.next_r2t_offset,
                  .desired_length = len},
           &out.bhs);
    Send(std::move(out));
    c.next_r2t_offset += len;
    ++c.r2ts_outstanding;
  }
}

void Connection::OnDataOut(const DataOutPdu& p) {
  auto it = commands_.find(p.itt);
  if (it == commands_.end()) return Reject(RejectReason::kInvalidPduField, "Data-Out: no task");
  Command& c = *it->second;
  const uint64_t end = static_cast<uint64_t>(p.buffer_offset) + p.data_bytes;
  const bool solicited = p.ttt != kReservedTag;
  if (end > c.pdu.expected_data_length || (solicited && p.ttt != c.ttt)) {
    return Reject(RejectReason::kProtocolError, "Data-Out outside the task's buffer");
  }
  if (!solicited && (c.unsolicited_done || end > params_.first_burst_length)) {
    return Reject(RejectReason::kProtocolError, "unsolicited data beyond FirstBurstLength");
  }
  // DataPDUInOrder and DataSequenceInOrder are Yes (RFC 7143 13.19, 13.20): data arrives
  // in increasing, contiguous offsets, and solicited data only inside what R2Ts asked for.
  // Anything else (gaps, overlays, data outside the burst) cannot be put right at
  // ErrorRecoveryLevel 0: the connection ends and the command is never executed.
  if (p.buffer_offset != c.received || (solicited && end > c.next_r2t_offset)) {
    return RejectAndClose(RejectReason::kProtocolError,
                          "Data-Out at offset " + std::to_string(p.buffer_offset) + ", expected " +
                              std::to_string(c.received) + " (in order, inside the R2T's burst)");
  }
  if (p.datasn != c.next_datasn) c.data_error = true;
  ++c.next_datasn;
  if (p.buffer_offset < c.out.size() && p.data_bytes > 0) {
    const size_t n = std::min<size_t>(p.data_bytes, c.out.size() - p.buffer_offset);
    std::memcpy(c.out.data() + p.buffer_offset, data().data(), n);
  }
  c.received = static_cast<uint32_t>(end);
  if (p.final) {
    c.next_datasn = 0;  // the next sequence (the next R2T's) starts again at 0
    if (!solicited) {
      c.unsolicited_done = true;
      c.next_r2t_offset = std::min(c.next_r2t_offset, c.received);  // a short first burst
    } else if (c.r2ts_outstanding > 0) {
      --c.r2ts_outstanding;
    }
  }
  if (c.received >= c.out.size() && c.r2ts_outstanding == 0 && c.unsolicited_done) {
    auto cmd = std::move(it->second);
    commands_.erase(it);
    return Execute(std::move(cmd));
  }
  if (p.final) SendR2ts(c);
}

void Connection::Execute(std::shared_ptr<Command> c) {
  c->task.data_out = c->out;
  c->task.data_in = c->in;
  if (scsi::AnswerForNexus(view_.get(), c->lu, c->task)) return Complete(*c);
  if (c->data_error) {  // SAM-5: the data did not arrive as sent; nothing is written
    c->task.Fail(scsi::MakeSense(scsi::SenseKey::kAbortedCommand, scsi::Asc::kDataPhaseError));
    return Complete(*c);
  }
  if (c->partial_block) {  // FCP-4 / SAM-5: refuse rather than write part of a block
    c->task.Fail(scsi::MakeSense(scsi::SenseKey::kIllegalRequest,
                                 scsi::Asc::kInvalidFieldInCommandInformationUnit));
    return Complete(*c);
  }
  ++executing_;
  commands_[c->pdu.itt] = c;
  Command* raw = c.get();
  raw->lu->Execute(raw->task, [this, c = std::move(c)]() mutable {
    --executing_;
    session_io_.Count(c->task, c->lu->device().geometry().block_size);
    auto it = commands_.find(c->pdu.itt);
    if (it != commands_.end() && it->second == c) commands_.erase(it);
    if (closed_) return MaybeReap();
    if (!c->task.abort_tasks_of.empty() && server_ != nullptr) {  // PREEMPT AND ABORT
      server_->AbortTasks(c->lu, std::move(c->task.abort_tasks_of), this);
    }
    if (c->aborted_by_other) EndAborted(c->task);
    if (!c->aborted) return Complete(*c);
    // An aborted task is not answered; if the CmdSN window was closed, a NOP-In (ITT and TTT
    // reserved: no reply asked, RFC 7143 11.19) tells the initiator that it opened again.
    if (static_cast<uint32_t>(max_cmdsn_ + 1) == expcmdsn_) {
      OutPdu out;
      Encode(NopInPdu{.lun = 0, .itt = kReservedTag, .ttt = kReservedTag, .seq = NextSeq(false)},
             &out.bhs);
      Send(std::move(out));
    }
  });
}

// Sends the data and the status of a finished command.
void Connection::Complete(Command& c) {
  const scsi::Task& t = c.task;
  const uint32_t edtl = c.pdu.expected_data_length;
  const uint32_t sent = c.pdu.read ? std::min(t.data_in_bytes, edtl) : 0;
  uint32_t residual = c.residual;
  bool underflow = c.underflow, overflow = c.overflow;
  if (c.pdu.read) {  // RFC 7143 11.4.5: against what the command had to return
    const uint32_t wanted = t.data_in_wanted;
    overflow = wanted > edtl;
    underflow = wanted < edtl;
    residual = overflow ? wanted - edtl : edtl - wanted;
  }
  const bool good = t.status == scsi::Status::kGood;
  // Data-In PDUs of at most the initiator's MaxRecvDataSegmentLength; the last one carries
  // the status when there is no sense to send (RFC 7143 11.7.4 phase collapse).
  auto keep = std::shared_ptr<void>(std::make_shared<std::vector<uint8_t>>(std::move(c.in)));
  const auto& buf = *std::static_pointer_cast<std::vector<uint8_t>>(keep);
  uint32_t off = 0, datasn = 0;
  while (off < sent) {
    const uint32_t n = std::min(params_.max_send_data_segment_length, sent - off);
    const bool last = off + n == sent;
    OutPdu out;
    Encode(DataInPdu{.final = last,
                     .status_present = last && good,
                     .overflow = overflow,
                     .underflow = underflow,
                     .status = static_cast<uint8_t>(t.status),
                     .lun = c.pdu.lun,
                     .itt = c.pdu.itt,
                     .seq = NextSeq(last && good),
                     .datasn = datasn++,
                     .buffer_offset = off,
                     .residual_count = residual},
           &out.bhs);
    out.data = std::span(buf.data() + off, n);
    out.keep = keep;
    Send(std::move(out));
    off += n;
  }
  if (sent > 0 && good) return;
  OutPdu out;
  Encode(ScsiResponsePdu{.overflow = overflow,
                         .underflow = underflow,
                         .status = static_cast<uint8_t>(t.status),
                         .itt = c.pdu.itt,
                         .seq = NextSeq(true),
                         .expdatasn = datasn,
                         .residual_count = residual},
         &out.bhs);
  if (t.has_sense) {
    uint8_t sense[scsi::kMaxSenseBytes];
    size_t n = scsi::EncodeSense(t.sense, t.descriptor_sense, sense);
    out.owned.resize(2 + n);  // RFC 7143 11.4.7: SenseLength, then the sense data
    StoreBe16(out.owned.data(), static_cast<uint16_t>(n));
    std::memcpy(out.owned.data() + 2, sense, n);
  }
  Send(std::move(out));
}

void Connection::NexusLoss() {
  for (auto& [itt, c] : commands_) {
    (void)itt;
    if (c->task.cancel) c->task.cancel();
  }
  if (!full_feature_) return;
  for (const auto& [n, v] : luns_) {
    (void)n;
    v.lu->NexusLost(nexus_);
  }
  for (const auto& [n, v] : luns_) {
    (void)n;
    // One copy manager serves every LU: tell it once.
    if (scsi::CopyManager* m = v.lu->copy_manager()) return m->NexusLost(nexus_);
  }
}

void Connection::EndAborted(scsi::Task& t) {
  t.status = scsi::Status::kTaskAborted;
  t.has_sense = false;
  t.data_in_bytes = 0;
  t.data_in_wanted = 0;
}

void Connection::AbortTasksFromElsewhere(const scsi::LogicalUnit* lu,
                                         const std::vector<uint64_t>& nexuses, uint64_t before) {
  if (closed_ ||
      (!nexuses.empty() && std::find(nexuses.begin(), nexuses.end(), nexus_) == nexuses.end())) {
    return;
  }
  for (auto it = commands_.begin(); it != commands_.end();) {
    Command& c = *it->second;
    if (c.lu != lu || c.aborted || c.aborted_by_other || c.seq >= before) {
      ++it;
      continue;
    }
    c.aborted_by_other = true;
    if (c.task.cancel) c.task.cancel();  // e.g. a copy in progress: it ends soon
    if (c.received < c.out.size()) {     // still waiting for data: answer now
      std::shared_ptr<Command> keep = it->second;
      it = commands_.erase(it);
      EndAborted(keep->task);
      Complete(*keep);
      continue;
    }
    ++it;  // executing: TASK ABORTED once the logical unit is done with it
  }
}

// RFC 7143 11.5 / 11.6 task management (SAM-5 7).
void Connection::OnTaskMgmt(const TaskMgmtRequestPdu& p) {
  CheckCmdSn(p.cmdsn, p.immediate);
  uint8_t response = 0;  // function complete
  uint64_t lun = 0;
  const bool lun_ok = scsi::DecodeLun(p.lun, &lun);
  size_t matched = 0;
  bool cold_reset = false;
  auto abort_if = [&](auto pred) {
    for (auto it = commands_.begin(); it != commands_.end();) {
      if (pred(*it->second)) {
        ++matched;
        it->second->aborted = true;                              // its response is never sent
        if (it->second->task.cancel) it->second->task.cancel();  // e.g. a copy in progress
        if (it->second->received < it->second->out.size()) {
          it = commands_.erase(it);  // still waiting for data: drop it now
          continue;
        }
      }
      ++it;
    }
  };
  switch (static_cast<TmfFunction>(p.function)) {
    case TmfFunction::kAbortTask:
      abort_if([&](const Command& c) { return c.pdu.itt == p.referenced_task_tag; });
      // RFC 7143 11.6.1: a task that already completed (its response was sent) no longer
      // exists.
      if (matched == 0) response = 1;
      break;
    case TmfFunction::kAbortTaskSet:
    case TmfFunction::kClearTaskSet:
    case TmfFunction::kLogicalUnitReset:
      if (!lun_ok || !luns_.contains(lun)) {
        response = 2;  // LUN does not exist
        break;
      }
      abort_if([&](const Command& c) { return c.lun == lun; });
      // SAM-5 7.3 / 7.6: with one task set for all nexuses (TST 000b), CLEAR TASK SET and
      // LOGICAL UNIT RESET abort the other nexuses' tasks too; ABORT TASK SET only ours.
      if (static_cast<TmfFunction>(p.function) != TmfFunction::kAbortTaskSet) {
        server_->AbortTasks(luns_[lun].lu.get(), {}, this);
      }
      if (static_cast<TmfFunction>(p.function) == TmfFunction::kLogicalUnitReset) {
        luns_[lun].lu->Reset();
      }
      break;
    case TmfFunction::kTargetWarmReset:
    case TmfFunction::kTargetColdReset:
      abort_if([](const Command&) { return true; });
      if (target_ != nullptr) {
        for (const auto& [n, tl] : target_->Luns()) {
          (void)n;
          server_->AbortTasks(tl.lu.get(), {}, this);
          tl.lu->Reset();
        }
      }
      // RFC 7143 11.5.1: after a cold reset the target drops every connection of the
      // target, this one once its response is out.
      if (static_cast<TmfFunction>(p.function) == TmfFunction::kTargetColdReset) {
        cold_reset = true;
        if (target_ != nullptr) server_->CloseSessionsOf(target_.get(), this, "target cold reset");
      }
      break;
    case TmfFunction::kTaskReassign: response = 4; break;  // needs ERL 2
    default: response = 5; break;                          // not supported
  }
  OutPdu out;
  Encode(TaskMgmtResponsePdu{.response = response, .itt = p.itt, .seq = NextSeq(true)}, &out.bhs);
  out.close_after = cold_reset;
  Send(std::move(out));
}

}  // namespace ferry::iscsi
