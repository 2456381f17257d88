// The copy manager's ROD tokens (SBC-3 4.26): creation, authentication, lifetime and
// point-in-time revocation. Internal to the copy manager.
//
// A token is a random 64-bit id plus an HMAC-SHA256 (under the manager's key) over the
// rest of its 512 bytes (rod_token.h), so it can be neither guessed nor forged. What it
// names (source LU, ranges) lives here, in memory: after a restart no old token is known,
// whatever its MAC. Tokens are "point in time, change vulnerable" (ROD type 00800001h): a
// write to a represented block revokes the token, so it never copies data that changed
// after POPULATE TOKEN.
//
// Threads: every method is thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <variant>
#include <vector>

#include "scsi/rod_token.h"
#include "scsi/sense.h"
#include "scsi/tpc_params.h"

namespace ferry::scsi {

class LogicalUnit;

struct TokenEntry {
  uint64_t id = 0;
  std::weak_ptr<LogicalUnit> lu;  // the source; gone: the token is revoked
  const LogicalUnit* lu_ptr = nullptr;
  std::vector<BlockRange> ranges;
  uint32_t block_size = 512;
  uint64_t bytes = 0;
  uint32_t timeout_s = 60;
  std::array<uint8_t, kRodTokenBytes> token{};
  std::atomic<bool> revoked{false};
  std::atomic<int64_t> last_use_ns{0};  // steady clock
};

class TokenStore {
 public:
  using Clock = std::chrono::steady_clock;
  TokenStore(std::span<const uint8_t, 32> key, size_t max_tokens);

  // A new token over `ranges` of `lu` (checked by the caller). Sense 55/0D when the store
  // is full, or when the system has no randomness.
  std::variant<std::shared_ptr<TokenEntry>, Sense> Create(const std::shared_ptr<LogicalUnit>& lu,
                                                          std::vector<BlockRange> ranges,
                                                          uint32_t timeout_s);
  // The entry a token an initiator sent names, or the sense: 23/0A bad length, 23/05 a MAC
  // that does not verify (corrupt or forged), 23/04 unknown, 23/09 deleted, 23/07 expired,
  // 23/06 revoked. Use refreshes its inactivity timer.
  std::variant<std::shared_ptr<TokenEntry>, Sense> Use(std::span<const uint8_t, kRodTokenBytes> t);
  // DEL_TKN.
  void Delete(uint64_t id);
  // Revokes tokens of `lu` over any of these blocks.
  void NoteWrite(const LogicalUnit* lu, uint64_t lba, uint64_t blocks, const TokenEntry* except);
  // The 96-byte management tokens of the live tokens of `lu` (REPORT ALL ROD TOKENS).
  std::vector<std::array<uint8_t, kManagementRodTokenBytes>> ManagementTokens(
      const LogicalUnit* lu);

  uint64_t live() const { return live_.load(); }
  uint64_t created() const { return created_.load(); }
  uint64_t revoked() const { return revoked_.load(); }

 private:
  enum class Gone : uint8_t { kDeleted, kExpired, kRevoked };
  void Mac(std::span<const uint8_t, kRodTokenBytes> token, uint8_t out[32]) const;
  // Moves expired tokens to the tombstones. Caller holds mu_.
  void SweepLocked(Clock::time_point now);
  void BuryLocked(uint64_t id, Gone why);
  bool Expired(const TokenEntry& e, Clock::time_point now) const;

  const std::array<uint8_t, 32> key_;
  const size_t max_tokens_;
  std::atomic<uint64_t> live_{0};
  std::atomic<uint64_t> created_{0};
  std::atomic<uint64_t> revoked_{0};
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<TokenEntry>> tokens_;  // guarded by mu_
  // Ids of tokens that are gone, and why (oldest first, bounded), for precise sense.
  std::unordered_map<uint64_t, Gone> graves_;  // guarded by mu_
  std::deque<uint64_t> grave_order_;           // guarded by mu_
};

}  // namespace ferry::scsi
