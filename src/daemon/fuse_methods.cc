#include "daemon/fuse_methods.h"

#include "base/log.h"

namespace ferry::daemon {
namespace {

using json = nlohmann::json;

Status AddFile(DaemonState& d, fuse::Mount& m, const std::string& name) {
  auto it = d.setup.backstores.find(name);
  if (it == d.setup.backstores.end()) {
    return NotFound("no backstore or volume " + name +
                    " (ferryctl luns and ferryctl volume list show them)");
  }
  std::shared_ptr<volume::Volume> v = it->second.volume;
  // A volume with a file is held open, as a LUN holds it: volume remove refuses.
  FERRY_RETURN_IF_ERROR(
      m.Add(name, it->second.device, v ? std::function<void()>([v] { v->Close(); }) : nullptr));
  if (v != nullptr) v->Open();
  return Status::Ok();
}

json ListJson(const fuse::Mount& m) {
  json files = json::array();
  for (const fuse::FileInfo& f : m.Files()) {
    files.push_back({{"name", f.name},
                     {"path", m.mount_point() + "/" + f.name},
                     {"size_bytes", f.size_bytes},
                     {"block_size", f.block_size},
                     {"allocated_bytes", f.allocated_bytes},
                     {"open_handles", f.open_handles},
                     {"read_only", f.read_only}});
  }
  const fuse::MountStats s = m.stats();
  json mech = json::object();
  for (size_t i = 0; i < s.by_mechanism.size(); ++i) {
    const auto k = static_cast<block::CopyMechanism>(i);
    if (k != block::CopyMechanism::kNone) mech[block::CopyMechanismName(k)] = s.by_mechanism[i];
  }
  return {{"mount_point", m.mount_point()},
          {"mounted", m.mounted()},
          {"files", files},
          {"stats",
           {{"reads", s.reads},
            {"writes", s.writes},
            {"read_bytes", s.read_bytes},
            {"written_bytes", s.written_bytes},
            {"flushes", s.flushes},
            {"discards", s.discards},
            {"write_zeroes", s.write_zeroes}}},
          {"copy",
           {{"copies", s.copies},
            {"declined", s.copies_declined},
            {"failed", s.copies_failed},
            {"bytes_offloaded", s.bytes_offloaded},
            {"bytes_emulated", s.bytes_emulated},
            {"mechanisms", mech}}}};
}

Status NameParam(const json& p, std::string* name) {
  auto n = p.find("name");
  if (n == p.end() || !n->is_string()) return InvalidArgument("\"name\" (a string) is required");
  *name = n->get<std::string>();
  return Status::Ok();
}

Status Handle(DaemonState& d, fuse::Mount* m, const AdminRequest& req, json* result) {
  if (m == nullptr) {
    return FailedPrecondition(
        "ferryd has no FUSE mount (add a \"fuse\" section with a mount_point to its "
        "configuration, docs/fuse.md)");
  }
  if (req.method == "fuse_list") {
    *result = ListJson(*m);
    return Status::Ok();
  }
  std::string name;
  FERRY_RETURN_IF_ERROR(NameParam(req.params, &name));
  if (req.method == "fuse_add") {
    FERRY_RETURN_IF_ERROR(AddFile(d, *m, name));
    FERRY_LOG_INFO("admin: {}/{} is now a file", m->mount_point(), name);
  } else {
    FERRY_RETURN_IF_ERROR(m->Remove(name));
    FERRY_LOG_INFO("admin: {}/{} removed", m->mount_point(), name);
  }
  *result = {{"name", name}, {"path", m->mount_point() + "/" + name}};
  return Status::Ok();
}

}  // namespace

Status StartFuse(DaemonState& d, io::Reactor* re, std::unique_ptr<fuse::Mount>* out) {
  if (!d.config.fuse) return Status::Ok();
  const FuseConfig& c = *d.config.fuse;
  FERRY_ASSIGN_OR_RETURN(*out, fuse::Mount::Start(re, {.mount_point = c.mount_point,
                                                       .allow_other = c.allow_other,
                                                       .read_only = c.read_only,
                                                       .copy_bandwidth = d.config.copy_bandwidth}));
  for (const std::string& name : c.devices) {
    if (d.setup.unavailable.contains(name)) {
      FERRY_LOG_WARN("fuse: {} is unavailable: no file for it", name);
      continue;
    }
    FERRY_RETURN_IF_ERROR(AddFile(d, **out, name));
  }
  return Status::Ok();
}

bool HandleFuseMethod(DaemonState& d, fuse::Mount* mount, const AdminRequest& req,
                      AdminServer::Reply& reply) {
  if (req.method != "fuse_list" && req.method != "fuse_add" && req.method != "fuse_remove") {
    return false;
  }
  json result;
  Status st = Handle(d, mount, req, &result);
  reply(std::move(st), std::move(result));
  return true;
}

}  // namespace ferry::daemon
