// What an RbdDevice keeps for copies (rbd_device.h, "Copies"; rbd_copy.cc). Internal to
// the rbd backend: it brings librados' C++ API (RADOS copy-from has no C form).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <rados/librados.hpp>
#include <string>
#include <vector>

namespace ferry::backends::rbd {

// Read at open (RbdDevice::ReadCopyInfo); the counters change as copies complete.
struct CopyInfo {
  std::string fsid;         // the cluster's: copies only between images of one cluster
  std::string header_oid;   // rbd_header.ID, which holds the snapshot context
  std::string data_prefix;  // rbd_data.ID: object N is PREFIX.%016x
  librados::IoCtx data;     // the pool holding the data objects (the image's data pool)
  uint64_t stripe_unit = 0;
  uint64_t stripe_count = 0;
  bool snapshot = false;  // opened at a snapshot

  // Buffers of the gateway steps (kCopyBufferBytes each), reused; as many exist as steps
  // were ever in flight at once.
  std::mutex buf_mu;
  std::vector<std::unique_ptr<uint8_t[]>> free_bufs;

  std::atomic<uint64_t> server_bytes{0};
  std::atomic<uint64_t> gateway_bytes{0};
  std::atomic<uint64_t> zeroed_bytes{0};
  std::atomic<uint64_t> parent_objects{0};
  std::atomic<uint64_t> marked_objects{0};
  std::atomic<uint64_t> fallback_legs{0};
};

}  // namespace ferry::backends::rbd
