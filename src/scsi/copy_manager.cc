// The copy manager: the operation records, metrics and the dispatch of the
// THIRD-PARTY COPY OUT / IN service actions (xcopy.cc, odx.cc, copy_results.cc).
#include "scsi/copy_manager.h"

#include <algorithm>

#include "base/endian.h"
#include "base/log.h"
#include "io/reactor.h"
#include "scsi/copy_op.h"
#include "scsi/logical_unit.h"
#include "scsi/token_store.h"

namespace ferry::scsi {

CopyManager::CopyManager(io::Reactor* reactor, CopyManagerOptions options)
    : reactor_(reactor), options_(std::move(options)) {}

CopyManager::~CopyManager() = default;

Result<std::shared_ptr<CopyManager>> CopyManager::Create(io::Reactor* reactor,
                                                         CopyManagerOptions options) {
  if (reactor == nullptr) return InvalidArgument("copy manager: no reactor");
  if (options.default_token_timeout_s == 0 ||
      options.default_token_timeout_s > options.max_token_timeout_s) {
    return InvalidArgument(
        "copy manager: the default token timeout must be from 1 s to the "
        "maximum (" +
        std::to_string(options.max_token_timeout_s) + " s)");
  }
  std::shared_ptr<CopyManager> m(new CopyManager(reactor, options));
  FERRY_ASSIGN_OR_RETURN(m->engine_, copy::CopyEngine::Create(reactor, options.engine));
  m->tokens_ = std::make_unique<TokenStore>(m->options_.token_key, options.max_tokens);
  return m;
}

// SPC-4 6.4 / 6.5, SBC-3 5.x: THIRD-PARTY COPY OUT service actions.
void CopyManager::CopyOut(LogicalUnit& lu, Task& t, TaskDone done) {
  const uint8_t sa = t.cdb[1] & 0x1f;
  switch (sa) {
    case kSaExtendedCopyLid1: return ExtendedCopy(lu, t, std::move(done), false);
    case kSaExtendedCopyLid4: return ExtendedCopy(lu, t, std::move(done), true);
    case kSaPopulateToken: return PopulateToken(lu, t, std::move(done));
    case kSaWriteUsingToken: return WriteUsingToken(lu, t, std::move(done));
    case kSaCopyOperationAbort: AbortCopy(t); break;
    default: t.Fail(InvalidFieldInCdb(1, 4)); break;
  }
  CompleteLater(done);
}

// SPC-4 6.18, SBC-3 5.x: THIRD-PARTY COPY IN service actions.
void CopyManager::CopyIn(LogicalUnit& lu, Task& t) {
  switch (t.cdb[1] & 0x1f) {
    case kSaReceiveCopyStatusLid1: return ReceiveCopyStatusLid1(t);
    case kSaReceiveCopyFailureDetails: return ReceiveFailureDetails(t);
    case kSaReceiveCopyOperatingParameters: return ReceiveOperatingParameters(lu, t);
    case kSaReceiveCopyStatusLid4: return ReceiveCopyStatusLid4(t, false);
    case kSaReceiveRodTokenInformation: return ReceiveCopyStatusLid4(t, true);
    case kSaReportAllRodTokens: return ReportAllRodTokens(lu, t);
    default: return t.Fail(InvalidFieldInCdb(1, 4));
  }
}

// SPC-4 6.3 COPY OPERATION ABORT: the copy keeps what it wrote; its status becomes
// "terminated".
void CopyManager::AbortCopy(Task& t) {
  const uint32_t list_id = LoadBe32(&t.cdb[2]);
  std::shared_ptr<CopyOp> op = FindOp(t.nexus, list_id);
  if (op == nullptr) return t.Fail(InvalidFieldInCdb(2));
  {
    std::lock_guard l(op->mu);
    if (!op->running) return;  // finished: its result stands
  }
  op->Cancel();
}

std::shared_ptr<CopyOp> CopyManager::StartOp(const LogicalUnit& lu, Task& t, uint32_t list_id,
                                             uint8_t service_action, ListIdUsage usage) {
  auto op = std::make_shared<CopyOp>();
  op->nexus = t.nexus;
  op->lu = &lu;
  op->list_id = list_id;
  op->service_action = service_action;
  op->usage = usage;
  std::lock_guard l(mu_);
  op->seq = ++op_seq_;
  if (usage == ListIdUsage::kDisable) {  // no list id: nothing to report later
    unlisted_.push_back(op);
    return op;
  }
  const auto key = std::make_pair(t.nexus, list_id);
  auto it = ops_.find(key);
  if (it != ops_.end()) {
    std::lock_guard ol(it->second->mu);
    if (it->second->running) {
      // SPC-4 6.4.3.2: a list identifier in use by a copy in progress.
      t.Fail(MakeSense(SenseKey::kIllegalRequest, Asc::kOperationInProgress));
      return nullptr;
    }
  }
  ops_[key] = op;
  // Bound the held records of the nexus: drop its oldest finished ones.
  std::vector<std::pair<uint64_t, std::pair<uint64_t, uint32_t>>> finished;
  size_t count = 0;
  for (auto i = ops_.lower_bound({t.nexus, 0}); i != ops_.end() && i->first.first == t.nexus; ++i) {
    ++count;
    std::lock_guard ol(i->second->mu);
    if (!i->second->running) finished.emplace_back(i->second->seq, i->first);
  }
  std::sort(finished.begin(), finished.end());
  for (size_t i = 0; count > options_.max_records_per_nexus && i < finished.size(); ++i) {
    ops_.erase(finished[i].second);
    --count;
  }
  return op;
}

std::shared_ptr<CopyOp> CopyManager::FindOp(uint64_t nexus, uint32_t list_id) const {
  std::lock_guard l(mu_);
  auto it = ops_.find({nexus, list_id});
  return it == ops_.end() ? nullptr : it->second;
}

void CopyManager::EndOp(const std::shared_ptr<CopyOp>& op) {
  bool failed;
  {
    std::lock_guard ol(op->mu);
    op->running = false;
    op->job.reset();
    failed = op->failed;
  }
  if (op->cancel) {
    n_aborted_++;
  } else if (failed) {
    n_failed_++;
  }
  active_--;
  // SPC-4 6.4.3.2: LIST ID USAGE 10b: nothing is held once the copy is done.
  if (op->usage != ListIdUsage::kDiscard) return;
  std::lock_guard l(mu_);
  auto it = ops_.find({op->nexus, op->list_id});
  if (it != ops_.end() && it->second == op) ops_.erase(it);
}

void CopyManager::NexusLost(uint64_t nexus) {
  std::lock_guard l(mu_);
  for (auto i = ops_.lower_bound({nexus, 0}); i != ops_.end() && i->first.first == nexus;) {
    // Background copies go on (COPY OPERATION ABORT is how to stop them) but nobody can ask
    // about them any more: they leave the records, and CancelAll and LuReset still see them.
    // The record may hold the last reference: the op (and its mutex) outlives the lock.
    const std::shared_ptr<CopyOp> op = i->second;
    {
      std::lock_guard ol(op->mu);
      if (op->running) unlisted_.push_back(op);
    }
    i = ops_.erase(i);
  }
}

std::vector<std::shared_ptr<CopyOp>> CopyManager::RunningOps() {
  std::vector<std::shared_ptr<CopyOp>> ops;
  std::lock_guard l(mu_);
  std::erase_if(unlisted_, [](const std::weak_ptr<CopyOp>& w) { return w.expired(); });
  for (const auto& [key, op] : ops_) ops.push_back(op);
  for (const auto& w : unlisted_) {
    if (auto op = w.lock()) ops.push_back(std::move(op));
  }
  return ops;
}

void CopyManager::CancelAll() {
  for (const auto& op : RunningOps()) op->Cancel();
}

void CopyManager::LuReset(const LogicalUnit& lu) {
  for (const auto& op : RunningOps()) {
    if (op->lu == &lu) op->Cancel();
  }
}

void CopyManager::NoteWrite(const LogicalUnit& lu, uint64_t lba, uint64_t blocks) {
  tokens_->NoteWrite(&lu, lba, blocks, nullptr);
}

void CopyManager::CountCopy(const copy::CopyResult& r) {
  const copy::CopyCounters& c = r.counters;
  if (!r.offload_notes.empty()) {
    std::lock_guard l(mu_);
    for (const std::string& note : r.offload_notes) {
      fallbacks_[static_cast<size_t>(OffloadFallbackOf(note))]++;
      std::erase(offload_notes_, note);
      offload_notes_.push_back(note);
    }
    if (offload_notes_.size() > kMaxOffloadNotes) {
      offload_notes_.erase(offload_notes_.begin(),
                           offload_notes_.end() - static_cast<ptrdiff_t>(kMaxOffloadNotes));
    }
  }
  bytes_offloaded_ += c.offloaded_bytes;
  bytes_emulated_ += c.emulated_bytes;
  for (size_t i = 0; i < c.by_mechanism.size(); ++i) by_mechanism_[i] += c.by_mechanism[i];
}

CopyMetrics CopyManager::metrics() const {
  CopyMetrics m;
  m.extended_copy_commands = n_xcopy_;
  m.populate_token_commands = n_populate_;
  m.write_using_token_commands = n_wut_;
  m.failed_commands = n_failed_;
  m.aborted_commands = n_aborted_;
  m.active = active_;
  m.bytes_offloaded = bytes_offloaded_;
  m.bytes_emulated = bytes_emulated_;
  m.bytes_zeroed = bytes_zeroed_;
  for (size_t i = 0; i < m.by_mechanism.size(); ++i) m.by_mechanism[i] = by_mechanism_[i];
  for (size_t i = 0; i < m.fallbacks.size(); ++i) m.fallbacks[i] = fallbacks_[i];
  m.tokens_created = tokens_->created();
  m.tokens_live = tokens_->live();
  m.tokens_revoked = tokens_->revoked();
  {
    std::lock_guard l(mu_);
    m.offload_notes = offload_notes_;
  }
  return m;
}

}  // namespace ferry::scsi
