// ferryd's /metrics (docs/metrics.md): what the data path counts (LU statistics, sessions,
// the server's login and admission counters, the copy manager) as Prometheus series, served
// by metrics::HttpServer when `metrics.listen` (or --metrics-listen) is set.
//
// Threads: the HTTP threads never touch the daemon's object graph. A scrape posts a
// collection to the main reactor (which owns DaemonState: backstores and targets change
// there at run time), waits for its snapshot (plain values) and formats it on the HTTP
// thread.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "daemon/admin_methods.h"
#include "daemon/daemon.h"
#include "iscsi/session_stats.h"
#include "iscsi/target.h"
#include "metrics/exposition.h"
#include "metrics/http_server.h"
#include "scsi/copy_manager.h"
#include "scsi/lu_stats.h"

namespace ferry::daemon {

// Everything one scrape shows, copied out of the daemon on its reactor.
struct MetricsSnapshot {
  struct Lu {
    std::string target;  // the first target that maps it ("" when unmapped)
    std::string lun;     // its LUN there
    std::string backstore;
    scsi::LuStatsSnapshot stats;
  };
  std::vector<Lu> lus;
  std::vector<iscsi::SessionInfo> sessions;
  uint64_t connections = 0;  // open TCP connections, logged in or not
  uint64_t connections_accepted = 0, logins = 0, prelogin_evicted = 0, prelogin_timeouts = 0;
  uint64_t commands = 0, rejects = 0;
  std::array<uint64_t, iscsi::kLoginRefusalKinds> login_refusals{};
  bool has_copy = false;
  scsi::CopyMetrics copy;
};

// On the reactor that owns `d`.
MetricsSnapshot CollectMetrics(const DaemonState& d);
// Pure: the series of a snapshot.
std::vector<metrics::Family> MetricFamilies(const MetricsSnapshot& s);

// The metrics listener of a running ferryd. Scrapes collect on the reactor that owns the
// DaemonState (waiting at most 2 s for it: 503 when it does not answer, e.g. while ferryd
// exits). Create and destroy it on that reactor's thread, before the DaemonState goes.
class MetricsService {
 public:
  // Listens on --metrics-listen, else the config's metrics.listen; nullptr when neither is
  // set (metrics are off by default). Prints "ferryd: metrics on http://ADDR/metrics".
  static Result<std::unique_ptr<MetricsService>> Start(const DaemonOptions& o, const DaemonState& d,
                                                       io::Reactor* reactor);
  ~MetricsService();
  // ferryd is stopping: /healthz answers 503.
  void SetStopping() { http_->SetStopping(); }
  std::string address() const { return http_->address(); }

 private:
  MetricsService() = default;
  // False once destroyed: a collection still queued on the reactor then does nothing.
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
  std::unique_ptr<metrics::HttpServer> http_;
};

// --log-format and --log-file, else the config's "log" section (base/log.h). Before the
// reactors start.
Status ConfigureDaemonLogs(const DaemonOptions& o, const Config& c);

}  // namespace ferry::daemon
