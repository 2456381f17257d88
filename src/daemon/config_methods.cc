#include "daemon/config_methods.h"

#include "base/log.h"
#include "daemon/config_errors.h"
#include "daemon/config_writer.h"
#include "daemon/notify.h"

namespace ferry::daemon {
namespace {

using json = nlohmann::json;

Status Save(DaemonState& d, const json& p, json* result) {
  std::string file = d.config_path;
  if (auto f = p.find("file"); f != p.end()) {
    if (!f->is_string() || f->get_ref<const std::string&>().empty()) {
      return InvalidArgument("\"file\" is a non-empty string");
    }
    file = f->get<std::string>();
  }
  if (file.empty()) {
    return InvalidArgument(
        "name the file: ferryd runs its embedded default configuration (no --config), so "
        "there is no file of its own to save to");
  }
  const Config running = RunningConfig(d);
  const std::string text = SerializeConfig(running);
  if (std::vector<std::string> errors = ConfigErrors(text); !errors.empty()) {
    std::string why;
    for (const std::string& e : errors) why += "\n" + e;
    return FailedPrecondition(
        "the running configuration cannot be written as a file ferryd would start with "
        "(nothing was written):" +
        why);
  }
  FERRY_RETURN_IF_ERROR(WriteConfigFile(file, text));
  if (file == d.config_path) {  // the file is the running configuration now
    d.config = running;
    NoteConfigGenerations(d);
  }
  FERRY_LOG_INFO("admin: configuration saved to {} ({} targets, {} backstores, {} volumes)", file,
                 running.targets.size(), running.backstores.size(), running.volumes.size());
  *result = {{"file", file},
             {"backups", kConfigBackups},
             {"targets", running.targets.size()},
             {"backstores", running.backstores.size()},
             {"volumes", running.volumes.size()}};
  return Status::Ok();
}

}  // namespace

void ReloadAndNotify(DaemonState& d, ReloadDone done) {
  notify::Reloading();
  ReloadConfigFile(d, [done = std::move(done)](Status st, json result) {
    if (st.ok()) {
      notify::Ready("serving; configuration reloaded (" +
                    std::to_string(result.value("changes", json::array()).size()) + " changes)");
    } else {
      FERRY_LOG_ERROR("reload: {}", st.message());
      notify::Ready("serving; the last reload was refused: " +
                    std::string(st.message().substr(0, st.message().find('\n'))));
    }
    done(std::move(st), std::move(result));
  });
}

bool HandleConfigMethod(DaemonState& d, const AdminRequest& req, AdminServer::Reply& reply) {
  const std::string& m = req.method;
  if (!m.starts_with("config_")) return false;
  if (m == "config_save") {
    json result;
    Status st = Save(d, req.params, &result);
    reply(std::move(st), std::move(result));
  } else if (m == "config_reload") {
    ReloadAndNotify(d, std::move(reply));
  } else if (m == "config_diff") {
    auto t = req.params.find("text");
    if (t == req.params.end() || !t->is_string()) {
      reply(InvalidArgument("\"text\" (the configuration file's contents) is required"), {});
      return true;
    }
    Reload(d, t->get<std::string>(), /*dry_run=*/true, std::move(reply));
  } else {
    reply(Unimplemented("unknown method '" + m + "' (" + kConfigMethodNames + ")"), {});
  }
  return true;
}

}  // namespace ferry::daemon
