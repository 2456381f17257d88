// ferryd's volumes (src/volume/): the environment their tables are built in, the volumes of
// the configuration opened in dependency order, and a volume's place among the backstores.
//
// Names. Backstores and volumes share one device registry (Setup::registry): a table line
// names either, and a LUN's "backstore" names either. A volume gets a logical unit like a
// backstore (Backstore with Type::kVolume, its identity kept in the state directory under
// its name), so LUNs, third-party copy, reservations and flushes treat both alike.
//
// Holders. A LUN that maps a volume keeps it open (Volume::Open/Close), and so does a table
// of another volume (volume::DeviceRef): Volume::Remove refuses then, and VolumeUsers names
// who holds it.
//
// Persistence. Volumes created or reloaded through the admin socket last until ferryd stops,
// as device-mapper's do until reboot: the configuration file is the persistent definition,
// and `ferryctl config save` writes them into it (docs/adr/0006-config-save-and-reload.md).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "daemon/config.h"
#include "daemon/setup.h"
#include "ferry/copy.h"
#include "volume/table.h"
#include "volume/volume.h"

namespace ferry::daemon {

// Where volume tables are built: the registry their lines look devices up in, and the
// reactor and copy engine (through a volume::DataMover) of targets that keep state or move
// data. Lives on one reactor (ferryd's main one), which must outlive it.
class VolumeEnv {
 public:
  static Result<std::unique_ptr<VolumeEnv>> Create(io::Reactor* reactor,
                                                   std::shared_ptr<block::DeviceRegistry> reg);
  ~VolumeEnv();
  // TableOptions over the registry; `missing`, when given, records the last name the
  // lookup did not find (for dependency resolution).
  volume::TableOptions Options(std::string* missing = nullptr) const;
  io::Reactor* reactor() const { return reactor_; }

 private:
  VolumeEnv() = default;
  io::Reactor* reactor_ = nullptr;
  std::shared_ptr<block::DeviceRegistry> registry_;
  std::unique_ptr<copy::CopyEngine> engine_;
  std::unique_ptr<volume::DataMover> mover_;
};

// Runs volume::PrepareTable and the reactor until it completes (startup only: the admin
// socket prepares asynchronously).
Status PrepareTableNow(const std::shared_ptr<volume::Table>& table, io::Reactor* reactor);

// Registers `vol` under its name and adds it to s->backstores with a logical unit (identity
// from the state directory). AlreadyExists when the name is taken.
Result<Backstore*> AddVolume(Setup* s, std::shared_ptr<volume::Volume> vol,
                             const std::string& state_dir, uint64_t sanitize_bandwidth);

// Parses, prepares and creates every volume of `c`, in the order their tables need them
// (whatever the order in the file), after Prepare opened the backstores. A table naming a
// device that is neither a backstore nor a volume, or volumes whose tables name each other
// in a cycle, fail with the volume, the table line and what is missing.
Status OpenVolumes(const Config& c, const std::string& state_dir, const VolumeEnv& env, Setup* s);

// Who holds a volume open, for error messages: "LUN 3 of iqn...", "volume 'top' (line 2)",
// "the inactive table of volume 'top' (line 1)". `targets` may be empty.
std::vector<std::string> VolumeUsers(const Setup& s, const volume::Volume& vol,
                                     const std::vector<std::shared_ptr<iscsi::Target>>& targets);

// A volume's entry in s->backstores, or nullptr.
Backstore* FindVolume(Setup& s, std::string_view name);

}  // namespace ferry::daemon
