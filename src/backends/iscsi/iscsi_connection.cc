#include "backends/iscsi/iscsi_connection.h"

// clang-format off
#include <poll.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
// clang-format on

#include <cstring>

#include "backends/iscsi/iscsi_sense.h"
#include "base/log.h"

namespace ferry::backends::iscsi {
namespace {

constexpr int kMaxRetries = 4;  // UNIT ATTENTION, NOT READY (becoming ready)

// The connection inside iscsi_service() on this thread: libiscsi's log hook has no context
// argument, and reconnects are only reported there.
thread_local Connection* t_servicing = nullptr;

void LogHook(int /*level*/, const char* message) {
  if (t_servicing != nullptr) t_servicing->OnLibiscsiLog(message);
}

void NopDone(iscsi_context*, int, void*, void*) {}

void PutBe(uint8_t* p, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}

}  // namespace

bool ConfigureContext(iscsi_context* ctx, const SessionConfig& cfg) {
  if (iscsi_set_targetname(ctx, cfg.url.target_iqn.c_str()) != 0) return false;
  if (iscsi_set_session_type(ctx, ISCSI_SESSION_NORMAL) != 0) return false;
  if (iscsi_set_header_digest(ctx, ISCSI_HEADER_DIGEST_NONE_CRC32C) != 0) return false;
  if (!cfg.chap_user.empty()) {
    if (iscsi_set_initiator_username_pwd(ctx, cfg.chap_user.c_str(), cfg.chap_secret.c_str()) !=
        0) {
      return false;
    }
    if (!cfg.mutual_user.empty() && iscsi_set_target_username_pwd(ctx, cfg.mutual_user.c_str(),
                                                                  cfg.mutual_secret.c_str()) != 0) {
      return false;
    }
  }
  iscsi_set_timeout(ctx, cfg.timeout_s);
  iscsi_set_tcp_syncnt(ctx, 2);  // an unreachable host fails in seconds, not minutes
  return true;
}

// One command on the wire: a block request or a channel command. Pooled per connection.
struct Connection::Cmd {
  Connection* conn = nullptr;
  uint64_t lun = 0;
  uint8_t cdb[16] = {};
  uint8_t cdb_len = 0;
  int dir = SCSI_XFER_NONE;
  uint32_t xfer_len = 0;
  std::vector<scsi_iovec> iov;
  block::IoRequest* req = nullptr;
  ScsiCommand* chan = nullptr;
  scsi_task* task = nullptr;  // while on the wire
  int retries = 0;
  bool aborted = false;
  uint8_t param[24] = {};  // UNMAP parameter list
};

Connection::Connection(std::shared_ptr<const SessionConfig> cfg, io::Reactor* reactor,
                       std::shared_ptr<std::atomic<bool>> owner_alive)
    : cfg_(std::move(cfg)), reactor_(reactor), owner_alive_(std::move(owner_alive)) {
  zero_block_.assign(cfg_->block_size, 0);
  poll_op_.done = [this](int32_t res) {
    poll_id_ = 0;
    Service(res < 0 ? POLLERR : res);
  };
}

Connection::~Connection() {
  closing_ = true;
  if (io::Reactor::Current() == reactor_) {
    if (poll_id_ != 0) reactor_->CancelPoll(poll_id_);
    if (tick_timer_ != 0) reactor_->CancelTimer(tick_timer_);
    if (recheck_timer_ != 0) reactor_->CancelTimer(recheck_timer_);
  }
  // Else the owner thread has exited: its reactor runs nothing of ours any more.
  if (ctx_ != nullptr) iscsi_destroy_context(ctx_);
}

Connection::Cmd* Connection::NewCmd() {
  if (free_cmds_.empty()) {
    all_cmds_.push_back(std::make_unique<Cmd>());
    free_cmds_.push_back(all_cmds_.back().get());
  }
  Cmd* c = free_cmds_.back();
  free_cmds_.pop_back();
  c->conn = this;
  c->req = nullptr;
  c->chan = nullptr;
  c->task = nullptr;
  c->retries = 0;
  c->aborted = false;
  c->iov.clear();
  std::memset(c->cdb, 0, sizeof(c->cdb));
  c->cdb_len = 0;
  c->dir = SCSI_XFER_NONE;
  c->xfer_len = 0;
  return c;
}

void Connection::ReleaseCmd(Cmd* c) {
  c->req = nullptr;
  c->chan = nullptr;
  free_cmds_.push_back(c);
}

void Connection::SubmitBlock(block::IoRequest& req) {
  Cmd* c = NewCmd();
  c->req = &req;
  c->lun = cfg_->url.lun;
  const uint32_t bs = cfg_->block_size;
  const uint64_t lba = req.lba.value();
  const uint64_t blocks = req.blocks.value();
  switch (req.op) {
    case block::IoOp::kRead:
    case block::IoOp::kWrite: {
      const bool write = req.op == block::IoOp::kWrite;
      c->cdb[0] = write ? 0x8a : 0x88;  // SBC-3 5.36 WRITE(16), 5.16 READ(16)
      if (write && (req.flags & block::kIoFua)) c->cdb[1] = 0x08;
      PutBe(c->cdb + 2, lba, 8);
      PutBe(c->cdb + 10, blocks, 4);
      c->cdb_len = 16;
      c->dir = write ? SCSI_XFER_WRITE : SCSI_XFER_READ;
      c->xfer_len = static_cast<uint32_t>(blocks * bs);
      for (uint32_t i = 0; i < req.iovcnt; ++i) {
        c->iov.push_back({req.iov[i].iov_base, req.iov[i].iov_len});
      }
      break;
    }
    case block::IoOp::kFlush:
      c->cdb[0] = 0x91;  // SBC-3 5.23 SYNCHRONIZE CACHE(16), whole medium
      c->cdb_len = 16;
      c->dir = SCSI_XFER_NONE;
      break;
    case block::IoOp::kDiscard:
      c->cdb[0] = 0x42;  // SBC-3 5.28 UNMAP, one block descriptor
      PutBe(c->cdb + 7, sizeof(c->param), 2);
      c->cdb_len = 10;
      std::memset(c->param, 0, sizeof(c->param));
      PutBe(c->param, sizeof(c->param) - 2, 2);
      PutBe(c->param + 2, 16, 2);
      PutBe(c->param + 8, lba, 8);
      PutBe(c->param + 16, blocks, 4);
      c->dir = SCSI_XFER_WRITE;
      c->xfer_len = sizeof(c->param);
      c->iov.push_back({c->param, sizeof(c->param)});
      break;
    case block::IoOp::kWriteZeroes:
      c->cdb[0] = 0x93;  // SBC-3 5.45 WRITE SAME(16) of one zero block
      if (cfg_->write_same_unmap) c->cdb[1] = 0x08;
      PutBe(c->cdb + 2, lba, 8);
      PutBe(c->cdb + 10, blocks, 4);
      c->cdb_len = 16;
      c->dir = SCSI_XFER_WRITE;
      c->xfer_len = bs;
      c->iov.push_back({zero_block_.data(), bs});
      break;
    case block::IoOp::kWriteSame:
    case block::IoOp::kCompareAndWrite:  // not offered (limits): the caller does the work
      return FailLater(c, IoStatus::kNotSupported);
  }
  Send(c);
}

void Connection::Execute(uint64_t lun, ScsiCommand& cmd) {
  Cmd* c = NewCmd();
  c->chan = &cmd;
  c->lun = lun;
  std::memcpy(c->cdb, cmd.cdb, sizeof(cmd.cdb));
  c->cdb_len = cmd.cdb_len;
  cmd.data_in.clear();
  if (!cmd.data_out.empty()) {
    c->dir = SCSI_XFER_WRITE;
    c->xfer_len = static_cast<uint32_t>(cmd.data_out.size());
    c->iov.push_back({const_cast<uint8_t*>(cmd.data_out.data()), cmd.data_out.size()});
  } else if (cmd.data_in_len > 0) {
    c->dir = SCSI_XFER_READ;
    c->xfer_len = cmd.data_in_len;
    cmd.data_in.resize(cmd.data_in_len);
    c->iov.push_back({cmd.data_in.data(), cmd.data_in.size()});
  }
  channel_cmds_[&cmd] = c;
  if (cmd.cdb_len < 6 || cmd.cdb_len > 16) {
    FailLater(c, IoStatus::kInvalid);
    return;
  }
  Send(c);
}

void Connection::Abort(ScsiCommand& cmd) {
  auto it = channel_cmds_.find(&cmd);
  if (it == channel_cmds_.end()) return;
  Cmd* c = it->second;
  c->aborted = true;
  if (c->task == nullptr || ctx_ == nullptr) {  // not sent yet: finish it here
    for (auto w = waiting_.begin(); w != waiting_.end(); ++w) {
      if (*w == c) {
        waiting_.erase(w);
        FailLater(c, IoStatus::kAborted);
        break;
      }
    }
    return;
  }
  // SAM-5 7.2 ABORT TASK. A target that aborted the task sends no response for it, so once
  // the task management function has answered, the command is cancelled here (AbortDone).
  auto* pending = new PendingAbort{this, &cmd, c->task};
  if (iscsi_task_mgmt_abort_task_async(ctx_, c->task, &Connection::AbortDone, pending) != 0) {
    delete pending;
  }
  UpdatePoll(false);
}

void Connection::AbortDone(iscsi_context* ctx, int, void*, void* priv) {
  std::unique_ptr<PendingAbort> p(static_cast<PendingAbort*>(priv));
  Connection* self = p->conn;
  if (self->closing_) return;
  auto it = self->channel_cmds_.find(p->cmd);
  // Still the same command, still waiting for its answer: it will not come.
  if (it == self->channel_cmds_.end() || it->second->task != p->task) return;
  iscsi_scsi_cancel_task(ctx, p->task);  // its callback runs: kAborted
}

void Connection::Send(Cmd* c) {
  if (ctx_ == nullptr) StartSession();
  if (!logged_in_) {
    waiting_.push_back(c);
    return;
  }
  Dispatch(c);
}

void Connection::Dispatch(Cmd* c) {
  scsi_task* task = scsi_create_task(c->cdb_len, c->cdb, c->dir, static_cast<int>(c->xfer_len));
  if (task == nullptr) {
    FailLater(c, IoStatus::kNoResources);
    return;
  }
  if (!c->iov.empty()) {
    if (c->dir == SCSI_XFER_READ) {
      scsi_task_set_iov_in(task, c->iov.data(), static_cast<int>(c->iov.size()));
    } else {
      scsi_task_set_iov_out(task, c->iov.data(), static_cast<int>(c->iov.size()));
    }
  }
  c->task = task;
  if (iscsi_scsi_command_async(ctx_, static_cast<int>(c->lun), task, &Connection::OnTaskDone,
                               nullptr, c) != 0) {
    c->task = nullptr;
    scsi_free_scsi_task(task);
    FailLater(c, IoStatus::kIoError);
    return;
  }
  UpdatePoll(false);
}

void Connection::OnTaskDone(iscsi_context*, int status, void*, void* priv) {
  auto* c = static_cast<Cmd*>(priv);
  Connection* self = c->conn;
  scsi_task* task = c->task;
  c->task = nullptr;
  if (task == nullptr) return;  // already failed by DropSession
  if (self->closing_) {
    scsi_free_scsi_task(task);
    return;
  }
  if (c->chan != nullptr) {
    IoStatus transport = IoStatus::kOk;
    if (status == SCSI_STATUS_TIMEOUT) transport = IoStatus::kTimeout;
    if (status == SCSI_STATUS_CANCELLED || status == SCSI_STATUS_ERROR) {
      transport = c->aborted ? IoStatus::kAborted : IoStatus::kIoError;
    }
    self->FinishChannel(c, transport, task, status);
  } else {
    self->HandleBlockResult(c, status, task);
  }
}

void Connection::HandleBlockResult(Cmd* c, int status, scsi_task* task) {
  IoStatus st = IoStatus::kIoError;
  if (status == SCSI_STATUS_TIMEOUT) {
    st = IoStatus::kTimeout;
  } else if (status != SCSI_STATUS_CANCELLED && status != SCSI_STATUS_ERROR) {
    SenseView sense{.key = static_cast<uint8_t>(task->sense.key),
                    .asc = static_cast<uint8_t>(task->sense.ascq >> 8),
                    .ascq = static_cast<uint8_t>(task->sense.ascq & 0xff)};
    SenseVerdict v = ClassifyScsiResult(static_cast<uint8_t>(status), sense);
    int limit = v.action == SenseAction::kRetryOnce ? 1 : kMaxRetries;
    if (v.action != SenseAction::kComplete && c->retries < limit) {
      ++c->retries;
      if (v.action == SenseAction::kRetryCapacityChanged) RereadCapacity();
      scsi_free_scsi_task(task);
      Dispatch(c);
      return;
    }
    st = v.status;
    if (st == IoStatus::kOk && task->residual_status == SCSI_RESIDUAL_UNDERFLOW &&
        task->residual > 0 && c->dir != SCSI_XFER_NONE && c->req->op != block::IoOp::kDiscard &&
        c->req->op != block::IoOp::kWriteZeroes) {
      st = IoStatus::kIoError;  // a short transfer is not a completed request
    }
  }
  scsi_free_scsi_task(task);
  FinishBlock(c, st);
}

void Connection::FinishBlock(Cmd* c, IoStatus st) {
  block::IoRequest* req = c->req;
  ReleaseCmd(c);
  req->done(st);
}

void Connection::FinishChannel(Cmd* c, IoStatus transport, scsi_task* task, int status) {
  ScsiCommand& cmd = *c->chan;
  channel_cmds_.erase(&cmd);
  cmd.transport = transport;
  cmd.residual = 0;
  if (transport == IoStatus::kOk && task != nullptr) {
    cmd.scsi_status = static_cast<uint8_t>(status);
    cmd.sense = SenseView{.key = static_cast<uint8_t>(task->sense.key),
                          .asc = static_cast<uint8_t>(task->sense.ascq >> 8),
                          .ascq = static_cast<uint8_t>(task->sense.ascq & 0xff)};
    if (cmd.sense.key == 0x06 && cmd.sense.asc == 0x2a && cmd.sense.ascq == 0x09) {
      RereadCapacity();  // the caller sees the UNIT ATTENTION; the device learns the size
    }
    if (task->residual_status == SCSI_RESIDUAL_UNDERFLOW) {
      cmd.residual = static_cast<uint32_t>(task->residual);
    }
    if (cmd.data_in_len > 0)
      cmd.data_in.resize(cmd.data_in_len - std::min(cmd.residual, cmd.data_in_len));
  } else {
    cmd.data_in.clear();
  }
  if (task != nullptr) scsi_free_scsi_task(task);
  ReleaseCmd(c);
  cmd.done();
}

void Connection::FailLater(Cmd* c, IoStatus st) {
  reactor_->RunAfter(std::chrono::nanoseconds(0), [this, c, st] {
    if (c->chan != nullptr) {
      FinishChannel(c, st, nullptr, 0);
    } else {
      FinishBlock(c, st);
    }
  });
}

void Connection::StartSession() {
  ctx_ = iscsi_create_context(cfg_->initiator_name.c_str());
  if (ctx_ == nullptr) {
    drop_pending_ = true;
    reactor_->RunAfter(std::chrono::nanoseconds(0), [this] { DropSession(); });
    return;
  }
  logged_in_ = false;
  ConfigureContext(ctx_, *cfg_);
  iscsi_set_reconnect_max_retries(ctx_, kReconnectRetries);
  iscsi_set_log_level(ctx_, 2);  // reconnects are only reported through the log hook
  iscsi_set_log_fn(ctx_, LogHook);
  if (iscsi_full_connect_async(ctx_, cfg_->url.portal().c_str(), static_cast<int>(cfg_->url.lun),
                               &Connection::OnConnected, this) != 0) {
    FERRY_LOG_WARN("iscsi {}: cannot start a session: {}", cfg_->url_text, iscsi_get_error(ctx_));
    drop_pending_ = true;
    reactor_->RunAfter(std::chrono::nanoseconds(0), [this] { DropSession(); });
    return;
  }
  UpdatePoll(true);
  if (tick_timer_ == 0) {
    tick_timer_ = reactor_->RunAfter(std::chrono::seconds(1), [this] { Tick(); });
  }
}

void Connection::OnConnected(iscsi_context* ctx, int status, void*, void* priv) {
  auto* self = static_cast<Connection*>(priv);
  if (self->closing_) return;
  if (status == SCSI_STATUS_GOOD && !self->logged_in_) {
    self->logged_in_ = true;
    FERRY_LOG_DEBUG("iscsi {}: session up on reactor {}", self->cfg_->url_text,
                    self->reactor_->name());
    // The LU may have been resized while no session of this reactor was logged in (a unit
    // attention only reaches nexuses that knew the old size): ask, before anything else.
    self->RereadCapacity();
    std::deque<Cmd*> ready;
    ready.swap(self->waiting_);
    for (Cmd* c : ready) self->Dispatch(c);
    return;
  }
  if (status != SCSI_STATUS_GOOD) {
    FERRY_LOG_WARN("iscsi {}: session failed: {}", self->cfg_->url_text, iscsi_get_error(ctx));
    self->drop_pending_ = true;  // acted on once iscsi_service() has returned
  }
}

// Ends the session: every command in flight or waiting completes with kIoError; the next
// request starts a new session. Never called inside iscsi_service().
void Connection::DropSession() {
  drop_pending_ = false;
  if (poll_id_ != 0) reactor_->CancelPoll(poll_id_);
  poll_id_ = 0;
  iscsi_context* ctx = ctx_;
  ctx_ = nullptr;
  logged_in_ = false;
  if (reconnecting_) {
    FERRY_LOG_ERROR("iscsi {}: gave up reconnecting; requests fail until a new session is up",
                    cfg_->url_text);
  }
  reconnecting_ = false;
  // Commands libiscsi cancels while the context goes complete with kIoError through their
  // callbacks, and those it drops silently are swept up below. The waiting ones are taken
  // first: those callbacks may submit again, and such requests wait for the next session.
  std::vector<Cmd*> victims(waiting_.begin(), waiting_.end());
  waiting_.clear();
  if (ctx != nullptr) iscsi_destroy_context(ctx);
  for (auto& c : all_cmds_) {
    if (c->task != nullptr) {
      scsi_free_scsi_task(c->task);
      c->task = nullptr;
      victims.push_back(c.get());
    }
  }
  for (Cmd* c : victims) {
    if (c->chan != nullptr) {
      FinishChannel(c, IoStatus::kIoError, nullptr, 0);
    } else {
      FinishBlock(c, IoStatus::kIoError);
    }
  }
}

void Connection::Service(int revents) {
  if (ctx_ == nullptr) return;
  t_servicing = this;
  int rc = iscsi_service(ctx_, revents);
  t_servicing = nullptr;
  if (rc < 0 && !drop_pending_) {
    if (logged_in_) {
      FERRY_LOG_ERROR("iscsi {}: session lost: {}", cfg_->url_text, iscsi_get_error(ctx_));
    } else {
      FERRY_LOG_WARN("iscsi {}: login failed: {}", cfg_->url_text, iscsi_get_error(ctx_));
    }
    drop_pending_ = true;
  }
  if (drop_pending_) {
    DropSession();
    return;
  }
  if (reread_capacity_ && logged_in_) {
    reread_capacity_ = false;
    RereadCapacity();
  }
  UpdatePoll(false);
}

void Connection::UpdatePoll(bool force) {
  if (ctx_ == nullptr) return;
  int fd = iscsi_get_fd(ctx_);
  int events = iscsi_which_events(ctx_);
  if (poll_id_ != 0) {
    if (!force && fd == armed_fd_ && events == armed_events_) return;
    reactor_->CancelPoll(poll_id_);
    poll_id_ = 0;
  }
  if (fd < 0 || events == 0) {
    // A reconnect backing off: libiscsi asks to be called again in >= 100 ms.
    if (recheck_timer_ == 0) {
      recheck_timer_ = reactor_->RunAfter(std::chrono::milliseconds(100), [this] {
        recheck_timer_ = 0;
        Service(0);
      });
    }
    return;
  }
  armed_fd_ = fd;
  armed_events_ = events;
  poll_id_ = reactor_->PollFd(&poll_op_, fd, static_cast<uint32_t>(events));
}

void Connection::Tick() {
  tick_timer_ = 0;
  if (ctx_ == nullptr) return;  // StartSession() ticks again
  Service(0);                   // libiscsi's command and login timeouts
  if (ctx_ == nullptr) return;
  if (logged_in_ && ++ticks_ % 5 == 0 && iscsi_queue_length(ctx_) == 0) {
    iscsi_nop_out_async(ctx_, NopDone, nullptr, 0, nullptr);
  }
  UpdatePoll(true);  // re-arm on whatever socket the fd number names now (dup2)
  tick_timer_ = reactor_->RunAfter(std::chrono::seconds(1), [this] { Tick(); });
}

void Connection::RereadCapacity() {
  auto* cmd = new ScsiCommand();
  cmd->cdb[0] = 0x9e;  // SBC-3 5.16 READ CAPACITY(16)
  cmd->cdb[1] = 0x10;
  cmd->cdb[13] = 32;
  cmd->cdb_len = 16;
  cmd->data_in_len = 32;
  std::shared_ptr<const SessionConfig> cfg = cfg_;
  cmd->done = [cmd, cfg] {
    if (cmd->transport == IoStatus::kOk && cmd->scsi_status == kScsiStatusGood &&
        cmd->data_in.size() >= 12) {
      uint64_t last = 0;
      for (int i = 0; i < 8; ++i) last = last << 8 | cmd->data_in[i];
      uint32_t bs = 0;
      for (int i = 8; i < 12; ++i) bs = bs << 8 | cmd->data_in[i];
      if (cfg->capacity_changed) cfg->capacity_changed(last + 1, bs);
    } else {
      FERRY_LOG_WARN("iscsi {}: the target's capacity changed, and READ CAPACITY(16) failed",
                     cfg->url_text);
    }
    delete cmd;
  };
  Execute(cfg_->url.lun, *cmd);
}

void Connection::OnLibiscsiLog(const char* message) {
  // Only the reconnect lines are forwarded: other libiscsi lines may carry login keys.
  if (std::strstr(message, "reconnect initiated") != nullptr) {
    if (!reconnecting_) {
      FERRY_LOG_WARN("iscsi {}: connection dropped, reconnecting (at most {} tries)",
                     cfg_->url_text, kReconnectRetries);
    }
    reconnecting_ = true;
  } else if (std::strstr(message, "reconnect was successful") != nullptr) {
    FERRY_LOG_WARN("iscsi {}: connection is back", cfg_->url_text);
    reconnecting_ = false;
    reread_capacity_ = true;  // as after a first login; sent once iscsi_service() returns
  } else if (std::strstr(message, "reconnect try") != nullptr) {
    FERRY_LOG_DEBUG("iscsi {}: {}", cfg_->url_text, message);
  }
}

}  // namespace ferry::backends::iscsi
