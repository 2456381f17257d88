#include "daemon/volume_methods.h"

#include <filesystem>

#include "base/log.h"
#include "io/reactor.h"

namespace ferry::daemon {
namespace {

using json = nlohmann::json;
using Reply = AdminServer::Reply;

std::string Quoted(std::string_view name) { return "volume '" + std::string(name) + "'"; }

Status StrParam(const json& p, const char* key, std::string* out) {
  auto it = p.find(key);
  if (it == p.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
    return InvalidArgument(std::string("\"") + key + "\" (a non-empty string) is required");
  }
  *out = it->get<std::string>();
  return Status::Ok();
}

// A whole number >= 0 (JSON from the wire parses those as unsigned; built ones may be signed).
bool WholeNumber(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

// The volume that "name" names.
Status Named(DaemonState& d, const json& p, Backstore** b) {
  std::string name;
  FERRY_RETURN_IF_ERROR(StrParam(p, "name", &name));
  *b = FindVolume(d.setup, name);
  if (*b != nullptr) return Status::Ok();
  if (d.setup.backstores.contains(name)) {
    return InvalidArgument("'" + name + "' is a backstore, not a volume");
  }
  return NotFound("no volume '" + name + "' (ferryd's volumes: ferryctl volume list)");
}

std::vector<std::string> Users(const DaemonState& d, const volume::Volume& v) {
  return VolumeUsers(
      d.setup, v,
      d.server != nullptr ? d.server->targets() : std::vector<std::shared_ptr<iscsi::Target>>{});
}

json StatusOf(const DaemonState& d, const Backstore& b) {
  const volume::Volume& v = *b.volume;
  auto table = v.active_table();
  return {{"name", std::string(v.name())},
          {"from_config", b.from_config},
          {"size_bytes", v.geometry().size_bytes()},
          {"block_size", v.geometry().block_size},
          {"lines", table ? table->size() : 0},
          {"suspended", v.suspended()},
          {"generation", v.generation()},
          {"open_count", v.open_count()},
          {"in_flight", v.in_flight()},
          {"queued", v.queued()},
          {"users", Users(d, v)},
          {"table", v.TableText()},
          {"inactive_table", v.InactiveTableText()},
          {"status", v.StatusText()}};
}

// A table from "table", prepared (asynchronously: targets may open on-disk state), then
// handed to `then` on the reactor; parse and prepare errors go to `reply`.
using TableReady = std::function<void(std::shared_ptr<volume::Table>)>;
void BuildTable(DaemonState& d, const std::string& name, const json& p, Reply reply,
                TableReady then) {
  std::string text;
  if (Status st = StrParam(p, "table", &text); !st.ok()) return reply(st, {});
  auto table = volume::Table::Parse(text, d.volume_env->Options());
  if (!table.ok()) {
    return reply(table.status().WithContext(Quoted(name)), {});
  }
  struct Pending {
    std::string name;
    std::shared_ptr<volume::Table> table;
    Reply reply;
    TableReady then;
  };
  auto pending =
      std::make_shared<Pending>(Pending{name, *table, std::move(reply), std::move(then)});
  volume::PrepareTable(*table, [pending](Status st) {
    if (!st.ok()) return pending->reply(st.WithContext(Quoted(pending->name)), {});
    pending->then(std::move(pending->table));
  });
}

void Create(DaemonState& d, const json& p, Reply reply) {
  std::string name;
  if (Status st = StrParam(p, "name", &name); !st.ok()) return reply(st, {});
  if (!ValidDeviceName(name)) {
    return reply(
        InvalidArgument("volume names are 1..64 of [A-Za-z0-9._-]; '" + name + "' is not one"), {});
  }
  if (d.setup.backstores.contains(name)) {
    return reply(AlreadyExists("'" + name +
                               "' is already a backstore or volume: pick another "
                               "name, or load a new table into it (ferryctl volume load)"),
                 {});
  }
  BuildTable(d, name, p, reply, [&d, name, reply](std::shared_ptr<volume::Table> table) {
    auto vol = volume::Volume::Create(name, std::move(table));
    if (!vol.ok()) return reply(vol.status(), {});
    auto b = AddVolume(&d.setup, *vol, d.state_dir, d.config.sanitize_bandwidth);
    if (!b.ok()) return reply(b.status(), {});
    if (d.copy != nullptr) (*b)->lu->set_copy_manager(d.copy);
    const auto pr = std::filesystem::path(d.state_dir) / "reservations" / (name + ".json");
    if (std::string err = (*b)->lu->PersistReservationsIn(pr); !err.empty()) {
      FERRY_LOG_WARN("admin: volume {}: persistent reservations not restored: {}", name, err);
    }
    FERRY_LOG_INFO("admin: volume {} created ({} lines, {} bytes)", name,
                   (*vol)->active_table()->size(), (*vol)->geometry().size_bytes());
    reply(Status::Ok(), StatusOf(d, **b));
  });
}

void Load(DaemonState& d, const json& p, Reply reply) {
  Backstore* b = nullptr;
  if (Status st = Named(d, p, &b); !st.ok()) return reply(st, {});
  const std::string name = b->config.name;
  BuildTable(d, name, p, reply, [&d, name, reply](std::shared_ptr<volume::Table> table) {
    Backstore* b = FindVolume(d.setup, name);  // removed while the table was prepared?
    if (b == nullptr) return reply(NotFound(Quoted(name) + " was removed meanwhile"), {});
    if (Status st = b->volume->Load(table); !st.ok()) return reply(st, {});
    b->loaded = std::move(table);
    FERRY_LOG_INFO("admin: volume {}: table loaded (inactive until resume)", name);
    reply(Status::Ok(), {{"name", name}, {"inactive_table", b->volume->InactiveTableText()}});
  });
}

void Suspend(DaemonState& d, const json& p, Reply reply) {
  Backstore* b = nullptr;
  if (Status st = Named(d, p, &b); !st.ok()) return reply(st, {});
  uint64_t ms = kDefaultSuspendDeadlineMs;
  if (auto it = p.find("deadline_ms"); it != p.end()) {
    if (!WholeNumber(*it, &ms) || ms > kMaxSuspendDeadlineMs) {
      return reply(InvalidArgument("\"deadline_ms\" is 0.." +
                                   std::to_string(kMaxSuspendDeadlineMs) + " milliseconds"),
                   {});
    }
  }
  auto vol = b->volume;
  auto r = std::make_shared<Reply>(std::move(reply));
  const auto started = std::chrono::steady_clock::now();
  vol->Suspend(std::chrono::milliseconds(ms), [vol, r, started](Status st) {
    if (!st.ok()) return (*r)(st, {});
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    FERRY_LOG_INFO("admin: volume {} suspended (drained in {} ms)", vol->name(), waited.count());
    (*r)(Status::Ok(), {{"name", std::string(vol->name())},
                        {"suspended", true},
                        {"drained_ms", waited.count()},
                        {"queued", vol->queued()}});
  });
}

Status Resume(DaemonState& d, const json& p, json* result) {
  Backstore* b = nullptr;
  FERRY_RETURN_IF_ERROR(Named(d, p, &b));
  const uint64_t before = b->volume->generation();
  FERRY_RETURN_IF_ERROR(b->volume->Resume());
  b->loaded.reset();  // swapped in (or there was none)
  const bool swapped = b->volume->generation() != before;
  FERRY_LOG_INFO("admin: volume {} resumed{}", b->config.name, swapped ? " on its new table" : "");
  *result = {{"name", b->config.name},
             {"generation", b->volume->generation()},
             {"new_table", swapped},
             {"size_bytes", b->volume->geometry().size_bytes()}};
  return Status::Ok();
}

Status Remove(DaemonState& d, const json& p, json* result) {
  Backstore* b = nullptr;
  FERRY_RETURN_IF_ERROR(Named(d, p, &b));
  const std::string name = b->config.name;
  if (std::vector<std::string> users = Users(d, *b->volume); !users.empty()) {
    std::string list;
    bool lun = false, table = false;
    for (const std::string& u : users) {
      list += (list.empty() ? "" : ", ") + u;
      (u.starts_with("LUN ") ? lun : table) = true;
    }
    std::string fix;
    if (lun) fix = "unmap the LUN (ferryctl lun remove TARGET LUN)";
    if (table) {
      fix += std::string(lun ? ", and " : "") +
             "give that volume a table without it (ferryctl volume load, suspend, resume; a "
             "loaded table is replaced by the next load)";
    }
    return FailedPrecondition(Quoted(name) + " is in use by " + list + ": " + fix + " first");
  }
  FERRY_RETURN_IF_ERROR(b->volume->Remove());
  FERRY_RETURN_IF_ERROR(d.setup.registry->Remove(name));
  d.setup.backstores.erase(name);
  FERRY_LOG_INFO("admin: volume {} removed", name);
  *result = {{"name", name}, {"removed", true}};
  return Status::Ok();
}

Status Message(DaemonState& d, const json& p, json* result) {
  Backstore* b = nullptr;
  FERRY_RETURN_IF_ERROR(Named(d, p, &b));
  auto at = p.find("sector");
  uint64_t sector = 0;
  if (at == p.end() || !WholeNumber(*at, &sector)) {
    return InvalidArgument(
        "\"sector\" (a whole number: the message goes to its table line) is "
        "required");
  }
  auto a = p.find("args");
  if (a == p.end() || !a->is_array() || a->empty()) {
    return InvalidArgument("\"args\" (a non-empty array of strings: the message) is required");
  }
  std::vector<std::string> args;
  for (const json& s : *a) {
    if (!s.is_string()) return InvalidArgument("\"args\" holds strings only");
    args.push_back(s.get<std::string>());
  }
  auto r = b->volume->MessageAtSector(sector, args);
  if (!r.ok()) return r.status().WithContext(Quoted(b->config.name));
  *result = {{"name", b->config.name}, {"reply", *r}};
  return Status::Ok();
}

Status TableOf(DaemonState& d, const json& p, json* result) {
  Backstore* b = nullptr;
  FERRY_RETURN_IF_ERROR(Named(d, p, &b));
  auto in = p.find("inactive");
  if (in != p.end() && !in->is_boolean()) return InvalidArgument("\"inactive\" is true or false");
  const bool inactive = in != p.end() && in->get<bool>();
  *result = {{"name", b->config.name},
             {"inactive", inactive},
             {"table", inactive ? b->volume->InactiveTableText() : b->volume->TableText()}};
  return Status::Ok();
}

json List(const DaemonState& d) {
  json out = json::array();
  for (const auto& [name, b] : d.setup.backstores) {
    if (b.volume == nullptr) continue;
    auto table = b.volume->active_table();
    out.push_back({{"name", name},
                   {"size_bytes", b.volume->geometry().size_bytes()},
                   {"lines", table ? table->size() : 0},
                   {"suspended", b.volume->suspended()},
                   {"generation", b.volume->generation()},
                   {"open_count", b.volume->open_count()},
                   {"inactive_table", !b.volume->InactiveTableText().empty()},
                   {"from_config", b.from_config}});
  }
  return out;
}

}  // namespace

bool HandleVolumeMethod(DaemonState& d, const AdminRequest& req, Reply& reply) {
  const std::string& m = req.method;
  const json& p = req.params;
  if (!m.starts_with("volume_")) return false;
  if (d.volume_env == nullptr) {
    reply(FailedPrecondition("this ferryd has no volume support"), {});
    return true;
  }
  if (m == "volume_create") {
    Create(d, p, std::move(reply));
  } else if (m == "volume_load") {
    Load(d, p, std::move(reply));
  } else if (m == "volume_suspend") {
    Suspend(d, p, std::move(reply));
  } else if (m == "volume_list") {
    reply(Status::Ok(), List(d));
  } else if (m == "volume_status") {
    Backstore* b = nullptr;
    Status st = Named(d, p, &b);
    reply(st, st.ok() ? StatusOf(d, *b) : json());
  } else {
    Status (*fn)(DaemonState&, const json&, json*) = m == "volume_resume"    ? Resume
                                                     : m == "volume_remove"  ? Remove
                                                     : m == "volume_message" ? Message
                                                     : m == "volume_table"   ? TableOf
                                                                             : nullptr;
    if (fn == nullptr) {
      reply(Unimplemented("unknown method '" + m + "' (" + kVolumeMethodNames + ")"), {});
      return true;
    }
    json result;
    Status st = fn(d, p, &result);
    reply(std::move(st), std::move(result));
  }
  return true;
}

}  // namespace ferry::daemon
