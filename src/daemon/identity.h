// Persistent identities of backstores: the NAA designator and unit serial number a LUN
// reports (VPD 83h / 80h) are generated once per backstore name and kept in the state
// directory, so initiators (multipath, VMware) see the same LUN after a restart.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/status.h"
#include "scsi/logical_unit.h"

namespace ferry::daemon {

// Loads <state_dir>/identity/<name> or creates it (NAA 6 with random bits, a 16-digit hex
// serial). Fills naa and serial of `id`.
Status LoadOrCreateIdentity(const std::string& state_dir, const std::string& name,
                            scsi::LuIdentity* id);

// The key that authenticates ROD tokens (HMAC-SHA256): <state_dir>/tpc-token.key, 32 random
// bytes, created mode 0600 on first use. Refused when group or others may read it.
Result<std::array<uint8_t, 32>> LoadOrCreateTokenKey(const std::string& state_dir);

}  // namespace ferry::daemon
