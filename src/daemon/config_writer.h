// ferryd's configuration written back: Config -> JSON that ParseConfig reads into the same
// Config (ParseConfig(SerializeConfig(c)) == c for every configuration ParseConfig accepts),
// and the file written so that a crash never leaves half of it.
//
// What is written: every key ParseConfig knows, defaults included (a saved file says what
// ran, whatever the defaults of a later version), secrets as the file references the
// configuration holds ("secret_file"), never their contents.
//
// Backups: before a save replaces FILE, the previous FILE becomes FILE.1, FILE.1 becomes
// FILE.2, ... up to FILE.<keep> (the oldest beyond that is deleted), as logrotate numbers
// its copies. A backup sits next to its file, so that the rename that makes it is atomic.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"
#include "daemon/config.h"

namespace ferry::daemon {

inline constexpr int kConfigBackups = 10;

nlohmann::json ConfigToJson(const Config& c);
// Pretty-printed (two spaces), with a final newline.
std::string SerializeConfig(const Config& c);

// "192.0.2.0/24", "2001:db8::/32": the form ParseNetwork reads back.
std::string NetworkText(const iscsi::Network& n);

// Writes `text` to `path` atomically: a temporary file in the same directory (mode 0600:
// the file names secret files and may be read by nobody else), fsync, the backups shifted
// (path.1 .. path.<keep>), rename over `path`, fsync of the directory. On failure `path` is
// as it was (the backups may have moved up by one) and the temporary file is gone.
Status WriteConfigFile(const std::string& path, const std::string& text, int keep = kConfigBackups);

}  // namespace ferry::daemon
