// ferryctl: Ferry's command-line tool: `ferryctl copy` works on devices and files directly;
// status, sessions, luns, lun and volume ask a running ferryd through its admin socket.
#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/admin_commands.h"
#include "cli/copy_command.h"
#include "cli/fuse_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"ferryctl: control and use Ferry storage (copy offload)", "ferryctl"};
  app.require_subcommand(1);
  ferry::cli::CopyArgs copy_args;
  CLI::App* copy = ferry::cli::AddCopyCommand(app, &copy_args);
  ferry::cli::AdminArgs admin_args;
  ferry::cli::AddAdminCommands(app, &admin_args);
  ferry::cli::FuseArgs fuse_args;
  CLI::App* fuse = ferry::cli::AddFuseCommands(app, &fuse_args);
  try {  // NOLINT: CLI11 reports parse errors as exceptions; they stop here
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : ferry::cli::kExitUsage;
  }
  if (copy->parsed()) {
    ferry::cli::Console console{std::cout, std::cerr};
    console.progress = isatty(STDERR_FILENO) == 1;
    winsize ws{};
    if (console.progress && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) {
      console.width = ws.ws_col;
    }
    return ferry::cli::RunCopy(copy_args, console);
  }
  if (fuse->parsed()) {
    return ferry::cli::RunFuse(*fuse, admin_args.socket, fuse_args, std::cout, std::cerr);
  }
  const int rc = ferry::cli::RunAdmin(app, admin_args, std::cout, std::cerr);
  return rc >= 0 ? rc : ferry::cli::kExitUsage;
}
