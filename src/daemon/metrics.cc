#include "daemon/metrics.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <map>
#include <utility>

#include "base/log.h"
#include "daemon/config.h"

namespace ferry::daemon {
namespace {

using metrics::Family;
using metrics::Labels;
using metrics::MetricType;

Family Counter(std::string name, std::string help) {
  return Family{.name = std::move(name), .help = std::move(help), .type = MetricType::kCounter};
}
Family Gauge(std::string name, std::string help) {
  return Family{.name = std::move(name), .help = std::move(help), .type = MetricType::kGauge};
}

Labels LuLabels(const MetricsSnapshot::Lu& lu) {
  return {{"target", lu.target}, {"lun", lu.lun}, {"backstore", lu.backstore}};
}

void AddLuFamilies(const MetricsSnapshot& s, std::vector<Family>* out) {
  Family rops = Counter("ferry_lun_read_ops_total", "READ commands completed (any status).");
  Family wops = Counter("ferry_lun_write_ops_total",
                        "WRITE commands completed (WRITE, WRITE AND VERIFY, ORWRITE, WRITE "
                        "ATOMIC; any status).");
  Family oops = Counter("ferry_lun_other_ops_total", "Other SCSI commands completed.");
  Family rbytes =
      Counter("ferry_lun_read_bytes_total", "Bytes of READ commands that completed GOOD.");
  Family wbytes =
      Counter("ferry_lun_write_bytes_total", "Bytes of WRITE commands that completed GOOD.");
  Family lat{.name = "ferry_lun_io_duration_seconds",
             .help = "READ and WRITE latency in the logical unit, from execution to completion.",
             .type = MetricType::kHistogram};
  Family depth = Gauge("ferry_lun_queue_depth", "SCSI commands executing in the logical unit.");
  Family errs = Counter("ferry_lun_errors_total",
                        "Commands that ended in CHECK CONDITION, by sense key and ASC/ASCQ.");
  Family untracked = Counter("ferry_lun_errors_untracked_total",
                             "CHECK CONDITIONs past the 32 distinct (sense key, ASC) pairs kept "
                             "per logical unit.");
  for (const MetricsSnapshot::Lu& lu : s.lus) {
    const scsi::LuStatsSnapshot& st = lu.stats;
    rops.Add(LuLabels(lu), st.read_ops);
    wops.Add(LuLabels(lu), st.write_ops);
    oops.Add(LuLabels(lu), st.other_ops);
    rbytes.Add(LuLabels(lu), st.read_bytes);
    wbytes.Add(LuLabels(lu), st.write_bytes);
    Labels r = LuLabels(lu), w = LuLabels(lu);
    r.emplace_back("op", "read");
    w.emplace_back("op", "write");
    lat.AddHistogram(std::move(r), st.read_latency);
    lat.AddHistogram(std::move(w), st.write_latency);
    depth.AddGauge(LuLabels(lu), static_cast<double>(st.in_flight));
    for (const auto& e : st.errors) {
      Labels l = LuLabels(lu);
      l.emplace_back("sense_key", std::string(scsi::SenseKeyLabel(e.key)));
      l.emplace_back("asc", fmt::format("0x{:04x}", static_cast<uint16_t>(e.asc)));
      errs.Add(std::move(l), e.count);
    }
    untracked.Add(LuLabels(lu), st.errors_untracked);
  }
  for (Family* f : {&rops, &wops, &oops, &rbytes, &wbytes, &lat, &depth, &errs, &untracked}) {
    out->push_back(std::move(*f));
  }
}

void AddSessionFamilies(const MetricsSnapshot& s, std::vector<Family>* out) {
  Family rops = Counter("ferry_iscsi_session_read_ops_total", "READ commands of the session.");
  Family wops = Counter("ferry_iscsi_session_write_ops_total", "WRITE commands of the session.");
  Family rbytes = Counter("ferry_iscsi_session_read_bytes_total",
                          "Bytes the session read (commands that completed GOOD).");
  Family wbytes = Counter("ferry_iscsi_session_write_bytes_total",
                          "Bytes the session wrote (commands that completed GOOD).");
  Family cmds =
      Counter("ferry_iscsi_session_commands_total", "SCSI commands the session sent (any kind).");
  Family sessions = Gauge("ferry_iscsi_sessions", "Logged-in normal sessions, by target.");
  std::map<std::string, uint64_t> per_target;
  for (const iscsi::SessionInfo& i : s.sessions) {
    if (i.discovery) continue;
    per_target[i.target]++;
    Labels l = {{"target", i.target}, {"initiator", i.initiator}, {"isid", i.isid}};
    rops.Add(l, i.read_ops);
    wops.Add(l, i.write_ops);
    rbytes.Add(l, i.read_bytes);
    wbytes.Add(l, i.write_bytes);
    cmds.Add(std::move(l), i.commands);
  }
  for (const MetricsSnapshot::Lu& lu : s.lus) {
    if (!lu.target.empty()) per_target.try_emplace(lu.target, 0);  // 0 rather than absent
  }
  for (const auto& [t, n] : per_target) sessions.AddGauge({{"target", t}}, static_cast<double>(n));
  for (Family* f : {&sessions, &rops, &wops, &rbytes, &wbytes, &cmds})
    out->push_back(std::move(*f));
}

void AddServerFamilies(const MetricsSnapshot& s, std::vector<Family>* out) {
  Family conns = Gauge("ferry_iscsi_connections", "Open iSCSI connections, logged in or not.");
  conns.AddGauge({}, static_cast<double>(s.connections));
  Family accepted = Counter("ferry_iscsi_connections_accepted_total", "TCP connections accepted.");
  accepted.Add({}, s.connections_accepted);
  Family logins = Counter("ferry_iscsi_logins_total",
                          "Logins: accepted, or refused with the reason (RFC 7143 login status).");
  logins.Add({{"result", "accepted"}, {"reason", ""}}, s.logins);
  for (size_t i = 0; i < iscsi::kLoginRefusalKinds; ++i) {
    logins.Add(
        {{"result", "refused"},
         {"reason", std::string(iscsi::LoginRefusalName(static_cast<iscsi::LoginRefusal>(i)))}},
        s.login_refusals[i]);
  }
  Family evicted = Counter("ferry_iscsi_prelogin_evictions_total",
                           "Connections closed before login because a pre-login budget was full.");
  evicted.Add({}, s.prelogin_evicted);
  Family timeouts = Counter("ferry_iscsi_prelogin_timeouts_total",
                            "Connections closed for missing a login deadline.");
  timeouts.Add({}, s.prelogin_timeouts);
  Family cmds = Counter("ferry_iscsi_commands_total", "SCSI commands received, every session.");
  cmds.Add({}, s.commands);
  Family rejects = Counter("ferry_iscsi_rejects_total", "Reject PDUs sent.");
  rejects.Add({}, s.rejects);
  for (Family* f : {&conns, &accepted, &logins, &evicted, &timeouts, &cmds, &rejects}) {
    out->push_back(std::move(*f));
  }
}

void AddCopyFamilies(const MetricsSnapshot& s, std::vector<Family>* out) {
  const scsi::CopyMetrics& m = s.copy;
  Family bytes = Counter("ferry_copy_bytes_total",
                         "Bytes copied by third-party copy (EXTENDED COPY, ODX), by the mechanism "
                         "that moved them (per destination).");
  for (size_t i = 0; i < m.by_mechanism.size(); ++i) {
    const auto mech = static_cast<block::CopyMechanism>(i);
    // kNone: moved natively by a device that did not say how.
    const std::string name = mech == block::CopyMechanism::kNone
                                 ? "native"
                                 : std::string(block::CopyMechanismName(mech));
    bytes.Add({{"mechanism", name}}, m.by_mechanism[i]);
  }
  Family fallbacks = Counter("ferry_copy_offload_fallbacks_total",
                             "Copies that emulated (part of) their ranges, by reason.");
  for (size_t i = 0; i < m.fallbacks.size(); ++i) {
    fallbacks.Add(
        {{"reason", std::string(scsi::OffloadFallbackName(static_cast<scsi::OffloadFallback>(i)))}},
        m.fallbacks[i]);
  }
  Family cmds = Counter("ferry_copy_commands_total", "Third-party copy commands, by command.");
  cmds.Add({{"command", "extended_copy"}}, m.extended_copy_commands);
  cmds.Add({{"command", "populate_token"}}, m.populate_token_commands);
  cmds.Add({{"command", "write_using_token"}}, m.write_using_token_commands);
  Family failed = Counter("ferry_copy_failed_commands_total", "Copy commands that failed.");
  failed.Add({}, m.failed_commands);
  Family aborted = Counter("ferry_copy_aborted_commands_total", "Copy commands aborted.");
  aborted.Add({}, m.aborted_commands);
  Family active = Gauge("ferry_copy_active", "Copy operations running.");
  active.AddGauge({}, static_cast<double>(m.active));
  Family zeroed = Counter("ferry_copy_zeroed_bytes_total",
                          "Bytes written as zeroes by WRITE USING TOKEN with the block device "
                          "zero token.");
  zeroed.Add({}, m.bytes_zeroed);
  Family live = Gauge("ferry_rod_tokens", "Live ROD tokens (ODX POPULATE TOKEN).");
  live.AddGauge({}, static_cast<double>(m.tokens_live));
  Family created = Counter("ferry_rod_tokens_created_total", "ROD tokens created.");
  created.Add({}, m.tokens_created);
  Family revoked = Counter("ferry_rod_tokens_revoked_total",
                           "ROD tokens revoked (their source blocks were written).");
  revoked.Add({}, m.tokens_revoked);
  for (Family* f : {&bytes, &fallbacks, &cmds, &failed, &aborted, &active, &zeroed, &live, &created,
                    &revoked}) {
    out->push_back(std::move(*f));
  }
}

}  // namespace

MetricsSnapshot CollectMetrics(const DaemonState& d) {
  MetricsSnapshot s;
  std::map<const scsi::LogicalUnit*, std::pair<std::string, std::string>> mapped;
  if (d.server != nullptr) {
    for (const auto& t : d.server->targets()) {
      for (const auto& [lun, tl] : t->Luns()) {
        mapped.try_emplace(tl.lu.get(), t->config().name, std::to_string(lun));
      }
    }
    s.sessions = d.server->Sessions();
    s.connections = d.server->connections();
    const iscsi::ServerStats& st = d.server->stats();
    s.connections_accepted = st.connections_accepted.load();
    s.logins = st.logins.load();
    s.prelogin_evicted = st.prelogin_evicted.load();
    s.prelogin_timeouts = st.prelogin_timeouts.load();
    s.commands = st.commands.load();
    s.rejects = st.rejects.load();
    for (size_t i = 0; i < s.login_refusals.size(); ++i) s.login_refusals[i] = st.login_refusals[i];
  }
  for (const auto& [name, b] : d.setup.backstores) {
    if (b.lu == nullptr) continue;
    MetricsSnapshot::Lu lu{.backstore = name, .stats = b.lu->stats().Snapshot()};
    if (auto it = mapped.find(b.lu.get()); it != mapped.end()) {
      lu.target = it->second.first;
      lu.lun = it->second.second;
    }
    s.lus.push_back(std::move(lu));
  }
  if (d.copy != nullptr) {
    s.has_copy = true;
    s.copy = d.copy->metrics();
  }
  return s;
}

std::vector<Family> MetricFamilies(const MetricsSnapshot& s) {
  std::vector<Family> out;
  AddLuFamilies(s, &out);
  AddSessionFamilies(s, &out);
  AddServerFamilies(s, &out);
  if (s.has_copy) AddCopyFamilies(s, &out);
  return out;
}

Result<std::unique_ptr<MetricsService>> MetricsService::Start(const DaemonOptions& o,
                                                              const DaemonState& d,
                                                              io::Reactor* reactor) {
  const std::string listen = o.metrics_listen.empty() ? d.config.metrics_listen : o.metrics_listen;
  if (listen.empty()) return std::unique_ptr<MetricsService>();
  auto p = ParsePortal(listen);
  if (!p.ok()) return InvalidArgument("--metrics-listen: " + std::string(p.status().message()));
  std::unique_ptr<MetricsService> m(new MetricsService());
  auto render = [&d, reactor, alive = m->alive_]() -> std::optional<std::string> {
    auto promise = std::make_shared<std::promise<MetricsSnapshot>>();
    std::future<MetricsSnapshot> snap = promise->get_future();
    reactor->Post([&d, promise, alive] {
      if (alive->load()) promise->set_value(CollectMetrics(d));
    });
    if (snap.wait_for(std::chrono::seconds(2)) != std::future_status::ready) return std::nullopt;
    return metrics::FormatText(MetricFamilies(snap.get()));
  };
  FERRY_ASSIGN_OR_RETURN(m->http_, metrics::HttpServer::Start(p->ip, p->port, std::move(render)));
  std::printf("ferryd: metrics on http://%s/metrics\n", m->address().c_str());
  std::fflush(stdout);
  return m;
}

MetricsService::~MetricsService() {
  http_.reset();  // joins the HTTP threads (a scrape waiting for the reactor times out)
  alive_->store(false);
}

Status ConfigureDaemonLogs(const DaemonOptions& o, const Config& c) {
  const std::string name = !o.log_format.empty()   ? o.log_format
                           : !c.log_format.empty() ? c.log_format
                                                   : std::string("text");
  LogFormat format;
  if (!ParseLogFormat(name, &format)) return InvalidArgument("unknown log format '" + name + "'");
  return ConfigureLogging(format, o.log_file.empty() ? c.log_file : o.log_file);
}

}  // namespace ferry::daemon
