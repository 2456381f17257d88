// Operational parameter negotiation (RFC 7143 6.2, 13): the target's side.
//
// Every key of RFC 7143 section 13 is in one table with its default, its range and its
// result function (list, AND, OR, min, max, declarative). The negotiator answers each key
// the initiator offers, keeps the session's values, and at the end adds the declarations
// the target owes (its own MaxRecvDataSegmentLength, TargetAlias). Values outside a key's
// range are answered "Reject", unknown keys "NotUnderstood", keys that do not apply to a
// discovery session "Irrelevant" (RFC 7143 6.2.1); offering a key twice is a protocol
// error. Pure: fuzzed through fuzz/iscsi_text_fuzz.cc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "iscsi/text_keys.h"

namespace ferry::iscsi {

enum class SessionType { kNormal, kDiscovery };

// The values a session runs with once login completes.
struct SessionParams {
  SessionType session_type = SessionType::kNormal;
  std::string initiator_name;
  std::string initiator_alias;
  std::string target_name;
  bool header_digest = false;
  bool data_digest = false;
  // Largest data segment the target may send (the initiator's declaration).
  uint32_t max_send_data_segment_length = 8192;
  // Largest data segment the target accepts (its own declaration).
  uint32_t max_recv_data_segment_length = 8192;
  uint32_t max_burst_length = 262144;
  uint32_t first_burst_length = 65536;
  bool initial_r2t = true;
  bool immediate_data = true;
  uint32_t max_outstanding_r2t = 1;
  uint32_t max_connections = 1;
  uint32_t error_recovery_level = 0;
  uint32_t default_time2wait = 2;
  uint32_t default_time2retain = 20;
  bool data_pdu_in_order = true;
  bool data_sequence_in_order = true;
};

// What the target is willing to do (its side of each negotiation).
struct TargetPolicy {
  uint32_t max_recv_data_segment_length = 262144;
  uint32_t max_burst_length = 1u << 20;
  uint32_t first_burst_length = 262144;
  bool initial_r2t = false;  // accept unsolicited data when the initiator wants it
  bool immediate_data = true;
  uint32_t max_outstanding_r2t = 8;
  bool allow_header_digest = true;
  bool allow_data_digest = true;
  std::string target_alias;
};

struct KeyDef;  // one row of the key table (negotiation.cc)

class Negotiator {
 public:
  explicit Negotiator(TargetPolicy policy) : policy_(std::move(policy)) {}

  // Answers one batch of keys (one Login or Text request). InitiatorName, SessionType and
  // TargetName are recorded; the login state machine checks them. An error Status means
  // the initiator broke the protocol (e.g. a key offered twice).
  Status Process(const std::vector<KeyValue>& offered, std::vector<KeyValue>* reply);

  // Declarations the target owes before leaving operational negotiation.
  void Finish(std::vector<KeyValue>* reply);

  const SessionParams& params() const { return params_; }
  void set_session_type(SessionType t) { params_.session_type = t; }

 private:
  std::string Answer(const KeyDef& def, const std::string& value);

  TargetPolicy policy_;
  SessionParams params_;
  std::vector<std::string> negotiated_;  // keys already answered in this login
  bool declared_mrdsl_ = false;
};

}  // namespace ferry::iscsi
