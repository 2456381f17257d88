// ferryd's configuration file (JSON): backstores, volumes, CHAP credential references,
// targets with portal groups, LUNs and ACLs. docs/ferryd-config.md describes every key.
//
// ParseConfig is a pure decoder (fuzzed by fuzz/ferryd_config_fuzz.cc): it checks syntax,
// types, ranges, names and cross references, and reports the first problem as
// "$.json.path: reason". Unknown keys are errors (they are usually typos). Files the
// configuration points at (CHAP secrets, backing files) are read later, by the daemon,
// before anything starts.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend_type.h"
#include "base/status.h"
#include "iscsi/acl.h"
#include "iscsi/chap.h"
#include "scsi/alua.h"

namespace ferry::backends {
// Configurations compare equal when their parameters do, types included.
inline bool operator==(const ParamValue& a, const ParamValue& b) {
  return a.kind == b.kind && a.text == b.text;
}
}  // namespace ferry::backends

namespace ferry::daemon {

struct BackstoreConfig {
  std::string name;
  // A backend of the registry (backends/builtin.h: "ram", "file", "iscsi", ...), or
  // kVolumeType: a volume (VolumeConfig) serving as a LUN's backstore; never parsed from
  // "backstores", made by the daemon for each volume.
  std::string type = "ram";
  // The backend's parameters: every key of the backstore's object but "type" and
  // "product", with its JSON type (checked by the backend's own parser).
  backends::BackendParams params;
  std::string product;  // INQUIRY product id; default: the backstore name

  bool is_volume() const { return type == kVolumeType; }
  bool operator==(const BackstoreConfig&) const = default;
  // The CHAP credentials a backend logs in with (an "auth_group" parameter), or empty.
  std::string auth_group() const;
  static constexpr std::string_view kVolumeType = "volume";
};

// A device-mapper-style volume (src/volume/volume.h): its table in dmsetup syntax. The
// table's device names are backstores or other volumes, in any order in the file; the
// daemon parses the tables (volume::Table::Parse) when it opens the devices, since only
// then are sizes and the target types' checks known (volumes.h).
struct VolumeConfig {
  std::string name;
  std::string table;  // lines joined with '\n'; line numbers count from the first
  bool operator==(const VolumeConfig&) const = default;
};

// CHAP credentials by reference: secrets live in files (mode 0600), never in the config.
struct AuthGroupConfig {
  std::string name;
  std::string user;
  std::string secret_file;
  std::string mutual_user;  // empty: one-way CHAP
  std::string mutual_secret_file;
  bool operator==(const AuthGroupConfig&) const = default;
};

struct LunMapConfig {
  uint64_t lun = 0;  // the target's LUN
  uint64_t as = 0;   // the LUN number the initiator sees
  bool write_protect = false;
  bool operator==(const LunMapConfig&) const = default;
};

struct AclConfig {
  std::vector<std::string> initiators;
  std::vector<iscsi::Network> networks;
  std::string auth_group;  // empty: the target's
  bool write_protect = false;
  std::optional<std::vector<LunMapConfig>> luns;  // absent: every LUN as numbered
  bool operator==(const AclConfig&) const = default;
};

struct PortalConfig {
  std::string ip;
  uint16_t port = 3260;
  std::string Text() const;  // "ip:port", IPv6 in brackets
  bool operator==(const PortalConfig&) const = default;
};

struct PortalGroupConfig {
  uint16_t tag = 1;
  std::vector<PortalConfig> portals;
  // Asymmetric access (scsi/alua.h): the state every LU of the target starts in on this
  // target port group, and whether the group is the preferred path (PREF).
  scsi::AluaState alua_state = scsi::AluaState::kActiveOptimized;
  bool preferred = false;
  bool operator==(const PortalGroupConfig&) const = default;
};

struct TargetLunConfig {
  uint64_t lun = 0;
  std::string backstore;
  bool write_protect = false;
  bool operator==(const TargetLunConfig&) const = default;
};

struct TargetConfig {
  std::string name;
  std::string alias;
  std::vector<PortalGroupConfig> portal_groups;
  std::vector<TargetLunConfig> luns;
  std::string auth_group;       // CHAP for every initiator; empty: none
  std::vector<AclConfig> acls;  // empty: open to every initiator
  bool operator==(const TargetConfig&) const = default;
};

// The FUSE mount (docs/fuse.md): backstores and volumes as files under `mount_point`.
struct FuseConfig {
  std::string mount_point;           // an absolute path to an existing directory
  std::vector<std::string> devices;  // backstores and volumes shown as files at start
  bool allow_other = false;          // other users may open the files (modes still apply)
  bool read_only = false;            // every file read-only
  bool operator==(const FuseConfig&) const = default;
};

struct Config {
  std::string state_dir;                              // empty: ferryd's --state-dir
  std::string admin_socket;                           // empty: <state_dir>/ferryd.sock
  std::vector<iscsi::ChapAlgorithm> chap_algorithms;  // empty: the defaults
  std::string discovery_auth_group;                   // CHAP for discovery sessions
  uint32_t nop_interval_s = 30;                       // 0: no NOP-In pings
  uint32_t nop_timeout_s = 30;
  uint32_t login_timeout_s = 15;  // a login not finished by then: the connection closes
  // No whole Login PDU by then: the connection closes (1..login_timeout_s).
  uint32_t first_pdu_timeout_s = 3;
  uint32_t max_connections = 1024;  // logged-in connections (sessions)
  // Connections that have not logged in, in all and per source address (the oldest goes
  // when full; per address <= in all).
  uint32_t max_prelogin_connections = 512;
  uint32_t max_prelogin_per_address = 64;
  // Third-party copy (EXTENDED COPY, ODX): bytes per second all copies share (0: no cap),
  // and the inactivity timeout of a ROD token whose POPULATE TOKEN asks for none.
  uint64_t copy_bandwidth = 0;
  uint32_t token_timeout_s = 60;
  // SANITIZE OVERWRITE: bytes per second each logical unit is overwritten at (0: no cap).
  uint64_t sanitize_bandwidth = 0;
  // "metrics": the HTTP listener for /metrics and /healthz, "ip:port" (docs/metrics.md);
  // empty: no listener.
  std::string metrics_listen;
  // "log": "text" or "json" lines; a file to append to (empty: standard output).
  std::string log_format;
  std::string log_file;
  std::vector<BackstoreConfig> backstores;
  std::vector<VolumeConfig> volumes;
  std::vector<AuthGroupConfig> auth_groups;
  std::vector<TargetConfig> targets;
  std::optional<FuseConfig> fuse;  // absent: no mount (ferryctl fuse refuses)

  const BackstoreConfig* FindBackstore(std::string_view name) const;
  const VolumeConfig* FindVolume(std::string_view name) const;
  const AuthGroupConfig* FindAuthGroup(std::string_view name) const;
  bool operator==(const Config&) const = default;
};

Result<Config> ParseConfig(std::string_view json_text);

// Backstore and volume names: 1..64 of [A-Za-z0-9._-] (they name files in the state
// directory).
bool ValidDeviceName(std::string_view name);

// "ip:port" or "[v6]:port" -> portal; `what` names the value in errors.
Result<PortalConfig> ParsePortal(std::string_view s);

}  // namespace ferry::daemon
