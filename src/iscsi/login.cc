// The login phase (RFC 7143 6.3, 11.12, 11.13): security and operational negotiation
// stages, target lookup, session identity.
#include <functional>

#include "base/log.h"
#include "iscsi/connection.h"
#include "iscsi/target.h"
#include "iscsi/text_keys.h"

namespace ferry::iscsi {
namespace {

// Login status classes and details (RFC 7143 11.13.5).
constexpr uint8_t kInitiatorError = 0x02;
constexpr uint8_t kDetailInitiatorError = 0x00;
constexpr uint8_t kDetailAuthFailure = 0x01;
constexpr uint8_t kDetailNotFound = 0x03;
constexpr uint8_t kDetailUnsupportedVersion = 0x05;
constexpr uint8_t kDetailMissingParameter = 0x07;
constexpr uint8_t kDetailSessionDoesNotExist = 0x0a;

std::string FindKey(const std::vector<KeyValue>& keys, std::string_view k) {
  for (const KeyValue& kv : keys) {
    if (kv.key == k) return kv.value;
  }
  return {};
}

}  // namespace

void Connection::LoginFail(const LoginRequestPdu& p, uint8_t status_class, uint8_t detail,
                           std::string_view why) {
  server_->stats().login_failures++;
  FERRY_LOG_INFO("iscsi: login from {} refused ({:02x}{:02x}): {}", peer_, status_class, detail,
                 why);
  OutPdu out;
  Encode(LoginResponsePdu{.csg = p.csg,
                          .nsg = p.nsg,
                          .isid = p.isid,
                          .itt = p.itt,
                          .seq = NextSeq(true),
                          .status_class = status_class,
                          .status_detail = detail},
         &out.bhs);
  out.close_after = true;  // RFC 7143 6.3: the target closes after a login reject
  Send(std::move(out));
}

void Connection::OnLogin(const LoginRequestPdu& p) {
  if (first_login_pdu_) {
    first_login_pdu_ = false;
    isid_ = p.isid;
    expcmdsn_ = p.cmdsn;
    if (p.version_min > 0) {
      return LoginFail(p, kInitiatorError, kDetailUnsupportedVersion, "version above 0");
    }
    if (p.tsih != 0) {  // adding a connection to a session: MaxConnections is 1
      return LoginFail(p, kInitiatorError, kDetailSessionDoesNotExist, "TSIH of an old session");
    }
  }
  login_text_.append(reinterpret_cast<const char*>(rest_.data() + ahs_bytes_), data_bytes_);
  if (p.cont) {  // more text follows: acknowledge with an empty response (RFC 7143 6.3)
    OutPdu out;
    Encode(LoginResponsePdu{.csg = p.csg,
                            .nsg = p.nsg,
                            .isid = p.isid,
                            .tsih = tsih_,
                            .itt = p.itt,
                            .seq = NextSeq(true)},
           &out.bhs);
    return Send(std::move(out));
  }
  auto keys = ParseTextKeys(
      std::span(reinterpret_cast<const uint8_t*>(login_text_.data()), login_text_.size()));
  login_text_.clear();
  if (!keys.ok()) {
    return LoginFail(p, kInitiatorError, kDetailInitiatorError, keys.status().message());
  }
  std::vector<KeyValue> reply;
  const bool first_response = target_ == nullptr && params_.initiator_name.empty();
  // AuthMethod belongs to the security stage; Ferry offers None until CHAP is configured.
  std::vector<KeyValue> rest;
  bool auth_ok = true;
  for (const KeyValue& kv : *keys) {
    if (kv.key != "AuthMethod") {
      rest.push_back(kv);
      continue;
    }
    bool none = ("," + kv.value + ",").find(",None,") != std::string::npos;
    reply.push_back({"AuthMethod", none ? "None" : "Reject"});
    auth_ok = none;
  }
  if (first_response) {
    const std::string iname = FindKey(rest, "InitiatorName");
    const std::string type = FindKey(rest, "SessionType");
    if (iname.empty()) {
      return LoginFail(p, kInitiatorError, kDetailMissingParameter, "no InitiatorName");
    }
    if (type != "Discovery") {
      const std::string tname = FindKey(rest, "TargetName");
      if (tname.empty()) {
        return LoginFail(p, kInitiatorError, kDetailMissingParameter, "no TargetName");
      }
      target_ = server_->FindTarget(tname);
      if (target_ == nullptr) {
        return LoginFail(p, kInitiatorError, kDetailNotFound, "no target " + tname);
      }
    }
    negotiator_ = Negotiator(target_ ? target_->config().policy : TargetPolicy{});
  }
  Status st = negotiator_.Process(rest, &reply);
  if (!st.ok()) return LoginFail(p, kInitiatorError, kDetailInitiatorError, st.message());
  params_ = negotiator_.params();
  if (first_response && target_ != nullptr) {
    reply.push_back({"TargetPortalGroupTag", std::to_string(target_->config().tpgt)});
  }
  if (p.transit && p.csg == 0 && !auth_ok) {
    return LoginFail(p, kInitiatorError, kDetailAuthFailure, "no acceptable AuthMethod");
  }
  const bool to_ffp = p.transit && p.nsg == 3;
  if (to_ffp) negotiator_.Finish(&reply);
  params_ = negotiator_.params();
  if (to_ffp) {
    tsih_ = server_->NewTsih();
    // The I_T nexus: initiator name + ISID (+ the target portal group, one per target).
    std::string id = params_.initiator_name + ",i,";
    for (uint8_t b : isid_) id += static_cast<char>(b);
    nexus_ = std::hash<std::string>{}(id);
  }
  OutPdu out;
  Encode(LoginResponsePdu{.transit = p.transit,
                          .csg = p.csg,
                          .nsg = p.transit ? p.nsg : p.csg,
                          .isid = p.isid,
                          .tsih = tsih_,
                          .itt = p.itt,
                          .seq = NextSeq(true)},
         &out.bhs);
  std::string text = EncodeTextKeys(reply);
  out.owned.assign(text.begin(), text.end());
  Send(std::move(out));
  if (to_ffp) {
    // Digests apply from the first PDU after the final login response (RFC 7143 13.1); the
    // response itself is queued above and encoded before this flag takes effect.
    full_feature_ = true;
    server_->stats().logins++;
    FERRY_LOG_INFO("iscsi: {} logged in from {} ({} session{})", params_.initiator_name, peer_,
                   params_.session_type == SessionType::kDiscovery ? "discovery" : "normal",
                   target_ ? " to " + target_->config().name : "");
  }
}

}  // namespace ferry::iscsi
