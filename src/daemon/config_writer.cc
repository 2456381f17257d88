#include "daemon/config_writer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace ferry::daemon {
namespace {

using json = nlohmann::json;

std::string ChapAlgorithmName(iscsi::ChapAlgorithm a) {
  switch (a) {
    case iscsi::ChapAlgorithm::kMd5: return "MD5";
    case iscsi::ChapAlgorithm::kSha256: return "SHA-256";
    case iscsi::ChapAlgorithm::kSha3_256: return "SHA3-256";
  }
  return "MD5";
}

// A backend parameter with the JSON type it was written with.
json ParamJson(const backends::ParamValue& v) {
  using Kind = backends::ParamValue::Kind;
  switch (v.kind) {
    case Kind::kBool: return v.text == "true";
    case Kind::kNumber: return std::stoull(v.text);
    case Kind::kText:
    case Kind::kString: return v.text;
  }
  return v.text;
}

json BackstoreJson(const BackstoreConfig& b) {
  json o = json::object();
  for (const auto& [k, v] : b.params) o[k] = ParamJson(v);
  o["type"] = b.type;
  if (!b.product.empty()) o["product"] = b.product;
  return o;
}

json AuthGroupJson(const AuthGroupConfig& a) {
  json o = {{"user", a.user}, {"secret_file", a.secret_file}};
  if (!a.mutual_user.empty()) {
    o["mutual_user"] = a.mutual_user;
    o["mutual_secret_file"] = a.mutual_secret_file;
  }
  return o;
}

// One string per table line: diffs of saved files then show the line that changed.
json TableJson(const std::string& table) {
  json lines = json::array();
  size_t start = 0;
  for (;;) {
    const size_t nl = table.find('\n', start);
    lines.push_back(table.substr(start, nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return lines;
}

json AclJson(const AclConfig& a) {
  json o = json::object();
  if (!a.initiators.empty()) o["initiators"] = a.initiators;
  if (!a.networks.empty()) {
    json nets = json::array();
    for (const iscsi::Network& n : a.networks) nets.push_back(NetworkText(n));
    o["networks"] = nets;
  }
  if (!a.auth_group.empty()) o["auth_group"] = a.auth_group;
  o["write_protect"] = a.write_protect;
  if (a.luns) {
    json luns = json::array();
    for (const LunMapConfig& m : *a.luns) {
      luns.push_back({{"lun", m.lun}, {"as", m.as}, {"write_protect", m.write_protect}});
    }
    o["luns"] = luns;
  }
  return o;
}

json TargetJson(const TargetConfig& t) {
  json o = json::object();
  if (!t.alias.empty()) o["alias"] = t.alias;
  json groups = json::array();
  for (const PortalGroupConfig& g : t.portal_groups) {
    json portals = json::array();
    for (const PortalConfig& p : g.portals) portals.push_back(p.Text());
    groups.push_back({{"tag", g.tag},
                      {"portals", portals},
                      {"alua_state", std::string(scsi::AluaStateName(g.alua_state))},
                      {"preferred", g.preferred}});
  }
  o["portal_groups"] = groups;
  json luns = json::array();
  for (const TargetLunConfig& l : t.luns) {
    luns.push_back(
        {{"lun", l.lun}, {"backstore", l.backstore}, {"write_protect", l.write_protect}});
  }
  o["luns"] = luns;
  if (!t.auth_group.empty()) o["auth_group"] = t.auth_group;
  if (!t.acls.empty()) {
    json acls = json::array();
    for (const AclConfig& a : t.acls) acls.push_back(AclJson(a));
    o["acls"] = acls;
  }
  return o;
}

void GlobalsJson(const Config& c, json* o) {
  if (!c.state_dir.empty()) (*o)["state_dir"] = c.state_dir;
  if (!c.admin_socket.empty()) (*o)["admin_socket"] = c.admin_socket;
  if (!c.chap_algorithms.empty()) {
    json algs = json::array();
    for (iscsi::ChapAlgorithm a : c.chap_algorithms) algs.push_back(ChapAlgorithmName(a));
    (*o)["chap_algorithms"] = algs;
  }
  if (!c.discovery_auth_group.empty()) {
    (*o)["discovery"] = {{"auth_group", c.discovery_auth_group}};
  }
  (*o)["nop_interval_s"] = c.nop_interval_s;
  (*o)["nop_timeout_s"] = c.nop_timeout_s;
  (*o)["login_timeout_s"] = c.login_timeout_s;
  (*o)["first_pdu_timeout_s"] = c.first_pdu_timeout_s;
  (*o)["max_connections"] = c.max_connections;
  (*o)["max_prelogin_connections"] = c.max_prelogin_connections;
  (*o)["max_prelogin_per_address"] = c.max_prelogin_per_address;
  (*o)["copy"] = {{"bandwidth", c.copy_bandwidth}, {"token_timeout_s", c.token_timeout_s}};
  (*o)["sanitize"] = {{"bandwidth", c.sanitize_bandwidth}};
  if (!c.metrics_listen.empty()) (*o)["metrics"] = {{"listen", c.metrics_listen}};
  if (!c.log_format.empty() || !c.log_file.empty()) {
    json log = json::object();
    if (!c.log_format.empty()) log["format"] = c.log_format;
    if (!c.log_file.empty()) log["file"] = c.log_file;
    (*o)["log"] = log;
  }
}

Status Errno(const std::string& what) { return ErrnoStatus(errno, what); }

// Writes all of `text` to a new file `tmp` (mode 0600) and makes it durable.
Status WriteDurably(const std::string& tmp, const std::string& text) {
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot create " + tmp);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const Status st = Errno("cannot write " + tmp);
      close(fd);
      return st;
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    const Status st = Errno("cannot fsync " + tmp);
    close(fd);
    return st;
  }
  if (close(fd) != 0) return Errno("cannot close " + tmp);
  return Status::Ok();
}

// path.1 .. path.keep move up by one (the oldest goes), and path.1 becomes a second name of
// the current file (a hard link: `path` itself never disappears), or a copy of it.
Status ShiftBackups(const std::string& path, int keep) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (keep <= 0 || !fs::exists(path, ec)) return Status::Ok();
  auto name = [&](int i) { return path + "." + std::to_string(i); };
  fs::remove(name(keep), ec);
  for (int i = keep - 1; i >= 1; --i) {
    if (fs::exists(name(i), ec) && rename(name(i).c_str(), name(i + 1).c_str()) != 0) {
      return Errno("cannot rename " + name(i));
    }
  }
  if (link(path.c_str(), name(1).c_str()) == 0) return Status::Ok();
  fs::copy_file(path, name(1), fs::copy_options::overwrite_existing, ec);
  if (ec) return ErrnoStatus(ec.value(), "cannot back up " + path + " as " + name(1));
  return Status::Ok();
}

}  // namespace

std::string NetworkText(const iscsi::Network& n) {
  const auto& b = n.base.bytes;
  const bool v4 = std::all_of(b.begin(), b.begin() + 10, [](uint8_t x) { return x == 0; }) &&
                  b[10] == 0xff && b[11] == 0xff && n.prefix_bits >= 96;
  char text[INET6_ADDRSTRLEN] = {};
  if (v4) {
    inet_ntop(AF_INET, b.data() + 12, text, sizeof(text));
    return std::string(text) + "/" + std::to_string(n.prefix_bits - 96);
  }
  inet_ntop(AF_INET6, b.data(), text, sizeof(text));
  return std::string(text) + "/" + std::to_string(n.prefix_bits);
}

json ConfigToJson(const Config& c) {
  json o = json::object();
  GlobalsJson(c, &o);
  if (!c.auth_groups.empty()) {
    json groups = json::object();
    for (const AuthGroupConfig& a : c.auth_groups) groups[a.name] = AuthGroupJson(a);
    o["auth_groups"] = groups;
  }
  json backstores = json::object();
  for (const BackstoreConfig& b : c.backstores) backstores[b.name] = BackstoreJson(b);
  o["backstores"] = backstores;
  if (!c.volumes.empty()) {
    json volumes = json::array();
    for (const VolumeConfig& v : c.volumes) {
      volumes.push_back({{"name", v.name}, {"table", TableJson(v.table)}});
    }
    o["volumes"] = volumes;
  }
  if (c.fuse) {
    o["fuse"] = {{"mount_point", c.fuse->mount_point},
                 {"devices", c.fuse->devices},
                 {"allow_other", c.fuse->allow_other},
                 {"read_only", c.fuse->read_only}};
  }
  json targets = json::object();
  for (const TargetConfig& t : c.targets) targets[t.name] = TargetJson(t);
  o["targets"] = targets;
  return o;
}

std::string SerializeConfig(const Config& c) { return ConfigToJson(c).dump(2) + "\n"; }

Status WriteConfigFile(const std::string& path, const std::string& text, int keep) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string tmp =
      (dir / ("." + target.filename().string() + ".tmp." + std::to_string(getpid()))).string();
  std::error_code ec;
  fs::remove(tmp, ec);  // left by a save that crashed
  if (Status st = WriteDurably(tmp, text); !st.ok()) {
    fs::remove(tmp, ec);
    return st;
  }
  if (Status st = ShiftBackups(path, keep); !st.ok()) {
    fs::remove(tmp, ec);
    return st;
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const Status st = Errno("cannot rename " + tmp + " to " + path);
    fs::remove(tmp, ec);
    return st;
  }
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Errno("cannot open " + dir.string() + " to fsync it");
  const int rc = fsync(dfd);
  const int err = errno;
  close(dfd);
  if (rc != 0) return ErrnoStatus(err, "cannot fsync " + dir.string());
  return Status::Ok();
}

}  // namespace ferry::daemon
