// ferryd: Ferry's storage daemon. Serves LUNs over iSCSI.
//
// Without --config it runs the embedded default: one RAM LUN (0) and one file LUN (1, a
// sparse file in the state directory) behind iqn.2026-11.org.ferry:demo on 127.0.0.1:3260,
// open to every initiator, and prints the commands to try. SIGINT/SIGTERM stop it cleanly.
#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "backends/file/file_device.h"
#include "backends/ram/ram_device.h"
#include "base/log.h"
#include "base/size_parse.h"
#include "daemon/identity.h"
#include "io/reactor.h"
#include "iscsi/target.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
extern "C" void OnStop(int) { g_stop = 1; }

constexpr const char* kDemoTarget = "iqn.2026-11.org.ferry:demo";

struct Options {
  std::string state_dir = "/var/lib/ferry";
  std::string listen = "127.0.0.1:3260";
  std::string lun_size = "1G";
  std::string log_level = "info";
};

using ferry::Result;
using ferry::Status;

Result<std::shared_ptr<ferry::scsi::LogicalUnit>> MakeLu(
    std::shared_ptr<ferry::block::BlockDevice> dev, const std::string& state_dir,
    const std::string& name) {
  ferry::scsi::LuIdentity id;
  id.product = name;
  FERRY_RETURN_IF_ERROR(ferry::daemon::LoadOrCreateIdentity(state_dir, name, &id));
  return std::make_shared<ferry::scsi::LogicalUnit>(std::move(dev), id, false);
}

// The embedded default configuration.
Result<std::shared_ptr<ferry::iscsi::Target>> DemoTarget(const Options& o) {
  FERRY_ASSIGN_OR_RETURN(uint64_t size, ferry::ParseSize(o.lun_size));
  std::error_code ec;
  std::filesystem::create_directories(o.state_dir, ec);
  if (ec) return ferry::ErrnoStatus(ec.value(), "cannot create state directory " + o.state_dir);
  FERRY_ASSIGN_OR_RETURN(
      auto ram, ferry::backends::RamDevice::Create({.name = "demo-ram", .size_bytes = size}));
  const std::string path = o.state_dir + "/demo-file.img";
  FERRY_ASSIGN_OR_RETURN(
      auto file, ferry::backends::FileDevice::Open(
                     {.name = "demo-file", .path = path, .create = true, .size_bytes = size}));
  ferry::iscsi::TargetConfig tc;
  tc.name = kDemoTarget;
  tc.alias = "ferry demo";
  FERRY_ASSIGN_OR_RETURN(tc.luns[0], MakeLu(ram, o.state_dir, "demo-ram"));
  FERRY_ASSIGN_OR_RETURN(tc.luns[1], MakeLu(file, o.state_dir, "demo-file"));
  tc.policy.target_alias = tc.alias;
  return std::make_shared<ferry::iscsi::Target>(std::move(tc));
}

Result<std::pair<std::string, uint16_t>> SplitPortal(const std::string& s) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) return ferry::InvalidArgument("--listen wants IP:PORT");
  int port = std::atoi(s.c_str() + colon + 1);
  if (port < 0 || port > 65535 || s.size() == colon + 1) {
    return ferry::InvalidArgument("--listen: bad port in " + s);
  }
  return std::make_pair(s.substr(0, colon), static_cast<uint16_t>(port));
}

int Run(const Options& o) {
  if (!ferry::SetLogLevel(o.log_level)) {
    std::cerr << "ferryd: unknown --log-level '" << o.log_level << "'\n";
    return 2;
  }
  auto portal = SplitPortal(o.listen);
  if (!portal.ok()) {
    std::cerr << "ferryd: " << portal.status().message() << "\n";
    return 2;
  }
  auto reactor = ferry::io::Reactor::Create({.name = "ferryd"});
  if (!reactor.ok()) {
    std::cerr << "ferryd: " << reactor.status().message() << "\n";
    return 1;
  }
  auto target = DemoTarget(o);
  if (!target.ok()) {
    std::cerr << "ferryd: " << target.status().message() << "\n";
    return 1;
  }
  ferry::iscsi::Server server(reactor->get(), {*target});
  auto port = server.Listen(portal->first, portal->second);
  if (!port.ok()) {
    std::cerr << "ferryd: " << port.status().message() << "\n";
    return 1;
  }
  const std::string base = "iscsi://" + portal->first + ":" + std::to_string(*port);
  std::printf(
      "ferryd: serving %s on %s:%u (LUN 0: RAM %s, LUN 1: file %s/demo-file.img)\n"
      "Try:\n"
      "  iscsi-ls -s %s\n"
      "  iscsi-inq %s/%s/0\n"
      "  qemu-img info %s/%s/1\n"
      "  iscsi-test-cu --dataloss -t SCSI.Read10 %s/%s/0\n"
      "Stop with Ctrl-C.\n",
      kDemoTarget, portal->first.c_str(), *port, o.lun_size.c_str(), o.state_dir.c_str(),
      base.c_str(), base.c_str(), kDemoTarget, base.c_str(), kDemoTarget, base.c_str(),
      kDemoTarget);
  std::fflush(stdout);
  struct sigaction sa {};
  sa.sa_handler = OnStop;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  ferry::io::Reactor* r = reactor->get();
  std::function<void()> poll = [&] {
    if (g_stop) return server.Stop();
    r->RunAfter(std::chrono::milliseconds(100), [&] { poll(); });
  };
  poll();
  r->RunUntil([&] { return g_stop && server.idle(); });
  std::printf("ferryd: stopped (%llu logins, %llu commands)\n",
              static_cast<unsigned long long>(server.stats().logins),
              static_cast<unsigned long long>(server.stats().commands));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ferryd: Ferry's storage daemon (iSCSI target with copy offload)", "ferryd"};
  Options o;
  app.add_option("--state-dir", o.state_dir,
                 "where LUN identities and the demo file LUN live (default /var/lib/ferry)");
  app.add_option("--listen", o.listen, "portal IP:PORT (default 127.0.0.1:3260; port 0: any)");
  app.add_option("--lun-size", o.lun_size, "size of each demo LUN (default 1G)");
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error, off");
  try {  // NOLINT: CLI11 reports parse errors as exceptions; they stop here
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return Run(o);
}
