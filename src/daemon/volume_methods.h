// The admin socket's volume methods (JSON-RPC, admin.h; ferryctl volume ...), run on
// ferryd's main reactor. Every one names the volume in "name".
//   volume_create {name, table}        parse, prepare and create a volume with that table
//   volume_load {name, table}          parse and prepare a table and keep it inactive
//   volume_suspend {name, deadline_ms?}  queue new I/O and answer once what is in flight
//                                      drained; copy pins still held `deadline_ms` after
//                                      the call (default kDefaultSuspendDeadlineMs) finish
//                                      their ranges as ordinary I/O
//   volume_resume {name}               swap in the inactive table, if any, and restart I/O
//   volume_remove {name}               refused while a LUN or another volume's table uses it
//   volume_status {name}, volume_table {name, inactive?}, volume_list {}
//   volume_message {name, sector, args}  dmsetup message to the line holding `sector`
// Table errors carry the parser's line numbers and messages unchanged, after
// "volume 'NAME': ". Volumes made here last until ferryd stops (volumes.h).
#pragma once

#include <cstdint>

#include "daemon/admin.h"
#include "daemon/admin_methods.h"

namespace ferry::daemon {

inline constexpr uint32_t kDefaultSuspendDeadlineMs = 5000;
inline constexpr uint32_t kMaxSuspendDeadlineMs = 600000;
inline constexpr const char* kVolumeMethodNames =
    "volume_create, volume_load, volume_suspend, volume_resume, volume_remove, volume_status, "
    "volume_table, volume_message, volume_list";

// False (and `reply` untouched) when `req` is not a volume method; else answers through
// `reply`, now or once the method completes.
bool HandleVolumeMethod(DaemonState& d, const AdminRequest& req, AdminServer::Reply& reply);

}  // namespace ferry::daemon
