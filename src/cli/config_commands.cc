#include "cli/config_commands.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/admin_commands.h"
#include "cli/copy_command.h"

namespace ferry::cli {
namespace {

using json = nlohmann::json;

int Refused(const char* sub, const Status& st, std::ostream& err) {
  err << "ferryctl config " << sub << ": " << st.message() << "\n";
  return kExitCopyFailed;
}

}  // namespace

CLI::App* AddConfigCommands(CLI::App& app, ConfigArgs* args) {
  CLI::App* config =
      app.add_subcommand("config", "ferryd's configuration file: save, reload, diff");
  config->require_subcommand(1);
  CLI::App* save = config->add_subcommand(
      "save", "write the running configuration (run-time LUNs and volumes included) to FILE");
  save->add_option("FILE", args->file,
                   "default: the file ferryd was started with; the last 10 copies are kept as "
                   "FILE.1 .. FILE.10");
  save->add_flag("--json", args->json, "print ferryd's JSON");
  CLI::App* reload = config->add_subcommand(
      "reload", "read ferryd's configuration file again and apply the difference");
  reload->add_flag("--json", args->json, "print ferryd's JSON");
  CLI::App* diff = config->add_subcommand("diff", "print what a reload of FILE would do");
  diff->add_option("FILE", args->file, "a configuration file")->required();
  diff->add_flag("--json", args->json, "print ferryd's JSON");
  return config;
}

void PrintReload(const json& r, bool applied, std::ostream& out) {
  out << r.value("text", std::string("no changes\n"));
  const json restart = r.value("restart_needed", json::array());
  if (!restart.empty()) {
    out << "takes effect when ferryd starts again:";
    for (const auto& k : restart) out << " " << k.get<std::string>();
    out << "\n";
  }
  for (const auto& w : r.value("warnings", json::array())) {
    out << "warning: " << w.get<std::string>() << "\n";
  }
  if (applied) out << "applied\n";
}

int RunConfig(CLI::App& config, const std::string& socket, const ConfigArgs& args,
              std::ostream& out, std::ostream& err) {
  if (config.get_subcommand("save")->parsed()) {
    json params = json::object();
    if (!args.file.empty()) params["file"] = std::filesystem::absolute(args.file).string();
    auto r = CallAdmin(socket, "config_save", params);
    if (!r.ok()) return Refused("save", r.status(), err);
    if (args.json) {
      out << r->dump(2) << "\n";
    } else {
      const std::string file = r->value("file", std::string());
      out << "saved the running configuration to " << file << " (" << r->value("targets", 0)
          << " targets, " << r->value("backstores", 0) << " backstores, " << r->value("volumes", 0)
          << " volumes); earlier copies: " << file << ".1 .. " << file << "."
          << r->value("backups", 0) << "\n";
    }
    return kExitOk;
  }
  const bool reload = config.get_subcommand("reload")->parsed();
  json params = json::object();
  if (!reload) {
    std::ifstream in(args.file);
    if (!in) {
      err << "ferryctl config diff: cannot read " << args.file << "\n";
      return kExitUsage;
    }
    std::stringstream text;
    text << in.rdbuf();
    params["text"] = text.str();
  }
  auto r = CallAdmin(socket, reload ? "config_reload" : "config_diff", params);
  if (!r.ok()) return Refused(reload ? "reload" : "diff", r.status(), err);
  if (args.json) {
    out << r->dump(2) << "\n";
  } else {
    PrintReload(*r, reload && r->value("applied", false), out);
  }
  return kExitOk;
}

}  // namespace ferry::cli
