#include "daemon/daemon.h"

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "base/log.h"
#include "base/size_parse.h"
#include "daemon/admin.h"
#include "daemon/admin_methods.h"
#include "daemon/config.h"
#include "daemon/config_methods.h"
#include "daemon/fuse_methods.h"
#include "daemon/identity.h"
#include "daemon/metrics.h"
#include "daemon/notify.h"
#include "daemon/setup.h"
#include "daemon/volumes.h"
#include "io/reactor.h"
#include "iscsi/target.h"

namespace ferry::daemon {
namespace {

volatile std::sig_atomic_t g_stop = 0;
extern "C" void OnStop(int) { g_stop = 1; }
// SIGHUP: reopen the log file and reload the configuration file (reload.h).
volatile std::sig_atomic_t g_reload = 0;
extern "C" void OnReload(int) { g_reload = 1; }

using json = nlohmann::json;

int Fail(int code, std::string_view what) {
  std::cerr << "ferryd: " << what << "\n";
  return code;
}

// The configuration: the file, or the embedded default from the command line.
Result<Config> LoadConfig(const DaemonOptions& o) {
  if (o.config_path.empty()) {
    FERRY_ASSIGN_OR_RETURN(PortalConfig portal,
                           ParsePortal(o.listen.empty() ? "127.0.0.1:3260" : o.listen));
    auto size = ParseSize(o.lun_size);
    if (!size.ok()) return InvalidArgument("--lun-size: " + std::string(size.status().message()));
    return DemoConfig(portal, *size);
  }
  if (!o.listen.empty()) {
    return InvalidArgument(
        "--listen is for the embedded default; with --config, portals are "
        "in each target's \"portal_groups\"");
  }
  std::ifstream in(o.config_path);
  if (!in) return NotFound("cannot read " + o.config_path);
  std::stringstream text;
  text << in.rdbuf();
  auto c = ParseConfig(text.str());
  if (!c.ok()) return InvalidArgument(o.config_path + ": " + std::string(c.status().message()));
  return c;
}

void PrintBanner(const DaemonState& r, const std::string& admin_path) {
  for (const TargetConfig& t : r.config.targets) {
    std::printf("ferryd: serving %s on %s (", t.name.c_str(),
                r.server->listen_addresses().front().c_str());
    for (size_t i = 0; i < t.luns.size(); ++i) {
      const std::string& name = t.luns[i].backstore;
      const auto it = r.setup.backstores.find(name);
      const std::string type = it == r.setup.backstores.end()    ? "unavailable"
                               : it->second.config.type == "ram" ? "RAM"
                                                                 : it->second.config.type;
      std::printf("%sLUN %llu: %s %s", i ? ", " : "",
                  static_cast<unsigned long long>(t.luns[i].lun), type.c_str(), name.c_str());
    }
    std::printf(")\n");
  }
  const std::string base = "iscsi://" + r.server->listen_addresses().front();
  const std::string& t0 = r.config.targets.front().name;
  const uint64_t l0 = r.config.targets.front().luns.front().lun;
  std::printf(
      "Try:\n"
      "  iscsi-ls -s %s\n"
      "  iscsi-inq %s/%s/%llu\n"
      "  qemu-img info %s/%s/%llu\n"
      "  iscsi-test-cu --dataloss -t SCSI.Read10 %s/%s/%llu\n"
      "  ferryctl --socket %s status\n"
      "Stop with Ctrl-C.\n",
      base.c_str(), base.c_str(), t0.c_str(), static_cast<unsigned long long>(l0), base.c_str(),
      t0.c_str(), static_cast<unsigned long long>(l0), base.c_str(), t0.c_str(),
      static_cast<unsigned long long>(l0), admin_path.c_str());
  std::fflush(stdout);
}

// The service manager's status line once ferryd serves (notify.h).
std::string ServingStatus(const DaemonState& r, const std::string& admin_path) {
  std::string s = "serving " + std::to_string(r.config.targets.size()) + " target(s) on";
  for (const std::string& a : r.server->listen_addresses()) s += " " + a;
  return s + "; admin socket " + admin_path;
}

// Listens on every portal of every portal group (once each; port 0 once per place of a portal group
// in its target), then adds the targets with their portals as bound (port 0 becomes the port the
// kernel picked).
Status ListenAndAddTargets(DaemonState& r, iscsi::Server* server) {
  std::map<std::string, std::string>& bound = r.bound;  // configured portal -> listening address
  for (const TargetConfig& t : r.config.targets) {
    for (size_t gi = 0; gi < t.portal_groups.size(); ++gi) {
      for (const PortalConfig& p : t.portal_groups[gi].portals) {
        const std::string key = PortalKey(gi, p);
        if (bound.contains(key)) continue;
        FERRY_RETURN_IF_ERROR(server->Listen(p.ip, p.port).status());
        bound[key] = server->listen_addresses().back();
      }
    }
  }
  for (auto& t : MakeTargets(r.config, r.setup, bound)) server->AddTarget(std::move(t));
  return Status::Ok();
}

// SIGHUP (logrotate's postrotate, systemd's ExecReload): the log file reopened, and the
// configuration file read again and its difference applied, as `ferryctl config reload`.
void OnSighup(DaemonState& r) {
  ReopenLogs();
  if (r.config_path.empty()) {
    FERRY_LOG_INFO(
        "ferryd: SIGHUP: logs reopened; no configuration file to reload (the "
        "embedded default runs)");
    return;
  }
  FERRY_LOG_INFO("ferryd: SIGHUP: reloading {}", r.config_path);
  ReloadAndNotify(r, [](Status st, const nlohmann::json& result) {
    if (st.ok()) FERRY_LOG_INFO("ferryd: reloaded: {}", result.value("text", std::string()));
  });
}

// Makes every completed write durable before ferryd exits. Returns how many failed.
// One copy manager for every LU, so that copies and tokens cross LUNs and targets; its
// copies run on `re` (ferryd's main reactor).
Status StartCopyManager(DaemonState& r, io::Reactor* re) {
  scsi::CopyManagerOptions o;
  FERRY_ASSIGN_OR_RETURN(o.token_key, LoadOrCreateTokenKey(r.state_dir));
  o.engine.throttle_bytes_per_sec = r.config.copy_bandwidth;
  o.default_token_timeout_s = r.config.token_timeout_s;
  FERRY_ASSIGN_OR_RETURN(r.copy, scsi::CopyManager::Create(re, o));
  for (auto& [name, b] : r.setup.backstores) {
    (void)name;
    b.lu->set_copy_manager(r.copy);
  }
  return Status::Ok();
}

// A volume left suspended would hold its queued requests, and the sessions waiting for them,
// forever: while stopping, resume every suspended volume (into its loaded table, if any).
void ResumeSuspendedVolumes(Setup& s) {
  for (auto& [name, b] : s.backstores) {
    if (b.volume == nullptr || !b.volume->suspended()) continue;
    if (b.volume->Resume().ok()) {
      b.loaded.reset();
      FERRY_LOG_WARN("ferryd: volume {} was suspended: resumed so that its I/O ends", name);
    }  // else still draining: the next tick tries again
  }
}

// The volumes of the configuration, after the backstores: their tables are built on `re`.
Status OpenConfigVolumes(DaemonState& r, io::Reactor* re) {
  FERRY_ASSIGN_OR_RETURN(r.volume_env, VolumeEnv::Create(re, r.setup.registry));
  return OpenVolumes(r.config, r.state_dir, *r.volume_env, &r.setup);
}

int FlushBackstores(io::Reactor* re, const Setup& setup) {
  std::vector<std::unique_ptr<block::IoRequest>> reqs;
  int pending = 0, failed = 0;
  for (const auto& [name, b] : setup.backstores) {
    auto req = std::make_unique<block::IoRequest>();
    req->op = block::IoOp::kFlush;
    req->done = [&pending, &failed, n = name](IoStatus st) {
      --pending;
      // A read-only backstore has nothing to flush.
      if (st != IoStatus::kOk && st != IoStatus::kReadOnly && st != IoStatus::kNotSupported) {
        ++failed;
        std::cerr << "ferryd: flushing backstore " << n << " failed: " << IoStatusName(st) << "\n";
      }
    };
    ++pending;
    b.device->Submit(*req);
    reqs.push_back(std::move(req));
  }
  re->RunUntil([&] { return pending == 0; });
  return failed;
}

}  // namespace

int RunDaemon(const DaemonOptions& o) {
  if (!SetLogLevel(o.log_level)) return Fail(2, "unknown --log-level '" + o.log_level + "'");
  auto config = LoadConfig(o);
  if (!config.ok()) return Fail(2, config.status().message());
  if (Status st = ConfigureDaemonLogs(o, *config); !st.ok()) return Fail(2, st.message());
  // Before the state, so that it outlives the devices: a remote device closes its sessions
  // on the reactors it used.
  auto reactor = io::Reactor::Create({.name = "ferryd"});
  if (!reactor.ok()) return Fail(1, reactor.status().message());
  DaemonState r{
      .config = std::move(*config), .setup = {}, .state_dir = o.state_dir, .server = nullptr};
  if (r.state_dir.empty()) r.state_dir = r.config.state_dir;
  if (r.state_dir.empty()) r.state_dir = "/var/lib/ferry";
  if (!o.config_path.empty()) r.config_path = std::filesystem::absolute(o.config_path).string();
  if (o.check_only) {
    std::printf(
        "ferryd: %s is valid (%zu backstores, %zu volumes, %zu targets; volume tables are "
        "checked when ferryd starts)\n",
        o.config_path.c_str(), r.config.backstores.size(), r.config.volumes.size(),
        r.config.targets.size());
    return 0;
  }
  notify::Status("starting: opening backstores and volumes");
  auto setup = Prepare(r.config, r.state_dir);
  if (!setup.ok()) return Fail(2, setup.status().message());
  r.setup = std::move(*setup);
  // The volumes' copy engine lives on the reactor: it goes first, however RunDaemon returns.
  struct DropVolumeEnv {
    DaemonState& r;
    ~DropVolumeEnv() { r.volume_env.reset(); }
  } drop_volume_env{r};
  if (Status st = OpenConfigVolumes(r, reactor->get()); !st.ok()) {
    return Fail(2, (o.config_path.empty() ? "" : o.config_path + ": ") + std::string(st.message()));
  }
  // One reactor per core: this thread's (it also accepts and answers the admin socket) and
  // reactors-1 more on threads of their own; connections are spread over all of them.
  const unsigned reactors =
      o.reactors > 0 ? o.reactors : std::max(1u, std::thread::hardware_concurrency());
  std::unique_ptr<io::ReactorGroup> extra;
  if (reactors > 1) extra = std::make_unique<io::ReactorGroup>(reactors - 1, /*pin=*/false);
  if (Status st = StartCopyManager(r, reactor->get()); !st.ok()) return Fail(2, st.message());
  if (Status st = LoadReservations(r.setup, r.state_dir); !st.ok()) return Fail(2, st.message());
  std::vector<io::Reactor*> workers = {reactor->get()};
  for (size_t i = 0; extra && i < extra->size(); ++i) workers.push_back(extra->at(i));
  iscsi::Server server(reactor->get(), {}, workers);
  r.server = &server;
  server.set_options({.discovery_chap = r.setup.discovery_chap,
                      .chap_algorithms = r.config.chap_algorithms.empty()
                                             ? iscsi::ServerOptions{}.chap_algorithms
                                             : r.config.chap_algorithms,
                      .nop_interval = std::chrono::seconds(r.config.nop_interval_s),
                      .nop_timeout = std::chrono::seconds(r.config.nop_timeout_s),
                      .login_timeout = std::chrono::seconds(r.config.login_timeout_s),
                      .first_pdu_timeout = std::chrono::seconds(r.config.first_pdu_timeout_s),
                      .max_connections = r.config.max_connections,
                      .max_prelogin_connections = r.config.max_prelogin_connections,
                      .max_prelogin_per_address = r.config.max_prelogin_per_address});
  if (Status st = ListenAndAddTargets(r, &server); !st.ok()) return Fail(1, st.message());
  NoteConfigGenerations(r);  // what RunningConfig compares volume tables against
  std::string admin_path = o.admin_socket;
  if (admin_path.empty()) admin_path = r.config.admin_socket;
  if (admin_path.empty()) admin_path = r.state_dir + "/ferryd.sock";
  std::unique_ptr<fuse::Mount> fuse_mount;  // the "fuse" section's, if any (fuse_methods.h)
  if (Status st = StartFuse(r, reactor->get(), &fuse_mount); !st.ok()) return Fail(1, st.message());
  auto admin =
      AdminServer::Start(reactor->get(), admin_path,
                         [&r, &fuse_mount](const AdminRequest& req, AdminServer::Reply reply) {
                           if (HandleFuseMethod(r, fuse_mount.get(), req, reply)) return;
                           HandleAdmin(r, req, std::move(reply));
                         });
  if (!admin.ok()) return Fail(1, admin.status().message());
  auto metrics = MetricsService::Start(o, r, reactor->get());  // null: metrics.listen unset
  if (!metrics.ok()) return Fail(1, metrics.status().message());
  PrintBanner(r, admin_path);
  notify::Ready(ServingStatus(r, admin_path));  // every portal bound, the admin socket up
  struct sigaction sa {};
  sa.sa_handler = OnStop;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction hup {};
  hup.sa_handler = OnReload;
  sigaction(SIGHUP, &hup, nullptr);
  signal(SIGPIPE, SIG_IGN);
  io::Reactor* re = reactor->get();
  notify::StartWatchdog(re);  // pinged from this reactor: a hung main loop stops the pings
  // The signal handler only sets g_stop: this timer notices it, and keeps ticking while
  // connections on the other reactors wind down, so that RunUntil checks idle() again.
  bool stopping = false;
  std::function<void()> poll = [&] {
    if (g_stop && !stopping) {
      stopping = true;
      notify::Stopping();
      if (*metrics) (*metrics)->SetStopping();
      (*admin)->Stop();
      server.Stop();
      r.copy->CancelAll();                 // background copies (IMMED) stop with the sessions
      if (fuse_mount) fuse_mount->Stop();  // detached now, also with a writer on it
    }
    if (stopping) ResumeSuspendedVolumes(r.setup);
    if (g_reload && !stopping) {
      g_reload = 0;
      OnSighup(r);
    }
    re->RunAfter(std::chrono::milliseconds(100), [&] { poll(); });
  };
  poll();
  re->RunUntil([&] {
    return g_stop && server.idle() && r.copy->metrics().active == 0 &&
           (!fuse_mount || fuse_mount->idle());
  });
  fuse_mount.reset();
  metrics->reset();  // while this thread still owns the state its scrapes read
  admin->reset();
  extra.reset();  // every connection is gone: stop the other reactors
  const int unflushed = FlushBackstores(re, r.setup);
  std::printf("ferryd: stopped (%llu logins, %llu commands, %zu backstores flushed)\n",
              static_cast<unsigned long long>(server.stats().logins.load()),
              static_cast<unsigned long long>(server.stats().commands.load()),
              r.setup.backstores.size() - unflushed);
  return unflushed == 0 ? 0 : 1;
}

}  // namespace ferry::daemon
