// ferryd's side of systemd's service notification protocol (sd_notify(3)), for a unit with
// Type=notify (systemd/ferryd.service).
//
// Contract
// - Every function is a no-op when NOTIFY_SOCKET is not set (ferryd run by hand, by a test
//   without a listener, or under another supervisor), and never fails the caller: a message
//   that cannot be sent is logged at debug level and dropped.
// - Any thread may call Ready, Reloading, Stopping and Status (each opens, sends on and
//   closes its own datagram socket). StartWatchdog is called on the reactor's own thread.
// - A status is one line: newlines in it are sent as spaces.
//
// The order ferryd sends them in:
//   Status("...")            while starting (configuration read, backstores opening)
//   Ready("...")             once every portal is bound and the admin socket is up: an
//                            initiator can log in and ferryctl can connect
//   Reloading() ... Ready()  around a configuration reload (SIGHUP, `ferryctl config reload`)
//   Stopping()               when a stop begins (SIGTERM/SIGINT), before sessions close
#pragma once

#include <string_view>

namespace ferry::io {
class Reactor;
}

namespace ferry::daemon::notify {

// READY=1 and STATUS=<status>. systemd starts the units ordered after ferryd from here on.
void Ready(std::string_view status);

// RELOADING=1 and MONOTONIC_USEC=<CLOCK_MONOTONIC now>, which systemd 253 and later need to
// match the reload with the READY=1 that ends it (older versions ignore the timestamp).
// Call Ready() when the reload is applied or refused.
void Reloading();

// STOPPING=1, with a STATUS= line saying so.
void Stopping();

// STATUS=<status>: the line `systemctl status ferryd` shows.
void Status(std::string_view status);

// When the service manager asked for a watchdog (WatchdogSec= in the unit: WATCHDOG_USEC set,
// and WATCHDOG_PID unset or ours), sends WATCHDOG=1 every half period from a timer on `re`:
// a reactor that stops running its timers (hung in a callback) stops the pings, and systemd
// kills and restarts ferryd. Otherwise does nothing. The pings end when `re` is destroyed.
// Call once, on `re`'s thread.
void StartWatchdog(io::Reactor* re);

}  // namespace ferry::daemon::notify
