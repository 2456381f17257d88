#include "cli/fuse_commands.h"

#include "base/size_parse.h"
#include "cli/admin_commands.h"
#include "cli/copy_command.h"

namespace ferry::cli {

using json = nlohmann::json;

CLI::App* AddFuseCommands(CLI::App& app, FuseArgs* args) {
  CLI::App* f = app.add_subcommand(
      "fuse", "ferryd's FUSE mount: backstores and volumes as files (until ferryd restarts)");
  f->require_subcommand(1);
  f->add_subcommand("add", "show a backstore or volume as a file under the mount point")
      ->add_option("NAME", args->name, "backstore or volume name")
      ->required();
  f->add_subcommand("remove", "take a file away (refused while it is open)")
      ->add_option("NAME", args->name, "backstore or volume name")
      ->required();
  f->add_subcommand("list", "the mount point, its files and copy counters")
      ->add_flag("--json", args->json, "print ferryd's JSON");
  return f;
}

void PrintFuseList(const json& r, std::ostream& out) {
  out << "mount point: " << r.value("mount_point", "")
      << (r.value("mounted", false) ? "" : " (not mounted)") << "\n";
  const json files = r.value("files", json::array());
  if (files.empty()) {
    out << "no files\n";
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"FILE", "SIZE", "ALLOCATED", "BLOCK", "OPEN", "MODE"}};
    for (const auto& f : files) {
      rows.push_back({f.value("name", ""), FormatSize(f.value("size_bytes", uint64_t{0})),
                      FormatSize(f.value("allocated_bytes", uint64_t{0})),
                      std::to_string(f.value("block_size", 0u)),
                      std::to_string(f.value("open_handles", 0)),
                      f.value("read_only", false) ? "ro" : "rw"});
    }
    PrintTable(rows, out);
  }
  const json c = r.value("copy", json::object());
  out << "copy_file_range: " << c.value("copies", uint64_t{0}) << " copied ("
      << FormatSize(c.value("bytes_offloaded", uint64_t{0})) << " offloaded, "
      << FormatSize(c.value("bytes_emulated", uint64_t{0})) << " emulated), "
      << c.value("declined", uint64_t{0}) << " left to the kernel, "
      << c.value("failed", uint64_t{0}) << " failed\n";
}

int RunFuse(CLI::App& fuse, const std::string& socket, const FuseArgs& args, std::ostream& out,
            std::ostream& err) {
  const std::string sub = fuse.get_subcommands().front()->get_name();
  json params = json::object();
  if (sub != "list") params["name"] = args.name;
  auto r = CallAdmin(socket, "fuse_" + sub, params);
  if (!r.ok()) {
    err << "ferryctl fuse " << sub << ": " << r.status().message() << "\n";
    return kExitCopyFailed;
  }
  if (args.json) {
    out << r->dump(2) << "\n";
  } else if (sub == "list") {
    PrintFuseList(*r, out);
  } else {
    out << (sub == "add" ? "added " : "removed ") << r->value("path", "") << "\n";
  }
  return kExitOk;
}

}  // namespace ferry::cli
