// ferryd: Ferry's storage daemon. Serves LUNs over iSCSI.
//
// With --config it serves what the JSON file describes (docs/ferryd-config.md); without,
// the embedded default: one RAM LUN (0) and one file LUN (1, a sparse file in the state
// directory) behind iqn.2026-11.org.ferry:demo on 127.0.0.1:3260, open to every initiator.
// SIGINT/SIGTERM stop it cleanly.
#include <CLI/CLI.hpp>

#include "daemon/daemon.h"

int main(int argc, char** argv) {
  CLI::App app{"ferryd: Ferry's storage daemon (iSCSI target with copy offload)", "ferryd"};
  ferry::daemon::DaemonOptions o;
  app.add_option("--config", o.config_path,
                 "JSON configuration: backstores, volumes, targets (docs/ferryd-config.md); "
                 "without it, the embedded "
                 "default (RAM LUN 0, file LUN 1, iqn.2026-11.org.ferry:demo)");
  app.add_flag("--check", o.check_only,
               "validate the configuration and exit (volume tables are checked at start)");
  app.add_option("--state-dir", o.state_dir,
                 "LUN identities, file LUNs with relative paths, the admin socket "
                 "(default: the config's state_dir, else /var/lib/ferry)");
  app.add_option("--listen", o.listen,
                 "embedded default only: portal IP:PORT (default 127.0.0.1:3260; port 0: any)");
  app.add_option("--lun-size", o.lun_size, "embedded default only: size of each LUN (default 1G)");
  app.add_option("--admin-socket", o.admin_socket,
                 "admin socket path (default: <state-dir>/ferryd.sock)");
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error, off");
  app.add_option("--log-format", o.log_format,
                 "text or json (one object a line); overrides the config's log.format")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-file", o.log_file,
                 "append the log to this file (reopened on SIGHUP, for logrotate); overrides the "
                 "config's log.file");
  app.add_option("--metrics-listen", o.metrics_listen,
                 "serve /metrics and /healthz on IP:PORT (docs/metrics.md; overrides the "
                 "config's metrics.listen; default: off)");
  app.add_option("--reactors", o.reactors,
                 "event loops serving connections (default: one per core)")
      ->check(CLI::Range(1u, 256u));
  try {  // NOLINT: CLI11 reports parse errors as exceptions; they stop here
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return ferry::daemon::RunDaemon(o);
}
