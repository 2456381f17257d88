#include "scsi/pr_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

namespace ferry::scsi {
namespace {

using json = nlohmann::json;

constexpr std::string_view kFormat = "ferry-pr-aptpl";
constexpr int kVersion = 1;

std::string Hex(uint64_t v, int digits) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) s[static_cast<size_t>(i)] = kDigits[v & 0xf];
  return s;
}

// Exactly `digits` lower-case hex digits.
bool ParseHex(const json& j, size_t digits, uint64_t* v) {
  if (!j.is_string()) return false;
  const std::string& s = j.get_ref<const std::string&>();
  if (s.size() != digits) return false;
  *v = 0;
  for (char c : s) {
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    *v = *v << 4 | static_cast<uint64_t>(d);
  }
  return true;
}

json ToJson(const PrState& s) {
  json regs = json::array();
  for (const PrRegistration& r : s.registrations) {
    uint64_t isid = 0;
    for (uint8_t b : r.isid) isid = isid << 8 | b;
    regs.push_back({{"initiator", r.initiator_name},
                    {"isid", Hex(isid, 12)},
                    {"port", r.relative_target_port},
                    {"all_tg_pt", r.all_tg_pt},
                    {"key", Hex(r.key, 16)},
                    {"holder", r.holder}});
  }
  json res = s.reservation ? json(static_cast<int>(*s.reservation)) : json(nullptr);
  return {{"format", std::string(kFormat)},
          {"version", kVersion},
          {"generation", s.generation},
          {"reservation", res},
          {"registrations", regs}};
}

ferry::Status Bad(std::string_view why) { return InvalidArgument(std::string(why)); }

// Typed member lookups that check the type first (nlohmann raises an exception on a wrong one).
const json* Member(const json& o, const char* name) {
  auto it = o.find(name);
  return it == o.end() ? nullptr : &*it;
}
bool GetUnsigned(const json& o, const char* name, uint64_t* v) {
  const json* j = Member(o, name);
  if (j == nullptr || !j->is_number_unsigned()) return false;
  *v = j->get<uint64_t>();
  return true;
}
bool GetBool(const json& o, const char* name, bool* v) {
  const json* j = Member(o, name);
  if (j == nullptr || !j->is_boolean()) return false;
  *v = j->get<bool>();
  return true;
}
bool GetHex(const json& o, const char* name, size_t digits, uint64_t* v) {
  const json* j = Member(o, name);
  return j != nullptr && ParseHex(*j, digits, v);
}

Result<PrRegistration> RegistrationFromJson(const json& o) {
  if (!o.is_object()) return Bad("a registration is not an object");
  PrRegistration r;
  const json* name = Member(o, "initiator");
  if (name == nullptr || !name->is_string() ||
      !IsValidIscsiName(name->get_ref<const std::string&>())) {
    return Bad("registration without a valid \"initiator\"");
  }
  r.initiator_name = name->get<std::string>();
  uint64_t isid = 0, port = 0;
  if (!GetHex(o, "isid", 12, &isid) || !GetHex(o, "key", 16, &r.key) || r.key == 0 ||
      !GetUnsigned(o, "port", &port) || port == 0 || port > 0xffff ||
      !GetBool(o, "all_tg_pt", &r.all_tg_pt) || !GetBool(o, "holder", &r.holder)) {
    return Bad("registration of " + r.initiator_name +
               ": \"isid\", \"key\", \"port\", \"all_tg_pt\" or \"holder\" missing or invalid");
  }
  for (size_t i = 0; i < 6; ++i) r.isid[i] = static_cast<uint8_t>(isid >> (8 * (5 - i)));
  r.relative_target_port = static_cast<uint16_t>(port);
  r.nexus_id = NexusIdFor(r.initiator_name, r.isid);
  return r;
}

ferry::Status CheckInvariants(const PrState& s) {
  size_t holders = 0;
  for (size_t i = 0; i < s.registrations.size(); ++i) {
    holders += s.registrations[i].holder ? 1 : 0;
    for (size_t k = 0; k < i; ++k) {
      // Two registrations for one I_T nexus are not a state REGISTER can make.
      if (Overlaps(s.registrations[i], s.registrations[k])) {
        return Bad("two registrations for the I_T nexus of " + s.registrations[i].initiator_name);
      }
    }
  }
  if (!s.reservation) return holders == 0 ? ferry::Status() : Bad("a holder without reservation");
  if (IsAllRegistrants(*s.reservation)) {
    if (s.registrations.empty()) return Bad("an all registrants reservation without registrants");
    return holders == 0 ? ferry::Status() : Bad("\"holder\" set under an all registrants type");
  }
  return holders == 1 ? ferry::Status() : Bad("the reservation needs exactly one holder");
}

Result<PrState> StateFromJson(const json& j) {
  if (!j.is_object()) return Bad("not a JSON object");
  const json* format = Member(j, "format");
  if (format == nullptr || !format->is_string() ||
      format->get_ref<const std::string&>() != kFormat) {
    return Bad("\"format\" is not \"ferry-pr-aptpl\"");
  }
  uint64_t version = 0;
  if (!GetUnsigned(j, "version", &version) || version != kVersion) {
    return Bad("unknown \"version\"");
  }
  PrState s;
  s.aptpl = true;
  // SPC-4 6.15.2: "regardless of the APTPL bit value the PRgeneration value shall be set to
  // zero by a power on", and loading is this logical unit's power on. The file keeps the
  // value for operators; it must still be a valid one.
  uint64_t generation = 0;
  if (!GetUnsigned(j, "generation", &generation) || generation > UINT32_MAX) {
    return Bad("\"generation\" missing or invalid");
  }
  const json* res = Member(j, "reservation");
  if (res == nullptr || !(res->is_null() || res->is_number_unsigned())) {
    return Bad("\"reservation\" missing or invalid");
  }
  if (res->is_number_unsigned()) {
    const uint64_t type = res->get<uint64_t>();
    if (type > 0xff || !IsValidPrType(static_cast<uint8_t>(type))) {
      return Bad("\"reservation\" is not a persistent reservation type");
    }
    s.reservation = static_cast<PrType>(type);
  }
  const json* regs = Member(j, "registrations");
  if (regs == nullptr || !regs->is_array()) return Bad("\"registrations\" missing or invalid");
  if (regs->size() > kMaxPrRegistrations) return Bad("too many registrations");
  for (const json& o : *regs) {
    Result<PrRegistration> r = RegistrationFromJson(o);
    if (!r.ok()) return r.status();
    s.registrations.push_back(std::move(r).value());
  }
  FERRY_RETURN_IF_ERROR(CheckInvariants(s));
  return s;
}

ferry::Status FsyncDir(const std::filesystem::path& dir) {
  const int fd = open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "cannot open " + dir.string());
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  return rc == 0 ? ferry::Status() : ErrnoStatus(err, "cannot fsync " + dir.string());
}

ferry::Status WriteAll(int fd, const std::string& text, const std::string& path) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus(n < 0 ? errno : ENOSPC, "cannot write " + path);
    done += static_cast<size_t>(n);
  }
  return ferry::Status();
}

}  // namespace

bool Overlaps(const PrRegistration& a, const PrRegistration& b) {
  return a.isid == b.isid && IscsiNamesEqual(a.initiator_name, b.initiator_name) &&
         (a.all_tg_pt || b.all_tg_pt || a.relative_target_port == b.relative_target_port);
}

Result<PrState> LoadAptplFile(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    if (ec) return ErrnoStatus(ec.value(), "cannot look for " + file.string());
    return NotFound(file.string() + " does not exist");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return ErrnoStatus(errno, "cannot read " + file.string());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return ErrnoStatus(errno, "cannot read " + file.string());
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad(file.string() + ": not valid JSON");
  Result<PrState> s = StateFromJson(j);
  if (!s.ok()) return s.status().WithContext(file.string());
  return s;
}

ferry::Status SaveAptplFile(const std::filesystem::path& file, const PrState& s) {
  // Names are not validated UTF-8: replace bad sequences, or dump() would raise an exception.
  const std::string text =
      ToJson(s).dump(2, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace) + "\n";
  const std::filesystem::path tmp = file.string() + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, "cannot create " + tmp.string());
  ferry::Status st = WriteAll(fd, text, tmp.string());
  if (st.ok() && fsync(fd) != 0) st = ErrnoStatus(errno, "cannot fsync " + tmp.string());
  if (close(fd) != 0 && st.ok()) st = ErrnoStatus(errno, "cannot close " + tmp.string());
  if (st.ok() && std::rename(tmp.c_str(), file.c_str()) != 0) {
    st = ErrnoStatus(errno, "cannot rename " + tmp.string() + " to " + file.string());
  }
  if (!st.ok()) {
    unlink(tmp.c_str());
    return st;
  }
  return FsyncDir(file.parent_path());
}

ferry::Status RemoveAptplFile(const std::filesystem::path& file) {
  if (unlink(file.c_str()) != 0) {
    if (errno == ENOENT) return ferry::Status();
    return ErrnoStatus(errno, "cannot remove " + file.string());
  }
  return FsyncDir(file.parent_path());
}

}  // namespace ferry::scsi
