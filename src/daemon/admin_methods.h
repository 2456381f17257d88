// The admin socket's methods (JSON-RPC, see admin.h), run on ferryd's main reactor:
//   status, sessions, luns         what is there
//   lun_map {target, lun, backstore, write_protect?}, lun_unmap {target, lun}
//                                  change a target's LUNs at run time (not written back to
//                                  the configuration file); sessions of the target get
//                                  REPORTED LUNS DATA HAS CHANGED.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"
#include "daemon/admin.h"
#include "daemon/config.h"
#include "daemon/setup.h"
#include "iscsi/target.h"
#include "scsi/copy_manager.h"

namespace ferry::daemon {

struct DaemonState {
  Config config;
  Setup setup;
  std::string state_dir;
  iscsi::Server* server = nullptr;
  std::shared_ptr<scsi::CopyManager> copy;  // third-party copy of every LU
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

// Unimplemented for an unknown method; InvalidArgument, NotFound or AlreadyExists with a
// message for bad parameters.
Status HandleAdmin(DaemonState& d, const AdminRequest& req, nlohmann::json* result);

}  // namespace ferry::daemon
