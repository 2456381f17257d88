// `ferryctl copy SRC DST`: copy between regular files and block devices through the copy
// engine (reflink / copy_file_range where the file system can, pipelined emulation where
// it cannot). See docs/ferryctl.md for the user's view.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

namespace CLI {
class App;
}

namespace ferry::cli {

// Exit codes of `ferryctl copy`.
inline constexpr int kExitOk = 0;
inline constexpr int kExitCopyFailed = 1;     // an I/O error during the copy
inline constexpr int kExitUsage = 2;          // bad arguments, missing files, short destination
inline constexpr int kExitInterrupted = 130;  // SIGINT / SIGTERM (128 + SIGINT)

struct CopyArgs {
  std::string src;
  std::string dst;
  // Sizes as typed (ParseSize). Empty: not given (offsets 0, length to the end of the
  // source). Without --dst-offset and --length an existing regular destination is truncated
  // to the copied length, as cp does; with either, bytes outside the range are kept.
  std::string src_offset;
  std::string dst_offset;
  std::string length;
  bool no_offload = false;
  bool sparse = false;
  bool direct = false;
  bool fsync = false;
  bool verbose = false;
  bool quiet = false;
  bool json = false;
  uint32_t queue_depth = 8;
  std::string chunk_size = "1M";
  std::string throttle;  // bytes per second; empty: unthrottled
};

// Registers the `copy` subcommand's options on `app`, filling `args`.
CLI::App* AddCopyCommand(CLI::App& app, CopyArgs* args);

// Where `ferryctl copy` prints: the summary (or JSON) on `out`; errors, --verbose details
// and the progress bar on `err`. `progress` draws the bar (stderr is a terminal).
struct Console {
  std::ostream& out;
  std::ostream& err;
  bool progress = false;
  size_t width = 80;  // terminal columns for the progress bar
};

// Runs the copy on the calling thread (it creates its own reactor). SIGINT and SIGTERM
// cancel it cleanly. Returns one of the exit codes above.
int RunCopy(const CopyArgs& args, Console& console);

}  // namespace ferry::cli
