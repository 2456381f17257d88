#include "cli/copy_command.h"

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <ostream>

#include "base/log.h"
#include "block/splitter.h"
#include "cli/copy_setup.h"
#include "cli/report.h"
#include "ferry/copy.h"
#include "io/reactor.h"

namespace ferry::cli {
namespace {

using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t g_signal = 0;
extern "C" void OnSignal(int sig) { g_signal = sig; }

// SIGINT/SIGTERM set g_signal for the lifetime of the object (no SA_RESTART, so a blocking
// wait returns and the copy's poll timer notices).
class SignalGuard {
 public:
  SignalGuard() {
    g_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~SignalGuard() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// Runs one block request to completion on `reactor`.
IoStatus RunRequest(io::Reactor& reactor, block::BlockDevice& dev, block::IoOp op, uint64_t byte,
                    uint64_t len) {
  uint32_t bs = dev.geometry().block_size;
  bool done = false;
  IoStatus status = IoStatus::kOk;
  block::IoRequest req;
  req.op = op;
  req.lba = Lba(byte / bs);
  req.blocks = BlockCount(len / bs);
  req.done = [&](IoStatus st) {
    status = st;
    done = true;
  };
  block::SubmitSplit(dev, req);
  reactor.RunUntil([&] { return done; });
  return status;
}

copy::CopyDescriptor MakeDescriptor(const CopySetup& s, bool allow_offload) {
  copy::CopyDescriptor d;
  d.src = s.src_dev.get();
  d.allow_offload = allow_offload;
  copy::CopyDestination dst{s.dst_dev.get(), {}};
  const uint32_t sbs = s.src_dev->geometry().block_size;
  const uint32_t dbs = s.dst_dev->geometry().block_size;
  for (const ByteRange& r : s.data) {
    d.src_extents.push_back({Lba(r.offset / sbs), BlockCount(r.len / sbs)});
    dst.extents.push_back({Lba(DstByte(s, r.offset) / dbs), BlockCount(r.len / dbs)});
  }
  d.dsts.push_back(std::move(dst));
  return d;
}

// Polls for signals and draws the progress bar every 100 ms until the copy is done.
struct Ticker {
  io::Reactor* reactor;
  copy::CopyJob* job;
  Console* console;
  Clock::time_point start;
  bool* done;
  io::Reactor::TimerId timer = 0;

  void Arm() {
    timer = reactor->RunAfter(std::chrono::milliseconds(100), [this] { Tick(); });
  }
  void Tick() {
    if (*done) return;
    if (g_signal != 0) job->Cancel();
    if (console->progress) {
      double secs = std::chrono::duration<double>(Clock::now() - start).count();
      console->err << "\r" << FormatProgress(job->progress(), secs, console->width - 1) << "\x1b[K"
                   << std::flush;
    }
    Arm();
  }
};

int Fail(Console& c, std::string_view message, int code) {
  c.err << "ferryctl copy: " << message << "\n";
  return code;
}

std::string RangeErrorLine(const CopySetup& s, const copy::RangeError& e) {
  const auto* dev = e.on_source ? s.src_dev.get() : s.dst_dev.get();
  uint64_t byte = e.lba.value() * dev->geometry().block_size;
  return std::string(e.on_source ? "read error on source '" + s.src_path
                                 : "write error on destination '" + s.dst_path) +
         "' at byte " + std::to_string(byte) + " (" + std::to_string(e.len_bytes) +
         " bytes): " + std::string(IoStatusName(e.status));
}

}  // namespace

CLI::App* AddCopyCommand(CLI::App& app, CopyArgs* a) {
  CLI::App* c = app.add_subcommand(
      "copy",
      "Copy a file, block device or remote LUN (or a range of it) into another, offloaded "
      "where the storage can (reflink, copy_file_range, EXTENDED COPY or ODX on an iSCSI "
      "array) and emulated where it cannot");
  c->add_option("SRC", a->src, "source: a file or block device, or a device URI (below)")
      ->required();
  c->add_option("DST", a->dst, "destination: a file, directory, block device or device URI")
      ->required();
  c->add_option("--src-offset", a->src_offset, "start in the source")->type_name("SIZE");
  c->add_option("--dst-offset", a->dst_offset,
                "start in the destination; keeps the destination's other bytes")
      ->type_name("SIZE");
  c->add_option("--length", a->length,
                "bytes to copy (default: to the end of the source); keeps the destination's "
                "other bytes")
      ->type_name("SIZE");
  c->add_flag("--no-offload", a->no_offload, "emulate: read and write through Ferry's buffers");
  c->add_flag("--sparse", a->sparse, "skip the source's holes and leave holes in the destination");
  c->add_flag("--direct", a->direct, "O_DIRECT on both sides (offsets and length in blocks)");
  c->add_flag("--fsync", a->fsync, "flush the destination before reporting success");
  c->add_option("--queue-depth", a->queue_depth, "emulated chunks in flight (default 8)")
      ->check(CLI::Range(1, 256));
  c->add_option("--chunk-size", a->chunk_size, "emulated read/write size (4K..256M, default 1M)")
      ->type_name("SIZE");
  c->add_option("--throttle", a->throttle, "at most SIZE bytes per second (e.g. 200M)")
      ->type_name("SIZE");
  c->add_flag("-v,--verbose", a->verbose, "say how each byte moved and why it was not offloaded");
  c->add_flag("-q,--quiet", a->quiet, "print nothing but errors");
  c->add_flag("--json", a->json, "print the result as one JSON object");
  c->footer(
      "Device URIs: file:PATH, iscsi://[USER[%SECRET_FILE]@]HOST[:PORT]/IQN/LUN, ram:SIZE; "
      "?KEY=VALUE adds a backend parameter (iscsi://.../1?offload=odx).\n"
      "SIZE: a number with an optional suffix: K, M, G, T (or KiB...: x1024), kB, MB, GB, TB "
      "(x1000).\nWithout --dst-offset and --length an existing regular DST is truncated to the "
      "copied length, as cp does.\nExit codes: 0 copied; 1 I/O error during the copy; 2 bad "
      "arguments, missing or unreadable files, short destination; 130 interrupted (SIGINT, "
      "SIGTERM).\nSee docs/ferryctl.md.");
  return c;
}

int RunCopy(const CopyArgs& args, Console& console) {
  // Devices log what they found when they open (a remote LU's limits): for --verbose only.
  SetLogLevel(args.verbose ? "info" : "warn");
  // Before the devices, so that it outlives them: a remote device closes its sessions on
  // the reactors it used.
  auto reactor = io::Reactor::Create();
  if (!reactor.ok()) return Fail(console, reactor.status().message(), kExitCopyFailed);
  auto setup = PrepareCopy(args);
  if (!setup.ok()) return Fail(console, setup.status().message(), kExitUsage);
  CopySetup& s = *setup;
  CopyReport report{.src = s.src_path, .dst = s.dst_path};
  report.skipped_hole_bytes = s.skipped_hole_bytes;
  const bool show_progress = console.progress && !args.quiet && !args.json;
  const Clock::time_point start = Clock::now();

  copy::EngineOptions opts;
  opts.chunk_bytes = s.chunk_bytes;
  opts.queue_depth = s.queue_depth;
  opts.max_buffers = std::max<uint32_t>(s.queue_depth, 2);
  opts.throttle_bytes_per_sec = s.throttle_bytes_per_sec;
  auto engine = copy::CopyEngine::Create(reactor->get(), opts);
  if (!engine.ok()) return Fail(console, engine.status().message(), kExitCopyFailed);

  for (const ByteRange& z : s.dst_zero) {
    IoStatus st = RunRequest(**reactor, *s.dst_dev, block::IoOp::kWriteZeroes, z.offset, z.len);
    if (st != IoStatus::kOk) {
      return Fail(console,
                  "zeroing hole at byte " + std::to_string(z.offset) + " of '" + s.dst_path +
                      "': " + std::string(IoStatusName(st)),
                  kExitCopyFailed);
    }
  }

  if (!s.data.empty()) {
    SignalGuard signals;
    bool done = false;
    copy::CopyResult result;
    auto job = (*engine)->Submit(MakeDescriptor(s, !args.no_offload), [&](copy::CopyResult r) {
      result = std::move(r);
      done = true;
    });
    if (!job.ok()) return Fail(console, job.status().message(), kExitUsage);
    Ticker ticker{reactor->get(), job->get(), &console, start, &done};
    console.progress = show_progress;
    ticker.Arm();
    (*reactor)->RunUntil([&] { return done; });
    (*reactor)->CancelTimer(ticker.timer);
    if (show_progress) console.err << "\r\x1b[K" << std::flush;
    report.counters = result.counters;
    report.status = result.status;
    report.interrupted = result.status == IoStatus::kAborted && g_signal != 0;
    report.notes = result.offload_notes;
    for (const copy::RangeError& e : result.errors) report.errors.push_back(RangeErrorLine(s, e));
  }
  if (report.status == IoStatus::kOk && args.fsync && s.dst_dev) {
    report.status = RunRequest(**reactor, *s.dst_dev, block::IoOp::kFlush, 0, 0);
    if (report.status != IoStatus::kOk) report.errors.push_back("flushing the destination failed");
  }
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();

  for (const std::string& e : report.errors) console.err << "ferryctl copy: " << e << "\n";
  if (args.json) {
    console.out << FormatJson(report) << "\n";
  } else if (!args.quiet || report.status != IoStatus::kOk) {
    (report.status == IoStatus::kOk ? console.out : console.err) << FormatSummary(report) << "\n";
  }
  if (args.verbose) {
    for (const std::string& line : FormatDetails(report)) console.err << "  " << line << "\n";
  }
  if (report.interrupted) return kExitInterrupted;
  return report.status == IoStatus::kOk ? kExitOk : kExitCopyFailed;
}

}  // namespace ferry::cli
