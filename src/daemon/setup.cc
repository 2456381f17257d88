#include "daemon/setup.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "backends/file/file_device.h"
#include "backends/ram/ram_device.h"
#include "base/log.h"
#include "daemon/identity.h"

namespace ferry::daemon {

Result<std::string> ReadSecret(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "CHAP secret file " + path);
  if (!S_ISREG(st.st_mode)) return InvalidArgument("CHAP secret file " + path + " is not a file");
  if (st.st_mode & 077) {
    return PermissionDenied("CHAP secret file " + path +
                            " is readable by group or others: chmod 600 it");
  }
  std::ifstream in(path);
  std::string secret;
  std::getline(in, secret);
  if (!in && !in.eof()) return Internal("cannot read CHAP secret file " + path);
  if (secret.size() < 12 || secret.size() > 255) {
    return InvalidArgument("CHAP secret in " + path + " must be 12..255 characters (has " +
                           std::to_string(secret.size()) + ")");
  }
  for (char ch : secret) {
    if (ch <= ' ' || ch > '~' || ch == '#') {
      return InvalidArgument("CHAP secret in " + path +
                             " may hold printable ASCII without spaces or '#' only");
    }
  }
  return secret;
}

Result<std::shared_ptr<const iscsi::ChapCredentials>> LoadAuthGroup(const AuthGroupConfig& a) {
  auto c = std::make_shared<iscsi::ChapCredentials>();
  c->user = a.user;
  FERRY_ASSIGN_OR_RETURN(c->secret, ReadSecret(a.secret_file));
  if (!a.mutual_user.empty()) {
    c->mutual_user = a.mutual_user;
    FERRY_ASSIGN_OR_RETURN(c->mutual_secret, ReadSecret(a.mutual_secret_file));
    if (c->mutual_secret == c->secret) {
      return InvalidArgument("auth group " + a.name +
                             ": the mutual secret must differ from the initiator's");
    }
  }
  return std::shared_ptr<const iscsi::ChapCredentials>(std::move(c));
}

Config DemoConfig(const PortalConfig& portal, uint64_t lun_size) {
  Config c;
  c.backstores.push_back({.name = "demo-ram", .size_bytes = lun_size});
  c.backstores.push_back({.name = "demo-file",
                          .type = BackstoreConfig::Type::kFile,
                          .path = "demo-file.img",  // relative: in the state directory
                          .size_bytes = lun_size,
                          .create = true});
  TargetConfig t;
  t.name = kDemoTarget;
  t.alias = "ferry demo";
  t.portal_groups.push_back({.tag = 1, .portals = {portal}});
  t.luns = {{.lun = 0, .backstore = "demo-ram"}, {.lun = 1, .backstore = "demo-file"}};
  c.targets.push_back(std::move(t));
  return c;
}

namespace {

// `ram_arena`: shared by every RAM backstore, so that copies between RAM LUNs are native.
Result<std::shared_ptr<block::BlockDevice>> OpenDevice(
    const BackstoreConfig& b, const std::string& state_dir,
    const std::shared_ptr<backends::RamArena>& ram_arena) {
  if (b.type == BackstoreConfig::Type::kRam) {
    FERRY_ASSIGN_OR_RETURN(auto d, backends::RamDevice::Create({.name = b.name,
                                                                .size_bytes = b.size_bytes,
                                                                .block_size = b.block_size,
                                                                .arena = ram_arena,
                                                                .read_only = b.read_only}));
    return std::shared_ptr<block::BlockDevice>(std::move(d));
  }
  std::filesystem::path p(b.path);
  if (p.is_relative()) p = std::filesystem::path(state_dir) / p;
  FERRY_ASSIGN_OR_RETURN(auto d, backends::FileDevice::Open({.name = b.name,
                                                             .path = p.string(),
                                                             .direct = b.direct,
                                                             .read_only = b.read_only,
                                                             .create = b.create,
                                                             .size_bytes = b.size_bytes,
                                                             .block_size = b.block_size}));
  return std::shared_ptr<block::BlockDevice>(std::move(d));
}

}  // namespace

Result<Setup> Prepare(const Config& c, const std::string& state_dir) {
  Setup s;
  for (const AuthGroupConfig& a : c.auth_groups) {
    auto creds = LoadAuthGroup(a);
    if (!creds.ok())
      return InvalidArgument("auth group " + a.name + ": " + std::string(creds.status().message()));
    s.auth[a.name] = *creds;
  }
  if (!c.discovery_auth_group.empty()) s.discovery_chap = s.auth[c.discovery_auth_group];
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) return ErrnoStatus(ec.value(), "cannot create state directory " + state_dir);
  auto ram_arena = std::make_shared<backends::RamArena>();
  for (const BackstoreConfig& b : c.backstores) {
    auto dev = OpenDevice(b, state_dir, ram_arena);
    if (!dev.ok())
      return Status(dev.status().code(),
                    "backstore " + b.name + ": " + std::string(dev.status().message()));
    scsi::LuIdentity id;
    id.product = b.product.empty() ? b.name : b.product;
    FERRY_RETURN_IF_ERROR(LoadOrCreateIdentity(state_dir, b.name, &id));
    auto lu = std::make_shared<scsi::LogicalUnit>(*dev, id, b.read_only);
    lu->set_sanitize_rate(c.sanitize_bandwidth);
    FERRY_RETURN_IF_ERROR(s.registry->Add(*dev));
    s.backstores[b.name] = Backstore{.config = b, .device = *dev, .lu = std::move(lu)};
  }
  return s;
}

std::string PortalKey(size_t group_index, const PortalConfig& p) {
  return p.port == 0 ? p.Text() + "#" + std::to_string(group_index) : p.Text();
}

std::vector<std::shared_ptr<iscsi::Target>> MakeTargets(
    const Config& c, const Setup& s, const std::map<std::string, std::string>& bound) {
  std::vector<std::shared_ptr<iscsi::Target>> out;
  for (const TargetConfig& t : c.targets) {
    iscsi::TargetConfig tc;
    tc.name = t.name;
    tc.alias = t.alias;
    tc.policy.target_alias = t.alias;
    for (size_t gi = 0; gi < t.portal_groups.size(); ++gi) {
      const PortalGroupConfig& g = t.portal_groups[gi];
      iscsi::PortalGroup pg{
          .tag = g.tag, .portals = {}, .alua_state = g.alua_state, .preferred = g.preferred};
      for (const PortalConfig& p : g.portals) pg.portals.push_back(bound.at(PortalKey(gi, p)));
      tc.portal_groups.push_back(std::move(pg));
    }
    for (const TargetLunConfig& l : t.luns) {
      const Backstore& b = s.backstores.at(l.backstore);
      if (b.volume != nullptr) b.volume->Open();  // the LUN holds it (closed by lun_unmap)
      tc.luns[l.lun] = {b.lu, l.write_protect};
    }
    if (!t.auth_group.empty()) tc.chap = s.auth.at(t.auth_group);
    if (!c.chap_algorithms.empty()) tc.chap_algorithms = c.chap_algorithms;
    for (const AclConfig& a : t.acls) {
      iscsi::Acl acl;
      acl.initiators = a.initiators;
      acl.networks = a.networks;
      if (!a.auth_group.empty()) acl.chap = s.auth.at(a.auth_group);
      acl.write_protect = a.write_protect;
      acl.map_all_luns = !a.luns.has_value();
      for (const LunMapConfig& m : a.luns.value_or(std::vector<LunMapConfig>{})) {
        acl.luns[m.as] = {.target_lun = m.lun, .write_protect = m.write_protect};
      }
      tc.acls.push_back(std::move(acl));
    }
    out.push_back(std::make_shared<iscsi::Target>(std::move(tc)));
  }
  return out;
}

// Persistent reservations with APTPL live in <state>/reservations/<backstore>.json, one
// file per logical unit, so that a restart keeps them (SPC-4 5.13.4).
Status LoadReservations(Setup& setup, const std::string& state_dir) {
  const std::filesystem::path dir = std::filesystem::path(state_dir) / "reservations";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ErrnoStatus(ec.value(), "cannot create " + dir.string());
  for (auto& [name, b] : setup.backstores) {
    const std::string err = b.lu->PersistReservationsIn(dir / (name + ".json"));
    if (!err.empty()) {
      FERRY_LOG_WARN("ferryd: backstore {}: persistent reservations not restored: {}", name, err);
    }
  }
  return Status::Ok();
}

}  // namespace ferry::daemon
