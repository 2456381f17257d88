// Persistent identities of backstores: the NAA designator and unit serial number a LUN
// reports (VPD 83h / 80h) are generated once per backstore name and kept in the state
// directory, so initiators (multipath, VMware) see the same LUN after a restart.
#pragma once

#include <string>

#include "base/status.h"
#include "scsi/logical_unit.h"

namespace ferry::daemon {

// Loads <state_dir>/identity/<name> or creates it (NAA 6 with random bits, a 16-digit hex
// serial). Fills naa and serial of `id`.
Status LoadOrCreateIdentity(const std::string& state_dir, const std::string& name,
                            scsi::LuIdentity* id);

}  // namespace ferry::daemon
