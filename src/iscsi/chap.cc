#include "iscsi/chap.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>

namespace ferry::iscsi {
namespace {

// RFC 7143 6.1: binary values up to 1024 bytes; challenges and responses fit well within.
constexpr size_t kMaxBinary = 1024;

const EVP_MD* Md(ChapAlgorithm alg) {
  switch (alg) {
    case ChapAlgorithm::kMd5: return EVP_md5();
    case ChapAlgorithm::kSha256: return EVP_sha256();
    case ChapAlgorithm::kSha3_256: return EVP_sha3_256();
  }
  return nullptr;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::vector<uint8_t> ChapResponse(ChapAlgorithm alg, uint8_t id, std::string_view secret,
                                  std::span<const uint8_t> challenge) {
  const EVP_MD* md = Md(alg);
  std::vector<uint8_t> out(EVP_MAX_MD_SIZE);
  unsigned len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = md != nullptr && ctx != nullptr && EVP_DigestInit_ex(ctx, md, nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, &id, 1) == 1 &&
                  EVP_DigestUpdate(ctx, secret.data(), secret.size()) == 1 &&
                  EVP_DigestUpdate(ctx, challenge.data(), challenge.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx, out.data(), &len) == 1;
  EVP_MD_CTX_free(ctx);
  out.resize(ok ? len : 0);
  return out;
}

bool DecodeBinaryValue(std::string_view v, size_t max_bytes, std::vector<uint8_t>* out) {
  out->clear();
  if (v.size() < 3 || v[0] != '0') return false;
  const std::string_view body = v.substr(2);
  if (v[1] == 'x' || v[1] == 'X') {
    if (body.size() > 2 * max_bytes) return false;
    size_t i = 0;
    if (body.size() % 2) {  // an odd digit count has an implied leading zero
      const int d = HexDigit(body[0]);
      if (d < 0) return false;
      out->push_back(static_cast<uint8_t>(d));
      i = 1;
    }
    for (; i < body.size(); i += 2) {
      const int hi = HexDigit(body[i]), lo = HexDigit(body[i + 1]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<uint8_t>(hi << 4 | lo));
    }
    return true;
  }
  if (v[1] == 'b' || v[1] == 'B') {
    if (body.size() % 4 || body.size() / 4 * 3 > max_bytes + 2) return false;
    out->resize(body.size() / 4 * 3);
    const int n = EVP_DecodeBlock(out->data(), reinterpret_cast<const uint8_t*>(body.data()),
                                  static_cast<int>(body.size()));
    if (n < 0) return false;
    // EVP_DecodeBlock keeps the bytes that padding stands for: drop them.
    size_t len = static_cast<size_t>(n);
    if (body.ends_with("=="))
      len -= 2;
    else if (body.ends_with("="))
      len -= 1;
    out->resize(len);
    return len <= max_bytes && len > 0;
  }
  return false;
}

std::string EncodeHex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s = "0x";
  for (uint8_t b : bytes) {
    s += kDigits[b >> 4];
    s += kDigits[b & 15];
  }
  return s;
}

bool OpenSslRandom(std::span<uint8_t> out) {
  return RAND_bytes(out.data(), static_cast<int>(out.size())) == 1;
}

bool ParseChapAlgorithm(std::string_view name, ChapAlgorithm* out) {
  if (name == "MD5")
    *out = ChapAlgorithm::kMd5;
  else if (name == "SHA-256")
    *out = ChapAlgorithm::kSha256;
  else if (name == "SHA3-256")
    *out = ChapAlgorithm::kSha3_256;
  else
    return false;
  return true;
}

ChapAuthenticator::ChapAuthenticator(ChapCredentials creds, std::vector<ChapAlgorithm> allowed,
                                     RandomFill random)
    : creds_(std::move(creds)), allowed_(std::move(allowed)), random_(std::move(random)) {}

Status ChapAuthenticator::OnAlgorithms(std::string_view chap_a, std::vector<KeyValue>* reply) {
  if (challenged_) return InvalidArgument("CHAP_A offered twice");
  // The target's preference wins among what the initiator offers (RFC 7143 12.1.3).
  std::vector<int> offered;
  for (size_t pos = 0; pos <= chap_a.size();) {
    size_t comma = std::min(chap_a.find(',', pos), chap_a.size());
    int v = -1;
    std::from_chars(chap_a.data() + pos, chap_a.data() + comma, v);
    offered.push_back(v);
    pos = comma + 1;
  }
  bool found = false;
  for (ChapAlgorithm a : allowed_) {
    if (std::find(offered.begin(), offered.end(), static_cast<int>(a)) != offered.end()) {
      alg_ = a;
      found = true;
      break;
    }
  }
  if (!found) {
    reply->push_back({"CHAP_A", "Reject"});
    return InvalidArgument("no acceptable CHAP algorithm in CHAP_A=" + std::string(chap_a));
  }
  // A challenge as long as the digest (at least 16 bytes) and a random identifier.
  challenge_.assign(std::max<size_t>(16, static_cast<size_t>(EVP_MD_get_size(Md(alg_)))), 0);
  uint8_t id = 0;
  if (!random_(challenge_) || !random_(std::span(&id, 1))) {
    return Internal("no random bytes for a CHAP challenge");
  }
  id_ = id;
  challenged_ = true;
  reply->push_back({"CHAP_A", std::to_string(static_cast<int>(alg_))});
  reply->push_back({"CHAP_I", std::to_string(id_)});
  reply->push_back({"CHAP_C", EncodeHex(challenge_)});
  return Status::Ok();
}

Status ChapAuthenticator::OnResponse(const std::vector<KeyValue>& keys,
                                     std::vector<KeyValue>* reply) {
  if (!challenged_) return InvalidArgument("CHAP_R before CHAP_A");
  if (authenticated_) return InvalidArgument("CHAP_R sent twice");
  const KeyValue* n = FindTextKey(keys, "CHAP_N");
  const KeyValue* r = FindTextKey(keys, "CHAP_R");
  const KeyValue* mid = FindTextKey(keys, "CHAP_I");
  const KeyValue* mchal = FindTextKey(keys, "CHAP_C");
  if (n == nullptr || r == nullptr) return InvalidArgument("CHAP_N and CHAP_R are required");
  const std::string& name = n->value;
  std::vector<uint8_t> got;
  if (!DecodeBinaryValue(r->value, kMaxBinary, &got)) return InvalidArgument("malformed CHAP_R");
  const std::vector<uint8_t> want = ChapResponse(alg_, id_, creds_.secret, challenge_);
  // Compare in constant time; the user name is checked after, so timing does not tell
  // which of the two was wrong.
  const bool resp_ok = !want.empty() && got.size() == want.size() &&
                       CRYPTO_memcmp(got.data(), want.data(), want.size()) == 0;
  if (!resp_ok || name != creds_.user) {
    return PermissionDenied("CHAP authentication failed for user '" + name + "'");
  }
  if ((mid == nullptr) != (mchal == nullptr)) {
    return InvalidArgument("mutual CHAP needs both CHAP_I and CHAP_C");
  }
  if (mid != nullptr) {
    if (creds_.mutual_user.empty()) {
      return PermissionDenied("the initiator asked for mutual CHAP; no mutual credentials");
    }
    int i = -1;
    const std::string& v = mid->value;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), i);
    if (ec != std::errc() || end != v.data() + v.size() || i < 0 || i > 255) {
      return InvalidArgument("CHAP_I must be 0..255");
    }
    std::vector<uint8_t> c;
    if (!DecodeBinaryValue(mchal->value, kMaxBinary, &c)) {
      return InvalidArgument("malformed CHAP_C");
    }
    if (c == challenge_) return PermissionDenied("CHAP_C reflects the target's challenge");
    reply->push_back({"CHAP_N", creds_.mutual_user});
    reply->push_back({"CHAP_R", EncodeHex(ChapResponse(alg_, static_cast<uint8_t>(i),
                                                       creds_.mutual_secret, c))});
  }
  authenticated_ = true;
  return Status::Ok();
}

}  // namespace ferry::iscsi
