// The metrics HTTP listener (cpp-httplib): GET /metrics in the Prometheus text format and
// GET /healthz. It runs on threads of its own, never on a reactor: rendering reads the
// data path's counters (relaxed atomics) and takes only control-path locks.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "base/status.h"

namespace httplib {
class Server;
}

namespace ferry::metrics {

class HttpServer {
 public:
  // Produces the /metrics body (exposition.h); called on an HTTP thread, possibly on two at
  // once. nullopt: the numbers cannot be had now (503).
  using Render = std::function<std::optional<std::string>()>;

  // Listens on `ip`:`port` (port 0: any free port) and serves until destroyed. Fails when
  // the address cannot be bound.
  static Result<std::unique_ptr<HttpServer>> Start(const std::string& ip, uint16_t port,
                                                   Render render);
  // Stops listening, waits for requests in progress and joins the threads.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The daemon is stopping: /healthz answers 503 from now on (/metrics still answers, so
  // that a last scrape sees the final counts).
  void SetStopping() { stopping_.store(true); }
  uint16_t port() const { return port_; }
  // "ip:port" as bound (IPv6 in brackets).
  std::string address() const;

 private:
  HttpServer(std::string ip, Render render);

  std::string ip_;
  uint16_t port_ = 0;
  Render render_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> listen_returned_{false};
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
};

}  // namespace ferry::metrics
