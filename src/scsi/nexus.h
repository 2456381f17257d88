// The I_T nexus as the SCSI core sees it (SAM-5 4.6): the logical units one initiator port
// reaches through one target port, by LUN, with their per-nexus write protection, and the
// names of both ports; and the answers the nexus gives itself, with no logical unit (REPORT
// LUNS, a command to a LUN it does not map). A transport decodes its LUN field, addresses
// each task here and executes what is left on the logical unit; it builds no SCSI data.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry::scsi {

class LogicalUnit;
struct CscdId;
struct Task;

// One logical unit as a nexus sees it.
struct NexusLu {
  std::shared_ptr<LogicalUnit> lu;
  uint64_t lun = 0;            // the number the nexus addresses it by
  bool write_protect = false;  // the nexus's ACL maps it write-protected
};

// Everything one I_T nexus may reach. Immutable once built; the transport rebuilds it when
// the nexus's LUN map changes, so copies in flight keep the view (and the LUs) they began
// with.
struct NexusView {
  std::vector<NexusLu> lus;  // the LUN map, in increasing LUN order
  // The initiator port (persistent reservations name registrants by it) and the target
  // port the nexus came through: over iSCSI the target name and portal group tag, which is
  // also the port's relative identifier and its target port group (alua.h).
  std::string initiator_name;
  std::array<uint8_t, 6> isid{};
  std::string target_name;
  uint16_t relative_target_port = 1;
  uint16_t target_port_group = 1;
  const NexusLu* Find(const LogicalUnit* lu) const;
  // The LU the nexus maps at `lun`; null when it maps none there.
  const NexusLu* FindLun(uint64_t lun) const;
  // The LU whose VPD 83h carries this logical-unit designator.
  const NexusLu* FindByDesignator(const CscdId& id) const;
};

// SAM-5 4.7 LUN field <-> number: peripheral (0..255) and flat (up to 16383) addressing.
// Returns false for address methods we do not use.
bool DecodeLun(uint64_t field, uint64_t* lun);
uint64_t EncodeLun(uint64_t lun);

// Addresses `t` to `lun` of the nexus `view` (null: a nexus without LUNs; nullopt: a LUN
// field that names no LUN): sets the task's view and the write protection the nexus gives
// the LU there. Returns that logical unit, or null when the nexus maps none at `lun`.
LogicalUnit* AddressTask(const std::shared_ptr<const NexusView>& view, std::optional<uint64_t> lun,
                         Task& t);

// The commands the nexus answers itself, whatever the transport: REPORT LUNS sent to any
// LUN, from `view` (null: no LUNs), and every command to a LUN it does not map (`lu` null).
// Returns true when `t` is answered (at once: status, sense and data set); false, with `t`
// untouched, when it is for `lu` to execute.
bool AnswerForNexus(const NexusView* view, const LogicalUnit* lu, Task& t);

}  // namespace ferry::scsi
