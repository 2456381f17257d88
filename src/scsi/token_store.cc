#include "scsi/token_store.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>

#include "base/endian.h"
#include "scsi/logical_unit.h"

namespace ferry::scsi {
namespace {

constexpr size_t kMaxGraves = 16384;

int64_t NowNs(TokenStore::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// ILLEGAL REQUEST / INVALID TOKEN OPERATION (SBC-3 4.26.5), pointing at the token: byte 16
// of the WRITE USING TOKEN parameter list.
Sense TokenSense(Asc asc) { return ParameterListError(asc, 16); }

}  // namespace

namespace {
std::array<uint8_t, 32> KeyArray(std::span<const uint8_t, 32> key) {
  std::array<uint8_t, 32> a;
  std::copy(key.begin(), key.end(), a.begin());
  return a;
}
}  // namespace

TokenStore::TokenStore(std::span<const uint8_t, 32> key, size_t max_tokens)
    : key_(KeyArray(key)), max_tokens_(max_tokens) {}

void TokenStore::Mac(std::span<const uint8_t, kRodTokenBytes> token, uint8_t out[32]) const {
  unsigned int len = 32;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), token.data(), kRodTokenMacOffset,
       out, &len);
}

bool TokenStore::Expired(const TokenEntry& e, Clock::time_point now) const {
  const int64_t idle_ns = NowNs(now) - e.last_use_ns.load();
  return idle_ns > int64_t{e.timeout_s} * 1'000'000'000;
}

void TokenStore::BuryLocked(uint64_t id, Gone why) {
  if (tokens_.erase(id) > 0) live_--;
  if (graves_.emplace(id, why).second) grave_order_.push_back(id);
  while (grave_order_.size() > kMaxGraves) {
    graves_.erase(grave_order_.front());
    grave_order_.pop_front();
  }
}

void TokenStore::SweepLocked(Clock::time_point now) {
  std::vector<std::pair<uint64_t, Gone>> gone;
  for (const auto& [id, e] : tokens_) {
    if (e->revoked) {
      gone.emplace_back(id, Gone::kRevoked);
    } else if (Expired(*e, now)) {
      gone.emplace_back(id, Gone::kExpired);
    }
  }
  for (auto [id, why] : gone) BuryLocked(id, why);
}

std::variant<std::shared_ptr<TokenEntry>, Sense> TokenStore::Create(
    const std::shared_ptr<LogicalUnit>& lu, std::vector<BlockRange> ranges, uint32_t timeout_s) {
  const block::Geometry& g = lu->device().geometry();
  auto e = std::make_shared<TokenEntry>();
  e->lu = lu;
  e->lu_ptr = lu.get();
  e->block_size = g.block_size;
  e->bytes = TotalBlocks(ranges) * g.block_size;
  e->ranges = std::move(ranges);
  e->timeout_s = timeout_s;
  RodToken t;
  if (RAND_bytes(reinterpret_cast<uint8_t*>(&t.id), sizeof(t.id)) != 1 ||
      RAND_bytes(t.nonce.data(), static_cast<int>(t.nonce.size())) != 1) {
    return MakeSense(SenseKey::kHardwareError, Asc::kInsufficientResourcesToCreateRodToken);
  }
  t.creator = CscdForNaa(lu->identity().naa, g.block_size);
  t.bytes_represented = e->bytes;
  StoreBe32(t.capacity_data.data(), g.block_size);  // READ CAPACITY(16) bytes 8-11
  EncodeRodToken(t, e->token);
  Mac(e->token, e->token.data() + kRodTokenMacOffset);
  e->id = t.id;
  const auto now = Clock::now();
  e->last_use_ns = NowNs(now);
  std::lock_guard l(mu_);
  SweepLocked(now);
  if (tokens_.size() >= max_tokens_ || tokens_.contains(e->id) || graves_.contains(e->id)) {
    return MakeSense(SenseKey::kIllegalRequest, Asc::kInsufficientResourcesToCreateRodToken);
  }
  tokens_.emplace(e->id, e);
  live_++;
  created_++;
  return e;
}

std::variant<std::shared_ptr<TokenEntry>, Sense> TokenStore::Use(
    std::span<const uint8_t, kRodTokenBytes> token) {
  RodTokenResult r = DecodeRodToken(token);
  if (auto* s = std::get_if<Sense>(&r)) return *s;
  uint8_t mac[32];
  Mac(token, mac);
  if (CRYPTO_memcmp(mac, token.data() + kRodTokenMacOffset, sizeof(mac)) != 0) {
    return TokenSense(Asc::kInvalidTokenOperationTokenCorrupt);
  }
  const uint64_t id = std::get<RodToken>(r).id;
  const auto now = Clock::now();
  std::lock_guard l(mu_);
  auto it = tokens_.find(id);
  if (it != tokens_.end()) {
    std::shared_ptr<TokenEntry> e = it->second;
    if (e->lu.expired()) e->revoked = true;
    if (e->revoked) {
      BuryLocked(id, Gone::kRevoked);
    } else if (Expired(*e, now)) {
      BuryLocked(id, Gone::kExpired);
    } else if (!std::equal(token.begin(), token.end(), e->token.begin())) {
      return TokenSense(Asc::kInvalidTokenOperationTokenCorrupt);
    } else {
      e->last_use_ns = NowNs(now);
      return e;
    }
  }
  auto g = graves_.find(id);
  if (g == graves_.end()) return TokenSense(Asc::kInvalidTokenOperationTokenUnknown);
  switch (g->second) {
    case Gone::kDeleted: return TokenSense(Asc::kInvalidTokenOperationTokenDeleted);
    case Gone::kExpired: return TokenSense(Asc::kInvalidTokenOperationTokenExpired);
    case Gone::kRevoked: break;
  }
  return TokenSense(Asc::kInvalidTokenOperationTokenRevoked);
}

void TokenStore::Delete(uint64_t id) {
  std::lock_guard l(mu_);
  if (tokens_.contains(id)) BuryLocked(id, Gone::kDeleted);
}

void TokenStore::NoteWrite(const LogicalUnit* lu, uint64_t lba, uint64_t blocks,
                           const TokenEntry* except) {
  if (live_.load() == 0 || blocks == 0) return;
  std::lock_guard l(mu_);
  std::vector<uint64_t> gone;
  for (auto& [id, e] : tokens_) {
    if (e->lu_ptr != lu || e.get() == except || e->revoked) continue;
    for (const BlockRange& r : e->ranges) {
      if (lba < r.lba + r.blocks && r.lba < lba + blocks) {
        e->revoked = true;  // a WRITE USING TOKEN reading it sees this when it is done
        revoked_++;
        gone.push_back(id);
        break;
      }
    }
  }
  for (uint64_t id : gone) BuryLocked(id, Gone::kRevoked);  // no longer live
}

std::vector<std::array<uint8_t, kManagementRodTokenBytes>> TokenStore::ManagementTokens(
    const LogicalUnit* lu) {
  std::vector<std::array<uint8_t, kManagementRodTokenBytes>> out;
  std::lock_guard l(mu_);
  SweepLocked(Clock::now());
  for (const auto& [id, e] : tokens_) {
    if (e->lu_ptr != lu) continue;
    auto& m = out.emplace_back();
    std::copy_n(e->token.begin(), m.size(), m.begin());
  }
  return out;
}

}  // namespace ferry::scsi
