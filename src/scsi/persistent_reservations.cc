#include "scsi/persistent_reservations.h"

#include <algorithm>

#include "base/endian.h"
#include "base/log.h"

namespace ferry::scsi {
namespace {

using OutResult = PersistentReservations::OutResult;

constexpr uint8_t kOpPersistentReserveIn = 0x5e;
constexpr uint8_t kOpPersistentReserveOut = 0x5f;

OutResult Good() { return {}; }
OutResult Conflict() { return {.status = Status::kReservationConflict}; }
OutResult Check(const Sense& s) { return {.status = Status::kCheckCondition, .sense = s}; }
OutResult InsufficientResources() {
  return Check(MakeSense(SenseKey::kIllegalRequest, Asc::kInsufficientRegistrationResources));
}

bool IsSpc2ReserveOrRelease(uint8_t op) {
  return op == 0x16 || op == 0x17 || op == 0x56 || op == 0x57;
}

// Whether `r` registers the I_T nexus of `name`/`isid` through target port `port`.
bool Covers(const PrRegistration& r, std::string_view name, const std::array<uint8_t, 6>& isid,
            uint16_t port) {
  return r.isid == isid && (r.all_tg_pt || r.relative_target_port == port) &&
         IscsiNamesEqual(r.initiator_name, name);
}

// The registration of nexus `n` (at most one: registrations never overlap).
std::optional<size_t> Find(const PrState& s, const PrNexus& n) {
  for (size_t i = 0; i < s.registrations.size(); ++i) {
    if (Covers(s.registrations[i], n.initiator_name, n.isid, n.relative_target_port)) return i;
  }
  return std::nullopt;
}

// SPC-4 5.13.10 persistent reservation holder.
bool IsHolder(const PrState& s, const PrRegistration& r) {
  return s.reservation && (IsAllRegistrants(*s.reservation) || r.holder);
}

void ReleaseReservation(PrState& s) {
  s.reservation.reset();
  for (PrRegistration& r : s.registrations) r.holder = false;
}

// Queues unit attention `asc` for `nexus` unless it sent the command or already has it.
void Raise(uint64_t nexus, Asc asc, uint64_t sender, PrEffects* e) {
  if (nexus == sender) return;
  for (const auto& [id, a] : e->unit_attentions) {
    if (id == nexus && a == asc) return;
  }
  e->unit_attentions.emplace_back(nexus, asc);
}

void RaiseForAll(const PrState& s, Asc asc, uint64_t sender, PrEffects* e) {
  for (const PrRegistration& r : s.registrations) Raise(r.nexus_id, asc, sender, e);
}

// Removes the registrations `doomed` picks: REGISTRATIONS PREEMPTED for their nexuses and,
// for PREEMPT AND ABORT, their tasks to abort.
template <typename Doomed>
void RemovePreempted(PrState& s, Doomed doomed, bool abort, uint64_t sender, PrEffects* e) {
  for (const PrRegistration& r : s.registrations) {
    if (!doomed(r)) continue;
    Raise(r.nexus_id, Asc::kRegistrationsPreempted, sender, e);
    auto& a = e->abort_tasks_of;
    if (abort && r.nexus_id != sender && std::find(a.begin(), a.end(), r.nexus_id) == a.end()) {
      a.push_back(r.nexus_id);
    }
  }
  std::erase_if(s.registrations, doomed);
}

// SPC-4 5.13.11.2.3 Unregistering registration `i`.
void Unregister(PrState& s, size_t i, uint64_t sender, PrEffects* e) {
  const bool was_holder = IsHolder(s, s.registrations[i]);
  s.registrations.erase(s.registrations.begin() + static_cast<std::ptrdiff_t>(i));
  if (!was_holder) return;
  const PrType type = *s.reservation;
  if (IsAllRegistrants(type)) {  // released with its last registrant (table 71)
    if (s.registrations.empty()) s.reservation.reset();
    return;
  }
  ReleaseReservation(s);
  if (IsRegistrantsType(type)) RaiseForAll(s, Asc::kReservationsReleased, sender, e);
}

PrRegistration NewRegistration(std::string_view name, const std::array<uint8_t, 6>& isid,
                               uint16_t port, bool all_tg_pt, uint64_t key, uint64_t nexus) {
  return {.initiator_name = std::string(name),
          .isid = isid,
          .relative_target_port = port,
          .all_tg_pt = all_tg_pt,
          .key = key,
          .nexus_id = nexus};
}

// SPC-4 5.13.7 Registering, from an unregistered nexus (tables 67 and 69): the nexus and,
// with SPEC_I_PT, the initiator ports of the TransportIDs through the same target port(s);
// all or none.
OutResult RegisterNew(PrState& s, const PrNexus& n, const PrOutParams& p) {
  const uint64_t key = p.sa_reservation_key;
  if (!IsValidIscsiName(n.initiator_name)) return InsufficientResources();  // no TransportID
  // ALL_TG_PT from an initiator port registered through another target port: the implied
  // per-port registrations would meet a registered nexus with the wrong key (6.16.3).
  if (p.all_tg_pt && std::any_of(s.registrations.begin(), s.registrations.end(), [&](auto& r) {
        return r.isid == n.isid && IscsiNamesEqual(r.initiator_name, n.initiator_name);
      })) {
    return Conflict();
  }
  std::vector<PrRegistration> add = {
      NewRegistration(n.initiator_name, n.isid, n.relative_target_port, p.all_tg_pt, key, n.id)};
  for (const IscsiTransportId& t : p.transport_ids) {
    // Registrations are per initiator port; a format 00b TransportID names a whole
    // initiator device (any ISID), which Ferry does not register.
    if (!t.isid) return Check(InvalidFieldInParameterList(t.offset, 7));
    PrRegistration r = NewRegistration(t.name, *t.isid, n.relative_target_port, p.all_tg_pt, key,
                                       NexusIdFor(t.name, *t.isid));
    const auto overlaps = [&](const PrRegistration& o) { return Overlaps(o, r); };
    // Table 67 note b: a TransportID for a registered I_T nexus (or one named twice).
    if (std::any_of(s.registrations.begin(), s.registrations.end(), overlaps) ||
        std::any_of(add.begin(), add.end(), overlaps)) {
      return Check(InvalidFieldInParameterList(t.offset));
    }
    add.push_back(std::move(r));
  }
  if (s.registrations.size() + add.size() > kMaxPrRegistrations) return InsufficientResources();
  s.registrations.insert(s.registrations.end(), add.begin(), add.end());
  s.aptpl = p.aptpl;
  ++s.generation;
  return Good();
}

// SPC-4 5.13.7 tables 67 (REGISTER) and 68 (REGISTER AND IGNORE EXISTING KEY).
OutResult DoRegister(PrState& s, const PrNexus& n, const PrOutParams& p, bool ignore_key) {
  const std::optional<size_t> me = Find(s, n);
  if (!me) {
    if (!ignore_key && p.reservation_key != 0) return Conflict();
    if (p.sa_reservation_key == 0) return Good();  // "do nothing except return GOOD status"
    return RegisterNew(s, n, p);
  }
  PrRegistration& r = s.registrations[*me];
  if (!ignore_key && p.reservation_key != r.key) return Conflict();
  if (p.spec_i_pt) return Check(InvalidFieldInParameterList(20, 3));  // table 67 note c
  // A new key keeps the registration's ALL_TG_PT (the bit says where to register, and this
  // nexus is registered already).
  r.nexus_id = n.id;
  OutResult out;
  if (p.sa_reservation_key == 0) {
    Unregister(s, *me, n.id, &out.effects);
  } else {
    r.key = p.sa_reservation_key;
  }
  s.aptpl = p.aptpl;
  ++s.generation;
  return out;
}

// SPC-4 5.13.9 Reserving.
OutResult DoReserve(PrState& s, size_t me, PrType type) {
  if (s.reservation) {
    // The holder asking again for the same type is not an error; anything else conflicts.
    return IsHolder(s, s.registrations[me]) && *s.reservation == type ? Good() : Conflict();
  }
  s.reservation = type;
  if (!IsAllRegistrants(type)) s.registrations[me].holder = true;
  return Good();
}

// SPC-4 5.13.11.2.2 Releasing.
OutResult DoRelease(PrState& s, size_t me, PrType type, uint64_t sender) {
  if (!s.reservation || !IsHolder(s, s.registrations[me])) return Good();  // nothing to do
  if (*s.reservation != type) {
    return Check(MakeSense(SenseKey::kIllegalRequest, Asc::kInvalidReleaseOfPersistentReservation));
  }
  ReleaseReservation(s);
  OutResult out;
  if (IsRegistrantsType(type)) RaiseForAll(s, Asc::kReservationsReleased, sender, &out.effects);
  return out;
}

// SPC-4 5.13.11.2.7 Clearing.
OutResult DoClear(PrState& s, uint64_t sender) {
  OutResult out;
  RaiseForAll(s, Asc::kReservationsPreempted, sender, &out.effects);
  s.registrations.clear();
  s.reservation.reset();
  ++s.generation;
  return out;
}

uint64_t HolderKey(const PrState& s) {
  for (const PrRegistration& r : s.registrations) {
    if (r.holder) return r.key;
  }
  return 0;
}

// SPC-4 5.13.11.2.4 Preempting (table 72, figure 9), 5.13.11.2.5 Removing registrations and
// 5.13.11.2.6 Preempting and aborting.
OutResult DoPreempt(PrState& s, const PrNexus& n, uint64_t sark, uint8_t scope_type, bool abort) {
  const std::optional<PrType> old = s.reservation;
  const bool all_registrants = old && IsAllRegistrants(*old);
  if (sark == 0 && !all_registrants) return Check(InvalidFieldInParameterList(8));
  OutResult out;
  if (!old || (all_registrants ? sark != 0 : HolderKey(s) != sark)) {
    // Remove the registrations holding `sark`, the sender's too (no unit attention for it);
    // scope and type are ignored and the reservation stays.
    const auto doomed = [sark](const PrRegistration& r) { return r.key == sark; };
    if (std::none_of(s.registrations.begin(), s.registrations.end(), doomed)) return Conflict();
    RemovePreempted(s, doomed, abort, n.id, &out.effects);
    if (all_registrants && s.registrations.empty()) s.reservation.reset();  // table 71
    ++s.generation;
    return out;
  }
  // Preempt the reservation: release it, remove the registrations `sark` names (all others
  // for an all registrants type and key 0), all but the sender's, and reserve for the sender.
  if (std::optional<Sense> bad = CheckPrScopeAndType(scope_type)) return Check(*bad);
  const PrType type = static_cast<PrType>(scope_type & 0x0f);
  ReleaseReservation(s);
  RemovePreempted(
      s,
      [&](const PrRegistration& r) {
        return !Covers(r, n.initiator_name, n.isid, n.relative_target_port) &&
               (sark == 0 || r.key == sark);
      },
      abort, n.id, &out.effects);
  s.reservation = type;
  if (!IsAllRegistrants(type)) s.registrations[*Find(s, n)].holder = true;
  if (type != *old) RaiseForAll(s, Asc::kReservationsReleased, n.id, &out.effects);
  ++s.generation;
  return out;
}

// SPC-4 5.13.8 Registering and moving the reservation (table 70).
OutResult DoRegisterAndMove(PrState& s, size_t me, const PrNexus& n,
                            const RegisterAndMoveParams& p) {
  if (!s.reservation) return Check(MakeSense(SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb));
  if (IsAllRegistrants(*s.reservation) || !s.registrations[me].holder) return Conflict();
  if (p.sa_reservation_key == 0) return Check(InvalidFieldInParameterList(8));
  const IscsiTransportId& t = p.transport_id;
  if (!t.isid) return Check(InvalidFieldInParameterList(t.offset, 7));  // see RegisterNew
  if (*t.isid == n.isid && IscsiNamesEqual(t.name, n.initiator_name)) {
    return Check(InvalidFieldInParameterList(t.offset));  // moving to itself
  }
  if (p.relative_target_port == 0) return Check(InvalidFieldInParameterList(18));
  size_t dest = s.registrations.size();
  for (size_t i = 0; i < s.registrations.size(); ++i) {
    if (Covers(s.registrations[i], t.name, *t.isid, p.relative_target_port)) dest = i;
  }
  if (dest == s.registrations.size()) {
    if (dest >= kMaxPrRegistrations) return InsufficientResources();
    s.registrations.push_back(NewRegistration(t.name, *t.isid, p.relative_target_port, false, 0,
                                              NexusIdFor(t.name, *t.isid)));
  }
  s.registrations[dest].key = p.sa_reservation_key;
  s.registrations[dest].holder = true;
  s.registrations[me].holder = false;
  if (p.unreg) s.registrations.erase(s.registrations.begin() + static_cast<std::ptrdiff_t>(me));
  s.aptpl = p.aptpl;
  ++s.generation;
  return Good();
}

// The basic parameter list service actions (6.16.3).
OutResult ApplyBasic(PrState& s, const PrNexus& n, const PrOutCdb& c, std::span<const uint8_t> list,
                     bool ptpl_c) {
  const auto decoded = DecodePrOutParams(c.action, list);
  if (const Sense* e = std::get_if<Sense>(&decoded)) return Check(*e);
  const PrOutParams& p = std::get<PrOutParams>(decoded);
  if (c.action == PrOutAction::kRegister ||
      c.action == PrOutAction::kRegisterAndIgnoreExistingKey) {
    if (p.aptpl && !ptpl_c) return Check(InvalidFieldInParameterList(20, 0));
    return DoRegister(s, n, p, c.action == PrOutAction::kRegisterAndIgnoreExistingKey);
  }
  // Table 66 and 6.16.3: the other service actions come from a registered nexus with its key.
  const std::optional<size_t> me = Find(s, n);
  if (!me || s.registrations[*me].key != p.reservation_key) return Conflict();
  s.registrations[*me].nexus_id = n.id;
  switch (c.action) {
    case PrOutAction::kReserve: return DoReserve(s, *me, c.type());
    case PrOutAction::kRelease: return DoRelease(s, *me, c.type(), n.id);
    case PrOutAction::kClear: return DoClear(s, n.id);
    case PrOutAction::kPreempt:
    case PrOutAction::kPreemptAndAbort:
      return DoPreempt(s, n, p.sa_reservation_key, c.scope_type,
                       c.action == PrOutAction::kPreemptAndAbort);
    default: return Check(InvalidFieldInCdb(1, 4));  // not reached: the CDB decoder refuses
  }
}

OutResult ApplyRegisterAndMove(PrState& s, const PrNexus& n, std::span<const uint8_t> list,
                               bool ptpl_c) {
  const auto decoded = DecodeRegisterAndMoveParams(list);
  if (const Sense* e = std::get_if<Sense>(&decoded)) return Check(*e);
  const RegisterAndMoveParams& p = std::get<RegisterAndMoveParams>(decoded);
  if (p.aptpl && !ptpl_c) return Check(InvalidFieldInParameterList(17, 0));
  const std::optional<size_t> me = Find(s, n);
  if (!me || s.registrations[*me].key != p.reservation_key) return Conflict();
  s.registrations[*me].nexus_id = n.id;
  return DoRegisterAndMove(s, *me, n, p);
}

// PERSISTENT RESERVE IN parameter data header: PRGENERATION, ADDITIONAL LENGTH (set last).
void StartInData(const PrState& s, std::vector<uint8_t>* out) {
  out->assign(8, 0);
  StoreBe32(out->data(), s.generation);
}
void FinishInData(std::vector<uint8_t>* out) {
  StoreBe32(out->data() + 4, static_cast<uint32_t>(out->size() - 8));
}

// SPC-4 6.15.2 READ KEYS.
void ReadKeys(const PrState& s, std::vector<uint8_t>* out) {
  StartInData(s, out);
  for (const PrRegistration& r : s.registrations) {
    out->resize(out->size() + 8);
    StoreBe64(out->data() + out->size() - 8, r.key);
  }
  FinishInData(out);
}

// SPC-4 6.15.3 READ RESERVATION: the holder's key, 0 for all registrants types (5.13.6.3).
void ReadReservation(const PrState& s, std::vector<uint8_t>* out) {
  StartInData(s, out);
  if (s.reservation) {
    out->resize(24, 0);
    StoreBe64(out->data() + 8, IsAllRegistrants(*s.reservation) ? 0 : HolderKey(s));
    (*out)[21] = static_cast<uint8_t>(*s.reservation);  // SCOPE 0h LU_SCOPE, TYPE
  }
  FinishInData(out);
}

// SPC-4 6.15.4 REPORT CAPABILITIES.
void ReportCapabilities(bool ptpl_c, bool ptpl_a, std::vector<uint8_t>* out) {
  out->assign(8, 0);
  StoreBe16(out->data(), 8);  // LENGTH
  // RLR_C 0, CRH 0 (SPC-2 RESERVE/RELEASE as SPC-2 says), SIP_C 1, ATP_C 1, PTPL_C.
  (*out)[2] = 0x08 | 0x04 | (ptpl_c ? 0x01 : 0x00);
  // TMV 1, ALLOW COMMANDS 100b (what ClassifyForReservations implements), PTPL_A.
  (*out)[3] = 0x80 | 0x40 | (ptpl_a ? 0x01 : 0x00);
  // PERSISTENT RESERVATION TYPE MASK: WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX; EX_AC_AR.
  (*out)[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02;
  (*out)[5] = 0x01;
}

// SPC-4 6.15.5 READ FULL STATUS: one descriptor per registration (an ALL_TG_PT one stands
// for its initiator port through every target port, RELATIVE TARGET PORT IDENTIFIER being
// the port it was registered through).
void ReadFullStatus(const PrState& s, std::vector<uint8_t>* out) {
  StartInData(s, out);
  for (const PrRegistration& r : s.registrations) {
    const size_t d = out->size();
    out->resize(d + 24, 0);
    uint8_t* p = out->data() + d;
    StoreBe64(p, r.key);
    const bool holder = IsHolder(s, r);
    p[12] = static_cast<uint8_t>((r.all_tg_pt ? 0x02 : 0) | (holder ? 0x01 : 0));
    p[13] = holder ? static_cast<uint8_t>(*s.reservation) : 0;  // SCOPE LU_SCOPE, TYPE
    StoreBe16(p + 18, r.relative_target_port);
    EncodeIscsiTransportId(r.initiator_name, r.isid, out);
    StoreBe32(out->data() + d + 20, static_cast<uint32_t>(out->size() - d - 24));
  }
  FinishInData(out);
}

}  // namespace

PersistentReservations::PersistentReservations(std::filesystem::path aptpl_file)
    : aptpl_file_(std::move(aptpl_file)) {
  if (aptpl_file_.empty()) return;
  Result<PrState> loaded = LoadAptplFile(aptpl_file_);
  if (loaded.ok()) {
    state_ = std::move(loaded).value();
  } else if (loaded.status().code() != StatusCode::kNotFound) {
    load_error_ = loaded.status().ToString();
  }
  UpdateActive();
}

bool PersistentReservations::Conflicts(const PrNexus& n, const uint8_t* cdb) const {
  if (!active_.load(std::memory_order_acquire)) return false;
  std::lock_guard lock(mu_);
  return ConflictsLocked(n, cdb);
}

bool PersistentReservations::ConflictsLocked(const PrNexus& n, const uint8_t* cdb) const {
  const uint8_t op = cdb[0];
  if (spc2_) {
    // SPC-2 5.5.1: PERSISTENT RESERVE IN and OUT conflict from every nexus, holder or not.
    if (op == kOpPersistentReserveIn || op == kOpPersistentReserveOut) return true;
    if (spc2_->nexus == n.id && spc2_->relative_target_port == n.relative_target_port) {
      return false;
    }
    // SPC-2 7.21.1: a logical unit reserved by another nexus still answers INQUIRY, REPORT
    // LUNS and REQUEST SENSE; RELEASE from a non-holder completes GOOD and does nothing.
    return !(op == 0x12 || op == 0xa0 || op == 0x03 || op == 0x17 || op == 0x57);
  }
  // SPC-2 5.5.1 (CRH 0): while any nexus is registered, RESERVE and RELEASE conflict.
  if (IsSpc2ReserveOrRelease(op)) return !state_.registrations.empty();
  // PERSISTENT RESERVE OUT follows table 66, which Out() applies.
  if (!state_.reservation || op == kOpPersistentReserveOut) return false;
  const std::optional<size_t> me = Find(state_, n);
  if (me && IsHolder(state_, state_.registrations[*me])) return false;
  const PrType type = *state_.reservation;
  if (me && IsRegistrantsType(type)) return false;  // "from registered I_T nexus (RR)"
  switch (ClassifyForReservations(cdb)) {
    case PrAccess::kAllowed: return false;
    case PrAccess::kRead: return !IsWriteExclusive(type);
    case PrAccess::kWrite: return true;
  }
  return true;
}

std::optional<Sense> PersistentReservations::In(const uint8_t* cdb,
                                                std::vector<uint8_t>* out) const {
  std::lock_guard lock(mu_);
  switch (cdb[1] & 0x1f) {
    case 0x00: ReadKeys(state_, out); break;
    case 0x01: ReadReservation(state_, out); break;
    case 0x02: ReportCapabilities(!aptpl_file_.empty(), state_.aptpl, out); break;
    case 0x03: ReadFullStatus(state_, out); break;
    default: return InvalidFieldInCdb(1, 4);
  }
  return std::nullopt;
}

PersistentReservations::OutResult PersistentReservations::Out(const PrNexus& n, const uint8_t* cdb,
                                                              std::span<const uint8_t> params) {
  const auto decoded = DecodePrOutCdb(cdb);
  if (const Sense* e = std::get_if<Sense>(&decoded)) return Check(*e);
  const PrOutCdb& c = std::get<PrOutCdb>(decoded);
  if (c.param_len > params.size()) {  // the transport got less than the CDB announced
    return Check(MakeSense(SenseKey::kIllegalRequest, Asc::kParameterListLengthError));
  }
  params = params.first(c.param_len);
  std::lock_guard lock(mu_);
  if (spc2_) return Conflict();  // SPC-2 5.5.1
  PrState next = state_;
  OutResult r = c.action == PrOutAction::kRegisterAndMove
                    ? ApplyRegisterAndMove(next, n, params, !aptpl_file_.empty())
                    : ApplyBasic(next, n, c, params, !aptpl_file_.empty());
  if (r.status != Status::kGood) return r;
  // SPC-4 6.16.1, 5.13.7: a PERSISTENT RESERVE OUT the device server lacks the resources to
  // complete ends in INSUFFICIENT REGISTRATION RESOURCES, and a registration that fails makes
  // none. Storage for the APTPL state (a full or failing disk) is such a resource; ILLEGAL
  // REQUEST rather than HARDWARE ERROR also keeps initiators from retrying blindly.
  if (!Commit(std::move(next))) return InsufficientResources();
  return r;
}

bool PersistentReservations::Commit(PrState next) {
  if (next == state_) return true;
  ferry::Status st;
  if (next.aptpl) {
    st = SaveAptplFile(aptpl_file_, next);
  } else if (state_.aptpl) {
    st = RemoveAptplFile(aptpl_file_);  // APTPL 0: the state no longer survives power loss
  }
  if (!st.ok()) {
    FERRY_LOG_ERROR("persistent reservations: {}; the command fails, state unchanged",
                    st.ToString());
    return false;
  }
  state_ = std::move(next);
  UpdateActive();
  return true;
}

// SPC-2 7.21 RESERVE(6) / RESERVE(10).
PersistentReservations::OutResult PersistentReservations::Reserve(const PrNexus& n,
                                                                  const uint8_t* cdb) {
  if (cdb[0] == 0x56 && (cdb[1] & 0x10)) return Check(InvalidFieldInCdb(1, 4));  // 3RDPTY
  std::lock_guard lock(mu_);
  if (!state_.registrations.empty()) return Conflict();  // SPC-2 5.5.1
  if (spc2_ && (spc2_->nexus != n.id || spc2_->relative_target_port != n.relative_target_port)) {
    return Conflict();
  }
  spc2_ = Spc2Holder{.nexus = n.id, .relative_target_port = n.relative_target_port};
  UpdateActive();
  return Good();
}

// SPC-2 7.22 RELEASE(6) / RELEASE(10): only the holder releases; from others it is GOOD.
PersistentReservations::OutResult PersistentReservations::Release(const PrNexus& n,
                                                                  const uint8_t* cdb) {
  if (cdb[0] == 0x57 && (cdb[1] & 0x10)) return Check(InvalidFieldInCdb(1, 4));  // 3RDPTY
  std::lock_guard lock(mu_);
  if (!state_.registrations.empty()) return Conflict();  // SPC-2 5.5.1
  if (spc2_ && spc2_->nexus == n.id && spc2_->relative_target_port == n.relative_target_port) {
    spc2_.reset();
    UpdateActive();
  }
  return Good();
}

void PersistentReservations::OnLuReset() {
  std::lock_guard lock(mu_);
  spc2_.reset();
  UpdateActive();
}

void PersistentReservations::OnNexusLoss(uint64_t nexus) {
  std::lock_guard lock(mu_);
  if (spc2_ && spc2_->nexus == nexus) spc2_.reset();
  UpdateActive();
}

std::string PersistentReservations::load_error() const { return load_error_; }

bool PersistentReservations::aptpl_active() const {
  std::lock_guard lock(mu_);
  return state_.aptpl;
}

void PersistentReservations::UpdateActive() {
  active_.store(spc2_.has_value() || !state_.registrations.empty(), std::memory_order_release);
}

}  // namespace ferry::scsi
