// Which TCP connections an iSCSI target keeps (RFC 7143 leaves this to the target). Pure
// policy, no sockets and no locks: Server holds one under its lock and acts on the answers.
//
// A connection is pre-login from accept until it enters the full feature phase. Pre-login
// connections cost the target a socket and a small buffer but prove nothing, so they get a
// budget of their own, per source address and in all, apart from logged-in sessions:
// - A new connection is always taken. When a budget is full, the OLDEST pre-login
//   connection in it is dropped to make room: first among those that have not yet sent a
//   whole Login PDU, then among those still logging in. An idle flood therefore replaces
//   itself, and a real initiator (whose Login PDU follows its connect within a round trip)
//   is the newest connection and the last one dropped.
// - `max_sessions` counts logged-in connections only: connections that never logged in
//   can never keep a session out. A login that would go above it is refused.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ferry::iscsi {

struct AdmissionLimits {
  size_t max_sessions = 1024;            // logged-in connections (ferryd's max_connections)
  size_t max_prelogin = 512;             // pre-login connections, from every address together; >= 1
  size_t max_prelogin_per_address = 64;  // pre-login connections from one address; >= 1
};

class Admission {
 public:
  explicit Admission(AdmissionLimits limits = {}) : limits_(limits) {}

  // A connection was accepted from `address` (the peer's IP, without its port). `id`s grow
  // with the order of acceptance and are not reused. Returns the connections to close to
  // make room (no longer counted from now on: later calls about them are ignored).
  std::vector<uint64_t> Accept(uint64_t id, std::string_view address);
  // The connection's first whole Login PDU arrived: it is now dropped only after every
  // connection that has sent none.
  void LoginStarted(uint64_t id);
  // The connection is about to enter the full feature phase. True: it is a session now.
  // False: `max_sessions` sessions exist (refuse the login), or it was dropped already.
  bool StartSession(uint64_t id);
  // The connection closed (whatever its stage; dropped ones are ignored).
  void Closed(uint64_t id);

  size_t prelogin() const { return all_.size(); }
  size_t prelogin_from(std::string_view address) const;
  size_t sessions() const { return sessions_; }
  const AdmissionLimits& limits() const { return limits_; }

 private:
  enum class Stage : uint8_t { kAwaitingLogin, kLoggingIn, kSession };
  struct Entry {
    std::string address;
    Stage stage;
  };
  // Pre-login connections by id, so by age: the first is the oldest.
  struct Pool {
    std::set<uint64_t> awaiting;    // no whole Login PDU yet
    std::set<uint64_t> logging_in;  // between the first Login PDU and the full feature phase
    size_t size() const { return awaiting.size() + logging_in.size(); }
    uint64_t Victim() const { return awaiting.empty() ? *logging_in.begin() : *awaiting.begin(); }
  };

  void Drop(uint64_t id);  // forgets a pre-login connection
  Pool& PoolOf(const Entry& e) { return by_address_[e.address]; }

  AdmissionLimits limits_;
  std::map<uint64_t, Entry> conns_;  // every connection counted, any stage
  Pool all_;
  std::unordered_map<std::string, Pool> by_address_;  // addresses with pre-login connections
  size_t sessions_ = 0;
};

// Why a pre-login connection was closed by the target.
enum class PreloginDrop : uint8_t {
  kEvicted,       // a pre-login budget was full and it was the oldest
  kNoLoginPdu,    // no whole Login PDU within the first-PDU deadline
  kLoginTimeout,  // login not finished within the login timeout
  kSessionsFull,  // login refused: max_sessions sessions exist
  kLoginRefused,  // any other login refusal, past the lines logged one by one
  kBadPdu,        // a protocol error before login, past the lines logged one by one
};
inline constexpr size_t kPreloginDropKinds = 6;

// Counts drops and says when to write them down: the first at once, then at most one line
// per `interval` for every drop since the last line, so that a flood costs a few log lines.
// Drops worth a line of their own (a refused login names the initiator and the reason) get
// up to `detail_lines` such lines per interval; past that they are only counted.
class DropLog {
 public:
  using Clock = std::chrono::steady_clock;
  struct Counts {
    std::array<uint64_t, kPreloginDropKinds> n{};
    uint64_t operator[](PreloginDrop why) const { return n[static_cast<size_t>(why)]; }
    uint64_t total() const;
  };

  explicit DropLog(std::chrono::nanoseconds interval, uint32_t detail_lines = 20)
      : interval_(interval), detail_lines_(detail_lines) {}
  // Counts one drop; returns the counts to log now (total() == 0: nothing yet).
  Counts Add(Clock::time_point now, PreloginDrop why);
  // True: log this drop on a line of its own (not counted). False: the quota of this
  // interval is used up; count it with Add().
  bool MayLogDetail(Clock::time_point now);
  // What is counted and not logged yet (at stop), and forgets it.
  Counts TakePending();

 private:
  std::chrono::nanoseconds interval_;
  uint32_t detail_lines_;
  bool logged_once_ = false;
  Clock::time_point last_{};
  Counts pending_;
  Clock::time_point detail_since_{};
  uint32_t details_ = 0;  // lines of their own since detail_since_
};

// "ip" of "ip:port" or "[v6]:port" (as io::TcpListener names peers).
std::string_view PeerAddressOf(std::string_view peer);

}  // namespace ferry::iscsi
