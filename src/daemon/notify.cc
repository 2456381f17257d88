#include "daemon/notify.h"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <string>

#include "base/log.h"
#include "io/reactor.h"

namespace ferry::daemon::notify {
namespace {

bool Enabled() { return std::getenv("NOTIFY_SOCKET") != nullptr; }

void Send(const std::string& message) {
  if (!Enabled()) return;
  // unset_environment=0: a reload and the watchdog need NOTIFY_SOCKET again later.
  const int r = sd_notify(0, message.c_str());
  if (r < 0) FERRY_LOG_DEBUG("ferryd: sd_notify({}) failed: errno {}", message, -r);
}

// STATUS=<line>: the protocol is one assignment per line, so the status is kept on one.
std::string StatusLine(std::string_view status) {
  std::string line = "STATUS=";
  for (char c : status) line += (c == '\n' || c == '\r') ? ' ' : c;
  return line;
}

uint64_t MonotonicUsec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

// Sends one ping, then schedules the next on the same reactor: the pings continue exactly as
// long as `re` keeps running its timers.
void Ping(io::Reactor* re, std::chrono::microseconds every) {
  Send("WATCHDOG=1");
  re->RunAfter(every, [re, every] { Ping(re, every); });
}

}  // namespace

void Ready(std::string_view status) { Send("READY=1\n" + StatusLine(status)); }

void Reloading() { Send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(MonotonicUsec())); }

void Stopping() {
  Send("STOPPING=1\n" + StatusLine("stopping: closing sessions, flushing backstores"));
}

void Status(std::string_view status) { Send(StatusLine(status)); }

void StartWatchdog(io::Reactor* re) {
  if (!Enabled()) return;
  uint64_t usec = 0;
  const int r = sd_watchdog_enabled(0, &usec);
  if (r <= 0 || usec == 0) return;  // no watchdog asked for, or it is another process's
  // Half the period, as sd_watchdog_enabled(3) advises: one late tick does not kill ferryd.
  const auto every = std::chrono::microseconds(std::max<uint64_t>(usec / 2, 1));
  FERRY_LOG_INFO("ferryd: systemd watchdog every {} us; pinging every {} us", usec, every.count());
  Ping(re, every);
}

}  // namespace ferry::daemon::notify
