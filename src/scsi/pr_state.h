// The state of one logical unit's persistent reservations (SPC-4 5.13) and the APTPL file
// that keeps it through a power loss (5.13.5, 6.16.3 APTPL bit).
//
// Plain values: persistent_reservations.cc changes a copy under its lock and keeps it only
// once the APTPL file, if active, holds it.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "scsi/pr_params.h"

namespace ferry::scsi {

// One registration: an I_T nexus, or with ALL_TG_PT an initiator port through every target
// port (SPC-4 6.16.3), and its reservation key.
struct PrRegistration {
  std::string initiator_name;  // iSCSI name, as first registered (compare with IscsiNamesEqual)
  std::array<uint8_t, 6> isid{};
  uint16_t relative_target_port = 1;  // the target port it was registered through
  bool all_tg_pt = false;
  uint64_t key = 0;       // never 0
  bool holder = false;    // holds the reservation (only for types other than all registrants)
  uint64_t nexus_id = 0;  // where its unit attentions go; not persisted (NexusIdFor on load)
  bool operator==(const PrRegistration&) const = default;
};

struct PrState {
  std::vector<PrRegistration> registrations;
  // The persistent reservation, LU_SCOPE. Invariants: an all registrants type has at least
  // one registration and no `holder` flag; another type has exactly one registration with
  // `holder` set; no reservation, no `holder` flag.
  std::optional<PrType> reservation;
  uint32_t generation = 0;  // PRgeneration (SPC-4 6.15.2)
  bool aptpl = false;       // the last valid APTPL bit (6.16.3): the file below is kept
  bool operator==(const PrState&) const = default;
};

// Whether two registrations name a common I_T nexus: the same initiator port, and the same
// target port or either through every target port.
bool Overlaps(const PrRegistration& a, const PrRegistration& b);

// The most registrations one logical unit holds; beyond, REGISTER ends in INSUFFICIENT
// REGISTRATION RESOURCES (SPC-4 5.13.7).
inline constexpr size_t kMaxPrRegistrations = 1024;

// The APTPL file: one JSON object, {"format": "ferry-pr-aptpl", "version": 1, "generation",
// "reservation": type or null, "registrations": [{"initiator", "isid" (12 hex digits),
// "port", "all_tg_pt", "key" (16 hex digits: JSON numbers lose 64-bit precision in other
// tools), "holder"}]}. Keys are strings so that operators can read and diff the file.
//
// Loads `file`: NotFound when it does not exist; InvalidArgument naming the first problem
// when it is not a state this module could have written (syntax, types, invariants above);
// the error of the read otherwise. The loaded state has aptpl set.
Result<PrState> LoadAptplFile(const std::filesystem::path& file);
// Replaces `file` atomically: a temporary file next to it, written and fsynced, renamed over
// it, and the directory fsynced, so that a crash leaves the old or the new state.
ferry::Status SaveAptplFile(const std::filesystem::path& file, const PrState& s);
// Removes `file` and fsyncs its directory; a missing file is not an error.
ferry::Status RemoveAptplFile(const std::filesystem::path& file);

}  // namespace ferry::scsi
