// The I_T nexus as the SCSI core sees it (SAM-5 4.6): the logical units one initiator port
// reaches through one target port, with their per-nexus write protection, and the names of
// both ports. The transport builds it from its LUN map and puts it in each Task.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ferry::scsi {

class LogicalUnit;
struct CscdId;

// One logical unit as a nexus sees it.
struct NexusLu {
  std::shared_ptr<LogicalUnit> lu;
  bool write_protect = false;  // the nexus's ACL maps it write-protected
};

// Everything one I_T nexus may reach. Immutable once built; the transport rebuilds it when
// the nexus's LUN map changes, so copies in flight keep the view (and the LUs) they began
// with.
struct NexusView {
  std::vector<NexusLu> lus;
  // The initiator port (persistent reservations name registrants by it) and the target
  // port the nexus came through: over iSCSI the target name and portal group tag, which is
  // also the port's relative identifier and its target port group (alua.h).
  std::string initiator_name;
  std::array<uint8_t, 6> isid{};
  std::string target_name;
  uint16_t relative_target_port = 1;
  uint16_t target_port_group = 1;
  const NexusLu* Find(const LogicalUnit* lu) const;
  // The LU whose VPD 83h carries this logical-unit designator.
  const NexusLu* FindByDesignator(const CscdId& id) const;
};

}  // namespace ferry::scsi
