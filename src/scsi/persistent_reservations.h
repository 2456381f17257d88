// Reservations of one logical unit: SCSI-3 persistent reservations (SPC-4 5.13; PERSISTENT
// RESERVE IN 6.15, PERSISTENT RESERVE OUT 6.16) and SPC-2 RESERVE/RELEASE (SPC-2 5.5, 7.21,
// 7.22; CRH 0, so the two never mix: SPC-4 5.13.3 exceptions are not implemented).
//
// The logical unit owns one instance and, for every command:
//   1. asks Conflicts(); true: complete with RESERVATION CONFLICT, nothing else;
//   2. sends PERSISTENT RESERVE IN to In(), OUT to Out(), RESERVE(6/10) to Reserve() and
//      RELEASE(6/10) to Release(), and applies the returned PrEffects (unit attentions, task
//      aborts) before it completes the command;
//   3. reports LOGICAL UNIT RESET to OnLuReset() and I_T nexus loss to OnNexusLoss().
//
// Threads: any call from any thread. One mutex serializes the calls, so each service action
// is the single indivisible event SPC-4 5.13.1 asks for. Conflicts() takes no lock while
// nothing is registered or reserved (the usual case, on every command). A command that
// passed Conflicts() is not failed by a reservation made after (5.13.1).
//
// APTPL (SPC-4 5.13.5): while the last valid APTPL bit is one, every change is written to
// the APTPL file before the command completes (pr_state.h); a change that cannot be written
// is not made. The state is read from the file at construction. Out() then blocks on the
// write and fsync, holding the lock (Conflicts() of other commands to this LU wait): PR OUT
// is rare, and the LU may run it off its reactor.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "scsi/pr_params.h"
#include "scsi/pr_state.h"
#include "scsi/sense.h"

namespace ferry::scsi {

// An I_T nexus as reservations see it.
struct PrNexus {
  uint64_t id = 0;             // Task::nexus: NexusIdFor(initiator_name, isid)
  std::string initiator_name;  // iSCSI name as logged in
  std::array<uint8_t, 6> isid{};
  uint16_t relative_target_port = 1;  // of the target port the session came through
};

// What the logical unit must do after a command, in this order, before completing it.
struct PrEffects {
  // Unit attentions to queue, one per (nexus, ASC): RESERVATIONS PREEMPTED (2A03h),
  // RESERVATIONS RELEASED (2A04h), REGISTRATIONS PREEMPTED (2A05h). Never for the nexus
  // that sent the command.
  std::vector<std::pair<uint64_t, Asc>> unit_attentions;
  // PREEMPT AND ABORT (SPC-4 5.13.11.2.6): abort every task of these nexuses (as ABORT TASK
  // SET would, TAS rules applying). Never the sending nexus: when a nexus preempts its own
  // key its other tasks run on (the PR OUT command itself must not be aborted).
  std::vector<uint64_t> abort_tasks_of;
};

class PersistentReservations {
 public:
  // `aptpl_file`: where the state lives while APTPL is active; empty: APTPL=1 is refused
  // (PTPL_C 0) and nothing is read or written. A file that exists but cannot be read or
  // parsed is left alone, reported by load_error() and the LU starts without reservations.
  explicit PersistentReservations(std::filesystem::path aptpl_file);

  PersistentReservations(const PersistentReservations&) = delete;
  PersistentReservations& operator=(const PersistentReservations&) = delete;

  // Whether `cdb` (its first byte the operation code) from `n` must end in RESERVATION
  // CONFLICT: SPC-4 5.13.1 table 65 and SBC-4 table 13 (see ClassifyForReservations), the
  // holder and registrant rules of each type, PERSISTENT RESERVE IN/OUT under an SPC-2
  // reservation, RESERVE/RELEASE while registrations exist, and SPC-2 reservations.
  bool Conflicts(const PrNexus& n, const uint8_t* cdb) const;

  // SPC-4 6.15 PERSISTENT RESERVE IN (5Eh): READ KEYS, READ RESERVATION, REPORT
  // CAPABILITIES, READ FULL STATUS. Sets `out` to the whole parameter data (the caller cuts
  // it to the ALLOCATION LENGTH) or returns INVALID FIELD IN CDB for another service action.
  std::optional<Sense> In(const uint8_t* cdb, std::vector<uint8_t>* out) const;

  struct OutResult {
    Status status = Status::kGood;  // GOOD, CHECK CONDITION (with sense), RESERVATION CONFLICT
    std::optional<Sense> sense;
    PrEffects effects;
  };
  // SPC-4 6.16 PERSISTENT RESERVE OUT (5Fh), service actions 00h-07h. `params` is the data
  // out; the CDB's PARAMETER LIST LENGTH says how much of it is the list. A failure to write
  // the APTPL file ends the command in INSUFFICIENT REGISTRATION RESOURCES, state unchanged.
  OutResult Out(const PrNexus& n, const uint8_t* cdb, std::span<const uint8_t> params);

  // SPC-2 7.21 RESERVE(6) 16h / RESERVE(10) 56h and 7.22 RELEASE(6) 17h / RELEASE(10) 57h,
  // logical unit reservations only (third-party: INVALID FIELD IN CDB).
  OutResult Reserve(const PrNexus& n, const uint8_t* cdb);
  OutResult Release(const PrNexus& n, const uint8_t* cdb);

  // SAM-5 events. A LOGICAL UNIT RESET releases an SPC-2 reservation; the loss of an I_T
  // nexus releases the SPC-2 reservation it holds. Persistent reservations and
  // registrations are untouched (SPC-4 5.13.1).
  void OnLuReset();
  void OnNexusLoss(uint64_t nexus);

  // Why the APTPL file was not loaded (empty: loaded, or there was none).
  std::string load_error() const;
  // PTPL_A: the last valid APTPL bit was one (or the state came from the APTPL file).
  bool aptpl_active() const;

 private:
  struct Spc2Holder {
    uint64_t nexus = 0;
    uint16_t relative_target_port = 0;
  };

  bool ConflictsLocked(const PrNexus& n, const uint8_t* cdb) const;
  // Keeps `next` as the state, writing or removing the APTPL file first as needed; false
  // (state unchanged) when the file could not be written.
  bool Commit(PrState next);
  void UpdateActive();

  const std::filesystem::path aptpl_file_;
  std::string load_error_;  // set once, in the constructor
  mutable std::mutex mu_;
  PrState state_;                   // guarded by mu_
  std::optional<Spc2Holder> spc2_;  // guarded by mu_
  // Anything registered or reserved (persistent or SPC-2); written under mu_.
  std::atomic<bool> active_{false};
};

}  // namespace ferry::scsi
