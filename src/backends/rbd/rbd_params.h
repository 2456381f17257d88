// Parameters of an rbd backstore (a Ceph RBD image), parsed without touching the cluster.
//
// Keys: pool, image (required), snap (a snapshot: the device is read-only), ceph_conf (the
// cluster's config file; empty: librados' default search), client (the client id, "admin"
// or "client.admin"), keyring (a keyring file; default: the one ceph_conf names), block_size
// (512 or 4096 usually; the image has none of its own), read_only, timeout (seconds, the
// monitor connect and monitor operation timeout).
//
// URI: rbd:POOL/IMAGE[@SNAP], further keys as ?KEY=VALUE (backends/builtin.cc), e.g.
// rbd:rbd/vol1?ceph_conf=/etc/ceph/ceph.conf&client=gateway. Secrets never appear in a
// URI or a parameter: the key is read by librados from the keyring file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "backends/backend_type.h"

namespace ferry::backends::rbd {

struct RbdOptions {
  std::string name;  // the instance name; empty: "rbd:POOL/IMAGE[@SNAP]"
  std::string pool;
  std::string image;
  std::string snap;              // non-empty: open this snapshot, read-only
  std::string ceph_conf;         // path; empty: librados' default search ($CEPH_CONF, /etc/ceph)
  std::string client = "admin";  // client id, without "client."
  std::string keyring;           // path; empty: from ceph_conf
  uint32_t block_size = 512;
  bool read_only = false;
  int timeout_s = 10;

  // "POOL/IMAGE[@SNAP]": how errors and logs name the image.
  std::string Spec() const;
};

// The one parser of an rbd backstore's parameters. Pure: reads no file. Relative paths are
// kept as given (the opener resolves them, see ResolvePaths).
Result<RbdOptions> ParseRbdParams(const BackendParams& params);

// "rbd:POOL/IMAGE[@SNAP]" (without the query) -> pool, image[, snap].
Result<BackendParams> RbdParamsFromUri(std::string_view uri);

// Makes relative ceph_conf / keyring paths relative to `base_dir` (when not empty).
void ResolvePaths(std::string_view base_dir, RbdOptions* options);

}  // namespace ferry::backends::rbd
