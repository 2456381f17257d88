// The control-path probe of a remote LU (internal to the iSCSI backend): one synchronous
// login that reads what IscsiDevice::Open() needs, then logs out.
#pragma once

#include <cstdint>

#include "backends/iscsi/iscsi_connection.h"
#include "backends/iscsi/iscsi_device.h"
#include "base/status.h"

namespace ferry::backends::iscsi {

struct ProbedLu {
  uint32_t block_size = 0;
  uint64_t num_blocks = 0;
  uint8_t lbppbe = 0;  // logical blocks per physical block exponent (READ CAPACITY(16))
  bool lbpme = false;  // thin provisioned
  bool lbprz = false;  // deallocated blocks read zero
  // VPD B0h Block Limits (SBC-3 6.6.4), in blocks; 0: not reported.
  bool has_block_limits = false;
  uint32_t max_transfer_blocks = 0;
  uint32_t optimal_transfer_blocks = 0;
  uint32_t max_unmap_lba_count = 0;
  uint32_t max_unmap_descriptors = 0;
  uint32_t unmap_granularity_blocks = 0;
  uint64_t max_write_same_blocks = 0;
  // VPD B2h Logical Block Provisioning (SBC-3 6.6.6).
  bool lbpu = false;   // UNMAP supported
  bool lbpws = false;  // WRITE SAME(16) with UNMAP supported
  RemoteLuPages pages;
};

// Errors are one line naming the URL and the cause.
Result<ProbedLu> ProbeRemoteLu(const SessionConfig& cfg);

}  // namespace ferry::backends::iscsi
