// ferryd's life: configuration (a file, or the embedded default), startup in an order that
// refuses a bad configuration before anything listens, the admin socket, and a clean stop
// on SIGINT/SIGTERM (sessions closed, devices flushed by their owners).
#pragma once

#include <string>

namespace ferry::daemon {

struct DaemonOptions {
  std::string config_path;      // empty: the embedded default
  std::string state_dir;        // empty: the config's, else /var/lib/ferry
  std::string listen;           // embedded default only; empty: 127.0.0.1:3260
  std::string lun_size = "1G";  // embedded default only
  std::string admin_socket;     // empty: the config's, else <state_dir>/ferryd.sock
  std::string log_level = "info";
  // "text" or "json"; empty: the config's, else text.
  std::string log_format;
  // Empty: the config's, else standard output.
  std::string log_file;
  // /metrics on IP:PORT; empty: the config's, else none.
  std::string metrics_listen;
  unsigned reactors = 0;    // event loops (threads); 0: one per core
  bool check_only = false;  // --check: validate the configuration and exit
};

// Returns the process exit code: 0 after a clean stop, 1 when startup failed, 2 for a bad
// command line or configuration.
int RunDaemon(const DaemonOptions& o);

}  // namespace ferry::daemon
