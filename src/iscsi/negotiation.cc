#include "iscsi/negotiation.h"

#include <algorithm>

namespace ferry::iscsi {

enum class Kind {
  kDigest,          // list: None, CRC32C
  kAnd,             // Boolean AND
  kOr,              // Boolean OR
  kMin,             // numerical, the smaller wins
  kMax,             // numerical, the larger wins
  kInitiatorMrdsl,  // MaxRecvDataSegmentLength: declarative, per direction
  kInitiatorText,   // InitiatorName, InitiatorAlias, TargetName, SessionType: recorded
  kRemovedMarker,   // IFMarker / OFMarker (RFC 3720; removed by RFC 7143): "No"
  kIrrelevant,      // IFMarkInt / OFMarkInt, and authentication keys after security
  kTargetOnly,      // keys only a target sends
};

struct KeyDef {
  const char* name;
  Kind kind;
  uint64_t min = 0;
  uint64_t max = 0;
  bool discovery = true;  // relevant in discovery sessions
};

namespace {

constexpr uint64_t kMaxDsl = (1u << 24) - 1;

const KeyDef* Find(std::string_view name);

}  // namespace

// RFC 7143 section 13 (and 6.2 for the result functions).
static const KeyDef kKeys[] = {
    {"HeaderDigest", Kind::kDigest},
    {"DataDigest", Kind::kDigest},
    {"MaxConnections", Kind::kMin, 1, 65535, false},
    {"SendTargets", Kind::kIrrelevant},
    {"TargetName", Kind::kInitiatorText},
    {"InitiatorName", Kind::kInitiatorText},
    {"TargetAlias", Kind::kTargetOnly},
    {"InitiatorAlias", Kind::kInitiatorText},
    {"TargetAddress", Kind::kTargetOnly},
    {"TargetPortalGroupTag", Kind::kTargetOnly},
    {"InitialR2T", Kind::kOr, 0, 0, false},
    {"ImmediateData", Kind::kAnd, 0, 0, false},
    {"MaxRecvDataSegmentLength", Kind::kInitiatorMrdsl, 512, kMaxDsl},
    {"MaxBurstLength", Kind::kMin, 512, kMaxDsl, false},
    {"FirstBurstLength", Kind::kMin, 512, kMaxDsl, false},
    {"DefaultTime2Wait", Kind::kMax, 0, 3600, false},
    {"DefaultTime2Retain", Kind::kMin, 0, 3600, false},
    {"MaxOutstandingR2T", Kind::kMin, 1, 65535, false},
    {"DataPDUInOrder", Kind::kOr, 0, 0, false},
    {"DataSequenceInOrder", Kind::kOr, 0, 0, false},
    {"ErrorRecoveryLevel", Kind::kMin, 0, 2},
    {"SessionType", Kind::kInitiatorText},
    {"IFMarker", Kind::kRemovedMarker},
    {"OFMarker", Kind::kRemovedMarker},
    {"IFMarkInt", Kind::kIrrelevant},
    {"OFMarkInt", Kind::kIrrelevant},
    {"AuthMethod", Kind::kIrrelevant},
    {"TaskReporting", Kind::kIrrelevant},
};

namespace {

const KeyDef* Find(std::string_view name) {
  for (const auto& k : kKeys) {
    if (name == k.name) return &k;
  }
  return nullptr;
}

}  // namespace

std::string Negotiator::Answer(const KeyDef& def, const std::string& v) {
  const std::string_view name = def.name;
  if (params_.session_type == SessionType::kDiscovery && !def.discovery) return "Irrelevant";
  auto set_bool = [&](bool ours, bool is_and) -> std::string {
    if (v != "Yes" && v != "No") return "Reject";
    bool r = is_and ? (v == "Yes" && ours) : (v == "Yes" || ours);
    if (name == "InitialR2T") params_.initial_r2t = r;
    if (name == "ImmediateData") params_.immediate_data = r;
    if (name == "DataPDUInOrder") params_.data_pdu_in_order = r;
    if (name == "DataSequenceInOrder") params_.data_sequence_in_order = r;
    return r ? "Yes" : "No";
  };
  switch (def.kind) {
    case Kind::kDigest: {
      const bool allow =
          name == "HeaderDigest" ? policy_.allow_header_digest : policy_.allow_data_digest;
      size_t pos = 0;
      while (pos <= v.size()) {  // the first of the initiator's list that we accept
        size_t comma = v.find(',', pos);
        std::string item =
            v.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        if (item == "None" || (item == "CRC32C" && allow)) {
          (name == "HeaderDigest" ? params_.header_digest : params_.data_digest) = item == "CRC32C";
          return item;
        }
        if (comma == std::string::npos) break;
        pos = comma + 1;
      }
      return "Reject";
    }
    case Kind::kAnd: return set_bool(policy_.immediate_data, true);
    case Kind::kOr: return set_bool(name == "InitialR2T" ? policy_.initial_r2t : true, false);
    case Kind::kMin:
    case Kind::kMax: {
      auto n = ParseNumber(v);
      if (!n || *n < def.min || *n > def.max) return "Reject";
      struct Slot {
        const char* key;
        uint32_t* field;
        uint64_t ours;
      };
      const Slot slots[] = {
          {"MaxConnections", &params_.max_connections, 1},
          {"MaxBurstLength", &params_.max_burst_length, policy_.max_burst_length},
          {"FirstBurstLength", &params_.first_burst_length, policy_.first_burst_length},
          {"DefaultTime2Wait", &params_.default_time2wait, 2},
          {"DefaultTime2Retain", &params_.default_time2retain, 20},
          {"MaxOutstandingR2T", &params_.max_outstanding_r2t, policy_.max_outstanding_r2t},
          {"ErrorRecoveryLevel", &params_.error_recovery_level, 0},  // ERL 0 only
      };
      const Slot* slot = nullptr;
      for (const Slot& s : slots) {
        if (name == s.key) slot = &s;
      }
      if (slot == nullptr) return "Reject";
      uint32_t* field = slot->field;
      const uint64_t ours = slot->ours;
      uint64_t r = def.kind == Kind::kMin ? std::min(*n, ours) : std::max(*n, ours);
      *field = static_cast<uint32_t>(r);
      return std::to_string(r);
    }
    case Kind::kInitiatorMrdsl: {
      auto n = ParseNumber(v);
      if (!n || *n < def.min || *n > def.max) return "Reject";
      params_.max_send_data_segment_length = static_cast<uint32_t>(*n);
      declared_mrdsl_ = true;
      params_.max_recv_data_segment_length = policy_.max_recv_data_segment_length;
      return std::to_string(policy_.max_recv_data_segment_length);
    }
    case Kind::kInitiatorText:
      if (v.size() > 255) return "Reject";
      if (name == "InitiatorName") params_.initiator_name = v;
      if (name == "InitiatorAlias") params_.initiator_alias = v;
      if (name == "TargetName") params_.target_name = v;
      if (name == "SessionType") {
        if (v != "Normal" && v != "Discovery") return "Reject";
        params_.session_type = v == "Discovery" ? SessionType::kDiscovery : SessionType::kNormal;
      }
      return "";  // declarative: no answer
    case Kind::kRemovedMarker: return "No";
    case Kind::kIrrelevant: return "Irrelevant";
    case Kind::kTargetOnly: return "Reject";
  }
  return "Reject";
}

Status Negotiator::Process(const std::vector<KeyValue>& offered, std::vector<KeyValue>* reply) {
  for (const KeyValue& kv : offered) {
    if (std::find(negotiated_.begin(), negotiated_.end(), kv.key) != negotiated_.end()) {
      return InvalidArgument("key '" + kv.key + "' negotiated twice in one login");
    }
    negotiated_.push_back(kv.key);
    const KeyDef* def = Find(kv.key);
    if (def == nullptr) {
      reply->push_back({kv.key, "NotUnderstood"});
      continue;
    }
    if (def->kind != Kind::kInitiatorText && def->kind != Kind::kInitiatorMrdsl &&
        kv.value.size() > 255) {
      reply->push_back({kv.key, "Reject"});
      continue;
    }
    std::string answer = Answer(*def, kv.value);
    if (!answer.empty()) reply->push_back({kv.key, answer});
  }
  // FirstBurstLength never exceeds MaxBurstLength (RFC 7143 13.14).
  params_.first_burst_length = std::min(params_.first_burst_length, params_.max_burst_length);
  return Status::Ok();
}

void Negotiator::Finish(std::vector<KeyValue>* reply) {
  if (!declared_mrdsl_) {
    declared_mrdsl_ = true;
    params_.max_recv_data_segment_length = policy_.max_recv_data_segment_length;
    reply->push_back(
        {"MaxRecvDataSegmentLength", std::to_string(policy_.max_recv_data_segment_length)});
  }
  if (!policy_.target_alias.empty() &&
      std::find(negotiated_.begin(), negotiated_.end(), "TargetAlias") == negotiated_.end()) {
    negotiated_.push_back("TargetAlias");
    reply->push_back({"TargetAlias", policy_.target_alias});
  }
}

}  // namespace ferry::iscsi
