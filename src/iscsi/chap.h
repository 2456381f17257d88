// The target's side of CHAP (RFC 7143 12.1.3, RFC 1994) in the login security stage.
//
// Exchange: the initiator offers CHAP_A (a list of algorithms); the target picks one and
// sends CHAP_I (identifier) and CHAP_C (challenge); the initiator answers CHAP_N (its user)
// and CHAP_R = H(I || secret || C), and for mutual authentication adds its own CHAP_I and
// CHAP_C, which the target answers with CHAP_N and CHAP_R computed from the mutual secret.
// Algorithms: 5 MD5 (mandatory), 7 SHA-256, 8 SHA3-256 (IANA PPP authentication
// algorithms). A challenge equal to the one the target sent (a reflection attack) is
// refused, as are mutual requests without mutual credentials.
//
// Pure apart from the random source, which tests and fuzzers replace.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "iscsi/acl.h"
#include "iscsi/text_keys.h"

namespace ferry::iscsi {

enum class ChapAlgorithm : uint8_t { kMd5 = 5, kSha256 = 7, kSha3_256 = 8 };

// Digest of id || secret || challenge; empty for an algorithm OpenSSL does not provide.
std::vector<uint8_t> ChapResponse(ChapAlgorithm alg, uint8_t id, std::string_view secret,
                                  std::span<const uint8_t> challenge);

// Binary values (RFC 7143 6.1): "0x" hex or "0b" base64. False when malformed or longer
// than `max_bytes`.
bool DecodeBinaryValue(std::string_view v, size_t max_bytes, std::vector<uint8_t>* out);
std::string EncodeHex(std::span<const uint8_t> bytes);  // "0x..."

using RandomFill = std::function<bool(std::span<uint8_t>)>;
bool OpenSslRandom(std::span<uint8_t> out);

class ChapAuthenticator {
 public:
  // `allowed`: the algorithms the target accepts, in its order of preference.
  ChapAuthenticator(ChapCredentials creds, std::vector<ChapAlgorithm> allowed,
                    RandomFill random = OpenSslRandom);

  // CHAP_A from the initiator: appends CHAP_A, CHAP_I, CHAP_C to `reply`.
  Status OnAlgorithms(std::string_view chap_a, std::vector<KeyValue>* reply);
  // CHAP_N and CHAP_R (and CHAP_I, CHAP_C for mutual) from the initiator. Ok: the
  // initiator is authenticated; mutual answers are appended to `reply`.
  Status OnResponse(const std::vector<KeyValue>& keys, std::vector<KeyValue>* reply);

  bool challenged() const { return challenged_; }
  bool authenticated() const { return authenticated_; }

 private:
  ChapCredentials creds_;
  std::vector<ChapAlgorithm> allowed_;
  RandomFill random_;
  ChapAlgorithm alg_ = ChapAlgorithm::kMd5;
  uint8_t id_ = 0;
  std::vector<uint8_t> challenge_;
  bool challenged_ = false;
  bool authenticated_ = false;
};

// "MD5", "SHA-256", "SHA3-256" (config spelling).
bool ParseChapAlgorithm(std::string_view name, ChapAlgorithm* out);

}  // namespace ferry::iscsi
