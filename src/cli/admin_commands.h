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
#include "cli/config_commands.h"
#include "cli/volume_commands.h"

namespace ferry::cli {

// The service's socket (ferryd.service: RuntimeDirectory=ferry), else where a ferryd with
// the default state directory puts it.
inline constexpr const char* kServiceAdminSocket = "/run/ferry/ferryd.sock";
inline constexpr const char* kStateAdminSocket = "/var/lib/ferry/ferryd.sock";
// kServiceAdminSocket when it exists, else kStateAdminSocket.
std::string DefaultAdminSocket();

struct AdminArgs {
  std::string socket = DefaultAdminSocket();
  bool json = false;
  // ferryctl lun add|remove TARGET LUN [BACKSTORE] [--write-protect]
  std::string target;
  uint64_t lun = 0;
  std::string backstore;
  bool write_protect = false;
  VolumeArgs volume;  // ferryctl volume ...
  ConfigArgs config;  // ferryctl config ...
};

// One request, one answer: the "result" member, or the error ferryd returned.
Result<nlohmann::json> CallAdmin(const std::string& socket, const std::string& method,
                                 const nlohmann::json& params);

// Renders a method's result for people.
void PrintStatus(const nlohmann::json& r, std::ostream& out);
void PrintSessions(const nlohmann::json& r, std::ostream& out);
void PrintLuns(const nlohmann::json& r, std::ostream& out);
// The string member `k` of `j`, another value as JSON, or "-" when absent: a table cell.
std::string Str(const nlohmann::json& j, const char* k);
// Fixed-width columns sized to their widest cell.
void PrintTable(const std::vector<std::vector<std::string>>& rows, std::ostream& out);

// Adds the subcommands to `app`; RunAdmin runs whichever was parsed (returns the exit
// code, or -1 when none of them was).
void AddAdminCommands(CLI::App& app, AdminArgs* args);
int RunAdmin(CLI::App& app, const AdminArgs& args, std::ostream& out, std::ostream& err);

}  // namespace ferry::cli
