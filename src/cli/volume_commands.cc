#include "cli/volume_commands.h"

#include <fstream>
#include <iostream>
#include <sstream>

#include "base/size_parse.h"
#include "cli/admin_commands.h"
#include "cli/copy_command.h"

namespace ferry::cli {
namespace {

using json = nlohmann::json;

// The default of `volume suspend --deadline-ms` is ferryd's (kDefaultSuspendDeadlineMs in
// daemon/volume_methods.h, 5000 ms): ferryctl sends none unless asked.
constexpr const char* kSuspendHelp =
    "queue new I/O and wait until what is in flight drained; copies still pinning the volume "
    "after --deadline-ms finish as ordinary I/O";

void AddTableOptions(CLI::App* sub, VolumeArgs* args) {
  auto* text = sub->add_option("--table", args->table,
                               "the table in dmsetup syntax, lines separated by newlines");
  auto* file = sub->add_option("--table-file", args->table_file,
                               "read the table from FILE ('-': standard input)");
  text->excludes(file);
}

Result<std::string> ReadTable(const VolumeArgs& args) {
  if (!args.table.empty()) return args.table;
  if (args.table_file.empty()) {
    return InvalidArgument("give the table with --table TEXT or --table-file FILE");
  }
  std::stringstream text;
  if (args.table_file == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(args.table_file);
    if (!in) return InvalidArgument("cannot read table file " + args.table_file);
    text << in.rdbuf();
  }
  return text.str();
}

}  // namespace

CLI::App* AddVolumeCommands(CLI::App& app, VolumeArgs* args) {
  CLI::App* v = app.add_subcommand(
      "volume", "ferryd's volumes (device-mapper-style tables; until ferryd restarts)");
  v->require_subcommand(1);
  auto named = [&](const char* name, const char* help) {
    CLI::App* sub = v->add_subcommand(name, help);
    sub->add_option("NAME", args->name, "volume name")->required();
    return sub;
  };
  AddTableOptions(named("create", "create a volume with a table (like dmsetup create)"), args);
  AddTableOptions(named("load", "load a table, inactive until the next resume"), args);
  named("suspend", kSuspendHelp)
      ->add_option("--deadline-ms", args->deadline_ms,
                   "how long copies may hold the suspend (0..600000, default 5000)")
      ->each([args](const std::string&) { args->deadline_set = true; });
  named("resume", "swap in the loaded table (if any) and restart queued I/O");
  named("remove", "remove a volume no LUN and no other volume uses");
  named("status", "state, counters, tables and target status")
      ->add_flag("--json", args->json, "print ferryd's JSON");
  named("table", "print the active table (dmsetup table)")
      ->add_flag("--inactive", args->inactive, "the loaded, inactive table instead");
  CLI::App* msg = named("message", "send a message to the table line holding SECTOR");
  msg->add_option("SECTOR", args->sector, "a sector of the volume (picks the line)")->required();
  msg->add_option("ARGS", args->message, "the message words")->required();
  v->add_subcommand("list", "every volume")->add_flag("--json", args->json, "print ferryd's JSON");
  return v;
}

Status VolumeRequest(const std::string& sub, const VolumeArgs& args, std::string* method,
                     json* params) {
  *method = "volume_" + sub;
  *params = json::object();
  if (sub != "list") (*params)["name"] = args.name;
  if (sub == "create" || sub == "load") {
    FERRY_ASSIGN_OR_RETURN((*params)["table"], ReadTable(args));
  } else if (sub == "suspend" && args.deadline_set) {
    (*params)["deadline_ms"] = args.deadline_ms;
  } else if (sub == "table") {
    (*params)["inactive"] = args.inactive;
  } else if (sub == "message") {
    (*params)["sector"] = args.sector;
    (*params)["args"] = args.message;
  }
  return Status::Ok();
}

void PrintVolumeStatus(const json& r, std::ostream& out) {
  out << Str(r, "name") << ": " << FormatSize(r.value("size_bytes", uint64_t{0})) << " ("
      << Str(r, "block_size") << " B blocks), " << Str(r, "lines") << " lines, "
      << (r.value("suspended", false) ? "suspended" : "active") << ", generation "
      << Str(r, "generation") << ", open " << Str(r, "open_count") << ", in flight "
      << Str(r, "in_flight") << ", queued " << Str(r, "queued")
      << (r.value("from_config", false) ? ", from the configuration" : ", made at run time")
      << "\n";
  const json users = r.value("users", json::array());
  if (!users.empty()) {
    out << "used by:";
    for (const auto& u : users) out << " " << u.get<std::string>() << ";";
    out << "\n";
  }
  out << "table:\n" << r.value("table", "");
  if (!r.value("inactive_table", "").empty()) {
    out << "inactive table:\n" << r.value("inactive_table", "");
  }
  if (!r.value("status", "").empty()) out << "status:\n" << r.value("status", "");
}

void PrintVolumeList(const json& r, std::ostream& out) {
  if (r.empty()) {
    out << "no volumes\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "SIZE", "LINES", "STATE", "GEN", "OPEN", "INACTIVE", "FROM"}};
  for (const auto& v : r) {
    rows.push_back({Str(v, "name"), FormatSize(v.value("size_bytes", uint64_t{0})), Str(v, "lines"),
                    v.value("suspended", false) ? "suspended" : "active", Str(v, "generation"),
                    Str(v, "open_count"), v.value("inactive_table", false) ? "loaded" : "-",
                    v.value("from_config", false) ? "config" : "runtime"});
  }
  PrintTable(rows, out);
}

int RunVolume(CLI::App& volume, const std::string& socket, const VolumeArgs& args,
              std::ostream& out, std::ostream& err) {
  const std::string sub = volume.get_subcommands().front()->get_name();
  std::string method;
  json params;
  if (Status st = VolumeRequest(sub, args, &method, &params); !st.ok()) {
    err << "ferryctl volume " << sub << ": " << st.message() << "\n";
    return kExitUsage;
  }
  auto r = CallAdmin(socket, method, params);
  if (!r.ok()) {
    err << "ferryctl volume " << sub << ": " << r.status().message() << "\n";
    return kExitCopyFailed;
  }
  if (args.json) {
    out << r->dump(2) << "\n";
  } else if (sub == "list") {
    PrintVolumeList(*r, out);
  } else if (sub == "status" || sub == "create") {
    PrintVolumeStatus(*r, out);
  } else if (sub == "table") {
    out << r->value("table", "");
  } else if (sub == "message") {
    const std::string reply = r->value("reply", "");
    if (!reply.empty()) out << reply << (reply.back() == '\n' ? "" : "\n");
  } else if (sub == "load") {
    out << args.name << ": table loaded (inactive until ferryctl volume resume):\n"
        << r->value("inactive_table", "");
  } else if (sub == "suspend") {
    out << args.name << ": suspended (drained in " << Str(*r, "drained_ms") << " ms)\n";
  } else if (sub == "resume") {
    out << args.name << ": resumed" << (r->value("new_table", false) ? " on the loaded table" : "")
        << ", generation " << Str(*r, "generation") << "\n";
  } else {
    out << args.name << ": removed\n";
  }
  return kExitOk;
}

}  // namespace ferry::cli
