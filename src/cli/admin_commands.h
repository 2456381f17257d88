// ferryctl's admin commands: status, sessions, luns, lun add, lun remove, volume ...
// (volume_commands.h). Each sends one
// JSON-RPC request to ferryd's admin socket and prints the answer as a table (or as JSON
// with --json).
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "base/status.h"
#include "cli/volume_commands.h"

namespace ferry::cli {

inline constexpr const char* kDefaultAdminSocket = "/var/lib/ferry/ferryd.sock";

struct AdminArgs {
  std::string socket = kDefaultAdminSocket;
  bool json = false;
  // ferryctl lun add|remove TARGET LUN [BACKSTORE] [--write-protect]
  std::string target;
  uint64_t lun = 0;
  std::string backstore;
  bool write_protect = false;
  VolumeArgs volume;  // ferryctl volume ...
};

// One request, one answer: the "result" member, or the error ferryd returned.
Result<nlohmann::json> CallAdmin(const std::string& socket, const std::string& method,
                                 const nlohmann::json& params);

// Renders a method's result for people.
void PrintStatus(const nlohmann::json& r, std::ostream& out);
void PrintSessions(const nlohmann::json& r, std::ostream& out);
void PrintLuns(const nlohmann::json& r, std::ostream& out);
// Fixed-width columns sized to their widest cell.
void PrintTable(const std::vector<std::vector<std::string>>& rows, std::ostream& out);

// Adds the subcommands to `app`; RunAdmin runs whichever was parsed (returns the exit
// code, or -1 when none of them was).
void AddAdminCommands(CLI::App& app, AdminArgs* args);
int RunAdmin(CLI::App& app, const AdminArgs& args, std::ostream& out, std::ostream& err);

}  // namespace ferry::cli
