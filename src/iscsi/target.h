// An iSCSI target (RFC 7143) serving SCSI logical units, and the server that accepts its
// connections.
//
// Threads: a Server accepts on one reactor and spreads connections over its worker reactors
// (one per core; a connection stays on the reactor it was given). Targets, options and
// the ACLs are read-only once connections arrive; the connection set, statistics and the
// session registry are shared and locked or atomic.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/reactor.h"
#include "io/tcp.h"
#include "iscsi/acl.h"
#include "iscsi/admission.h"
#include "iscsi/chap.h"
#include "iscsi/negotiation.h"
#include "iscsi/session_stats.h"
#include "scsi/logical_unit.h"

namespace ferry::iscsi {

class Connection;

struct SessionInfo {
  std::string initiator;
  std::string target;  // empty for discovery sessions
  std::string peer;
  std::string portal;  // the local portal
  std::string isid;    // hex
  uint16_t tsih = 0;
  bool discovery = false;
  bool header_digest = false;
  bool data_digest = false;
  bool chap = false;
  uint64_t commands = 0;
  // Block I/O of the session (SessionIo).
  uint64_t read_ops = 0, read_bytes = 0, write_ops = 0, write_bytes = 0;
  std::vector<uint64_t> luns;  // initiator-visible LUNs
};

// A target portal group (RFC 7143 4.4.1): the portals ("ip:port" as bound) through which
// the target is reached, under one tag.
//
// The group is also one SCSI target port and one target port group (scsi/alua.h): its tag
// is the relative target port identifier and the group number, and every LU of the target
// starts in `alua_state` on it.
struct PortalGroup {
  uint16_t tag = 1;
  std::vector<std::string> portals;
  scsi::AluaState alua_state = scsi::AluaState::kActiveOptimized;
  bool preferred = false;
};

struct TargetLun {
  std::shared_ptr<scsi::LogicalUnit> lu;
  bool write_protect = false;  // for every initiator
};

struct TargetConfig {
  std::string name;   // IQN
  std::string alias;  // TargetAlias, optional
  // Empty: one group, tag 1, on every portal the server listens on.
  std::vector<PortalGroup> portal_groups;
  std::map<uint64_t, TargetLun> luns;
  // CHAP required of every initiator (ACL entries without their own credentials).
  std::shared_ptr<const ChapCredentials> chap;
  std::vector<ChapAlgorithm> chap_algorithms = {ChapAlgorithm::kSha3_256, ChapAlgorithm::kSha256,
                                                ChapAlgorithm::kMd5};
  // Empty: every initiator may log in and sees every LUN. Else the first entry that matches
  // decides; an initiator no entry matches may not log in (or discover the target).
  std::vector<Acl> acls;
  TargetPolicy policy;
};

// What one session sees of a target: initiator-visible LUN -> logical unit.
struct SessionLun {
  std::shared_ptr<scsi::LogicalUnit> lu;
  uint64_t target_lun = 0;
  bool write_protect = false;
};
using LunView = std::map<uint64_t, SessionLun>;

class Target {
 public:
  explicit Target(TargetConfig config);
  // The configuration the target started with (its `luns` as they were then: Luns() has
  // the current ones).
  const TargetConfig& config() const { return config_; }

  // The LUN table, changed at run time by the admin socket; thread-safe. Sessions learn
  // of a change through Server::LunsChanged().
  std::map<uint64_t, TargetLun> Luns() const;
  Status MapLun(uint64_t lun, TargetLun tl);  // AlreadyExists when the number is in use
  Status UnmapLun(uint64_t lun);              // NotFound when it is not

  // The ACL entry for this initiator, or nullptr when it may not use the target.
  const Acl* Authorize(std::string_view initiator, const IpAddress& peer) const;
  LunView ViewFor(const Acl& acl) const;
  // The portal group that serves `local_portal`; nullptr when the target is not offered
  // there. A target without groups answers with one group (tag 1, no portals listed: all
  // of the server's).
  const PortalGroup* GroupFor(std::string_view local_portal) const;

 private:
  // Makes the LU reachable through this target's ports (its ALUA target port groups).
  void JoinPortGroups(scsi::LogicalUnit& lu) const;

  TargetConfig config_;
  Acl open_acl_;
  PortalGroup default_group_;
  mutable std::mutex luns_mu_;
  std::map<uint64_t, TargetLun> luns_;  // guarded by luns_mu_
};

struct ServerStats {
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> connections_refused{0};  // logins refused: max_connections sessions
  // Pre-login connections closed by the target (iscsi/admission.h): the oldest when a
  // pre-login budget was full, and those that missed a login deadline.
  std::atomic<uint64_t> prelogin_evicted{0};
  std::atomic<uint64_t> prelogin_timeouts{0};
  std::atomic<uint64_t> logins{0};
  std::atomic<uint64_t> login_failures{0};
  std::atomic<uint64_t> commands{0};
  std::atomic<uint64_t> rejects{0};
  LoginRefusalCounts login_refusals{};  // login_failures by LoginRefusal
};

struct ServerOptions {
  std::shared_ptr<const ChapCredentials> discovery_chap;  // non-null: CHAP for discovery
  std::vector<ChapAlgorithm> chap_algorithms = {ChapAlgorithm::kSha3_256, ChapAlgorithm::kSha256,
                                                ChapAlgorithm::kMd5};
  // Idle connections get a NOP-In after nop_interval; no answer within nop_timeout
  // closes them. Zero disables the pings.
  std::chrono::milliseconds nop_interval{std::chrono::seconds(30)};
  std::chrono::milliseconds nop_timeout{std::chrono::seconds(30)};
  // A connection that has not finished logging in by then is closed (slow or stalled
  // initiators must not hold connections forever).
  std::chrono::milliseconds login_timeout{std::chrono::seconds(15)};
  // A connection whose first whole Login PDU has not arrived by then is closed: idle
  // connections and slow senders (a byte at a time) hold a pre-login slot this long.
  std::chrono::milliseconds first_pdu_timeout{std::chrono::seconds(3)};
  // Logged-in connections (sessions); a login beyond this is refused (target error, out of
  // resources). Connections that have not logged in are not counted here.
  size_t max_connections = 1024;
  // Connections that have not logged in: at most this many in all and from one address;
  // when full, the oldest is closed for the new one (iscsi/admission.h).
  size_t max_prelogin_connections = 512;
  size_t max_prelogin_per_address = 64;
  // At Stop(): how long sessions get to log out before their connections close.
  std::chrono::milliseconds logout_grace{std::chrono::seconds(2)};
};

class Server {
 public:
  // `reactor`: where the server accepts (the caller's). `workers`: where connections run,
  // round robin; empty: on `reactor`.
  Server(io::Reactor* reactor, std::vector<std::shared_ptr<Target>> targets,
         std::vector<io::Reactor*> workers = {});
  explicit Server(io::Reactor* reactor) : Server(reactor, {}) {}
  // Targets are added after Listen() so that their portal groups can name bound ports.
  // Targets change at run time (ferryd's reload) on the listening reactor; logins on other
  // reactors see either the old or the new target, and sessions keep the Target they logged
  // in to alive until they end.
  void AddTarget(std::shared_ptr<Target> t);
  // Puts `t` in place of the target of the same name; every session of that target is
  // checked again (on its reactor): one the new ACL, CHAP credentials or portal groups no
  // longer admit is asked to log out (RFC 7143 11.9.1) and loses its LUNs at once; the
  // others move to `t` with the unit attentions their LUN view calls for (SPC-4 6.33):
  // REPORTED LUNS DATA HAS CHANGED when a LUN appeared, went or now names another logical
  // unit, INQUIRY DATA HAS CHANGED when a LUN's logical unit was reopened under the same
  // identity or its write protection changed, CAPACITY DATA HAS CHANGED when its size did.
  // NotFound when there is no such target.
  Status ReplaceTarget(std::shared_ptr<Target> t);
  // Removes the target: its sessions are asked to log out and lose their LUNs at once.
  Status RemoveTarget(std::string_view name);
  ~Server();

  // Starts listening; returns the bound port (port 0 picks one). Listening reactor only.
  Result<uint16_t> Listen(const std::string& ip, uint16_t port);
  // Serves a connection accepted elsewhere (socket activation, a test or a fuzzer hands it
  // over) exactly as one a listener accepted: `peer` and `local` are "ip:port" of the
  // initiator and of the portal it reached (the portal group and ACLs are chosen by them).
  // Takes ownership of `fd` (any connected stream socket). Listening reactor only.
  void Adopt(int fd, std::string peer, std::string local);
  // Stops listening on `address` (as listen_addresses() names it); connections that came in
  // through it stay. Listening reactor only.
  void StopListening(std::string_view address);
  // Stops accepting and ends every connection (on their reactors): sessions are asked to
  // log out (Async Message, RFC 7143 11.9.1) and closed after `logout_grace` if they do
  // not; connections still logging in close at once. Run the reactors until idle()
  // afterwards. Listening reactor only.
  void Stop();
  bool idle() const;  // thread-safe

  // Thread-safe (copies: targets change at run time).
  std::shared_ptr<const Target> FindTarget(std::string_view name) const;
  // "ip:port" of every listening socket (IPv6 in brackets).
  std::vector<std::string> listen_addresses() const;
  std::vector<std::shared_ptr<Target>> targets() const;
  // Before Listen().
  void set_options(ServerOptions o);
  const ServerOptions& options() const { return options_; }
  std::shared_ptr<const ChapCredentials> discovery_chap() const { return options_.discovery_chap; }
  const std::vector<ChapAlgorithm>& chap_algorithms() const { return options_.chap_algorithms; }
  uint16_t NewTsih();  // thread-safe; never 0
  ServerStats& stats() { return stats_; }
  const ServerStats& stats() const { return stats_; }
  size_t connections() const;  // thread-safe

  // Called by a connection (on its reactor) once it has closed and is idle; it is
  // destroyed later, on that reactor.
  void Reap(Connection* c);
  // Admission (iscsi/admission.h), from a connection on its reactor; thread-safe. Its first
  // whole Login PDU arrived:
  void LoginStarted(const Connection* c);
  // It is about to enter the full feature phase: false refuses the login (max_connections
  // sessions exist), counted and logged with NoteDrop.
  bool StartSession(const Connection* c);
  // The target closes a connection that has not logged in: counted, and logged at a bounded
  // rate (one line per 10 s at most, with the counts since the last line).
  void NoteDrop(PreloginDrop why);
  // A refused login or a protocol error before login: true when it may be logged on a line
  // of its own (20 per 10 s); else it is counted with NoteDrop and false.
  bool MayLogDrop(PreloginDrop why);
  // A connection entering the full feature phase (its reactor): registers the session
  // for Sessions(), and reinstates (RFC 7143 6.3.5): a live session with the same
  // initiator, ISID and target is closed. Unregistered by Reap().
  void RegisterSession(Connection* c, SessionInfo info);
  // One row per logged-in session (admin `sessions`); thread-safe.
  std::vector<SessionInfo> Sessions() const;
  // After Target::MapLun/UnmapLun: every session of `t` rebuilds its LUN view (on its
  // reactor) and gets REPORTED LUNS DATA HAS CHANGED (SPC-4 6.33) on each LUN it sees.
  void LunsChanged(const Target* t);
  // TARGET COLD RESET: closes every session of `t` but `except` (on their reactors).
  void CloseSessionsOf(const Target* t, const Connection* except, std::string_view why);
  // SAM-5 task management that reaches other I_T nexuses (LOGICAL UNIT RESET, CLEAR TASK
  // SET, TARGET WARM RESET, PREEMPT AND ABORT): every connection but `except` aborts, on its
  // reactor, its tasks addressed to `lu` when its nexus is in `nexuses` (empty: every
  // nexus). Those tasks end in TASK ABORTED (the control page's TAS is 1). Returns at once.
  // Commands that arrive after the call are not aborted.
  void AbortTasks(const scsi::LogicalUnit* lu, std::vector<uint64_t> nexuses,
                  const Connection* except);
  uint64_t NextCommandSeq() { return command_seq_.fetch_add(1); }
  // A session's LUN list changed (for Sessions()).
  void UpdateSessionLuns(Connection* c, std::vector<uint64_t> luns);

 private:
  // Runs `fn(connection)` on the connection's reactor if it still exists then.
  void PostTo(const std::shared_ptr<Connection>& c, void (*fn)(Connection&));
  void OnAccept(int fd, std::string peer, size_t listener);
  void LogDrops(const DropLog::Counts& c) const;

  // Posts Connection::Retarget(t) to every session of the target named `name`.
  void RetargetSessions(const std::string& name, const std::shared_ptr<const Target>& t);

  io::Reactor* reactor_;
  mutable std::mutex targets_mu_;
  std::vector<std::shared_ptr<Target>> targets_;  // guarded by targets_mu_
  std::vector<io::Reactor*> workers_;
  std::atomic<size_t> next_worker_{0};
  // By index (a listener's callback knows its index); a listener that stopped stays, closed,
  // with its address empty. Changed on the listening reactor, read anywhere: guarded by
  // targets_mu_.
  std::vector<std::unique_ptr<io::TcpListener>> listeners_;
  std::vector<std::string> addresses_;
  mutable std::mutex mu_;
  std::unordered_map<Connection*, std::shared_ptr<Connection>> conns_;  // guarded by mu_
  std::unordered_map<Connection*, SessionInfo> sessions_;               // guarded by mu_
  std::unordered_map<uint64_t, Connection*> by_id_;                     // guarded by mu_
  Admission admission_;                                                 // guarded by mu_
  uint64_t next_conn_id_ = 1;                                           // listening reactor only
  std::mutex drops_mu_;
  DropLog drops_{std::chrono::seconds(10)};  // guarded by drops_mu_
  std::atomic<uint16_t> next_tsih_{1};
  // Numbers every SCSI command as it arrives, on any connection: AbortTasks aborts only
  // commands numbered below the value it read (the task set as the TMF found it).
  std::atomic<uint64_t> command_seq_{0};
  ServerStats stats_;
  ServerOptions options_;
  bool stopping_ = false;
};

}  // namespace ferry::iscsi
