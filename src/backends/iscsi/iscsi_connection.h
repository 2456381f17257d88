// One libiscsi session on one reactor thread (internal to the iSCSI backend).
//
// libiscsi 1.19 has no threads and no locks, so a context is touched only by the reactor
// that created it: IscsiDevice keeps one Connection per submitting reactor. The socket is
// waited on with the reactor's one-shot poll, re-armed after every iscsi_service() with
// iscsi_which_events(); when that is 0 (a reconnect backing off) it is asked again 100 ms
// later. A 1 s tick runs iscsi_service(ctx, 0) for libiscsi's timeouts, sends a NOP-Out
// every 5 s, and re-arms the poll: a reconnect dup2()s a new socket onto the fd number, and
// an armed poll would keep watching the old one.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/iscsi/iscsi_url.h"
#include "backends/iscsi/scsi_channel.h"
#include "ferry/block_device.h"
#include "io/reactor.h"

struct iscsi_context;
struct scsi_task;

namespace ferry::backends::iscsi {

// What every session of one device needs (immutable once Open() has filled it in).
struct SessionConfig {
  std::string url_text;  // for log lines and errors
  IscsiUrl url;
  std::string initiator_name;
  std::string chap_user, chap_secret, mutual_user, mutual_secret;
  int timeout_s = 30;
  uint32_t block_size = 512;
  bool write_same_unmap = false;  // LBPWS: WRITE SAME(16) may deallocate
  // READ CAPACITY's answer after the target reported CAPACITY DATA HAS CHANGED: blocks and
  // block size. Runs on the session's reactor.
  std::function<void(uint64_t num_blocks, uint32_t block_size)> capacity_changed;
};

inline constexpr int kReconnectRetries = 3;

// Configures a fresh context for `cfg` (initiator, target, digests, CHAP, timeouts).
// Returns false with the context's error set.
bool ConfigureContext(iscsi_context* ctx, const SessionConfig& cfg);

class Connection {
 public:
  // `owner_alive` turns false when the reactor's thread exits.
  Connection(std::shared_ptr<const SessionConfig> cfg, io::Reactor* reactor,
             std::shared_ptr<std::atomic<bool>> owner_alive);
  // On the owner thread: closes the session (requests in flight are dropped: a caller bug).
  // Elsewhere, only after the owner thread has exited: closes the socket without touching
  // the reactor.
  ~Connection();

  io::Reactor* reactor() const { return reactor_; }
  bool owner_alive() const { return owner_alive_->load(); }
  // A validated block request (ValidateRequest passed), on the owner thread.
  void SubmitBlock(block::IoRequest& req);
  // ScsiChannel semantics, on the owner thread.
  void Execute(uint64_t lun, ScsiCommand& cmd);
  void Abort(ScsiCommand& cmd);
  // Called from the libiscsi log hook while this connection is being serviced.
  void OnLibiscsiLog(const char* message);

 private:
  struct Cmd;
  static void OnTaskDone(iscsi_context* ctx, int status, void* data, void* priv);
  // ABORT TASK answered: cancels the aborted command locally (the target sends it nothing).
  struct PendingAbort {
    Connection* conn;
    ScsiCommand* cmd;
    scsi_task* task;
  };
  static void AbortDone(iscsi_context* ctx, int status, void* data, void* priv);
  static void OnConnected(iscsi_context* ctx, int status, void* data, void* priv);

  Cmd* NewCmd();
  void ReleaseCmd(Cmd* c);
  void Send(Cmd* c);
  void Dispatch(Cmd* c);
  void FinishBlock(Cmd* c, IoStatus st);
  void FinishChannel(Cmd* c, IoStatus transport, scsi_task* task, int status);
  void HandleBlockResult(Cmd* c, int status, scsi_task* task);
  void FailLater(Cmd* c, IoStatus st);
  void StartSession();
  void DropSession();
  void Service(int revents);
  void UpdatePoll(bool force);
  void Tick();
  void RereadCapacity();

  std::shared_ptr<const SessionConfig> cfg_;
  io::Reactor* reactor_;
  std::shared_ptr<std::atomic<bool>> owner_alive_;
  iscsi_context* ctx_ = nullptr;
  bool logged_in_ = false;
  bool reconnecting_ = false;  // libiscsi reported a reconnect that has not finished
  bool closing_ = false;
  bool drop_pending_ = false;
  bool reread_capacity_ = false;  // a reconnect finished: READ CAPACITY again
  io::UringOp poll_op_;
  io::Reactor::PollId poll_id_ = 0;  // 0: none armed
  int armed_fd_ = -1;
  int armed_events_ = 0;
  io::Reactor::TimerId tick_timer_ = 0;
  io::Reactor::TimerId recheck_timer_ = 0;
  int ticks_ = 0;
  std::deque<Cmd*> waiting_;  // until logged in
  std::vector<std::unique_ptr<Cmd>> all_cmds_;
  std::vector<Cmd*> free_cmds_;
  std::unordered_map<ScsiCommand*, Cmd*> channel_cmds_;
  std::vector<uint8_t> zero_block_;
};

}  // namespace ferry::backends::iscsi
