// The admin socket's configuration methods (JSON-RPC, admin.h; ferryctl config ...), run on
// ferryd's main reactor:
//   config_save {file?}     writes the running configuration (reload.h RunningConfig) to
//                           `file` (default: the file ferryd was started with) atomically,
//                           keeping the last ten copies as FILE.1 .. FILE.10
//                           (config_writer.h). The file stays the one source of truth: once
//                           ferryd's own file is saved, reloads start from it.
//   config_reload {}        reads ferryd's file again and applies the difference (reload.h)
//   config_diff {text}      what a reload of `text` would do, without doing it
#pragma once

#include "daemon/admin.h"
#include "daemon/admin_methods.h"
#include "daemon/reload.h"

namespace ferry::daemon {

inline constexpr const char* kConfigMethodNames = "config_save, config_reload, config_diff";

// False (and `reply` untouched) when `req` is not a configuration method; else answers
// through `reply`, now or once the method completes.
bool HandleConfigMethod(DaemonState& d, const AdminRequest& req, AdminServer::Reply& reply);

// ReloadConfigFile between notify::Reloading() and notify::Ready() (the service manager sees
// the reload: SIGHUP and `ferryctl config reload` alike), logging the outcome.
void ReloadAndNotify(DaemonState& d, ReloadDone done);

}  // namespace ferry::daemon
