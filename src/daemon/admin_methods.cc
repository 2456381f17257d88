#include "daemon/admin_methods.h"

#include <unistd.h>

#include <cstdio>

#include "base/log.h"
#include "daemon/config_methods.h"
#include "daemon/fuse_methods.h"
#include "daemon/volume_methods.h"

namespace ferry::daemon {
namespace {

using json = nlohmann::json;

// The backstore behind a logical unit, or nullptr.
const Backstore* BackstoreOf(const Setup& s, const scsi::LogicalUnit* lu) {
  for (const auto& [name, b] : s.backstores) {
    if (b.lu.get() == lu) return &b;
  }
  return nullptr;
}

json LunsJson(const DaemonState& d) {
  json out = json::array();
  const std::vector<iscsi::SessionInfo> sessions = d.server->Sessions();
  for (const auto& t : d.server->targets()) {
    int on_target = 0;
    for (const iscsi::SessionInfo& si : sessions) on_target += si.target == t->config().name;
    for (const auto& [lun, tl] : t->Luns()) {
      const Backstore* b = BackstoreOf(d.setup, tl.lu.get());
      if (b == nullptr) continue;
      const block::Geometry& g = b->device->geometry();
      char naa[33];
      for (size_t i = 0; i < 16; ++i) {
        std::snprintf(naa + 2 * i, 3, "%02x", b->lu->identity().naa[i]);
      }
      out.push_back({{"target", t->config().name},
                     {"lun", lun},
                     {"backstore", b->config.name},
                     {"type", b->config.type},
                     {"device", std::string(b->device->name())},
                     {"size_bytes", g.num_blocks.value() * g.block_size},
                     {"block_size", g.block_size},
                     {"write_protect", tl.write_protect || b->device->read_only()},
                     {"naa", std::string(naa)},
                     {"serial", b->lu->identity().serial},
                     {"target_sessions", on_target}});
    }
  }
  return out;
}

json SessionsJson(const iscsi::Server& server) {
  json out = json::array();
  for (const iscsi::SessionInfo& s : server.Sessions()) {
    out.push_back({{"initiator", s.initiator},
                   {"target", s.target},
                   {"type", s.discovery ? "discovery" : "normal"},
                   {"peer", s.peer},
                   {"portal", s.portal},
                   {"isid", s.isid},
                   {"tsih", s.tsih},
                   {"header_digest", s.header_digest ? "CRC32C" : "None"},
                   {"data_digest", s.data_digest ? "CRC32C" : "None"},
                   {"chap", s.chap},
                   {"commands", s.commands},
                   {"luns", s.luns}});
  }
  return out;
}

// Third-party copy counters: commands, and bytes by how they moved.
json CopyJson(const scsi::CopyManager& m) {
  const scsi::CopyMetrics c = m.metrics();
  json mech = json::object();
  for (size_t i = 0; i < c.by_mechanism.size(); ++i) {
    const auto k = static_cast<block::CopyMechanism>(i);
    if (k != block::CopyMechanism::kNone) mech[block::CopyMechanismName(k)] = c.by_mechanism[i];
  }
  return {
      {"commands",
       {{"extended_copy", c.extended_copy_commands},
        {"populate_token", c.populate_token_commands},
        {"write_using_token", c.write_using_token_commands},
        {"failed", c.failed_commands},
        {"aborted", c.aborted_commands}}},
      {"active", c.active},
      {"bytes_offloaded", c.bytes_offloaded},
      {"bytes_emulated", c.bytes_emulated},
      {"bytes_zeroed", c.bytes_zeroed},
      {"mechanisms", mech},
      {"offload_notes", c.offload_notes},
      {"tokens",
       {{"live", c.tokens_live}, {"created", c.tokens_created}, {"revoked", c.tokens_revoked}}}};
}

json StatusJson(const DaemonState& d) {
  const iscsi::Server& server = *d.server;
  const iscsi::ServerStats& st = server.stats();
  json targets = json::array();
  for (const auto& t : server.targets()) {
    targets.push_back({{"name", t->config().name},
                       {"luns", t->Luns().size()},
                       {"acl_entries", t->config().acls.size()},
                       {"chap", t->config().chap != nullptr}});
  }
  json out = {{"daemon", "ferryd"},
              {"pid", getpid()},
              {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::steady_clock::now() - d.started)
                               .count()},
              {"state_dir", d.state_dir},
              {"portals", server.listen_addresses()},
              {"targets", targets},
              {"sessions", server.Sessions().size()},
              {"connections", server.connections()},
              {"stats",
               {{"connections_accepted", st.connections_accepted.load()},
                {"connections_refused", st.connections_refused.load()},
                {"prelogin_evicted", st.prelogin_evicted.load()},
                {"prelogin_timeouts", st.prelogin_timeouts.load()},
                {"logins", st.logins.load()},
                {"login_failures", st.login_failures.load()},
                {"commands", st.commands.load()},
                {"rejects", st.rejects.load()}}}};
  if (d.copy != nullptr) out["copy"] = CopyJson(*d.copy);
  return out;
}

// The parameters every LUN change names: the target and the LUN number.
Status TargetAndLun(const DaemonState& d, const json& p, iscsi::Target** t, uint64_t* lun) {
  auto name = p.find("target");
  auto n = p.find("lun");
  if (name == p.end() || !name->is_string())
    return InvalidArgument("\"target\" (a string) is required");
  if (n == p.end() || !n->is_number_unsigned() || n->get<uint64_t>() > 16383) {
    return InvalidArgument("\"lun\" (0..16383) is required");
  }
  *lun = n->get<uint64_t>();
  for (const auto& tp : d.server->targets()) {
    if (tp->config().name == name->get<std::string>()) {
      *t = tp.get();
      return Status::Ok();
    }
  }
  return NotFound("no target " + name->get<std::string>());
}

Status MapLun(DaemonState& d, const json& p, json* result) {
  iscsi::Target* t = nullptr;
  uint64_t lun = 0;
  FERRY_RETURN_IF_ERROR(TargetAndLun(d, p, &t, &lun));
  auto bs = p.find("backstore");
  if (bs == p.end() || !bs->is_string())
    return InvalidArgument("\"backstore\" (a string) is required");
  auto it = d.setup.backstores.find(bs->get<std::string>());
  if (it == d.setup.backstores.end()) {
    return NotFound("no backstore or volume " + bs->get<std::string>() +
                    " (backstores come from the configuration file; ferryctl volume list "
                    "shows the volumes)");
  }
  for (const auto& other : d.server->targets()) {
    for (const auto& [n, tl] : other->Luns()) {
      if (tl.lu == it->second.lu) {
        return AlreadyExists("backstore " + it->first + " is LUN " + std::to_string(n) + " of " +
                             other->config().name);
      }
    }
  }
  auto wp = p.find("write_protect");
  if (wp != p.end() && !wp->is_boolean())
    return InvalidArgument("\"write_protect\" is true or false");
  const bool write_protect = wp != p.end() && wp->get<bool>();
  FERRY_RETURN_IF_ERROR(t->MapLun(lun, {it->second.lu, write_protect}));
  if (it->second.volume != nullptr) it->second.volume->Open();  // closed by lun_unmap
  FERRY_LOG_INFO("admin: {} LUN {} is now backstore {}{}", t->config().name, lun, it->first,
                 write_protect ? " (write-protected)" : "");
  d.server->LunsChanged(t);
  *result = {{"target", t->config().name}, {"lun", lun}, {"backstore", it->first}};
  return Status::Ok();
}

Status UnmapLun(DaemonState& d, const json& p, json* result) {
  iscsi::Target* t = nullptr;
  uint64_t lun = 0;
  FERRY_RETURN_IF_ERROR(TargetAndLun(d, p, &t, &lun));
  const auto luns = t->Luns();
  auto held = luns.find(lun);
  const Backstore* b = held == luns.end() ? nullptr : BackstoreOf(d.setup, held->second.lu.get());
  FERRY_RETURN_IF_ERROR(t->UnmapLun(lun));
  if (b != nullptr && b->volume != nullptr) b->volume->Close();
  FERRY_LOG_INFO("admin: {} LUN {} removed", t->config().name, lun);
  d.server->LunsChanged(t);
  *result = {{"target", t->config().name}, {"lun", lun}};
  return Status::Ok();
}

Status HandleSync(DaemonState& d, const AdminRequest& req, json* result) {
  if (req.method == "status") {
    *result = StatusJson(d);
  } else if (req.method == "sessions") {
    *result = SessionsJson(*d.server);
  } else if (req.method == "luns") {
    *result = LunsJson(d);
  } else if (req.method == "lun_map") {
    return MapLun(d, req.params, result);
  } else if (req.method == "lun_unmap") {
    return UnmapLun(d, req.params, result);
  } else {
    return Unimplemented("unknown method '" + req.method +
                         "' (status, sessions, luns, lun_map, lun_unmap, " +
                         std::string(kVolumeMethodNames) + ", " + kFuseMethodNames + ", " +
                         kConfigMethodNames + ")");
  }
  return Status::Ok();
}

}  // namespace

void HandleAdmin(DaemonState& d, const AdminRequest& req, AdminServer::Reply reply) {
  if (HandleVolumeMethod(d, req, reply)) return;
  if (HandleConfigMethod(d, req, reply)) return;
  json result;
  Status st = HandleSync(d, req, &result);
  reply(std::move(st), std::move(result));
}

}  // namespace ferry::daemon
