#include "iscsi/target.h"

#include <unistd.h>

#include <algorithm>

#include "base/log.h"
#include "iscsi/connection.h"

namespace ferry::iscsi {

Target::Target(TargetConfig config) : config_(std::move(config)), luns_(config_.luns) {
  open_acl_.chap = config_.chap;
  for (Acl& a : config_.acls) {
    if (a.chap == nullptr) a.chap = config_.chap;
  }
  for (const auto& [n, tl] : luns_) {
    (void)n;
    if (tl.lu != nullptr) JoinPortGroups(*tl.lu);
  }
}

void Target::JoinPortGroups(scsi::LogicalUnit& lu) const {
  if (config_.portal_groups.empty()) {
    lu.alua().AddPort(default_group_.tag, default_group_.tag, default_group_.alua_state,
                      default_group_.preferred);
  }
  for (const PortalGroup& g : config_.portal_groups) {
    lu.alua().AddPort(g.tag, g.tag, g.alua_state, g.preferred);
  }
}

std::map<uint64_t, TargetLun> Target::Luns() const {
  std::lock_guard<std::mutex> l(luns_mu_);
  return luns_;
}

Status Target::MapLun(uint64_t lun, TargetLun tl) {
  std::lock_guard<std::mutex> l(luns_mu_);
  if (luns_.contains(lun)) {
    return AlreadyExists(config_.name + " already has LUN " + std::to_string(lun));
  }
  if (tl.lu != nullptr) JoinPortGroups(*tl.lu);
  luns_[lun] = std::move(tl);
  return Status::Ok();
}

Status Target::UnmapLun(uint64_t lun) {
  std::lock_guard<std::mutex> l(luns_mu_);
  if (luns_.erase(lun) == 0) return NotFound(config_.name + " has no LUN " + std::to_string(lun));
  return Status::Ok();
}

const Acl* Target::Authorize(std::string_view initiator, const IpAddress& peer) const {
  if (config_.acls.empty()) return &open_acl_;
  for (const Acl& a : config_.acls) {
    if (a.Matches(initiator, peer)) return &a;
  }
  return nullptr;
}

LunView Target::ViewFor(const Acl& acl) const {
  const std::map<uint64_t, TargetLun> luns = Luns();
  LunView v;
  if (acl.map_all_luns) {
    for (const auto& [n, tl] : luns) {
      v[n] = {tl.lu, n, tl.write_protect || acl.write_protect};
    }
    return v;
  }
  for (const auto& [seen_as, m] : acl.luns) {
    auto it = luns.find(m.target_lun);
    if (it == luns.end()) continue;  // not (or no longer) a LUN of the target
    v[seen_as] = {it->second.lu, m.target_lun,
                  it->second.write_protect || acl.write_protect || m.write_protect};
  }
  return v;
}

const PortalGroup* Target::GroupFor(std::string_view local_portal) const {
  if (config_.portal_groups.empty()) return &default_group_;
  for (const PortalGroup& g : config_.portal_groups) {
    for (const std::string& p : g.portals) {
      if (p == local_portal) return &g;
    }
  }
  return nullptr;
}

Server::Server(io::Reactor* reactor, std::vector<std::shared_ptr<Target>> targets,
               std::vector<io::Reactor*> workers)
    : reactor_(reactor), targets_(std::move(targets)), workers_(std::move(workers)) {
  if (workers_.empty()) workers_.push_back(reactor_);
}

uint16_t Server::NewTsih() {
  uint16_t t;
  do {
    t = next_tsih_.fetch_add(1, std::memory_order_relaxed);
  } while (t == 0);
  return t;
}

size_t Server::connections() const {
  std::lock_guard<std::mutex> l(mu_);
  return conns_.size();
}

Server::~Server() = default;

Result<uint16_t> Server::Listen(const std::string& ip, uint16_t port) {
  // The listener's own address is known only once it is bound: the callback reads it from
  // addresses_ by index.
  const size_t index = addresses_.size();
  auto l = io::TcpListener::Listen(reactor_, ip, port, [this, index](int fd, std::string peer) {
    OnAccept(fd, std::move(peer), index);
  });
  if (!l.ok()) return l.status();
  uint16_t bound = (*l)->port();
  const bool v6 = ip.find(':') != std::string::npos;
  {
    std::lock_guard<std::mutex> g(targets_mu_);
    listeners_.push_back(std::move(l).value());
    addresses_.push_back((v6 ? "[" + ip + "]" : ip) + ":" + std::to_string(bound));
  }
  FERRY_LOG_INFO("iscsi: listening on {}:{}", ip, bound);
  return bound;
}

void Server::StopListening(std::string_view address) {
  std::lock_guard<std::mutex> g(targets_mu_);
  for (size_t i = 0; i < addresses_.size(); ++i) {
    if (addresses_[i] != address) continue;
    listeners_[i]->Close();
    addresses_[i].clear();
    FERRY_LOG_INFO("iscsi: no longer listening on {}", address);
  }
}

std::vector<std::string> Server::listen_addresses() const {
  std::lock_guard<std::mutex> g(targets_mu_);
  std::vector<std::string> out;
  for (const std::string& a : addresses_) {
    if (!a.empty()) out.push_back(a);
  }
  return out;
}

std::vector<std::shared_ptr<Target>> Server::targets() const {
  std::lock_guard<std::mutex> g(targets_mu_);
  return targets_;
}

void Server::AddTarget(std::shared_ptr<Target> t) {
  std::lock_guard<std::mutex> g(targets_mu_);
  targets_.push_back(std::move(t));
}

Status Server::ReplaceTarget(std::shared_ptr<Target> t) {
  {
    std::lock_guard<std::mutex> g(targets_mu_);
    auto it = std::find_if(targets_.begin(), targets_.end(),
                           [&](const auto& x) { return x->config().name == t->config().name; });
    if (it == targets_.end()) return NotFound("no target " + t->config().name);
    *it = t;
  }
  RetargetSessions(t->config().name, t);
  return Status::Ok();
}

Status Server::RemoveTarget(std::string_view name) {
  {
    std::lock_guard<std::mutex> g(targets_mu_);
    auto it = std::find_if(targets_.begin(), targets_.end(),
                           [&](const auto& x) { return x->config().name == name; });
    if (it == targets_.end()) return NotFound("no target " + std::string(name));
    targets_.erase(it);
  }
  RetargetSessions(std::string(name), nullptr);
  return Status::Ok();
}

void Server::RetargetSessions(const std::string& name, const std::shared_ptr<const Target>& t) {
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [raw, s] : sessions_) {
    if (s.discovery || s.target != name) continue;
    conns_.at(raw)->reactor()->Post([w = std::weak_ptr<Connection>(conns_.at(raw)), t] {
      auto conn = w.lock();
      if (conn == nullptr) return;
      if (t == nullptr) return conn->Revoke("its target was removed");
      conn->Retarget(t);
    });
  }
}

void Server::set_options(ServerOptions o) {
  options_ = std::move(o);
  std::lock_guard<std::mutex> l(mu_);
  admission_ = Admission(
      {.max_sessions = options_.max_connections,
       .max_prelogin = std::max<size_t>(1, options_.max_prelogin_connections),
       .max_prelogin_per_address = std::max<size_t>(1, options_.max_prelogin_per_address)});
}

void Server::OnAccept(int fd, std::string peer, size_t listener) {
  std::string local;
  {
    std::lock_guard<std::mutex> g(targets_mu_);
    local = addresses_[listener];
  }
  Adopt(fd, std::move(peer), std::move(local));
}

// Every connection is taken; the admission policy names the pre-login connections that
// make room for it (the oldest), which close on their reactors.
void Server::Adopt(int fd, std::string peer, std::string local) {
  if (stopping_) {
    close(fd);
    return;
  }
  stats_.connections_accepted++;
  io::Reactor* w = workers_[next_worker_.fetch_add(1) % workers_.size()];
  const uint64_t id = next_conn_id_++;
  const std::string address(PeerAddressOf(peer));
  auto c = std::make_shared<Connection>(this, w, fd, std::move(peer), std::move(local), id);
  std::vector<std::shared_ptr<Connection>> victims;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (uint64_t v : admission_.Accept(id, address)) {
      auto it = by_id_.find(v);
      if (it != by_id_.end()) victims.push_back(conns_.at(it->second));
    }
    conns_[c.get()] = c;
    by_id_[id] = c.get();
  }
  for (const auto& v : victims) {
    stats_.prelogin_evicted++;
    NoteDrop(PreloginDrop::kEvicted);
    PostTo(v, [](Connection& conn) { conn.Close("pre-login budget full: the oldest goes"); });
  }
  PostTo(c, [](Connection& conn) { conn.Start(); });
}

void Server::LoginStarted(const Connection* c) {
  std::lock_guard<std::mutex> l(mu_);
  admission_.LoginStarted(c->id());
}

bool Server::StartSession(const Connection* c) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (admission_.StartSession(c->id())) return true;
  }
  stats_.connections_refused++;
  NoteDrop(PreloginDrop::kSessionsFull);
  return false;
}

void Server::NoteDrop(PreloginDrop why) {
  DropLog::Counts due;
  {
    std::lock_guard<std::mutex> l(drops_mu_);
    due = drops_.Add(DropLog::Clock::now(), why);
  }
  if (due.total() > 0) LogDrops(due);
}

bool Server::MayLogDrop(PreloginDrop why) {
  {
    std::lock_guard<std::mutex> l(drops_mu_);
    if (drops_.MayLogDetail(DropLog::Clock::now())) return true;
  }
  NoteDrop(why);
  return false;
}

void Server::LogDrops(const DropLog::Counts& c) const {
  const ServerOptions& o = options_;
  std::string parts;
  auto part = [&](PreloginDrop why, std::string text) {
    if (c[why] == 0) return;
    if (!parts.empty()) parts += "; ";
    parts += std::to_string(c[why]) + " " + text;
  };
  part(PreloginDrop::kEvicted, "evicted: pre-login budget " +
                                   std::to_string(o.max_prelogin_per_address) + " per address, " +
                                   std::to_string(o.max_prelogin_connections) + " in all");
  part(PreloginDrop::kNoLoginPdu,
       "without a Login PDU within " + std::to_string(o.first_pdu_timeout.count()) + " ms");
  part(PreloginDrop::kLoginTimeout,
       "not logged in within " + std::to_string(o.login_timeout.count()) + " ms");
  part(PreloginDrop::kSessionsFull,
       "refused: max_connections " + std::to_string(o.max_connections) + " sessions");
  part(PreloginDrop::kLoginRefused, "refused logins");
  part(PreloginDrop::kBadPdu, "protocol errors before login");
  FERRY_LOG_WARN(
      "iscsi: dropped {} connections that had not logged in ({}); at most one such line per "
      "10 s",
      c.total(), parts);
}

void Server::PostTo(const std::shared_ptr<Connection>& c, void (*fn)(Connection&)) {
  c->reactor()->Post([w = std::weak_ptr<Connection>(c), fn] {
    if (auto conn = w.lock()) fn(*conn);
  });
}

void Server::Stop() {
  stopping_ = true;
  {
    std::lock_guard<std::mutex> g(targets_mu_);
    for (auto& l : listeners_) l->Close();
  }
  DropLog::Counts pending;
  {
    std::lock_guard<std::mutex> l(drops_mu_);
    pending = drops_.TakePending();
  }
  if (pending.total() > 0) LogDrops(pending);
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [raw, c] : conns_) {
    (void)raw;
    PostTo(c, [](Connection& conn) { conn.Shutdown(); });
  }
}

bool Server::idle() const {
  {
    std::lock_guard<std::mutex> g(targets_mu_);
    for (const auto& l : listeners_) {
      if (!l->idle()) return false;
    }
  }
  return connections() == 0;
}

std::shared_ptr<const Target> Server::FindTarget(std::string_view name) const {
  std::lock_guard<std::mutex> g(targets_mu_);
  for (const auto& t : targets_) {
    if (t->config().name == name) return t;
  }
  return nullptr;
}

void Server::RegisterSession(Connection* c, SessionInfo info) {
  const std::string info_initiator = info.initiator, info_isid = info.isid;
  std::vector<std::shared_ptr<Connection>> old;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [other, s] : sessions_) {
      if (!info.discovery && !s.discovery && s.initiator == info.initiator && s.isid == info.isid &&
          s.target == info.target) {
        old.push_back(conns_.at(other));
      }
    }
    for (const auto& o : old) sessions_.erase(o.get());
    sessions_[c] = std::move(info);
  }
  for (const auto& o : old) {
    FERRY_LOG_INFO("iscsi: session of {} (ISID {}) reinstated: closing the old connection",
                   info_initiator, info_isid);
    PostTo(o, [](Connection& conn) { conn.Close("session reinstated"); });
  }
}

std::vector<SessionInfo> Server::Sessions() const {
  std::vector<SessionInfo> v;
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [c, s] : sessions_) {
    v.push_back(s);
    v.back().commands = c->commands_seen();
    const SessionIo& io = c->session_io();
    v.back().read_ops = io.read_ops.load(std::memory_order_relaxed);
    v.back().read_bytes = io.read_bytes.load(std::memory_order_relaxed);
    v.back().write_ops = io.write_ops.load(std::memory_order_relaxed);
    v.back().write_bytes = io.write_bytes.load(std::memory_order_relaxed);
  }
  return v;
}

void Server::LunsChanged(const Target* t) {
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [raw, s] : sessions_) {
    if (s.discovery || s.target != t->config().name) continue;
    PostTo(conns_.at(raw), [](Connection& conn) { conn.OnLunsChanged(); });
  }
}

void Server::CloseSessionsOf(const Target* t, const Connection* except, std::string_view why) {
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [raw, s] : sessions_) {
    if (s.discovery || s.target != t->config().name || raw == except) continue;
    FERRY_LOG_INFO("iscsi: closing the session of {} (ISID {}): {}", s.initiator, s.isid, why);
    PostTo(conns_.at(raw), [](Connection& conn) { conn.Close("target cold reset"); });
  }
}

void Server::AbortTasks(const scsi::LogicalUnit* lu, std::vector<uint64_t> nexuses,
                        const Connection* except) {
  auto shared = std::make_shared<const std::vector<uint64_t>>(std::move(nexuses));
  const uint64_t before = command_seq_.load();
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [raw, c] : conns_) {
    if (raw == except) continue;
    c->reactor()->Post([w = std::weak_ptr<Connection>(c), lu, shared, before] {
      if (auto conn = w.lock()) conn->AbortTasksFromElsewhere(lu, *shared, before);
    });
  }
}

void Server::UpdateSessionLuns(Connection* c, std::vector<uint64_t> luns) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = sessions_.find(c);
  if (it != sessions_.end()) it->second.luns = std::move(luns);
}

void Server::Reap(Connection* c) {
  // Destroy later, on the connection's reactor: it is still on the stack of its own
  // callback now, and nothing of it may run elsewhere.
  c->reactor()->Post([this, c] {
    std::shared_ptr<Connection> last;
    std::lock_guard<std::mutex> l(mu_);
    sessions_.erase(c);
    auto it = conns_.find(c);
    if (it == conns_.end()) return;
    admission_.Closed(c->id());
    by_id_.erase(c->id());
    last = std::move(it->second);
    conns_.erase(it);
    // `last` is released after the lock (declared before it): the connection dies here.
  });
}

}  // namespace ferry::iscsi
