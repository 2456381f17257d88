// A SCSI logical unit over a block device: the SPC-4 / SBC-3 command set of a disk.
//
// Execute() runs one command on the calling reactor thread (io::Reactor::Current()) and
// calls `done` exactly once, never inside Execute (block-device semantics). The transport
// owns the Task and its buffers until then. Commands that need the target's view (REPORT
// LUNS, commands to LUNs that do not exist) are answered by the target, not here.
//
// Unit attentions are kept per I_T nexus (Task::nexus) for the nexuses seen so far:
// whatever RaiseUnitAttention() adds (resets, changed parameters); a pending one fails the
// next command except INQUIRY, REPORT LUNS and REQUEST SENSE (SAM-5 5.14).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "base/inline_function.h"
#include "ferry/block_device.h"
#include "scsi/task.h"

namespace ferry::scsi {

class CopyManager;

struct LuIdentity {
  std::string vendor = "FERRY";       // T10 vendor id, 8 bytes
  std::string product = "ferry-lun";  // 16 bytes
  std::string revision = "0001";      // 4 bytes
  std::string serial;                 // unit serial number (VPD 80h)
  std::array<uint8_t, 16> naa{};      // NAA 6 designator (VPD 83h); first nibble 6
  uint16_t relative_port = 1;         // relative target port identifier
  uint16_t target_port_group = 1;
};

// The most one READ or WRITE moves (VPD B0h MAXIMUM TRANSFER LENGTH, in bytes); larger
// ones are refused, so no transport buffers more than this for a block command.
inline constexpr uint64_t kMaxTransferBytes = 32u << 20;

class LogicalUnit {
 public:
  LogicalUnit(std::shared_ptr<block::BlockDevice> dev, LuIdentity id, bool write_protected);

  void Execute(Task& task, TaskDone done);

  // Queues a unit attention for every nexus (e.g. CAPACITY DATA HAS CHANGED).
  void RaiseUnitAttention(Asc asc);
  // Queues a unit attention for one nexus (e.g. REPORTED LUNS DATA HAS CHANGED when its
  // LUN map changed), whether or not it has sent a command here yet.
  void RaiseUnitAttentionFor(uint64_t nexus, Asc asc);

  // Third-party copy (copy_manager.h): without a copy manager the LU refuses EXTENDED COPY
  // and the token commands, and does not report 3PC. Set before the first command.
  void set_copy_manager(std::shared_ptr<CopyManager> m) { tpc_ = std::move(m); }
  CopyManager* copy_manager() const { return tpc_.get(); }

  // VPD 83h logical-unit designators: NAA (type 3), EUI-64 (2), T10 vendor id (1: vendor
  // and the first 12 characters of the serial, 20 bytes).
  bool HasDesignator(uint8_t type, std::span<const uint8_t> designator) const;
  std::array<uint8_t, 8> Eui64() const;
  std::string T10VendorId() const;

  // A write to these blocks is about to happen or has happened (point-in-time tokens).
  void NoteWrite(uint64_t lba, uint64_t blocks) const;

  block::BlockDevice& device() { return *dev_; }
  const LuIdentity& identity() const { return id_; }
  bool write_protected() const { return write_protected_; }

  // Mode page state that commands change (MODE SELECT), and that others read.
  struct ModeState {
    bool write_cache_enabled = true;  // caching page WCE
    bool descriptor_sense = false;    // control page D_SENSE
  };
  ModeState mode() const;

 private:
  friend struct CommandContext;
  bool TakeUnitAttention(Task& task);
  void Finish(Task& task, TaskDone& done);
  void FailUnsupported(Task& task, TaskDone& done);
  bool Supports(uint8_t opcode) const {
    return tpc_ != nullptr || (opcode != 0x83 && opcode != 0x84);
  }

  // Handlers (inquiry.cc, mode.cc, block_commands.cc, logical_unit.cc).
  void Inquiry(Task& t);
  void ModeSense(Task& t, bool ten);
  void ModeSelect(Task& t, bool ten);
  void ReadCapacity10(Task& t);
  void ReadCapacity16(Task& t);
  void RequestSense(Task& t);
  void ReportSupportedOpcodes(Task& t);
  void ReportSupportedTmfs(Task& t);
  // Commands that do I/O complete later; they return true when they took `done`.
  bool ReadWrite(Task& t, TaskDone& done);
  bool SyncCache(Task& t, TaskDone& done);

  std::shared_ptr<block::BlockDevice> dev_;
  std::shared_ptr<CopyManager> tpc_;
  LuIdentity id_;
  const bool write_protected_;
  mutable std::mutex mu_;
  ModeState mode_;                                            // guarded by mu_
  std::unordered_set<uint64_t> seen_nexus_;                   // guarded by mu_
  std::unordered_map<uint64_t, std::deque<Asc>> pending_ua_;  // guarded by mu_
  std::unordered_map<uint64_t, Sense> last_sense_;            // guarded by mu_
};

}  // namespace ferry::scsi
