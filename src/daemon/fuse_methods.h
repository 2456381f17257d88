// ferryd's FUSE mount (src/fuse/server.h, docs/fuse.md): started from the configuration's
// "fuse" section, changed at run time through the admin socket:
//   fuse_list                   the mount point, the files and the mount's counters
//   fuse_add {name}             show a backstore or volume as a file (until ferryd restarts)
//   fuse_remove {name}          take it away (refused while the file is open)
#pragma once

#include <memory>

#include "base/status.h"
#include "daemon/admin.h"
#include "daemon/admin_methods.h"
#include "fuse/server.h"

namespace ferry::daemon {

inline constexpr const char* kFuseMethodNames = "fuse_list, fuse_add, fuse_remove";

// Mounts the configuration's "fuse" section on `re` with its devices as files; `*out` stays
// null when there is no such section.
Status StartFuse(DaemonState& d, io::Reactor* re, std::unique_ptr<fuse::Mount>* out);

// Answers the fuse_* methods (FailedPrecondition when ferryd has no mount); false for any
// other method.
bool HandleFuseMethod(DaemonState& d, fuse::Mount* mount, const AdminRequest& req,
                      AdminServer::Reply& reply);

}  // namespace ferry::daemon
