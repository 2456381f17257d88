// The "rbd" entry of the backend registry (backends/builtin.cc): an image of a Ceph cluster
// through librbd (rbd_device.h); parameters and URI in rbd_params.h.
//
// Built without librbd (its headers were not found at configure time), the entry is still
// listed, its parameters are still checked, and opening a device fails with kUnavailable
// saying so: ferryd reports those backstores and serves its other LUNs.
//
// A cluster that cannot be reached (monitors down, connect timed out) is kUnavailable too; a
// missing pool or image is kNotFound; every error names rbd:POOL/IMAGE.
#pragma once

#include "backends/backend_type.h"

namespace ferry::backends::rbd {

const BackendType& RbdBackendType();

// True when this build has librbd (the device can be opened).
bool HaveLibrbd();

}  // namespace ferry::backends::rbd
