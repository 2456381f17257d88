#include "iscsi/connection.h"

#include <algorithm>
#include <cstring>

#include "base/endian.h"
#include "base/log.h"
#include "iscsi/target.h"
#include "iscsi/text_keys.h"
#include "scsi/nexus.h"

namespace ferry::iscsi {

// The largest data segment accepted before operational negotiation (RFC 7143 13.12).
constexpr uint32_t kLoginMaxRecvDataSegment = 8192;

Connection::Connection(Server* server, io::Reactor* reactor, int fd, std::string peer,
                       std::string local, uint64_t id)
    : server_(server),
      reactor_(reactor),
      id_(id),
      peer_(std::move(peer)),
      local_(std::move(local)),
      stream_(reactor, fd),
      negotiator_(TargetPolicy{}) {}

Connection::~Connection() {
  if (nop_timer_ != 0) reactor_->CancelTimer(nop_timer_);
  if (login_timer_ != 0) reactor_->CancelTimer(login_timer_);
}

SessionInfo Connection::info() const {
  SessionInfo i{.initiator = params_.initiator_name,
                .target = target_ ? target_->config().name : "",
                .peer = peer_,
                .portal = local_,
                .tsih = tsih_,
                .discovery = params_.session_type == SessionType::kDiscovery,
                .header_digest = params_.header_digest,
                .data_digest = params_.data_digest,
                .chap = auth_ == AuthState::kDone,
                .commands = commands_seen()};
  static constexpr char kHex[] = "0123456789abcdef";
  for (uint8_t b : isid_) {
    i.isid += kHex[b >> 4];
    i.isid += kHex[b & 15];
  }
  for (const auto& [n, v] : luns_) {
    (void)v;
    i.luns.push_back(n);
  }
  return i;
}

void Connection::Shutdown() {
  if (closed_) return;
  if (!full_feature_ || params_.session_type == SessionType::kDiscovery || draining_) {
    return Close("target stopping");
  }
  const auto grace = server_->options().logout_grace;
  // RFC 7143 11.9.1: AsyncEvent 1, the target requests a logout within Parameter3 seconds.
  OutPdu out;
  Encode(
      AsyncMessagePdu{.seq = NextSeq(true),
                      .event = 1,
                      .param3 = static_cast<uint16_t>(std::max<int64_t>(1, grace.count() / 1000))},
      &out.bhs);
  Send(std::move(out));
  FERRY_LOG_INFO("iscsi: asking {} ({}) to log out: {}", params_.initiator_name, peer_,
                 logout_why_.empty() ? "the target is stopping" : logout_why_);
  if (nop_timer_ != 0) reactor_->CancelTimer(nop_timer_);
  nop_timer_ = reactor_->RunAfter(grace, [this] {
    nop_timer_ = 0;
    Close(logout_why_.empty() ? "target stopping (no logout)" : logout_why_ + " (no logout)");
  });
}

void Connection::Revoke(std::string_view why) {
  if (closed_ || logout_why_.size()) return;
  logout_why_ = std::string(why);
  if (target_ != nullptr && full_feature_) {
    SetLuns({});  // no command reaches a logical unit from now on
    server_->UpdateSessionLuns(this, {});
  }
  Shutdown();
}

namespace {

bool SameCredentials(const ChapCredentials* a, const ChapCredentials* b) {
  if (a == nullptr || b == nullptr) return a == b;
  return a->user == b->user && a->secret == b->secret && a->mutual_user == b->mutual_user &&
         a->mutual_secret == b->mutual_secret;
}

}  // namespace

void Connection::Retarget(std::shared_ptr<const Target> t) {
  if (closed_ || target_ == nullptr || acl_ == nullptr || !logout_why_.empty()) return;
  IpAddress peer_ip;
  const Acl* acl =
      ParsePeerAddress(peer_, &peer_ip) ? t->Authorize(params_.initiator_name, peer_ip) : nullptr;
  if (acl == nullptr) return Revoke("the target's ACL no longer admits it");
  if (!SameCredentials(acl->chap.get(), chap_creds_.get())) {
    return Revoke("its CHAP credentials changed");
  }
  const PortalGroup* group = t->GroupFor(local_);
  if (group == nullptr || group->tag != tpgt_) return Revoke("its portal group changed");
  const LunView before = luns_;
  target_ = std::move(t);
  acl_ = acl;
  SetLuns(target_->ViewFor(*acl_));
  // SPC-4 6.33: a LUN added, removed or now naming another logical unit changes the
  // REPORT LUNS data; the same logical unit reopened (same NAA) or with another write
  // protection changes its INQUIRY data (and maybe its capacity).
  auto same_unit = [](const SessionLun& a, const SessionLun& b) {
    return a.target_lun == b.target_lun &&
           (a.lu == b.lu || a.lu->identity().naa == b.lu->identity().naa);
  };
  bool reported_luns = before.size() != luns_.size();
  for (const auto& [n, v] : luns_) {
    auto o = before.find(n);
    reported_luns |= o == before.end() || !same_unit(o->second, v);
  }
  std::vector<uint64_t> numbers;
  for (const auto& [n, v] : luns_) {
    numbers.push_back(n);
    if (reported_luns) v.lu->RaiseUnitAttentionFor(nexus_, scsi::Asc::kReportedLunsDataHasChanged);
    auto o = before.find(n);
    if (o == before.end() || !same_unit(o->second, v)) continue;
    if (o->second.lu != v.lu || o->second.write_protect != v.write_protect) {
      v.lu->RaiseUnitAttentionFor(nexus_, scsi::Asc::kInquiryDataHasChanged);
    }
    if (o->second.lu != v.lu &&
        o->second.lu->device().geometry().size_bytes() != v.lu->device().geometry().size_bytes()) {
      v.lu->RaiseUnitAttentionFor(nexus_, scsi::Asc::kCapacityDataHasChanged);
    }
  }
  FERRY_LOG_INFO("iscsi: {} ({}): the target {} changed, {} LUNs now", peer_,
                 params_.initiator_name, target_->config().name, numbers.size());
  server_->UpdateSessionLuns(this, std::move(numbers));
}

void Connection::OnLunsChanged() {
  if (closed_ || target_ == nullptr || acl_ == nullptr) return;
  SetLuns(target_->ViewFor(*acl_));
  std::vector<uint64_t> numbers;
  for (const auto& [n, v] : luns_) {
    v.lu->RaiseUnitAttentionFor(nexus_, scsi::Asc::kReportedLunsDataHasChanged);
    numbers.push_back(n);
  }
  FERRY_LOG_INFO("iscsi: {} ({}): LUN map changed, {} LUNs now", peer_, params_.initiator_name,
                 numbers.size());
  server_->UpdateSessionLuns(this, std::move(numbers));
}

void Connection::SetLuns(LunView luns) {
  luns_ = std::move(luns);
  auto view = std::make_shared<scsi::NexusView>();
  view->initiator_name = params_.initiator_name;
  view->isid = isid_;
  view->target_name = target_->config().name;
  view->relative_target_port = tpgt_;
  view->target_port_group = tpgt_;
  for (const auto& [n, v] : luns_)
    view->lus.push_back({.lu = v.lu, .lun = n, .write_protect = v.write_protect});
  view_ = std::move(view);
}

void Connection::ArmNopTimer() { ArmNopTimer(server_->options().nop_interval); }

void Connection::ArmNopTimer(std::chrono::nanoseconds delay) {
  if (closed_ || server_->options().nop_interval.count() == 0) return;
  nop_timer_ = reactor_->RunAfter(delay, [this] {
    nop_timer_ = 0;
    OnNopTimer();
  });
}

// Pings once the connection has been idle for nop_interval (counted from the last PDU
// received, so an answered ping starts the next interval), and closes it when a ping
// stays unanswered for nop_timeout. The timer is armed for exactly the next of these
// moments.
void Connection::OnNopTimer() {
  const auto now = io::Reactor::Clock::now();
  const ServerOptions& o = server_->options();
  if (nop_ttt_ != 0) {
    if (now - nop_sent_ >= o.nop_timeout) {
      FERRY_LOG_INFO("iscsi: {} ({}) did not answer a NOP-In within {} ms: closing", peer_,
                     params_.initiator_name, o.nop_timeout.count());
      return Close("NOP-In timeout");
    }
    return ArmNopTimer(nop_sent_ + o.nop_timeout - now);
  }
  if (now - last_rx_ < o.nop_interval) return ArmNopTimer(last_rx_ + o.nop_interval - now);
  // RFC 7143 11.19: a NOP-In with a valid TTT asks for a NOP-Out echoing it.
  nop_ttt_ = next_ttt_++;
  if (next_ttt_ == kReservedTag) next_ttt_ = 1;
  nop_sent_ = now;
  FERRY_LOG_DEBUG("iscsi: {}: idle, NOP-In ping (TTT {})", peer_, nop_ttt_);
  OutPdu out;
  Encode(NopInPdu{.lun = 0, .itt = kReservedTag, .ttt = nop_ttt_, .seq = NextSeq(false)}, &out.bhs);
  Send(std::move(out));
  // Back when the answer is due, or sooner when it comes quickly (the next ping is due
  // nop_interval after it).
  ArmNopTimer(o.nop_timeout.count() > 0
                  ? std::min<std::chrono::nanoseconds>(o.nop_timeout, o.nop_interval)
                  : std::chrono::nanoseconds(o.nop_interval));
}

void Connection::Start() {
  FERRY_LOG_DEBUG("iscsi: connection from {}", peer_);
  accepted_ = io::Reactor::Clock::now();
  const ServerOptions& o = server_->options();
  ArmLoginTimer(std::min(o.first_pdu_timeout, o.login_timeout), PreloginDrop::kNoLoginPdu);
  rbuf_.resize(kLoginReadAhead);
  Receive();
}

// Both login deadlines end here; they are counted and logged by the server (at a bounded
// rate: a flood of idle connections must not flood the log too).
void Connection::ArmLoginTimer(std::chrono::nanoseconds delay, PreloginDrop why) {
  if (login_timer_ != 0) reactor_->CancelTimer(login_timer_);
  login_timer_ = reactor_->RunAfter(delay, [this, why] {
    login_timer_ = 0;
    if (full_feature_ || closed_) return;
    server_->stats().prelogin_timeouts++;
    server_->NoteDrop(why);
    Close(why == PreloginDrop::kNoLoginPdu ? "no Login PDU in time" : "login timeout");
  });
}

void Connection::Close(std::string_view why) {
  if (closed_) return MaybeReap();  // e.g. the read that the shutdown woke up
  closed_ = true;
  if (nop_timer_ != 0) reactor_->CancelTimer(nop_timer_);
  if (login_timer_ != 0) reactor_->CancelTimer(login_timer_);
  nop_timer_ = login_timer_ = 0;
  FERRY_LOG_DEBUG("iscsi: closing connection from {}: {}", peer_, why);
  stream_.Close();
  NexusLoss();
  MaybeReap();
}

void Connection::MaybeReap() {
  // Commands still executing point at this connection: wait for them.
  if (!closed_ || reaped_ || !stream_.idle() || writing_ || executing_ > 0) return;
  reaped_ = true;
  server_->Reap(this);
}

// Receiving: recv what is there into rbuf_ and take whole PDUs out of it, so that one
// recv can carry many small PDUs and a PDU's header and data arrive together.
void Connection::Receive() {
  for (;;) {
    if (closed_) return MaybeReap();
    if (draining_) return;  // closing once the queued PDUs are sent
    const size_t avail = rend_ - rstart_;
    const size_t read_ahead = full_feature_ ? kReadAhead : kLoginReadAhead;
    size_t need = kBhsBytes;
    if (avail >= kBhsBytes) {
      std::memcpy(bhs_.data(), rbuf_.data() + rstart_, kBhsBytes);
      const CommonHeader c = DecodeCommon(bhs_);
      const uint32_t limit =
          full_feature_ ? params_.max_recv_data_segment_length : kLoginMaxRecvDataSegment;
      if (c.data_bytes > limit) {
        // RFC 7143 7.4: a data segment above MaxRecvDataSegmentLength is a protocol error.
        return RejectAndClose(RejectReason::kProtocolError,
                              "data segment of " + std::to_string(c.data_bytes) +
                                  " bytes, above MaxRecvDataSegmentLength " + std::to_string(limit),
                              full_feature_ || server_->MayLogDrop(PreloginDrop::kBadPdu));
      }
      const bool hd = full_feature_ && params_.header_digest;
      const bool dd = full_feature_ && params_.data_digest && c.data_bytes > 0;
      const size_t rest = c.ahs_bytes + (hd ? 4 : 0) + Padded(c.data_bytes) + (dd ? 4 : 0);
      need = kBhsBytes + rest;
      if (avail >= need) {
        ahs_bytes_ = c.ahs_bytes;
        data_bytes_ = c.data_bytes;
        data_offset_ = ahs_bytes_ + (hd ? 4 : 0);
        rest_ = std::span(rbuf_.data() + rstart_ + kBhsBytes, rest);
        rstart_ += need;
        if (rstart_ == rend_) rstart_ = rend_ = 0;  // rest_ stays valid: nothing is read now
        OnPdu();
        continue;
      }
    }
    // Room for the whole PDU after what is buffered: move the partial PDU to the front,
    // grow the buffer for a large one.
    if (rstart_ > 0 && rbuf_.size() - rstart_ < std::max(need, read_ahead)) {
      std::memmove(rbuf_.data(), rbuf_.data() + rstart_, avail);
      rstart_ = 0;
      rend_ = avail;
    }
    if (rbuf_.size() < std::max(need, read_ahead)) rbuf_.resize(std::max(need, read_ahead));
    if (queued_bytes_ > kMaxQueuedBytes) {  // resumed by PumpWrites
      read_paused_ = true;
      return;
    }
    stream_.ReadSome(std::span(rbuf_.data() + rend_, rbuf_.size() - rend_), [this](int32_t res) {
      if (res <= 0) return Close(res == 0 ? "peer closed" : "read error");
      last_rx_ = io::Reactor::Clock::now();
      rend_ += static_cast<size_t>(res);
      Receive();
    });
    return;
  }
}

// One whole PDU in bhs_ and rest_: digests, then dispatch.
void Connection::OnPdu() {
  size_t pos = ahs_bytes_;
  if (full_feature_ && params_.header_digest) {
    uint32_t s = Crc32cUpdate(kCrc32cInit, bhs_);
    s = Crc32cUpdate(s, rest_.first(ahs_bytes_));
    uint32_t got;
    std::memcpy(&got, &rest_[pos], 4);  // little-endian on the wire, as the CRC is
    if (Crc32cFinish(s) != got) return Close("header digest error");  // RFC 7143 7.8
    pos += 4;
  }
  if (full_feature_ && params_.data_digest && data_bytes_ > 0) {
    uint32_t got;
    std::memcpy(&got, &rest_[pos + Padded(data_bytes_)], 4);
    if (Crc32c(rest_.subspan(pos, Padded(data_bytes_))) != got) {
      return Reject(RejectReason::kDataDigestError, "data digest error");
    }
  }
  Dispatch();
}

void Connection::Dispatch() {
  Decoded d = DecodeInitiatorBhs(bhs_);
  if (!full_feature_) {
    if (auto* login = std::get_if<LoginRequestPdu>(&d.pdu); login && d.ok) {
      if (first_login_pdu_) {  // the first deadline is met; the whole login's goes on
        server_->LoginStarted(this);
        const auto left =
            server_->options().login_timeout - (io::Reactor::Clock::now() - accepted_);
        ArmLoginTimer(std::max<std::chrono::nanoseconds>(left, std::chrono::nanoseconds(0)),
                      PreloginDrop::kLoginTimeout);
      }
      return OnLogin(*login);
    }
    // RFC 7143 6.3: any other PDU during login gets a Login reject "invalid during login"
    // and the connection closes.
    OutPdu out;
    Encode(LoginResponsePdu{.itt = LoadBe32(bhs_.data() + 16),
                            .seq = NextSeq(false),
                            .status_class = 0x02,
                            .status_detail = 0x0b},
           &out.bhs);
    return SendAndClose(std::move(out), std::string(OpcodeName(bhs_[0])) + " during login",
                        server_->MayLogDrop(PreloginDrop::kBadPdu));
  }
  if (!d.ok) {
    FERRY_LOG_DEBUG("iscsi: {}: rejecting {}: {}", peer_, OpcodeName(bhs_[0]), d.why);
    return Reject(d.reject, d.why);
  }
  std::visit(
      [this](auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, ScsiCommandPdu>) {
          OnScsiCommand(p);
        } else if constexpr (std::is_same_v<T, DataOutPdu>) {
          OnDataOut(p);
        } else if constexpr (std::is_same_v<T, TextRequestPdu>) {
          OnText(p);
        } else if constexpr (std::is_same_v<T, NopOutPdu>) {
          OnNopOut(p);
        } else if constexpr (std::is_same_v<T, TaskMgmtRequestPdu>) {
          OnTaskMgmt(p);
        } else if constexpr (std::is_same_v<T, LogoutRequestPdu>) {
          OnLogout(p);
        } else if constexpr (std::is_same_v<T, LoginRequestPdu>) {
          Reject(RejectReason::kProtocolError, "login in full feature phase");
        } else {
          Reject(RejectReason::kCommandNotSupported, "SNACK needs ErrorRecoveryLevel > 0");
        }
      },
      d.pdu);
}

SeqNums Connection::NextSeq(bool advance_statsn) {
  const uint32_t held = static_cast<uint32_t>(std::min<size_t>(commands_.size(), kCmdWindow));
  const uint32_t max = expcmdsn_ + (kCmdWindow - held) - 1;
  // RFC 7143 4.2.2.1: an initiator ignores a MaxCmdSN that moves back, so it never does
  // (during login there are no commands and the window is whole).
  if (!full_feature_ || static_cast<int32_t>(max - max_cmdsn_) > 0) max_cmdsn_ = max;
  SeqNums s{statsn_, expcmdsn_, max_cmdsn_};
  if (advance_statsn) ++statsn_;
  return s;
}

void Connection::Reject(RejectReason r, std::string_view why) {
  server_->stats().rejects++;
  FERRY_LOG_INFO("iscsi: {}: Reject {:#x} of {}: {}", peer_, static_cast<int>(r),
                 OpcodeName(bhs_[0]), why);
  OutPdu out;
  Encode(RejectPdu{.reason = r, .seq = NextSeq(true)}, &out.bhs);
  out.owned.assign(bhs_.begin(), bhs_.end());  // the rejected header is the data
  Send(std::move(out));
}

void Connection::RejectAndClose(RejectReason r, std::string why, bool log) {
  server_->stats().rejects++;
  OutPdu out;
  Encode(RejectPdu{.reason = r, .seq = NextSeq(true)}, &out.bhs);
  out.owned.assign(bhs_.begin(), bhs_.end());
  SendAndClose(std::move(out), "Reject " + std::to_string(static_cast<int>(r)) + ": " + why, log);
}

void Connection::SendAndClose(OutPdu pdu, std::string why, bool log) {
  if (log) {
    FERRY_LOG_INFO("iscsi: {} ({}): closing the connection: {}", peer_,
                   params_.initiator_name.empty() ? "?" : params_.initiator_name, why);
  }
  close_why_ = std::move(why);
  draining_ = true;
  pdu.close_after = true;
  Send(std::move(pdu));
}

void Connection::Send(OutPdu pdu) {
  if (closed_) return;
  if (!pdu.owned.empty()) pdu.data = pdu.owned;
  pdu.digests = full_feature_;
  StoreBe24(pdu.bhs.data() + 5, static_cast<uint32_t>(pdu.data.size()));
  queued_bytes_ += kBhsBytes + pdu.data.size();
  outq_.push_back(std::move(pdu));
  PumpWrites();
}

void Connection::PumpWrites() {
  if (writing_ || outq_.empty() || closed_) return MaybeReap();
  writing_ = true;
  static constexpr uint8_t kZeros[4] = {};
  size_t n = 0;
  wbatch_ = 0;
  for (OutPdu& p : outq_) {
    if (wbatch_ == kMaxWriteBatch) break;
    ++wbatch_;
    const bool hd = p.digests && params_.header_digest;
    const bool dd = p.digests && params_.data_digest && !p.data.empty();
    wiov_[n++] = {p.bhs.data(), kBhsBytes};
    if (hd) {
      const uint32_t crc = Crc32c(p.bhs);
      std::memcpy(p.hdigest.data(), &crc, 4);
      wiov_[n++] = {p.hdigest.data(), 4};
    }
    if (!p.data.empty()) {
      const uint32_t len = static_cast<uint32_t>(p.data.size());
      const uint32_t pad = Padded(len) - len;
      wiov_[n++] = {const_cast<uint8_t*>(p.data.data()), len};
      if (pad) wiov_[n++] = {const_cast<uint8_t*>(kZeros), pad};
      if (dd) {
        uint32_t st = Crc32cUpdate(kCrc32cInit, p.data);
        st = Crc32cUpdate(st, std::span(kZeros, pad));
        const uint32_t crc = Crc32cFinish(st);
        std::memcpy(p.ddigest.data(), &crc, 4);
        wiov_[n++] = {p.ddigest.data(), 4};
      }
    }
    if (p.close_after) break;  // nothing goes out after a PDU that ends the connection
  }
  stream_.WriteAll(std::span(wiov_.data(), n), [this](int32_t res) {
    writing_ = false;
    bool close_after = false;
    for (size_t i = 0; i < wbatch_; ++i) {
      close_after |= outq_.front().close_after;
      queued_bytes_ -= kBhsBytes + outq_.front().data.size();
      outq_.pop_front();
    }
    if (res < 0) return Close("write error");
    if (close_after) return Close(close_why_.empty() ? "logged out" : close_why_);
    PumpWrites();
    if (read_paused_ && queued_bytes_ <= kMaxQueuedBytes / 2 && !closed_) {
      read_paused_ = false;
      Receive();
    }
  });
}

// RFC 7143 4.2.2.1: non-immediate commands must fall in [ExpCmdSN, MaxCmdSN]; with one
// connection they arrive in order, so ExpCmdSN advances by one per command.
bool Connection::CheckCmdSn(uint32_t cmdsn, bool immediate) {
  if (immediate) return true;
  if (cmdsn != expcmdsn_ || static_cast<int32_t>(cmdsn - max_cmdsn_) > 0) {
    FERRY_LOG_DEBUG("iscsi: {}: CmdSN {} outside the window (ExpCmdSN {})", peer_, cmdsn,
                    expcmdsn_);
    return false;
  }
  ++expcmdsn_;
  return true;
}

// RFC 7143 11.10 Text: SendTargets (the only text request a target must answer).
void Connection::OnText(const TextRequestPdu& p) {
  if (!CheckCmdSn(p.cmdsn, p.immediate)) return;
  auto keys = ParseTextKeys(data());
  std::vector<KeyValue> reply;
  if (!keys.ok()) return Reject(RejectReason::kProtocolError, keys.status().message());
  for (const KeyValue& kv : *keys) {
    if (kv.key != "SendTargets") {
      reply.push_back({kv.key, "NotUnderstood"});
      continue;
    }
    IpAddress peer_ip;
    const bool have_ip = ParsePeerAddress(peer_, &peer_ip);
    for (const auto& t : server_->targets()) {
      const TargetConfig& tc = t->config();
      if (kv.value != "All" && kv.value != tc.name && !kv.value.empty()) continue;
      // "" = this session's target
      if (kv.value.empty() && (target_ == nullptr || tc.name != target_->config().name)) {
        continue;
      }
      if (params_.session_type == SessionType::kNormal && kv.value == "All" &&
          (target_ == nullptr || tc.name != target_->config().name)) {
        continue;  // RFC 7143 11.10.2: in a normal session, only the session's target
      }
      // Only targets this initiator may log in to (its ACL), and only if reachable here.
      if (!have_ip || t->Authorize(params_.initiator_name, peer_ip) == nullptr) continue;
      if (t->GroupFor(local_) == nullptr) continue;
      reply.push_back({"TargetName", tc.name});
      std::vector<PortalGroup> groups = tc.portal_groups;
      if (groups.empty()) groups.push_back({.tag = 1, .portals = {}});
      for (const PortalGroup& g : groups) {
        const auto& portals = g.portals.empty() ? server_->listen_addresses() : g.portals;
        for (const std::string& portal : portals) {
          reply.push_back({"TargetAddress", portal + "," + std::to_string(g.tag)});
        }
      }
    }
  }
  OutPdu out;
  Encode(TextResponsePdu{.final = true, .lun = p.lun, .itt = p.itt, .seq = NextSeq(true)},
         &out.bhs);
  std::string text = EncodeTextKeys(reply);
  out.owned.assign(text.begin(), text.end());
  Send(std::move(out));
}

// RFC 7143 11.18 NOP-Out: a ping gets a NOP-In with the same data.
void Connection::OnNopOut(const NopOutPdu& p) {
  if (p.itt == kReservedTag) {  // an answer to our NOP-In
    if (p.ttt == nop_ttt_) nop_ttt_ = 0;
    return;
  }
  if (!CheckCmdSn(p.cmdsn, p.immediate)) return;
  OutPdu out;
  Encode(NopInPdu{.lun = p.lun, .itt = p.itt, .ttt = kReservedTag, .seq = NextSeq(true)}, &out.bhs);
  // RFC 7143 11.18.4: the reflected data is limited to the initiator's
  // MaxRecvDataSegmentLength (a ping may be as large as ours, which is larger).
  const auto echo =
      data().first(std::min<size_t>(data().size(), params_.max_send_data_segment_length));
  out.owned.assign(echo.begin(), echo.end());
  Send(std::move(out));
}

// RFC 7143 11.14 Logout.
void Connection::OnLogout(const LogoutRequestPdu& p) {
  CheckCmdSn(p.cmdsn, p.immediate);
  OutPdu out;
  uint8_t response = p.reason == 2 ? 2 : 0;  // no connection recovery at ERL 0
  Encode(LogoutResponsePdu{.response = response,
                           .itt = p.itt,
                           .seq = NextSeq(true),
                           .time2wait = 0,
                           .time2retain = 0},
         &out.bhs);
  out.close_after = response == 0;
  Send(std::move(out));
}

}  // namespace ferry::iscsi
