// ferryctl volume create|load|suspend|resume|remove|status|table|message|list: ferryd's
// volumes (device-mapper-style tables, docs/ferryctl.md) through its admin socket, in
// dmsetup's vocabulary. Each command is one JSON-RPC request (daemon/volume_methods.h).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "base/status.h"

namespace ferry::cli {

struct VolumeArgs {
  std::string name;
  std::string table;       // --table TEXT
  std::string table_file;  // --table-file FILE ("-": standard input)
  uint32_t deadline_ms = 0;
  bool deadline_set = false;
  bool inactive = false;
  uint64_t sector = 0;
  std::vector<std::string> message;
  bool json = false;
};

// Adds `volume` and its subcommands to `app`.
CLI::App* AddVolumeCommands(CLI::App& app, VolumeArgs* args);

// Runs the parsed subcommand of `volume` against ferryd at `socket`; returns the exit code.
int RunVolume(CLI::App& volume, const std::string& socket, const VolumeArgs& args,
              std::ostream& out, std::ostream& err);

// The request a parsed subcommand sends: its method and params (the table read from
// --table-file). InvalidArgument for a missing or unreadable table.
Status VolumeRequest(const std::string& sub, const VolumeArgs& args, std::string* method,
                     nlohmann::json* params);

// Renders answers for people.
void PrintVolumeStatus(const nlohmann::json& r, std::ostream& out);
void PrintVolumeList(const nlohmann::json& r, std::ostream& out);

}  // namespace ferry::cli
