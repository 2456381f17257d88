// ferryctl fuse add|remove|list: ferryd's FUSE mount (docs/fuse.md) through its admin socket
// (daemon/fuse_methods.h).
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

namespace ferry::cli {

struct FuseArgs {
  std::string name;  // a backstore or volume
  bool json = false;
};

// Adds `fuse` and its subcommands to `app`.
CLI::App* AddFuseCommands(CLI::App& app, FuseArgs* args);

// Runs the parsed subcommand of `fuse` against ferryd at `socket`; returns the exit code.
int RunFuse(CLI::App& fuse, const std::string& socket, const FuseArgs& args, std::ostream& out,
            std::ostream& err);

// Renders fuse_list's answer for people.
void PrintFuseList(const nlohmann::json& r, std::ostream& out);

}  // namespace ferry::cli
