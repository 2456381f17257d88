// The "iscsi" entry of the backend registry (backends/builtin.cc): a LUN of a remote iSCSI
// target (iscsi_device.h).
//
// Parameters: url (iscsi://host[:port]/IQN/LUN, required), auth_group (CHAP credentials by
// name, from the opener's context: ferryd's "auth_groups"), or chap_user + chap_secret_file
// [+ mutual_user + mutual_secret_file] (secrets read from files, base/secret_file.h),
// initiator_name, timeout (seconds), read_only, offload (auto, xcopy, odx, none: which
// third-party copy copies into this LU may ask of the array).
//
// URI: iscsi://[USER[%SECRET_FILE]@]HOST[:PORT]/IQN/LUN, the form libiscsi and QEMU use,
// except that the password slot names a file holding the secret, never the secret.
//
// An array that cannot be reached (connection refused or timed out) is kUnavailable, so
// that ferryd serves its other LUNs; every other failure keeps its own code.
#pragma once

#include "backends/backend_type.h"

namespace ferry::backends::iscsi {

const BackendType& IscsiBackendType();

}  // namespace ferry::backends::iscsi
