// ferryctl config save|reload|diff: ferryd's configuration file and the running
// configuration (daemon/config_methods.h), through its admin socket.
//   save [FILE]       the running configuration, run-time LUNs and volumes included, written
//                     atomically to FILE (default: the file ferryd was started with), the
//                     last ten copies kept as FILE.1 .. FILE.10
//   reload            ferryd reads its file again and applies the difference
//   diff FILE         what a reload of FILE would do (nothing is changed)
// reload and diff print every error of a bad file with its JSON path; --json prints ferryd's
// answer as it is.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

namespace ferry::cli {

struct ConfigArgs {
  std::string file;
  bool json = false;
};

// Adds `config` and its subcommands to `app`.
CLI::App* AddConfigCommands(CLI::App& app, ConfigArgs* args);

// Runs the parsed subcommand of `config` against ferryd at `socket`; returns the exit code
// (0, 1 when ferryd refused or failed, 2 for a file that cannot be read).
int RunConfig(CLI::App& config, const std::string& socket, const ConfigArgs& args,
              std::ostream& out, std::ostream& err);

// A reload's or diff's answer for people: the changes, what waits for a restart, warnings.
void PrintReload(const nlohmann::json& r, bool applied, std::ostream& out);

}  // namespace ferry::cli
