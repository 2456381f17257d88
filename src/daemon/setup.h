// From a parsed configuration to running objects: CHAP secrets read from their files,
// backstores opened with their persistent identities, iSCSI targets with their LUNs, ACLs
// and portal groups. Everything that can fail does so here, before ferryd listens.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/ram/ram_device.h"
#include "base/status.h"
#include "block/registry.h"
#include "daemon/config.h"
#include "ferry/block_device.h"
#include "iscsi/target.h"
#include "volume/table.h"
#include "volume/volume.h"

namespace ferry::daemon {

// Reads the auth group's secrets (base/secret_file.h).
Result<std::shared_ptr<const iscsi::ChapCredentials>> LoadAuthGroup(const AuthGroupConfig& a);

// The embedded default: RAM LUN 0 and file LUN 1 (`<state_dir>/demo-file.img`) behind
// iqn.2026-11.org.ferry:demo on `portal`, open to every initiator.
Config DemoConfig(const PortalConfig& portal, uint64_t lun_size);
inline constexpr const char* kDemoTarget = "iqn.2026-11.org.ferry:demo";

// A backstore of the configuration, or a volume (config.type kVolume, volumes.h).
struct Backstore {
  BackstoreConfig config;
  std::shared_ptr<block::BlockDevice> device;
  std::shared_ptr<scsi::LogicalUnit> lu;
  std::shared_ptr<volume::Volume> volume;  // volumes only: `device` as a Volume
  std::shared_ptr<volume::Table> loaded;   // volumes only: the table loaded inactive, if any
  bool from_config = false;                // volumes only: defined in the configuration file
};

struct Setup {
  // Backstores and volumes by name: the devices volume tables look up.
  std::shared_ptr<block::DeviceRegistry> registry = std::make_shared<block::DeviceRegistry>();
  std::map<std::string, Backstore> backstores;  // and volumes
  std::map<std::string, std::shared_ptr<const iscsi::ChapCredentials>> auth;
  std::shared_ptr<const iscsi::ChapCredentials> discovery_chap;
  // Backstores whose remote store could not be reached at start (kUnavailable from the
  // backend), with the reason; their LUNs are not served, the others are.
  std::map<std::string, std::string, std::less<>> unavailable;
  // Every RAM backstore's memory, those a reload opens included: copies between them are
  // native.
  std::shared_ptr<backends::RamArena> ram_arena = std::make_shared<backends::RamArena>();
};

// What backends may ask for: relative paths in the state directory, `s`'s RAM arena, CHAP
// credentials by group from `auth` (which must outlive the context's use).
backends::BackendContext MakeBackendContext(
    const Setup& s,
    const std::map<std::string, std::shared_ptr<const iscsi::ChapCredentials>>& auth,
    const std::string& state_dir);

// Opens one backstore through the backend registry, with its logical unit (identity from the
// state directory); not registered anywhere. Errors name the backstore, but kUnavailable
// from the backend, which passes through as it is.
Result<Backstore> OpenBackstore(const BackstoreConfig& b, const backends::BackendContext& ctx,
                                const std::string& state_dir, uint64_t sanitize_bandwidth);

// Reads the secrets and opens every backstore through the backend registry (creating the
// state directory); volumes are opened after it (OpenVolumes in volumes.h). A backstore
// whose backend reports kUnavailable is logged and listed in `unavailable`; any other
// failure fails the whole setup.
Result<Setup> Prepare(const Config& c, const std::string& state_dir);

// The key of a configured portal in the map of bound addresses: "ip:port" as written, and
// for port 0 (any free port) also the portal group's place in its target, so that each of
// a target's portal groups asking for a free port gets a listener (a path) of its own,
// while the first groups of several targets still share one.
std::string PortalKey(size_t group_index, const PortalConfig& p);

// The iSCSI targets; `bound` maps each configured portal (PortalKey) to the address it
// listens on (port 0 resolved).
std::vector<std::shared_ptr<iscsi::Target>> MakeTargets(
    const Config& c, const Setup& s, const std::map<std::string, std::string>& bound);

// Persistent reservations with APTPL live in <state_dir>/reservations/<backstore>.json, one
// file per logical unit; restores them (a file that cannot be read is logged and skipped).
Status LoadReservations(Setup& setup, const std::string& state_dir);

}  // namespace ferry::daemon
