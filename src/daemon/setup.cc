#include "daemon/setup.h"

#include <filesystem>
#include <fstream>

#include "backends/builtin.h"
#include "backends/ram/ram_device.h"
#include "base/log.h"
#include "base/secret_file.h"
#include "daemon/identity.h"

namespace ferry::daemon {

Result<std::shared_ptr<const iscsi::ChapCredentials>> LoadAuthGroup(const AuthGroupConfig& a) {
  auto c = std::make_shared<iscsi::ChapCredentials>();
  c->user = a.user;
  FERRY_ASSIGN_OR_RETURN(c->secret, ReadSecretFile(a.secret_file));
  if (!a.mutual_user.empty()) {
    c->mutual_user = a.mutual_user;
    FERRY_ASSIGN_OR_RETURN(c->mutual_secret, ReadSecretFile(a.mutual_secret_file));
    if (c->mutual_secret == c->secret) {
      return InvalidArgument("auth group " + a.name +
                             ": the mutual secret must differ from the initiator's");
    }
  }
  return std::shared_ptr<const iscsi::ChapCredentials>(std::move(c));
}

Config DemoConfig(const PortalConfig& portal, uint64_t lun_size) {
  using Kind = backends::ParamValue::Kind;
  const backends::ParamValue size{Kind::kNumber, std::to_string(lun_size)};
  Config c;
  c.backstores.push_back({.name = "demo-ram", .type = "ram", .params = {{"size", size}}});
  c.backstores.push_back({.name = "demo-file",
                          .type = "file",
                          .params = {{"path", {Kind::kString, "demo-file.img"}},  // state dir
                                     {"size", size},
                                     {"create", {Kind::kBool, "true"}}}});
  TargetConfig t;
  t.name = kDemoTarget;
  t.alias = "ferry demo";
  t.portal_groups.push_back({.tag = 1, .portals = {portal}});
  t.luns = {{.lun = 0, .backstore = "demo-ram"}, {.lun = 1, .backstore = "demo-file"}};
  c.targets.push_back(std::move(t));
  return c;
}

backends::BackendContext MakeBackendContext(
    const Setup& s,
    const std::map<std::string, std::shared_ptr<const iscsi::ChapCredentials>>& auth,
    const std::string& state_dir) {
  backends::BackendContext ctx;
  ctx.base_dir = state_dir;
  ctx.ram_arena = s.ram_arena;
  ctx.auth_group = [&auth](std::string_view name) -> Result<backends::ChapSecrets> {
    auto it = auth.find(std::string(name));
    if (it == auth.end()) return NotFound("no auth group named '" + std::string(name) + "'");
    const iscsi::ChapCredentials& c = *it->second;
    return backends::ChapSecrets{.user = c.user,
                                 .secret = c.secret,
                                 .mutual_user = c.mutual_user,
                                 .mutual_secret = c.mutual_secret};
  };
  return ctx;
}

Result<Backstore> OpenBackstore(const BackstoreConfig& b, const backends::BackendContext& ctx,
                                const std::string& state_dir, uint64_t sanitize_bandwidth) {
  auto dev = backends::CreateBackend(b.type, b.name, b.params, ctx);
  if (!dev.ok() && dev.status().code() == StatusCode::kUnavailable) return dev.status();
  if (!dev.ok()) {
    return Status(dev.status().code(),
                  "backstore " + b.name + ": " + std::string(dev.status().message()));
  }
  scsi::LuIdentity id;
  id.product = b.product.empty() ? b.name : b.product;
  FERRY_RETURN_IF_ERROR(LoadOrCreateIdentity(state_dir, b.name, &id));
  auto lu = std::make_shared<scsi::LogicalUnit>(*dev, id, (*dev)->read_only());
  lu->set_sanitize_rate(sanitize_bandwidth);
  return Backstore{.config = b, .device = *dev, .lu = std::move(lu)};
}

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
  const backends::BackendContext ctx = MakeBackendContext(s, s.auth, state_dir);
  for (const BackstoreConfig& b : c.backstores) {
    auto opened = OpenBackstore(b, ctx, state_dir, c.sanitize_bandwidth);
    if (!opened.ok() && opened.status().code() == StatusCode::kUnavailable) {
      // A remote store that cannot be reached: its LUNs are left out, the others serve.
      FERRY_LOG_ERROR("ferryd: backstore {} ({}) is unavailable, its LUNs are not served: {}",
                      b.name, b.type, opened.status().message());
      s.unavailable[b.name] = std::string(opened.status().message());
      continue;
    }
    if (!opened.ok()) return opened.status();
    FERRY_RETURN_IF_ERROR(s.registry->Add(opened->device));
    s.backstores[b.name] = std::move(*opened);
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
      if (s.unavailable.contains(l.backstore)) continue;
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
