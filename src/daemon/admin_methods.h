// The admin socket's methods (JSON-RPC, see admin.h), run on ferryd's main reactor:
//   status, sessions, luns         what is there
//   lun_map {target, lun, backstore, write_protect?}, lun_unmap {target, lun}
//                                  change a target's LUNs at run time (written to the
//                                  configuration file only by config_save); sessions of
//                                  the target get REPORTED LUNS DATA HAS CHANGED.
//   config_*                       save, reload, diff the configuration (config_methods.h)
//   volume_*                       volumes (volume_methods.h)
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"
#include "daemon/admin.h"
#include "daemon/config.h"
#include "daemon/setup.h"
#include "daemon/volumes.h"
#include "iscsi/target.h"
#include "scsi/copy_manager.h"

namespace ferry::daemon {

struct DaemonState {
  Config config;
  Setup setup;
  std::string state_dir;
  iscsi::Server* server = nullptr;
  std::shared_ptr<scsi::CopyManager> copy;  // third-party copy of every LU
  std::unique_ptr<VolumeEnv> volume_env;    // where volume tables are built
  // The configuration file ferryd started with (--config); empty: the embedded default.
  // `ferryctl config reload` and SIGHUP read it again (reload.h).
  std::string config_path;
  // Each configured portal (PortalKey) -> the address it listens on.
  std::map<std::string, std::string> bound;
  // Volumes of `config`: the generation of their volume while its table is the configured
  // one (RunningConfig writes the configured text then, else the volume's own).
  std::map<std::string, uint64_t> config_generations;
  bool reloading = false;  // a reload is under way (reload.h)
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

// Answers through `reply` (once, on the reactor): Unimplemented for an unknown method;
// InvalidArgument, NotFound, AlreadyExists or FailedPrecondition with a message for bad
// parameters or a state that refuses the change.
void HandleAdmin(DaemonState& d, const AdminRequest& req, AdminServer::Reply reply);

}  // namespace ferry::daemon
