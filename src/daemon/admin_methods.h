// The admin socket's methods (JSON-RPC, see admin.h), run on ferryd's main reactor:
//   status, sessions, luns         what is there
//   lun_map {target, lun, backstore, write_protect?}, lun_unmap {target, lun}
//                                  change a target's LUNs at run time (not written back to
//                                  the configuration file); sessions of the target get
//                                  REPORTED LUNS DATA HAS CHANGED.
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
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

// Answers through `reply` (once, on the reactor): Unimplemented for an unknown method;
// InvalidArgument, NotFound, AlreadyExists or FailedPrecondition with a message for bad
// parameters or a state that refuses the change.
void HandleAdmin(DaemonState& d, const AdminRequest& req, AdminServer::Reply reply);

}  // namespace ferry::daemon
