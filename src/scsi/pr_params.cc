#include "scsi/pr_params.h"

#include <algorithm>

#include "base/endian.h"

namespace ferry::scsi {
namespace {

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

int HexValue(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// iSCSI names are printable text without commas (the ",i,0x" separator starts at the first
// comma); control characters never belong in one (RFC 3722).
bool ValidNameByte(uint8_t c) { return c > 0x20 && c != 0x7f && c != ','; }

// The name in [p, p + n): not empty, not too long, every byte valid.
bool ValidName(const uint8_t* p, size_t n) {
  return n != 0 && n <= kMaxIscsiNameBytes && std::all_of(p, p + n, ValidNameByte);
}

constexpr std::string_view kSeparator = ",i,0x";

// Format 01b body (SPC-4 7.6.4.6 table "iSCSI initiator port TransportID"): ISCSI NAME, not
// null-terminated; SEPARATOR ",i,0x"; ISCSI INITIATOR SESSION ID, 12 hex digits, null-
// terminated; null padding. `body` is bytes 4.. of the TransportID.
std::optional<Sense> DecodePortBody(std::span<const uint8_t> body, size_t offset,
                                    IscsiTransportId* id) {
  const auto comma = std::find(body.begin(), body.end(), uint8_t{','});
  const size_t name_len = static_cast<size_t>(comma - body.begin());
  if (!ValidName(body.data(), name_len)) {
    return InvalidFieldInParameterList(static_cast<uint16_t>(offset + 4));
  }
  const size_t sep = name_len;
  bool sep_ok = body.size() - sep >= kSeparator.size();
  for (size_t i = 0; sep_ok && i < kSeparator.size(); ++i) {
    sep_ok = Lower(static_cast<char>(body[sep + i])) == kSeparator[i];
  }
  // Field pointers stay inside the TransportID even when the field would start past it.
  const auto at = [&](size_t i) {
    return static_cast<uint16_t>(offset + 4 + std::min(i, body.size() - 1));
  };
  if (!sep_ok) return InvalidFieldInParameterList(at(sep));
  const size_t hex = sep + kSeparator.size();
  const uint16_t isid_at = at(hex);
  // 12 hex digits, then the terminating null (the rest is padding).
  if (body.size() - hex < 13 || body[hex + 12] != 0) return InvalidFieldInParameterList(isid_at);
  std::array<uint8_t, 6> isid{};
  for (size_t i = 0; i < 12; ++i) {
    const int v = HexValue(body[hex + i]);
    if (v < 0) return InvalidFieldInParameterList(isid_at);
    isid[i / 2] = static_cast<uint8_t>(isid[i / 2] << 4 | v);
  }
  id->name.assign(body.begin(), comma);
  id->isid = isid;
  return std::nullopt;
}

// Format 00b body (table "iSCSI initiator device TransportID"): ISCSI NAME, null-terminated,
// null-padded.
std::optional<Sense> DecodeDeviceBody(std::span<const uint8_t> body, size_t offset,
                                      IscsiTransportId* id) {
  const auto nul = std::find(body.begin(), body.end(), uint8_t{0});
  const size_t name_len = static_cast<size_t>(nul - body.begin());
  if (nul == body.end() || !ValidName(body.data(), name_len)) {
    return InvalidFieldInParameterList(static_cast<uint16_t>(offset + 4));
  }
  id->name.assign(body.begin(), nul);
  return std::nullopt;
}

}  // namespace

bool IscsiNamesEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return Lower(x) == Lower(y); });
}

bool IsValidIscsiName(std::string_view name) {
  return ValidName(reinterpret_cast<const uint8_t*>(name.data()), name.size());
}

bool IsValidPrType(uint8_t type) {
  switch (type) {
    case 0x1:
    case 0x3:
    case 0x5:
    case 0x6:
    case 0x7:
    case 0x8: return true;
    default: return false;
  }
}

std::optional<Sense> CheckPrScopeAndType(uint8_t scope_type) {
  if ((scope_type >> 4) != 0) return InvalidFieldInCdb(2, 7);  // only LU_SCOPE
  if (!IsValidPrType(scope_type & 0x0f)) return InvalidFieldInCdb(2, 3);
  return std::nullopt;
}

// SPC-4 6.16.1 PERSISTENT RESERVE OUT command.
std::variant<PrOutCdb, Sense> DecodePrOutCdb(const uint8_t* cdb) {
  const uint8_t sa = cdb[1] & 0x1f;
  if (sa > static_cast<uint8_t>(PrOutAction::kRegisterAndMove)) return InvalidFieldInCdb(1, 4);
  PrOutCdb out;
  out.action = static_cast<PrOutAction>(sa);
  out.scope_type = cdb[2];
  out.param_len = LoadBe32(cdb + 5);
  if (out.action == PrOutAction::kReserve || out.action == PrOutAction::kRelease) {
    if (std::optional<Sense> bad = CheckPrScopeAndType(out.scope_type)) return *bad;
  }
  return out;
}

// SPC-4 7.6.4.6 TransportID for initiator ports using SCSI over iSCSI.
std::variant<IscsiTransportId, Sense> DecodeIscsiTransportId(std::span<const uint8_t> list,
                                                             size_t offset, size_t end) {
  end = std::min(end, list.size());
  const auto at = [&](size_t i) { return static_cast<uint16_t>(offset + i); };
  // The caller points at a TransportID that must fit before `end`: a header cut short is a
  // TransportID truncated by the length that bounds it.
  if (offset >= end || end - offset < 4) return InvalidFieldInParameterList(at(0));
  const uint8_t* t = list.data() + offset;
  if ((t[0] & 0x0f) != kProtocolIdIscsi) return InvalidFieldInParameterList(at(0), 3);
  const uint8_t format = t[0] >> 6;
  if (format > 1) return InvalidFieldInParameterList(at(0), 7);
  const uint16_t additional = LoadBe16(t + 2);
  if (additional < 20 || additional % 4 != 0 || additional > end - offset - 4) {
    return InvalidFieldInParameterList(at(2));
  }
  IscsiTransportId id;
  id.offset = static_cast<uint16_t>(offset);
  id.bytes = static_cast<uint16_t>(4 + additional);
  const std::span<const uint8_t> body(t + 4, additional);
  std::optional<Sense> bad =
      format == 1 ? DecodePortBody(body, offset, &id) : DecodeDeviceBody(body, offset, &id);
  if (bad) return *bad;
  return id;
}

void EncodeIscsiTransportId(std::string_view name, std::span<const uint8_t, 6> isid,
                            std::vector<uint8_t>* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t start = out->size();
  out->insert(out->end(), {static_cast<uint8_t>(0x40 | kProtocolIdIscsi), 0, 0, 0});
  out->insert(out->end(), name.begin(), name.end());
  out->insert(out->end(), kSeparator.begin(), kSeparator.end());
  for (uint8_t b : isid) {
    out->push_back(static_cast<uint8_t>(kHex[b >> 4]));
    out->push_back(static_cast<uint8_t>(kHex[b & 0xf]));
  }
  out->push_back(0);
  while ((out->size() - start) % 4 != 0 || out->size() - start < 24) out->push_back(0);
  StoreBe16(out->data() + start + 2, static_cast<uint16_t>(out->size() - start - 4));
}

// SPC-4 6.16.3 Basic PERSISTENT RESERVE OUT parameter list.
std::variant<PrOutParams, Sense> DecodePrOutParams(PrOutAction action,
                                                   std::span<const uint8_t> params) {
  if (params.size() < 24 || params.size() > kMaxPrOutParamBytes) return ParameterListLengthError();
  PrOutParams p;
  p.reservation_key = LoadBe64(&params[0]);
  p.sa_reservation_key = LoadBe64(&params[8]);
  p.spec_i_pt = params[20] & 0x08;
  p.all_tg_pt = params[20] & 0x04;
  p.aptpl = params[20] & 0x01;
  if (!p.spec_i_pt) {
    if (params.size() != 24) return ParameterListLengthError();
    return p;
  }
  if (action != PrOutAction::kRegister) return InvalidFieldInParameterList(20, 3);
  if (params.size() < 28) return ParameterListLengthError();
  // The list must hold every TransportID byte the length announces, and nothing more.
  if (LoadBe32(&params[24]) != params.size() - 28) return ParameterListLengthError();
  for (size_t off = 28; off < params.size();) {
    auto id = DecodeIscsiTransportId(params, off, params.size());
    if (const Sense* s = std::get_if<Sense>(&id)) return *s;
    off += std::get<IscsiTransportId>(id).bytes;
    p.transport_ids.push_back(std::move(std::get<IscsiTransportId>(id)));
  }
  return p;
}

// SPC-4 6.16.4 REGISTER AND MOVE service action parameter list.
std::variant<RegisterAndMoveParams, Sense> DecodeRegisterAndMoveParams(
    std::span<const uint8_t> params) {
  if (params.size() < 24 || params.size() > kMaxPrOutParamBytes) return ParameterListLengthError();
  if (LoadBe32(&params[20]) != params.size() - 24) return ParameterListLengthError();
  RegisterAndMoveParams p;
  p.reservation_key = LoadBe64(&params[0]);
  p.sa_reservation_key = LoadBe64(&params[8]);
  p.unreg = params[17] & 0x02;
  p.aptpl = params[17] & 0x01;
  p.relative_target_port = LoadBe16(&params[18]);
  if (params.size() == 24) return InvalidFieldInParameterList(20);  // no TransportID at all
  auto id = DecodeIscsiTransportId(params, 24, params.size());
  if (const Sense* s = std::get_if<Sense>(&id)) return *s;
  p.transport_id = std::move(std::get<IscsiTransportId>(id));
  // Exactly one TransportID: trailing bytes would be a second one.
  if (p.transport_id.bytes != params.size() - 24) return InvalidFieldInParameterList(20);
  return p;
}

// SPC-4 5.13.1 table 65 and SBC-4 4.17 table 13, for ALLOW COMMANDS 100b (6.15.4): TEST UNIT
// READY and the RECEIVE COPY RESULTS family pass every type; MODE SENSE, READ ATTRIBUTE,
// READ BUFFER, RECEIVE DIAGNOSTIC RESULTS, REPORT SUPPORTED OPERATION CODES / TASK
// MANAGEMENT FUNCTIONS and READ DEFECT DATA pass the Write Exclusive types. What is not
// listed (writes, MODE/LOG SELECT, EXTENDED COPY, SYNCHRONIZE CACHE, unknown opcodes)
// conflicts. PERSISTENT RESERVE OUT and RESERVE/RELEASE have rules of their own, applied
// before this table (persistent_reservations.cc).
PrAccess ClassifyForReservations(const uint8_t* cdb) {
  const uint8_t sa = cdb[1] & 0x1f;
  switch (cdb[0]) {
    case 0x00:  // TEST UNIT READY
    case 0x03:  // REQUEST SENSE
    case 0x12:  // INQUIRY
    case 0x25:  // READ CAPACITY(10)
    case 0x4d:  // LOG SENSE
    case 0x5e:  // PERSISTENT RESERVE IN
    case 0x84:  // RECEIVE COPY STATUS/DATA/OPERATING PARAMETERS/FAILURE DETAILS, RRTI, ...
    case 0x86:  // ACCESS CONTROL IN
    case 0x87:  // ACCESS CONTROL OUT
    case 0xa0:  // REPORT LUNS
      return PrAccess::kAllowed;
    case 0x1b:  // START STOP UNIT: allowed with START 1 and POWER CONDITION 0h only
      return (cdb[4] & 0x01) && (cdb[4] >> 4) == 0 ? PrAccess::kAllowed : PrAccess::kWrite;
    case 0x1e:  // PREVENT ALLOW MEDIUM REMOVAL: allowed with PREVENT 0 only
      return (cdb[4] & 0x03) == 0 ? PrAccess::kAllowed : PrAccess::kWrite;
    case 0x9e:                                                  // SERVICE ACTION IN(16)
      if (sa == 0x10 || sa == 0x13) return PrAccess::kAllowed;  // READ CAPACITY, REFERRALS
      if (sa == 0x12 || sa == 0x16 || sa == 0x17) return PrAccess::kRead;  // GET ... STATUS
      return PrAccess::kWrite;
    case 0xa3:  // MAINTENANCE IN
      switch (sa) {
        case 0x05:  // REPORT IDENTIFYING INFORMATION
        case 0x0a:  // REPORT TARGET PORT GROUPS
        case 0x0b:  // REPORT ALIASES
        case 0x0e:  // REPORT PRIORITY
        case 0x0f:  // REPORT TIMESTAMP
          return PrAccess::kAllowed;
        case 0x0c:  // REPORT SUPPORTED OPERATION CODES
        case 0x0d:  // REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS
        case 0x10:  // MANAGEMENT PROTOCOL IN
          return PrAccess::kRead;
        default: return PrAccess::kWrite;
      }
    case 0xab:  // SERVICE ACTION IN(12): READ MEDIA SERIAL NUMBER
      return sa == 0x01 ? PrAccess::kAllowed : PrAccess::kWrite;
    case 0x83:  // THIRD PARTY COPY OUT: POPULATE TOKEN reads; the others write
      return sa == 0x10 ? PrAccess::kRead : PrAccess::kWrite;
    case 0x08:  // READ(6)
    case 0x28:  // READ(10)
    case 0xa8:  // READ(12)
    case 0x88:  // READ(16)
    case 0x2f:  // VERIFY(10)
    case 0xaf:  // VERIFY(12)
    case 0x8f:  // VERIFY(16)
    case 0x34:  // PRE-FETCH(10)
    case 0x90:  // PRE-FETCH(16)
    case 0x1a:  // MODE SENSE(6)
    case 0x5a:  // MODE SENSE(10)
    case 0x1c:  // RECEIVE DIAGNOSTIC RESULTS
    case 0x3c:  // READ BUFFER(10)
    case 0x9b:  // READ BUFFER(16)
    case 0x8c:  // READ ATTRIBUTE
    case 0x37:  // READ DEFECT DATA(10)
    case 0xb7:  // READ DEFECT DATA(12)
    case 0xa2:  // SECURITY PROTOCOL IN
      return PrAccess::kRead;
    case 0x7f: {  // variable length: READ(32) 0009h and VERIFY(32) 000Ah read
      const uint16_t vsa = LoadBe16(cdb + 8);
      return vsa == 0x0009 || vsa == 0x000a ? PrAccess::kRead : PrAccess::kWrite;
    }
    default: return PrAccess::kWrite;
  }
}

}  // namespace ferry::scsi
