#include "daemon/config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>
#include <set>

#include "backends/builtin.h"
#include "base/size_parse.h"

namespace ferry::daemon {
namespace {

using json = nlohmann::json;

// Records the first syntax error and its byte offset; no exceptions (nlohmann's SAX
// interface reports errors through parse_error()).
struct SyntaxCheck : json::json_sax_t {
  std::string error;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t pos, const std::string& token,
                   const nlohmann::detail::exception& ex) override {
    std::string what = ex.what();
    // nlohmann's text: "[json.exception.parse_error.101] parse error at line 3, column 5:
    // syntax error while parsing object - ..." -> keep from "line".
    const size_t at = what.find("line ");
    error = at == std::string::npos ? what : what.substr(at);
    if (error.empty())
      error = "syntax error at byte " + std::to_string(pos) + " near '" + token + "'";
    return false;
  }
};

std::string Child(const std::string& path, std::string_view key) {
  const bool plain = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
  if (plain) return path + "." + std::string(key);
  return path + "[" + json(std::string(key)).dump() + "]";
}
std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}
Status Bad(const std::string& path, std::string_view why) {
  return InvalidArgument(path + ": " + std::string(why));
}

// One JSON object being read: typed getters that name the path in every error.
class Obj {
 public:
  Obj(const json& j, std::string path) : j_(j), path_(std::move(path)) {}
  const std::string& path() const { return path_; }
  const json& value() const { return j_; }

  // Fails unless the value is an object whose keys are all `known` (any key: `any_key`).
  Status Check(std::initializer_list<std::string_view> known, bool any_key = false) const {
    if (!j_.is_object()) return Bad(path_, "expected an object, got " + Type(j_));
    if (any_key) return Status::Ok();
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (std::find(known.begin(), known.end(), it.key()) == known.end()) {
        std::string list;
        for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
        return Bad(Child(path_, it.key()), "unknown key (known here: " + list + ")");
      }
    }
    return Status::Ok();
  }
  bool Has(std::string_view k) const { return j_.contains(k); }
  const json* Get(std::string_view k) const {
    auto it = j_.find(k);
    return it == j_.end() ? nullptr : &*it;
  }
  Status Str(std::string_view k, std::string* out, bool required = false) const {
    const json* v = Get(k);
    if (v == nullptr) return required ? Bad(Child(path_, k), "required") : Status::Ok();
    if (!v->is_string()) return Bad(Child(path_, k), "expected a string, got " + Type(*v));
    *out = v->get_ref<const std::string&>();
    if (required && out->empty()) return Bad(Child(path_, k), "must not be empty");
    return Status::Ok();
  }
  Status Bool(std::string_view k, bool* out) const {
    const json* v = Get(k);
    if (v == nullptr) return Status::Ok();
    if (!v->is_boolean()) return Bad(Child(path_, k), "expected true or false, got " + Type(*v));
    *out = v->get<bool>();
    return Status::Ok();
  }
  Status Uint(std::string_view k, uint64_t max, uint64_t* out, bool required = false) const {
    const json* v = Get(k);
    if (v == nullptr) return required ? Bad(Child(path_, k), "required") : Status::Ok();
    if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<int64_t>() >= 0)) {
      return Bad(Child(path_, k),
                 "expected a whole number 0.." + std::to_string(max) + ", got " + v->dump());
    }
    const uint64_t n = v->get<uint64_t>();
    if (n > max) return Bad(Child(path_, k), "must be at most " + std::to_string(max));
    *out = n;
    return Status::Ok();
  }
  // A size: bytes as a number, or a string with a unit ("64M", "1G", "512").
  Status Size(std::string_view k, uint64_t* out) const {
    const json* v = Get(k);
    if (v == nullptr) return Status::Ok();
    if (v->is_number_unsigned()) {
      *out = v->get<uint64_t>();
      return Status::Ok();
    }
    if (!v->is_string()) return Bad(Child(path_, k), "expected a size like \"10G\" or bytes");
    auto r = ParseSize(v->get_ref<const std::string&>());
    if (!r.ok()) return Bad(Child(path_, k), r.status().message());
    *out = *r;
    return Status::Ok();
  }
  // An array of strings.
  Status Strings(std::string_view k, std::vector<std::string>* out) const {
    const json* v = Get(k);
    if (v == nullptr) return Status::Ok();
    if (!v->is_array()) return Bad(Child(path_, k), "expected an array of strings");
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) return Bad(Index(Child(path_, k), i), "expected a string");
      out->push_back((*v)[i].get<std::string>());
    }
    return Status::Ok();
  }

  static std::string Type(const json& v) {
    return v.is_object()    ? "an object"
           : v.is_array()   ? "an array"
           : v.is_string()  ? "a string"
           : v.is_boolean() ? "a boolean"
           : v.is_null()    ? "null"
                            : "a number";
  }

 private:
  const json& j_;
  std::string path_;
};

bool ValidName(std::string_view n) { return ValidDeviceName(n); }

// A JSON value as a backend parameter, keeping its type (backends/backend_type.h).
Status ToParam(const std::string& path, const json& v, backends::ParamValue* out) {
  using Kind = backends::ParamValue::Kind;
  if (v.is_string()) {
    *out = {Kind::kString, v.get<std::string>()};
  } else if (v.is_boolean()) {
    *out = {Kind::kBool, v.get<bool>() ? "true" : "false"};
  } else if (v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0)) {
    *out = {Kind::kNumber, std::to_string(v.get<uint64_t>())};
  } else {
    return Bad(path, "expected a string, a whole number or true/false, got " +
                         (v.is_number() ? v.dump() : Obj::Type(v)));
  }
  return Status::Ok();
}

// The backend checks its own parameters (one parser per backend); its "KEY: reason" errors
// become "$.backstores.NAME.KEY: reason".
Status ParseBackstore(const std::string& name, const Obj& o, BackstoreConfig* b) {
  if (!ValidName(name)) {
    return Bad(o.path(), "backstore names are 1..64 of [A-Za-z0-9._-] (they name files)");
  }
  FERRY_RETURN_IF_ERROR(o.Check({}, /*any_key=*/true));
  b->name = name;
  FERRY_RETURN_IF_ERROR(o.Str("type", &b->type, true));
  if (backends::FindBackend(b->type) == nullptr) {
    std::string known;
    for (const backends::BackendType* t : backends::BuiltinBackends()) {
      known += (known.empty() ? "" : ", ") + std::string(t->name);
    }
    return Bad(Child(o.path(), "type"), "unknown backstore type '" + b->type + "' (" + known + ")");
  }
  FERRY_RETURN_IF_ERROR(o.Str("product", &b->product));
  if (b->product.size() > 16) return Bad(Child(o.path(), "product"), "at most 16 characters");
  for (auto it = o.value().begin(); it != o.value().end(); ++it) {
    if (it.key() == "type" || it.key() == "product") continue;
    FERRY_RETURN_IF_ERROR(ToParam(Child(o.path(), it.key()), it.value(), &b->params[it.key()]));
  }
  Status s = backends::CheckBackend(b->type, b->params);
  if (!s.ok()) return InvalidArgument(o.path() + "." + std::string(s.message()));
  return Status::Ok();
}

// "table": one string (lines separated by newlines) or an array of lines.
Status ParseTableText(const Obj& o, std::string* out) {
  const json* t = o.Get("table");
  const std::string path = Child(o.path(), "table");
  if (t == nullptr) return Bad(path, "required: \"0 2048 linear r0 0\" or an array of lines");
  if (t->is_string()) {
    *out = t->get<std::string>();
  } else if (t->is_array()) {
    for (size_t i = 0; i < t->size(); ++i) {
      const json& line = (*t)[i];
      if (!line.is_string()) return Bad(Index(path, i), "expected a table line (a string)");
      const std::string& l = line.get_ref<const std::string&>();
      if (l.find('\n') != std::string::npos) {
        return Bad(Index(path, i), "one table line per string (no newlines inside)");
      }
      *out += (i ? "\n" : "") + l;
    }
  } else {
    return Bad(path, "expected a string or an array of lines, got " + Obj::Type(*t));
  }
  if (out->find_first_not_of(" \t\r\n") == std::string::npos) {
    return Bad(path, "the table is empty: a volume needs at least one line");
  }
  return Status::Ok();
}

// "volumes": [{"name", "table"}]. Names share one namespace with backstores (both are
// devices that tables and LUNs name). Tables are checked when ferryd opens them.
Status ParseVolumes(const Obj& top, Config* c) {
  const json* v = top.Get("volumes");
  if (v == nullptr) return Status::Ok();
  const std::string path = Child(top.path(), "volumes");
  if (!v->is_array()) return Bad(path, "expected an array of {\"name\", \"table\"} objects");
  for (size_t i = 0; i < v->size(); ++i) {
    const Obj o((*v)[i], Index(path, i));
    FERRY_RETURN_IF_ERROR(o.Check({"name", "table"}));
    VolumeConfig vc;
    FERRY_RETURN_IF_ERROR(o.Str("name", &vc.name, true));
    if (!ValidName(vc.name)) {
      return Bad(Child(o.path(), "name"),
                 "volume names are 1..64 of [A-Za-z0-9._-] (they name files)");
    }
    if (c->FindVolume(vc.name) != nullptr) {
      return Bad(Child(o.path(), "name"), "a second volume named '" + vc.name + "'");
    }
    if (c->FindBackstore(vc.name) != nullptr) {
      return Bad(Child(o.path(), "name"),
                 "'" + vc.name + "' is already a backstore: volumes and backstores share names");
    }
    FERRY_RETURN_IF_ERROR(ParseTableText(o, &vc.table));
    c->volumes.push_back(std::move(vc));
  }
  return Status::Ok();
}

Status ParseAuthGroup(const std::string& name, const Obj& o, AuthGroupConfig* a) {
  if (!ValidName(name)) return Bad(o.path(), "auth group names are 1..64 of [A-Za-z0-9._-]");
  if (o.Has("secret") || o.Has("mutual_secret")) {
    return Bad(o.path(),
               "secrets are never written in the configuration: put each in a file "
               "(mode 0600) and name it with \"secret_file\"");
  }
  FERRY_RETURN_IF_ERROR(o.Check({"user", "secret_file", "mutual_user", "mutual_secret_file"}));
  a->name = name;
  FERRY_RETURN_IF_ERROR(o.Str("user", &a->user, true));
  FERRY_RETURN_IF_ERROR(o.Str("secret_file", &a->secret_file, true));
  FERRY_RETURN_IF_ERROR(o.Str("mutual_user", &a->mutual_user));
  FERRY_RETURN_IF_ERROR(o.Str("mutual_secret_file", &a->mutual_secret_file));
  if (a->mutual_user.empty() != a->mutual_secret_file.empty()) {
    return Bad(o.path(), "mutual CHAP needs both \"mutual_user\" and \"mutual_secret_file\"");
  }
  if (!a->mutual_user.empty() && a->mutual_secret_file == a->secret_file) {
    return Bad(Child(o.path(), "mutual_secret_file"),
               "must differ from secret_file (RFC 7143 12.1.3: one secret per direction)");
  }
  return Status::Ok();
}

Status ParseLunMap(const json& arr, const std::string& path, std::vector<LunMapConfig>* out) {
  if (!arr.is_array()) return Bad(path, "expected an array of {\"lun\", \"as\"} objects");
  std::set<uint64_t> seen;
  for (size_t i = 0; i < arr.size(); ++i) {
    Obj m(arr[i], Index(path, i));
    FERRY_RETURN_IF_ERROR(m.Check({"lun", "as", "write_protect"}));
    LunMapConfig e;
    FERRY_RETURN_IF_ERROR(m.Uint("lun", 16383, &e.lun, true));
    e.as = e.lun;
    FERRY_RETURN_IF_ERROR(m.Uint("as", 16383, &e.as));
    FERRY_RETURN_IF_ERROR(m.Bool("write_protect", &e.write_protect));
    if (!seen.insert(e.as).second) {
      return Bad(Child(m.path(), "as"), "LUN " + std::to_string(e.as) + " is mapped twice");
    }
    out->push_back(e);
  }
  return Status::Ok();
}

Status ParseAcl(const Obj& o, AclConfig* a) {
  FERRY_RETURN_IF_ERROR(o.Check({"initiators", "networks", "auth_group", "write_protect", "luns"}));
  FERRY_RETURN_IF_ERROR(o.Strings("initiators", &a->initiators));
  for (size_t i = 0; i < a->initiators.size(); ++i) {
    const std::string& n = a->initiators[i];
    if (n == "*") continue;
    if (std::string why = iscsi::CheckIscsiName(n); !why.empty()) {
      return Bad(Index(Child(o.path(), "initiators"), i), why);
    }
  }
  std::vector<std::string> nets;
  FERRY_RETURN_IF_ERROR(o.Strings("networks", &nets));
  for (size_t i = 0; i < nets.size(); ++i) {
    auto n = iscsi::ParseNetwork(nets[i]);
    if (!n.ok()) return Bad(Index(Child(o.path(), "networks"), i), n.status().message());
    a->networks.push_back(*n);
  }
  if (a->initiators.empty() && a->networks.empty()) {
    return Bad(o.path(),
               "an ACL entry needs \"initiators\" or \"networks\" (use [\"*\"] "
               "for every initiator)");
  }
  FERRY_RETURN_IF_ERROR(o.Str("auth_group", &a->auth_group));
  FERRY_RETURN_IF_ERROR(o.Bool("write_protect", &a->write_protect));
  if (const json* l = o.Get("luns")) {
    a->luns.emplace();
    FERRY_RETURN_IF_ERROR(ParseLunMap(*l, Child(o.path(), "luns"), &*a->luns));
  }
  return Status::Ok();
}

Status ParsePortalGroups(const Obj& t, TargetConfig* tc) {
  const json* pgs = t.Get("portal_groups");
  const std::string path = Child(t.path(), "portal_groups");
  if (pgs == nullptr) return Bad(path, "required: [{\"tag\": 1, \"portals\": [\"ip:port\"]}]");
  if (!pgs->is_array() || pgs->empty()) return Bad(path, "expected a non-empty array");
  std::set<uint64_t> tags;
  for (size_t i = 0; i < pgs->size(); ++i) {
    Obj g((*pgs)[i], Index(path, i));
    FERRY_RETURN_IF_ERROR(g.Check({"tag", "portals", "alua_state", "preferred"}));
    uint64_t tag = 0;
    FERRY_RETURN_IF_ERROR(g.Uint("tag", 65535, &tag, true));
    if (tag == 0) return Bad(Child(g.path(), "tag"), "portal group tags are 1..65535");
    if (!tags.insert(tag).second) return Bad(Child(g.path(), "tag"), "tag used twice");
    PortalGroupConfig pg{.tag = static_cast<uint16_t>(tag), .portals = {}};
    std::string state;
    FERRY_RETURN_IF_ERROR(g.Str("alua_state", &state));
    if (!state.empty()) {
      auto s = scsi::ParseAluaState(state);
      if (!s) {
        return Bad(Child(g.path(), "alua_state"),
                   "unknown state '" + state +
                       "' (active/optimized, active/non-optimized, standby, unavailable)");
      }
      pg.alua_state = *s;
    }
    FERRY_RETURN_IF_ERROR(g.Bool("preferred", &pg.preferred));
    std::vector<std::string> portals;
    FERRY_RETURN_IF_ERROR(g.Strings("portals", &portals));
    if (portals.empty()) return Bad(Child(g.path(), "portals"), "required: [\"ip:port\"]");
    for (size_t k = 0; k < portals.size(); ++k) {
      auto p = ParsePortal(portals[k]);
      if (!p.ok()) return Bad(Index(Child(g.path(), "portals"), k), p.status().message());
      pg.portals.push_back(*p);
    }
    tc->portal_groups.push_back(std::move(pg));
  }
  return Status::Ok();
}

Status ParseTarget(const std::string& name, const Obj& t, const Config& c, TargetConfig* tc) {
  if (std::string why = iscsi::CheckIscsiName(name); !why.empty()) return Bad(t.path(), why);
  FERRY_RETURN_IF_ERROR(t.Check({"alias", "portal_groups", "luns", "auth_group", "acls"}));
  tc->name = name;
  FERRY_RETURN_IF_ERROR(t.Str("alias", &tc->alias));
  FERRY_RETURN_IF_ERROR(ParsePortalGroups(t, tc));
  const json* luns = t.Get("luns");
  const std::string lpath = Child(t.path(), "luns");
  if (luns == nullptr || !luns->is_array() || luns->empty()) {
    return Bad(lpath, "required: [{\"lun\": 0, \"backstore\": \"name\"}]");
  }
  std::set<uint64_t> numbers;
  for (size_t i = 0; i < luns->size(); ++i) {
    Obj l((*luns)[i], Index(lpath, i));
    FERRY_RETURN_IF_ERROR(l.Check({"lun", "backstore", "write_protect"}));
    TargetLunConfig e;
    FERRY_RETURN_IF_ERROR(l.Uint("lun", 16383, &e.lun, true));
    FERRY_RETURN_IF_ERROR(l.Str("backstore", &e.backstore, true));
    FERRY_RETURN_IF_ERROR(l.Bool("write_protect", &e.write_protect));
    if (!numbers.insert(e.lun).second) {
      return Bad(Child(l.path(), "lun"), "LUN " + std::to_string(e.lun) + " is used twice");
    }
    if (c.FindBackstore(e.backstore) == nullptr && c.FindVolume(e.backstore) == nullptr) {
      return Bad(Child(l.path(), "backstore"),
                 "no backstore or volume named '" + e.backstore + "'");
    }
    tc->luns.push_back(e);
  }
  FERRY_RETURN_IF_ERROR(t.Str("auth_group", &tc->auth_group));
  if (!tc->auth_group.empty() && c.FindAuthGroup(tc->auth_group) == nullptr) {
    return Bad(Child(t.path(), "auth_group"), "no auth group named '" + tc->auth_group + "'");
  }
  if (const json* acls = t.Get("acls")) {
    const std::string apath = Child(t.path(), "acls");
    if (!acls->is_array()) return Bad(apath, "expected an array of ACL entries");
    for (size_t i = 0; i < acls->size(); ++i) {
      AclConfig a;
      Obj ao((*acls)[i], Index(apath, i));
      FERRY_RETURN_IF_ERROR(ParseAcl(ao, &a));
      if (!a.auth_group.empty() && c.FindAuthGroup(a.auth_group) == nullptr) {
        return Bad(Child(ao.path(), "auth_group"), "no auth group named '" + a.auth_group + "'");
      }
      for (size_t k = 0; a.luns && k < a.luns->size(); ++k) {
        if (!numbers.contains((*a.luns)[k].lun)) {
          return Bad(Child(Index(Child(ao.path(), "luns"), k), "lun"),
                     "the target has no LUN " + std::to_string((*a.luns)[k].lun));
        }
      }
      tc->acls.push_back(std::move(a));
    }
  }
  return Status::Ok();
}

// "fuse": the mount point and the devices shown as files (docs/fuse.md).
Status ParseFuse(const Obj& top, Config* c) {
  const json* v = top.Get("fuse");
  if (v == nullptr) return Status::Ok();
  const Obj o(*v, Child(top.path(), "fuse"));
  FERRY_RETURN_IF_ERROR(o.Check({"mount_point", "devices", "allow_other", "read_only"}));
  FuseConfig f;
  FERRY_RETURN_IF_ERROR(o.Str("mount_point", &f.mount_point, true));
  if (f.mount_point.front() != '/') {
    return Bad(Child(o.path(), "mount_point"), "must be an absolute path");
  }
  FERRY_RETURN_IF_ERROR(o.Strings("devices", &f.devices));
  for (size_t i = 0; i < f.devices.size(); ++i) {
    const std::string& d = f.devices[i];
    const std::string path = Index(Child(o.path(), "devices"), i);
    if (c->FindBackstore(d) == nullptr && c->FindVolume(d) == nullptr) {
      return Bad(path, "no backstore or volume named '" + d + "'");
    }
    if (std::find(f.devices.begin(), f.devices.begin() + i, d) != f.devices.begin() + i) {
      return Bad(path, "'" + d + "' is listed twice");
    }
  }
  FERRY_RETURN_IF_ERROR(o.Bool("allow_other", &f.allow_other));
  FERRY_RETURN_IF_ERROR(o.Bool("read_only", &f.read_only));
  c->fuse = std::move(f);
  return Status::Ok();
}

// Every named section: an object of name -> object.
template <typename Fn>
Status ForEachNamed(const Obj& top, std::string_view key, Fn fn) {
  const json* v = top.Get(key);
  if (v == nullptr) return Status::Ok();
  const std::string path = Child(top.path(), key);
  if (!v->is_object()) return Bad(path, "expected an object of name -> settings");
  for (auto it = v->begin(); it != v->end(); ++it) {
    FERRY_RETURN_IF_ERROR(fn(it.key(), Obj(it.value(), Child(path, it.key()))));
  }
  return Status::Ok();
}

// The budget and deadline of connections that have not logged in (iscsi/admission.h).
Status ParsePrelogin(const Obj& top, Config* c) {
  // Unset, it follows a login timeout shorter than its default.
  uint64_t v = std::min(c->first_pdu_timeout_s, c->login_timeout_s);
  FERRY_RETURN_IF_ERROR(top.Uint("first_pdu_timeout_s", 3600, &v));
  if (v == 0 || v > c->login_timeout_s) {
    return Bad(Child(top.path(), "first_pdu_timeout_s"),
               "must be from 1 to login_timeout_s (" + std::to_string(c->login_timeout_s) + ")");
  }
  c->first_pdu_timeout_s = static_cast<uint32_t>(v);
  v = c->max_prelogin_connections;
  FERRY_RETURN_IF_ERROR(top.Uint("max_prelogin_connections", 65536, &v));
  if (v == 0) return Bad(Child(top.path(), "max_prelogin_connections"), "must be at least 1");
  c->max_prelogin_connections = static_cast<uint32_t>(v);
  v = c->max_prelogin_per_address;
  FERRY_RETURN_IF_ERROR(top.Uint("max_prelogin_per_address", 65536, &v));
  if (v == 0 || v > c->max_prelogin_connections) {
    return Bad(Child(top.path(), "max_prelogin_per_address"),
               "must be from 1 to max_prelogin_connections (" +
                   std::to_string(c->max_prelogin_connections) + ")");
  }
  c->max_prelogin_per_address = static_cast<uint32_t>(v);
  return Status::Ok();
}

Status ParseGlobals(const Obj& top, Config* c) {
  FERRY_RETURN_IF_ERROR(top.Str("state_dir", &c->state_dir));
  FERRY_RETURN_IF_ERROR(top.Str("admin_socket", &c->admin_socket));
  std::vector<std::string> algs;
  FERRY_RETURN_IF_ERROR(top.Strings("chap_algorithms", &algs));
  for (size_t i = 0; i < algs.size(); ++i) {
    iscsi::ChapAlgorithm a;
    if (!iscsi::ParseChapAlgorithm(algs[i], &a)) {
      return Bad(Index(Child(top.path(), "chap_algorithms"), i),
                 "unknown CHAP algorithm '" + algs[i] + "' (SHA3-256, SHA-256, MD5)");
    }
    c->chap_algorithms.push_back(a);
  }
  if (top.Has("chap_algorithms") && algs.empty()) {
    return Bad(Child(top.path(), "chap_algorithms"), "must not be empty");
  }
  uint64_t v = c->nop_interval_s;
  FERRY_RETURN_IF_ERROR(top.Uint("nop_interval_s", 3600, &v));
  c->nop_interval_s = static_cast<uint32_t>(v);
  v = c->nop_timeout_s;
  FERRY_RETURN_IF_ERROR(top.Uint("nop_timeout_s", 3600, &v));
  if (v == 0) return Bad(Child(top.path(), "nop_timeout_s"), "must be at least 1");
  c->nop_timeout_s = static_cast<uint32_t>(v);
  v = c->login_timeout_s;
  FERRY_RETURN_IF_ERROR(top.Uint("login_timeout_s", 3600, &v));
  if (v == 0) return Bad(Child(top.path(), "login_timeout_s"), "must be at least 1");
  c->login_timeout_s = static_cast<uint32_t>(v);
  v = c->max_connections;
  FERRY_RETURN_IF_ERROR(top.Uint("max_connections", 65536, &v));
  if (v == 0) return Bad(Child(top.path(), "max_connections"), "must be at least 1");
  c->max_connections = static_cast<uint32_t>(v);
  FERRY_RETURN_IF_ERROR(ParsePrelogin(top, c));
  if (const json* d = top.Get("discovery")) {
    Obj dob(*d, Child(top.path(), "discovery"));
    FERRY_RETURN_IF_ERROR(dob.Check({"auth_group"}));
    FERRY_RETURN_IF_ERROR(dob.Str("auth_group", &c->discovery_auth_group));
  }
  if (const json* cp = top.Get("copy")) {
    Obj cob(*cp, Child(top.path(), "copy"));
    FERRY_RETURN_IF_ERROR(cob.Check({"bandwidth", "token_timeout_s"}));
    FERRY_RETURN_IF_ERROR(cob.Size("bandwidth", &c->copy_bandwidth));
    v = c->token_timeout_s;
    FERRY_RETURN_IF_ERROR(cob.Uint("token_timeout_s", 600, &v));
    if (v == 0) return Bad(Child(cob.path(), "token_timeout_s"), "must be from 1 to 600");
    c->token_timeout_s = static_cast<uint32_t>(v);
  }
  if (const json* sz = top.Get("sanitize")) {
    Obj sob(*sz, Child(top.path(), "sanitize"));
    FERRY_RETURN_IF_ERROR(sob.Check({"bandwidth"}));
    FERRY_RETURN_IF_ERROR(sob.Size("bandwidth", &c->sanitize_bandwidth));
  }
  return Status::Ok();
}

// "metrics": {"listen": "ip:port"} (port 9560 when omitted); "log": {"format", "file"}.
Status ParseMetricsAndLog(const Obj& top, Config* c) {
  if (const json* m = top.Get("metrics")) {
    Obj mob(*m, Child(top.path(), "metrics"));
    FERRY_RETURN_IF_ERROR(mob.Check({"listen"}));
    std::string listen;
    FERRY_RETURN_IF_ERROR(mob.Str("listen", &listen, /*required=*/true));
    auto p = ParsePortal(listen);
    if (!p.ok()) return Bad(Child(mob.path(), "listen"), p.status().message());
    const bool has_port = listen.find("]:") != std::string::npos ||
                          (listen.front() != '[' && listen.find(':') != std::string::npos);
    if (!has_port) p->port = 9560;
    c->metrics_listen = p->Text();
  }
  if (const json* l = top.Get("log")) {
    Obj lob(*l, Child(top.path(), "log"));
    FERRY_RETURN_IF_ERROR(lob.Check({"format", "file"}));
    FERRY_RETURN_IF_ERROR(lob.Str("format", &c->log_format));
    if (!c->log_format.empty() && c->log_format != "text" && c->log_format != "json") {
      return Bad(Child(lob.path(), "format"), "must be \"text\" or \"json\"");
    }
    FERRY_RETURN_IF_ERROR(lob.Str("file", &c->log_file));
    if (lob.Has("file") && c->log_file.empty()) {
      return Bad(Child(lob.path(), "file"), "must not be empty (omit it to log to stdout)");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Config> ParseConfig(std::string_view text) {
  SyntaxCheck syntax;
  if (!json::sax_parse(text.begin(), text.end(), &syntax) || !syntax.error.empty()) {
    return InvalidArgument("$: not valid JSON: " +
                           (syntax.error.empty() ? std::string("syntax error") : syntax.error));
  }
  const json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return InvalidArgument("$: not valid JSON");
  Config c;
  const Obj top(j, "$");
  FERRY_RETURN_IF_ERROR(top.Check({"state_dir",
                                   "admin_socket",
                                   "chap_algorithms",
                                   "discovery",
                                   "nop_interval_s",
                                   "nop_timeout_s",
                                   "login_timeout_s",
                                   "first_pdu_timeout_s",
                                   "max_connections",
                                   "max_prelogin_connections",
                                   "max_prelogin_per_address",
                                   "copy",
                                   "sanitize",
                                   "metrics",
                                   "log",
                                   "auth_groups",
                                   "backstores",
                                   "volumes",
                                   "targets",
                                   "fuse"}));
  FERRY_RETURN_IF_ERROR(ParseGlobals(top, &c));
  FERRY_RETURN_IF_ERROR(ParseMetricsAndLog(top, &c));
  FERRY_RETURN_IF_ERROR(ForEachNamed(top, "auth_groups", [&](const std::string& n, Obj o) {
    c.auth_groups.emplace_back();
    return ParseAuthGroup(n, o, &c.auth_groups.back());
  }));
  if (!c.discovery_auth_group.empty() && c.FindAuthGroup(c.discovery_auth_group) == nullptr) {
    return Bad("$.discovery.auth_group", "no auth group named '" + c.discovery_auth_group + "'");
  }
  FERRY_RETURN_IF_ERROR(ForEachNamed(top, "backstores", [&](const std::string& n, Obj o) {
    c.backstores.emplace_back();
    return ParseBackstore(n, o, &c.backstores.back());
  }));
  FERRY_RETURN_IF_ERROR(ParseVolumes(top, &c));
  FERRY_RETURN_IF_ERROR(ParseFuse(top, &c));
  FERRY_RETURN_IF_ERROR(ForEachNamed(top, "targets", [&](const std::string& n, Obj o) {
    c.targets.emplace_back();
    return ParseTarget(n, o, c, &c.targets.back());
  }));
  if (c.targets.empty()) return Bad("$.targets", "no targets: nothing to serve");
  for (const BackstoreConfig& b : c.backstores) {
    const std::string group = b.auth_group();
    if (!group.empty() && c.FindAuthGroup(group) == nullptr) {
      return Bad(Child(Child("$.backstores", b.name), "auth_group"),
                 "no auth group named '" + group + "'");
    }
  }
  // A backstore (or volume) behind two targets would get two identities' worth of state:
  // refuse.
  std::map<std::string, std::string> owner;
  for (const TargetConfig& t : c.targets) {
    for (size_t i = 0; i < t.luns.size(); ++i) {
      auto [it, fresh] = owner.emplace(t.luns[i].backstore, t.name);
      if (!fresh) {
        return Bad(Child(Index(Child(Child("$.targets", t.name), "luns"), i), "backstore"),
                   "backstore '" + t.luns[i].backstore + "' is already a LUN of " + it->second);
      }
    }
  }
  return c;
}

std::string PortalConfig::Text() const {
  const bool v6 = ip.find(':') != std::string::npos;
  return (v6 ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

Result<PortalConfig> ParsePortal(std::string_view s) {
  PortalConfig p;
  std::string_view host = s, port;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos) return InvalidArgument("missing ']' in " + std::string(s));
    host = s.substr(1, close - 1);
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':')
        return InvalidArgument("expected ':' after ']' in " + std::string(s));
      port = s.substr(close + 2);
    }
  } else if (const size_t colon = s.rfind(':'); colon != std::string_view::npos) {
    if (s.find(':') != colon) {
      return InvalidArgument("write IPv6 portals as [address]:port: " + std::string(s));
    }
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  iscsi::IpAddress ip;
  if (!iscsi::ParseIpAddress(host, &ip)) {
    return InvalidArgument("'" + std::string(host) + "' is not an IP address");
  }
  p.ip = std::string(host);
  if (!port.empty() || (s.size() && s.back() == ':')) {
    uint32_t v = 0;
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::from_chars(port.data(), port.data() + port.size(), v).ec != std::errc() || v > 65535) {
      return InvalidArgument("bad port in '" + std::string(s) + "' (0..65535)");
    }
    p.port = static_cast<uint16_t>(v);
  }
  return p;
}

const BackstoreConfig* Config::FindBackstore(std::string_view name) const {
  for (const auto& b : backstores) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

const VolumeConfig* Config::FindVolume(std::string_view name) const {
  for (const auto& v : volumes) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

std::string BackstoreConfig::auth_group() const {
  auto it = params.find("auth_group");
  return it == params.end() ? std::string() : it->second.text;
}

bool ValidDeviceName(std::string_view n) {
  return !n.empty() && n.size() <= 64 && std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

const AuthGroupConfig* Config::FindAuthGroup(std::string_view name) const {
  for (const auto& a : auth_groups) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

}  // namespace ferry::daemon
