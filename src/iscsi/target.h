// An iSCSI target (RFC 7143) serving SCSI logical units, and the server that accepts its
// connections.
//
// Threads: a Server lives on one reactor; its connections run there too (one reactor per
// core comes with the ferryd work that spreads connections over a ReactorGroup).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/reactor.h"
#include "io/tcp.h"
#include "iscsi/negotiation.h"
#include "scsi/logical_unit.h"

namespace ferry::iscsi {

class Connection;

struct TargetConfig {
  std::string name;   // IQN
  std::string alias;  // TargetAlias, optional
  uint16_t tpgt = 1;  // target portal group tag
  // "ip:port" as SendTargets reports them; empty: the addresses the server listens on.
  std::vector<std::string> portals;
  std::map<uint64_t, std::shared_ptr<scsi::LogicalUnit>> luns;
  TargetPolicy policy;
};

class Target {
 public:
  explicit Target(TargetConfig config) : config_(std::move(config)) {}
  const TargetConfig& config() const { return config_; }
  scsi::LogicalUnit* FindLun(uint64_t lun) const;

 private:
  TargetConfig config_;
};

// SAM-5 4.7 LUN field <-> number: peripheral (0..255) and flat (up to 16383) addressing.
// Returns false for address methods we do not use.
bool DecodeLun(uint64_t field, uint64_t* lun);
uint64_t EncodeLun(uint64_t lun);

struct ServerStats {
  uint64_t connections_accepted = 0;
  uint64_t logins = 0;
  uint64_t login_failures = 0;
  uint64_t commands = 0;
  uint64_t rejects = 0;
};

class Server {
 public:
  Server(io::Reactor* reactor, std::vector<std::shared_ptr<Target>> targets);
  ~Server();

  // Starts listening; returns the bound port (port 0 picks one).
  Result<uint16_t> Listen(const std::string& ip, uint16_t port);
  // Stops accepting and closes every connection; RunUntil(idle()) afterwards.
  void Stop();
  bool idle() const;

  const Target* FindTarget(std::string_view name) const;
  // "ip:port" of every listening socket (IPv6 in brackets).
  const std::vector<std::string>& listen_addresses() const { return addresses_; }
  const std::vector<std::shared_ptr<Target>>& targets() const { return targets_; }
  io::Reactor* reactor() const { return reactor_; }
  uint16_t NewTsih() { return next_tsih_ == 0xffff ? (next_tsih_ = 1) : next_tsih_++; }
  ServerStats& stats() { return stats_; }
  size_t connections() const { return conns_.size(); }

  // Called by a connection once it has closed and is idle; it is destroyed later.
  void Reap(Connection* c);

 private:
  io::Reactor* reactor_;
  std::vector<std::shared_ptr<Target>> targets_;
  std::vector<std::unique_ptr<io::TcpListener>> listeners_;
  std::vector<std::string> addresses_;
  std::vector<std::unique_ptr<Connection>> conns_;
  uint16_t next_tsih_ = 1;
  ServerStats stats_;
  bool stopping_ = false;
};

}  // namespace ferry::iscsi
