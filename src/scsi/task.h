// One SCSI command as the SCSI core sees it: the transport fills in the CDB and buffers,
// the logical unit executes it and sets status and sense.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "scsi/sense.h"

namespace ferry::scsi {

struct Task {
  std::array<uint8_t, 16> cdb{};
  uint64_t nexus = 0;  // I_T nexus identity (for unit attentions and, later, reservations)
  // The nexus's ACL maps this LUN write-protected: writes fail as on a write-protected LU
  // and MODE SENSE reports WP (SBC-3 6.5.1), for this nexus only.
  bool write_protected = false;
  // Data from the initiator (writes, parameter lists), all of it, owned by the transport.
  std::span<const uint8_t> data_out;
  // Buffer for data to the initiator, sized by the transport to the expected length; the
  // command fills data_in_bytes of it. Commands that would return more return what fits
  // (allocation length semantics) and the transport reports the residual.
  std::span<uint8_t> data_in;
  uint32_t data_in_bytes = 0;
  // What the command had to return, after its allocation length: more than data_in holds
  // means the initiator's buffer was too small (the transport reports an overflow).
  uint32_t data_in_wanted = 0;
  uint32_t allocation_length = UINT32_MAX;  // set by the logical unit from the CDB
  // Results.
  Status status = Status::kGood;
  bool has_sense = false;
  Sense sense;
  bool descriptor_sense = false;  // D_SENSE of the control mode page

  void Fail(const Sense& s) {
    status = Status::kCheckCondition;
    has_sense = true;
    sense = s;
  }
  // Copies `bytes` into data_in, truncated to its size.
  void Reply(std::span<const uint8_t> bytes);
};

}  // namespace ferry::scsi
