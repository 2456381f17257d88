// ferryd's configuration at run time: the configuration it runs now (what `ferryctl config
// save` writes), and a reload that applies a file's difference to it (`ferryctl config
// reload`, SIGHUP; `config diff` shows the plan without applying it).
//
// A reload, on ferryd's main reactor, in three steps:
//   1. Check. Every error of the file, each with its JSON path (config_errors.h), and the
//      errors only the daemon can see (secret files, volume tables, a backstore that a
//      volume sits on) end the reload before anything changed.
//   2. Prepare. Everything that can fail and that no initiator sees: secrets read, added and
//      reopened backstores opened, new portals bound, added volumes created and changed
//      volume tables prepared and loaded inactive. A failure undoes these and reports every
//      error; nothing else changed.
//   3. Switch. What cannot fail: credentials, backstores and targets swapped in (targets by
//      iscsi::Server::ReplaceTarget, which re-checks each session), changed volumes
//      suspended and resumed on their new tables, then removed volumes, backstores and
//      unused portals dropped. Targets the change does not touch are not touched at all.
// Settings outside the named sections (timeouts, the admin socket, metrics, ...) take effect
// when ferryd starts again; the answer lists them.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "daemon/admin_methods.h"
#include "daemon/config.h"

namespace ferry::daemon {

// The configuration ferryd runs now: the one it loaded (or last reloaded), with the LUNs
// the targets have now and every volume with its active table (run-time changes through
// the admin socket included). An ACL entry that maps a LUN the target no longer has is
// left out.
Config RunningConfig(const DaemonState& d);

// Records the table generation of each configured volume (after startup and each reload),
// so that RunningConfig keeps the configured text of tables nobody changed since.
void NoteConfigGenerations(DaemonState& d);

// Called once, on the reactor. Errors: InvalidArgument with one "$.path: reason" per line.
// The result: {"changes": [...] (config_diff.h), "text", "applied", "restart_needed",
// "warnings"}.
using ReloadDone = std::function<void(Status st, nlohmann::json result)>;

// Checks `text` and plans its difference from the running configuration; unless `dry_run`,
// applies it. FailedPrecondition while another reload is under way.
void Reload(DaemonState& d, std::string text, bool dry_run, ReloadDone done);
// Reads d.config_path and Reload()s it (FailedPrecondition with the embedded default).
void ReloadConfigFile(DaemonState& d, ReloadDone done);

}  // namespace ferry::daemon
