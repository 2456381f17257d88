// ferryd's admin socket: JSON-RPC 2.0 over a Unix stream socket, one request per line and
// one response line each. ferryctl is its client (`ferryctl status|sessions|luns|lun|volume`).
//
// The socket is created mode 0600 (root's tool for root's daemon). A thread of its own
// accepts and reads; every method runs on the daemon's reactor (posted there), so handlers
// see the iSCSI server's state without locks. One request is answered at a time: a method
// that waits (a volume's suspend draining its I/O) holds the next request back until it
// answers.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>

#include "base/status.h"
#include "io/reactor.h"

namespace ferry::daemon {

struct AdminRequest {
  nlohmann::json id;  // number, string or null
  std::string method;
  nlohmann::json params;  // object (empty when absent)
};

// Pure decoder (fuzzed): one JSON-RPC 2.0 request line. Errors carry the JSON-RPC code
// to answer with in `*rpc_code` (-32700 parse error, -32600 invalid request).
Result<AdminRequest> DecodeAdminRequest(std::string_view line, int* rpc_code);
std::string EncodeAdminResult(const nlohmann::json& id, const nlohmann::json& result);
std::string EncodeAdminError(const nlohmann::json& id, int code, std::string_view message);

class AdminServer {
 public:
  // The answer to one request: called exactly once, on the reactor, possibly after the
  // handler returned (a method that waits, like a volume's suspend). Unimplemented ->
  // "method not found"; other errors -> their message; OK -> `result`.
  using Reply = std::function<void(Status st, nlohmann::json result)>;
  // Runs on the reactor.
  using Handler = std::function<void(const AdminRequest& req, Reply reply)>;

  // Binds `path` (a stale socket file is replaced; a live one is an error: another ferryd).
  static Result<std::unique_ptr<AdminServer>> Start(io::Reactor* reactor, std::string path,
                                                    Handler handler);
  ~AdminServer();  // Stop() and join
  void Stop();     // any thread; closes the socket and ends the thread
  const std::string& path() const { return path_; }

 private:
  AdminServer(io::Reactor* r, std::string path, int fd, Handler h);
  void Loop();
  void Serve(int fd);
  std::string Answer(const std::string& line);

  io::Reactor* reactor_;
  std::string path_;
  int fd_;
  Handler handler_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> client_{-1};
  std::thread thread_;
};

}  // namespace ferry::daemon
