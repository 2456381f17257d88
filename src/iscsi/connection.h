// One iSCSI connection (and, with MaxConnections=1 and ErrorRecoveryLevel 0, its session):
// PDU framing with digests, the login phase, and the full feature phase (SCSI commands
// with immediate and unsolicited data, R2T, Data-In with status, NOP, Text/SendTargets,
// task management, logout, Reject). RFC 7143.
//
// Runs on the server's reactor; Start() begins reading. The connection closes itself on a
// fatal protocol error or logout, and tells the server when it is idle.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/tcp.h"
#include "iscsi/chap.h"
#include "iscsi/negotiation.h"
#include "iscsi/pdu.h"
#include "iscsi/target.h"
#include "scsi/task.h"

namespace ferry::iscsi {

class Connection {
 public:
  // Runs on `reactor`. `local`: the portal ("ip:port") the connection came in through.
  // `id`: the server's number for it (admission, iscsi/admission.h).
  Connection(Server* server, io::Reactor* reactor, int fd, std::string peer, std::string local,
             uint64_t id = 0);
  ~Connection();
  void Start();
  void Close(std::string_view why);
  // SAM-5 6.3.4 I_T nexus loss: running copies stop, held copy results are dropped.
  void NexusLoss();
  // Server::AbortTasks on this connection's reactor: its tasks on `lu` numbered below
  // `before` (NextCommandSeq) end in TASK ABORTED when its nexus is in `nexuses` (empty: any).
  void AbortTasksFromElsewhere(const scsi::LogicalUnit* lu, const std::vector<uint64_t>& nexuses,
                               uint64_t before);
  // The target is stopping: ask a logged-in session to log out (Async Message, logout
  // requested) and close after the server's logout grace; close anything else now.
  void Shutdown();
  // The session may no longer use its target (reload: removed, or its ACL, CHAP or portal
  // group changed): its LUNs go at once, and it is asked to log out as by Shutdown().
  void Revoke(std::string_view why);
  // Server::ReplaceTarget on this connection's reactor: moves the session to `t` if `t`
  // still admits it as it logged in (ACL entry, CHAP credentials, portal group), with the
  // unit attentions the change of its LUN view calls for; else Revoke().
  void Retarget(std::shared_ptr<const Target> t);
  bool closed() const { return closed_; }
  io::Reactor* reactor() const { return reactor_; }
  uint64_t id() const { return id_; }
  SessionInfo info() const;
  uint64_t commands_seen() const { return commands_seen_.load(std::memory_order_relaxed); }
  const SessionIo& session_io() const { return session_io_; }
  // The target's LUN table changed: rebuild the session's view, and tell the initiator
  // with REPORTED LUNS DATA HAS CHANGED on every LUN it sees now.
  void OnLunsChanged();
  // Sets the session's LUN view and the nexus view copies resolve in.
  void SetLuns(LunView luns);

 private:
  struct Command;
  struct OutPdu {
    Bhs bhs{};
    std::vector<uint8_t> owned;        // data the PDU owns
    std::span<const uint8_t> data;     // data to send (owned or borrowed)
    std::shared_ptr<void> keep;        // keeps borrowed data alive
    bool close_after = false;          // logout response: close once sent
    bool digests = false;              // digests as negotiated (set by Send)
    std::array<uint8_t, 4> hdigest{};  // filled when written
    std::array<uint8_t, 4> ddigest{};
  };

  // Framing (connection.cc).
  void Receive();
  void OnPdu();
  void Dispatch();
  void Send(OutPdu pdu);
  void PumpWrites();
  void Reject(RejectReason r, std::string_view why);
  // Queues `pdu`, stops reading and closes once everything queued is on the wire: how a
  // protocol error ends a connection at ErrorRecoveryLevel 0, with its reason logged (unless
  // `log` is false: before login, Server::MayLogDrop bounds those lines).
  void SendAndClose(OutPdu pdu, std::string why, bool log = true);
  void RejectAndClose(RejectReason r, std::string why, bool log = true);
  SeqNums NextSeq(bool advance_statsn);
  void MaybeReap();

  // Login (login.cc).
  void OnLogin(const LoginRequestPdu& p);
  void LoginFail(const LoginRequestPdu& p, uint8_t status_class, uint8_t detail,
                 std::string_view why, bool log = true);
  bool TakeLoginText(const LoginRequestPdu& p, std::vector<KeyValue>* keys);
  bool IdentifyParties(const LoginRequestPdu& p, const std::vector<KeyValue>& keys);
  bool Authenticate(const LoginRequestPdu& p, const std::vector<KeyValue>& keys,
                    std::vector<KeyValue>* reply);
  void EnterFullFeaturePhase();
  // Closes the connection if it is not logged in `delay` from now (a drop of kind `why`).
  void ArmLoginTimer(std::chrono::nanoseconds delay, PreloginDrop why);

  // NOP-In pings of an idle connection (RFC 7143 11.19): an initiator that does not answer
  // within the timeout is gone, and the connection closes.
  void ArmNopTimer();
  void ArmNopTimer(std::chrono::nanoseconds delay);
  void OnNopTimer();

  // Full feature phase (connection.cc, command.cc).
  bool CheckCmdSn(uint32_t cmdsn, bool immediate);
  void OnText(const TextRequestPdu& p);
  void OnNopOut(const NopOutPdu& p);
  void OnLogout(const LogoutRequestPdu& p);
  void OnTaskMgmt(const TaskMgmtRequestPdu& p);
  static void EndAborted(scsi::Task& t);  // TASK ABORTED status, no data, no sense
  void OnScsiCommand(const ScsiCommandPdu& p);
  void OnDataOut(const DataOutPdu& p);
  void SendR2ts(Command& c);
  void FitWriteToEdtl(Command& c);
  void Execute(std::shared_ptr<Command> c);
  void Complete(Command& c);

  Server* server_;
  io::Reactor* reactor_;
  uint64_t id_;
  std::string peer_;
  std::string local_;
  io::TcpStream stream_;
  bool closed_ = false;
  bool reaped_ = false;
  bool draining_ = false;  // SendAndClose: no more reads
  std::string close_why_;
  std::string logout_why_;  // Revoke(): why the session must log out

  // Receive buffer: [rstart_, rend_) is received and not yet taken as PDUs. It grows to
  // the largest PDU the session allows (MaxRecvDataSegmentLength and digests). Before the
  // full feature phase it starts small (a login PDU is a few hundred bytes; the largest
  // accepted is 48 + 1020 + 8192 bytes), so that pre-login connections cost little.
  static constexpr size_t kReadAhead = 64 * 1024;
  static constexpr size_t kLoginReadAhead = 4096;
  std::vector<uint8_t> rbuf_;
  size_t rstart_ = 0;
  size_t rend_ = 0;
  // The PDU being handled: its header, and the AHS, header digest, data, pad and data
  // digest in rbuf_ (valid until the handler returns).
  Bhs bhs_{};
  std::span<uint8_t> rest_;
  uint32_t ahs_bytes_ = 0;
  uint32_t data_offset_ = 0;  // in rest_: after the AHS and the header digest
  uint32_t data_bytes_ = 0;
  std::span<const uint8_t> data() const { return {rest_.data() + data_offset_, data_bytes_}; }

  // Send queue.
  std::deque<OutPdu> outq_;
  // PDUs queued while a write is in flight go out together in the next sendmsg, up to
  // kMaxWriteBatch of them (outq_ is a deque: queued PDUs do not move, so the iovecs
  // pointing into them stay valid).
  static constexpr size_t kMaxWriteBatch = 32;
  std::array<iovec, kMaxWriteBatch * 5> wiov_{};
  size_t wbatch_ = 0;  // PDUs in the write in flight
  bool writing_ = false;
  // An initiator that sends requests and does not read the answers: above kMaxQueuedBytes
  // queued, reading stops until half of it is on the wire.
  static constexpr size_t kMaxQueuedBytes = 64u << 20;
  size_t queued_bytes_ = 0;
  bool read_paused_ = false;

  // Login and session state.
  bool full_feature_ = false;
  uint8_t login_stage_ = 0;
  bool first_login_pdu_ = true;
  bool identified_ = false;  // initiator and target known, ACL checked
  std::string login_text_;   // accumulated across C=1 PDUs
  Negotiator negotiator_;
  SessionParams params_;
  std::shared_ptr<const Target> target_;  // kept alive: a reload may replace it
  const Acl* acl_ = nullptr;              // in *target_
  uint16_t tpgt_ = 1;
  bool tpgt_sent_ = false;
  enum class AuthState { kNone, kChapStarted, kDone };
  AuthState auth_ = AuthState::kNone;
  std::shared_ptr<const ChapCredentials> chap_creds_;  // non-null: CHAP required
  std::optional<ChapAuthenticator> chap_;
  LunView luns_;  // what this session sees (ACL LUN map)
  // The same LUs as the SCSI core's nexus (scsi/nexus.h): commands are addressed in it, and
  // third-party copy resolves in it. Rebuilt with luns_.
  std::shared_ptr<const scsi::NexusView> view_;
  std::array<uint8_t, 6> isid_{};
  uint16_t tsih_ = 0;
  uint64_t nexus_ = 0;
  uint32_t statsn_ = 1;
  uint32_t expcmdsn_ = 0;
  // The CmdSN window (RFC 7143 4.2.2.1): commands held (in commands_: waiting for data or
  // executing) close it, so at most kCmdWindow non-immediate commands are held, and
  // kImmediateExtra immediate ones beyond them (more get Immediate Command Reject).
  // max_cmdsn_ is the last MaxCmdSN sent; it never moves back.
  static constexpr uint32_t kCmdWindow = 64;
  static constexpr uint32_t kImmediateExtra = 16;
  uint32_t max_cmdsn_ = 0;
  uint32_t next_ttt_ = 1;
  int executing_ = 0;                       // commands inside a logical unit
  std::atomic<uint64_t> commands_seen_{0};  // read by Server::Sessions() on other threads
  SessionIo session_io_;                    // likewise

  // NOP-In pings.
  io::Reactor::Clock::time_point last_rx_{};
  io::Reactor::TimerId nop_timer_ = 0;
  io::Reactor::TimerId login_timer_ = 0;
  io::Reactor::Clock::time_point accepted_{};  // when Start() ran
  uint32_t nop_ttt_ = 0;                       // the outstanding ping's TTT; 0: none
  io::Reactor::Clock::time_point nop_sent_{};

  std::unordered_map<uint32_t, std::shared_ptr<Command>> commands_;  // by ITT
};

}  // namespace ferry::iscsi
