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
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/inline_function.h"
#include "ferry/block_device.h"
#include "scsi/alua.h"
#include "scsi/lu_stats.h"
#include "scsi/persistent_reservations.h"
#include "scsi/range_lock.h"
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
// UNMAP limits (VPD B0h): block descriptors per command, blocks per descriptor.
inline constexpr uint32_t kMaxUnmapDescriptors = 256;
inline constexpr uint32_t kMaxUnmapBlocks = UINT32_MAX;
// The most one WRITE SAME writes (VPD B0h MAXIMUM WRITE SAME LENGTH), in bytes.
inline constexpr uint64_t kMaxWriteSameBytes = 1ull << 30;

class LogicalUnit {
 public:
  LogicalUnit(std::shared_ptr<block::BlockDevice> dev, LuIdentity id, bool write_protected);

  void Execute(Task& task, TaskDone done);
  // Commands, bytes, latency and errors so far (lu_stats.h); any thread.
  const LuStats& stats() const { return stats_; }

  // SAM-5 logical unit reset (LOGICAL UNIT RESET, TARGET WARM RESET): a POWER ON, RESET
  // unit attention for every nexus, copies stopped, SPC-2 reservation released
  // (persistent reservations stay).
  void Reset();
  // I_T nexus loss (logout, connection dropped): its SPC-2 reservation is released.
  void NexusLost(uint64_t nexus);

  // Persistent reservations that survive restarts (APTPL) live in `file`. Set before the
  // first command; returns why an existing file could not be loaded (empty: fine).
  std::string PersistReservationsIn(std::filesystem::path file);
  PersistentReservations& reservations() { return *pr_; }

  // Queues a unit attention for every nexus (e.g. CAPACITY DATA HAS CHANGED).
  void RaiseUnitAttention(Asc asc);
  // Queues a unit attention for every nexus but `except` (the one whose command caused it).
  void RaiseUnitAttentionExcept(uint64_t except, Asc asc);
  // Queues a unit attention for one nexus (e.g. REPORTED LUNS DATA HAS CHANGED when its
  // LUN map changed), whether or not it has sent a command here yet.
  void RaiseUnitAttentionFor(uint64_t nexus, Asc asc);

  // Asymmetric access (alua.h): the target port groups the LU is reachable through and
  // their states. The transport's configuration adds the ports before the first command.
  AluaGroups& alua() { return alua_; }

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

  // Held by every command that changes blocks (range_lock.h), copies included. A lock, not
  // state: usable through a const LU.
  RangeLock& range_lock() const { return range_lock_; }
  // UNMAP and WRITE SAME's UNMAP deallocate: LBPME, LBPRZ (the device discards, and a
  // discarded block reads as zeroes).
  bool ThinProvisioned() const;
  // VPD B0h limits in blocks of this LU.
  uint32_t MaxCompareAndWriteBlocks() const;
  uint64_t MaxWriteSameBlocks() const;
  uint32_t MaxAtomicBlocks() const;
  // READ CAPACITY(16): log2 of logical blocks per physical block (the device's
  // physical_block_bytes over the block size).
  uint8_t PhysicalBlockExponent() const;

  // SANITIZE (sanitize.cc): the overwrite rate in bytes per second (0: no cap; set before
  // the first command), the state while one runs.
  void set_sanitize_rate(uint64_t bytes_per_sec) { sanitize_rate_ = bytes_per_sec; }
  // NOT READY with progress while one runs, MEDIUM ERROR in failure mode, else none.
  std::optional<Sense> SanitizeInProgress() const;
  void SetSanitizeProgress(uint16_t p);
  void EndSanitize(bool ok, bool ause);

  block::BlockDevice& device() { return *dev_; }
  const LuIdentity& identity() const { return id_; }
  // Write-protected by configuration or by the control mode page's SWP bit.
  bool write_protected() const { return write_protected_ || software_wp_.load(); }

  // Mode page state that commands change (MODE SELECT), and that others read.
  struct ModeState {
    bool write_cache_enabled = true;      // caching page WCE
    bool descriptor_sense = false;        // control page D_SENSE
    bool software_write_protect = false;  // control page SWP (SPC-4 7.5.8)
  };
  ModeState mode() const;

 private:
  friend struct CommandContext;
  // Execute() without the statistics: runs the command.
  void Dispatch(Task& task, TaskDone done);
  bool TakeUnitAttention(Task& task);
  void Finish(Task& task, TaskDone& done);
  void FailUnsupported(Task& task, TaskDone& done);
  bool Supports(uint8_t opcode, uint8_t sa = 0) const;
  // LBA OUT OF RANGE unless [lba, lba + blocks) lies inside the medium.
  bool CheckRange(Task& t, uint64_t lba, uint64_t blocks) const;
  // DATA PROTECT / WRITE PROTECTED on a write-protected LU or nexus.
  bool CheckWritable(Task& t) const;

  // Handlers (inquiry.cc, mode.cc, block_commands.cc, logical_unit.cc).
  void Inquiry(Task& t);
  void BlockLimitsProvisioning(std::vector<uint8_t>* page) const;
  void ModeSense(Task& t, bool ten);
  void ModeSelect(Task& t, bool ten);
  void ReadCapacity10(Task& t);
  void ReadCapacity16(Task& t);
  void RequestSense(Task& t);
  void ReportSupportedOpcodes(Task& t);
  void ReportSupportedTmfs(Task& t);
  // alua_commands.cc: REPORT / SET TARGET PORT GROUPS, and the access state gate.
  void ReportTargetPortGroups(Task& t);
  void SetTargetPortGroups(Task& t);
  bool AluaRefuses(Task& t) const;
  // Commands that do I/O complete later; they return true when they took `done`.
  bool ReadWrite(Task& t, TaskDone& done);
  bool SyncCache(Task& t, TaskDone& done);
  bool ReadModifyWrite(Task& t, TaskDone& done);  // COMPARE AND WRITE, ORWRITE
  bool WriteSame(Task& t, TaskDone& done);
  bool Unmap(Task& t, TaskDone& done);
  // Asks the device asynchronously: true when it took `done` (it completes the task later).
  bool GetLbaStatus(Task& t, TaskDone& done);
  void PreFetch(Task& t);
  bool Sanitize(Task& t, TaskDone& done);
  bool SanitizeSupported(uint8_t sa) const;
  // PERSISTENT RESERVE IN/OUT, RESERVE(6), RELEASE(6); false when the command conflicts.
  void Reservations(Task& t);
  bool ReservationConflict(Task& t) const;
  void ReadDefectData(Task& t);

  std::shared_ptr<block::BlockDevice> dev_;
  std::shared_ptr<CopyManager> tpc_;
  LuStats stats_;
  LuIdentity id_;
  const bool write_protected_;
  mutable RangeLock range_lock_;
  std::unique_ptr<PersistentReservations> pr_;
  AluaGroups alua_;
  uint64_t sanitize_rate_ = 0;
  std::atomic<bool> sanitizing_{false};
  std::atomic<bool> software_wp_{false};  // mode_.software_write_protect, read lock-free
  std::atomic<uint16_t> sanitize_progress_{0};
  std::atomic<bool> sanitize_failed_{false};       // failure mode (SBC-3 4.11.4)
  std::atomic<bool> sanitize_failed_ause_{false};  // ... that EXIT FAILURE MODE may end
  mutable std::mutex mu_;
  ModeState mode_;                                            // guarded by mu_
  std::unordered_set<uint64_t> seen_nexus_;                   // guarded by mu_
  std::unordered_map<uint64_t, std::deque<Asc>> pending_ua_;  // guarded by mu_
  uint64_t capacity_blocks_;  // the device's size the nexuses were told; guarded by mu_
  std::unordered_map<uint64_t, Sense> last_sense_;  // guarded by mu_
};

}  // namespace ferry::scsi
