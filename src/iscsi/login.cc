// The login phase (RFC 7143 6.3, 11.12, 11.13): security negotiation (AuthMethod, CHAP),
// operational negotiation, target lookup, ACLs, session identity.
#include <cstdio>
#include <functional>

#include "base/log.h"
#include "iscsi/connection.h"
#include "iscsi/target.h"
#include "iscsi/text_keys.h"
#include "scsi/pr_params.h"

namespace ferry::iscsi {
namespace {

// Login status classes and details (RFC 7143 11.13.5).
constexpr uint8_t kInitiatorError = 0x02;
constexpr uint8_t kDetailInitiatorError = 0x00;
constexpr uint8_t kDetailAuthFailure = 0x01;
constexpr uint8_t kDetailForbidden = 0x02;
constexpr uint8_t kDetailNotFound = 0x03;
constexpr uint8_t kDetailUnsupportedVersion = 0x05;
constexpr uint8_t kDetailMissingParameter = 0x07;
constexpr uint8_t kDetailSessionDoesNotExist = 0x0a;
constexpr uint8_t kTargetError = 0x03;
constexpr uint8_t kDetailOutOfResources = 0x02;

// Text of one login request, across continued PDUs: far above what any initiator sends
// (a few hundred bytes), low enough that a flood of keys costs nothing.
constexpr size_t kMaxLoginText = 64 * 1024;
// The initiator's MaxRecvDataSegmentLength during login (RFC 7143 13.12): real answers
// are a few hundred bytes; Ferry does not split login responses.
constexpr size_t kLoginMaxResponse = 8192;

bool IsSecurityKey(std::string_view k) { return k == "AuthMethod" || k.starts_with("CHAP_"); }

bool ListHas(std::string_view list, std::string_view v) {
  return ("," + std::string(list) + ",").find("," + std::string(v) + ",") != std::string::npos;
}

}  // namespace

void Connection::LoginFail(const LoginRequestPdu& p, uint8_t status_class, uint8_t detail,
                           std::string_view why, bool log) {
  server_->stats().login_failures++;
  server_->stats().login_refusals[static_cast<size_t>(LoginRefusalOf(status_class, detail))]++;
  OutPdu out;
  Encode(LoginResponsePdu{.csg = p.csg,
                          .nsg = p.nsg,
                          .isid = p.isid,
                          .itt = p.itt,
                          .seq = NextSeq(true),
                          .status_class = status_class,
                          .status_detail = detail},
         &out.bhs);
  // RFC 7143 6.3: the target closes after a login reject.
  char code[8];
  std::snprintf(code, sizeof(code), "%02x%02x", status_class, detail);
  SendAndClose(std::move(out), "login refused (" + std::string(code) + "): " + std::string(why),
               log && server_->MayLogDrop(PreloginDrop::kLoginRefused));
}

// The first request names the initiator and the target: find the target, check the ACL.
bool Connection::IdentifyParties(const LoginRequestPdu& p, const std::vector<KeyValue>& keys) {
  const std::string iname = TextKeyValue(keys, "InitiatorName");
  const std::string type = TextKeyValue(keys, "SessionType");
  if (iname.empty()) {
    LoginFail(p, kInitiatorError, kDetailMissingParameter, "no InitiatorName");
    return false;
  }
  params_.initiator_name = iname;
  if (type == "Discovery") {
    chap_creds_ = server_->discovery_chap();
  } else {
    const std::string tname = TextKeyValue(keys, "TargetName");
    if (tname.empty()) {
      LoginFail(p, kInitiatorError, kDetailMissingParameter, "no TargetName");
      return false;
    }
    std::shared_ptr<const Target> t = server_->FindTarget(tname);
    const PortalGroup* group = t ? t->GroupFor(local_) : nullptr;
    if (group == nullptr) {  // unknown here, or not offered through this portal
      LoginFail(p, kInitiatorError, kDetailNotFound, "no target " + tname + " on " + local_);
      return false;
    }
    IpAddress peer_ip;
    acl_ = ParsePeerAddress(peer_, &peer_ip) ? t->Authorize(iname, peer_ip) : nullptr;
    if (acl_ == nullptr) {
      LoginFail(p, kInitiatorError, kDetailForbidden,
                iname + " from " + peer_ + " is not in the ACL of " + tname);
      return false;
    }
    target_ = t;
    tpgt_ = group->tag;
    chap_creds_ = acl_->chap;
  }
  negotiator_ = Negotiator(target_ ? target_->config().policy : TargetPolicy{});
  return true;
}

// AuthMethod and the CHAP exchange (RFC 7143 12.1). Fills `reply`; false: login failed.
bool Connection::Authenticate(const LoginRequestPdu& p, const std::vector<KeyValue>& keys,
                              std::vector<KeyValue>* reply) {
  const bool required = chap_creds_ != nullptr;
  std::vector<KeyValue> chap_keys;
  for (const KeyValue& kv : keys) {
    if (kv.key == "AuthMethod") {
      std::string pick = "Reject";
      if (required && ListHas(kv.value, "CHAP")) pick = "CHAP";
      if (!required && ListHas(kv.value, "None")) pick = "None";
      reply->push_back({"AuthMethod", pick});
      if (pick == "Reject") {
        LoginFail(p, kInitiatorError, kDetailAuthFailure,
                  required ? "CHAP is required; AuthMethod=" + kv.value
                           : "no credentials for CHAP; AuthMethod=" + kv.value);
        return false;
      }
      auth_ = pick == "CHAP" ? AuthState::kChapStarted : AuthState::kNone;
      if (pick == "CHAP") {
        std::vector<ChapAlgorithm> algs =
            target_ ? target_->config().chap_algorithms : server_->chap_algorithms();
        chap_.emplace(*chap_creds_, std::move(algs));
      }
    } else if (kv.key.starts_with("CHAP_")) {
      chap_keys.push_back(kv);
    }
  }
  if (chap_keys.empty()) return true;
  if (!chap_) {
    LoginFail(p, kInitiatorError, kDetailInitiatorError, "CHAP keys without AuthMethod=CHAP");
    return false;
  }
  const std::string alg = TextKeyValue(chap_keys, "CHAP_A");
  Status st = !alg.empty() ? chap_->OnAlgorithms(alg, reply) : chap_->OnResponse(chap_keys, reply);
  if (!st.ok()) {
    LoginFail(
        p, kInitiatorError,
        st.code() == StatusCode::kInvalidArgument ? kDetailInitiatorError : kDetailAuthFailure,
        st.message());
    return false;
  }
  if (chap_->authenticated()) {
    auth_ = AuthState::kDone;
    FERRY_LOG_INFO("iscsi: {} authenticated by CHAP as '{}'{}", params_.initiator_name,
                   chap_creds_->user, TextKeyValue(chap_keys, "CHAP_C").empty() ? "" : " (mutual)");
  }
  return true;
}

// The text of a login request, which may span PDUs with the C bit (RFC 7143 6.3): false
// while more is to come (acknowledged with an empty response) or when login failed.
bool Connection::TakeLoginText(const LoginRequestPdu& p, std::vector<KeyValue>* keys) {
  if (first_login_pdu_) {
    first_login_pdu_ = false;
    isid_ = p.isid;
    expcmdsn_ = p.cmdsn;
    if (p.version_min > 0) {
      LoginFail(p, kInitiatorError, kDetailUnsupportedVersion, "version above 0");
      return false;
    }
    if (p.tsih != 0) {  // adding a connection to a session: MaxConnections is 1
      LoginFail(p, kInitiatorError, kDetailSessionDoesNotExist, "TSIH of an old session");
      return false;
    }
  }
  if (login_text_.size() + data_bytes_ > kMaxLoginText) {
    LoginFail(p, kInitiatorError, kDetailInitiatorError, "login text above 64 KiB");
    return false;
  }
  login_text_.append(reinterpret_cast<const char*>(data().data()), data().size());
  if (p.cont) {  // more text follows: acknowledge with an empty response
    OutPdu out;
    Encode(LoginResponsePdu{.csg = p.csg,
                            .nsg = p.nsg,
                            .isid = p.isid,
                            .tsih = tsih_,
                            .itt = p.itt,
                            .seq = NextSeq(true)},
           &out.bhs);
    Send(std::move(out));
    return false;
  }
  auto parsed = ParseTextKeys(
      std::span(reinterpret_cast<const uint8_t*>(login_text_.data()), login_text_.size()));
  login_text_.clear();
  if (!parsed.ok()) {
    LoginFail(p, kInitiatorError, kDetailInitiatorError, parsed.status().message());
    return false;
  }
  *keys = std::move(parsed).value();
  return true;
}

void Connection::OnLogin(const LoginRequestPdu& p) {
  std::vector<KeyValue> keys;
  if (!TakeLoginText(p, &keys)) return;
  if (!identified_) {
    if (!IdentifyParties(p, keys)) return;
    identified_ = true;
  }
  std::vector<KeyValue> reply, security, rest;
  for (const KeyValue& kv : keys) (IsSecurityKey(kv.key) ? security : rest).push_back(kv);
  if (!security.empty() && p.csg != 0) {
    return LoginFail(p, kInitiatorError, kDetailInitiatorError,
                     "security keys outside the security stage");
  }
  if (!Authenticate(p, security, &reply)) return;
  Status st = negotiator_.Process(rest, &reply);
  if (!st.ok()) return LoginFail(p, kInitiatorError, kDetailInitiatorError, st.message());
  if (!tpgt_sent_ && target_ != nullptr) {
    reply.push_back({"TargetPortalGroupTag", std::to_string(tpgt_)});
    tpgt_sent_ = true;
  }
  // Leaving the security stage (or skipping it) needs a finished authentication.
  bool transit = p.transit;
  const bool authenticated =
      auth_ == AuthState::kDone || (auth_ == AuthState::kNone && chap_creds_ == nullptr);
  if (transit && !authenticated) {
    if (auth_ != AuthState::kChapStarted || p.csg != 0) {
      return LoginFail(p, kInitiatorError, kDetailAuthFailure, "CHAP is required");
    }
    transit = false;  // the CHAP exchange goes on: stay in the security stage
  }
  const bool to_ffp = transit && p.nsg == 3;
  if (to_ffp && !server_->StartSession(this)) {  // counted and logged by the server
    return LoginFail(p, kTargetError, kDetailOutOfResources, "max_connections sessions", false);
  }
  if (to_ffp) negotiator_.Finish(&reply);
  params_ = negotiator_.params();
  if (to_ffp) {
    tsih_ = server_->NewTsih();
    // The I_T nexus: initiator name + ISID (+ the target portal group, one per target).
    nexus_ = scsi::NexusIdFor(params_.initiator_name, isid_);
    if (target_ != nullptr) SetLuns(target_->ViewFor(*acl_));
  }
  OutPdu out;
  Encode(LoginResponsePdu{.transit = transit,
                          .csg = p.csg,
                          .nsg = transit ? p.nsg : p.csg,
                          .isid = p.isid,
                          .tsih = tsih_,
                          .itt = p.itt,
                          .seq = NextSeq(true)},
         &out.bhs);
  std::string text = EncodeTextKeys(reply);
  if (text.size() > kLoginMaxResponse) {  // only a flood of keys gets here
    return LoginFail(p, kInitiatorError, kDetailInitiatorError,
                     "answer to " + std::to_string(keys.size()) + " keys exceeds 8192 bytes");
  }
  out.owned.assign(text.begin(), text.end());
  Send(std::move(out));
  if (to_ffp) EnterFullFeaturePhase();
}

void Connection::EnterFullFeaturePhase() {
  // Digests apply from the first PDU after the final login response (RFC 7143 13.1); that
  // response is queued already and encoded before this flag takes effect.
  full_feature_ = true;
  if (login_timer_ != 0) reactor_->CancelTimer(login_timer_);
  login_timer_ = 0;
  server_->stats().logins++;
  server_->RegisterSession(this, info());
  FERRY_LOG_INFO("iscsi: {} logged in from {} ({} session{})", params_.initiator_name, peer_,
                 params_.session_type == SessionType::kDiscovery ? "discovery" : "normal",
                 target_ ? " to " + target_->config().name : "");
  ArmNopTimer();
}

}  // namespace ferry::iscsi
