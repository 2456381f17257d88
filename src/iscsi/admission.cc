#include "iscsi/admission.h"

namespace ferry::iscsi {

std::vector<uint64_t> Admission::Accept(uint64_t id, std::string_view address) {
  std::vector<uint64_t> victims;
  auto evict = [&](uint64_t v) {
    Drop(v);
    victims.push_back(v);
  };
  // The address's budget first: a flood from one address replaces itself and leaves the
  // other addresses' connections alone. Drop() forgets an address whose last pre-login
  // connection goes, so the pool is looked up again each time.
  const std::string addr(address);
  for (auto it = by_address_.find(addr);
       it != by_address_.end() && it->second.size() >= limits_.max_prelogin_per_address;
       it = by_address_.find(addr)) {
    evict(it->second.Victim());
  }
  while (all_.size() > 0 && all_.size() >= limits_.max_prelogin) evict(all_.Victim());
  Entry e{std::string(address), Stage::kAwaitingLogin};
  PoolOf(e).awaiting.insert(id);
  all_.awaiting.insert(id);
  conns_.emplace(id, std::move(e));
  return victims;
}

void Admission::LoginStarted(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.stage != Stage::kAwaitingLogin) return;
  Pool& p = PoolOf(it->second);
  p.awaiting.erase(id);
  p.logging_in.insert(id);
  all_.awaiting.erase(id);
  all_.logging_in.insert(id);
  it->second.stage = Stage::kLoggingIn;
}

bool Admission::StartSession(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return false;
  if (it->second.stage == Stage::kSession) return true;
  if (sessions_ >= limits_.max_sessions) return false;
  Drop(id);
  conns_.emplace(id, Entry{"", Stage::kSession});
  ++sessions_;
  return true;
}

void Admission::Closed(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  if (it->second.stage == Stage::kSession) {
    --sessions_;
    conns_.erase(it);
    return;
  }
  Drop(id);
}

void Admission::Drop(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  auto pool = by_address_.find(it->second.address);
  if (pool != by_address_.end()) {
    pool->second.awaiting.erase(id);
    pool->second.logging_in.erase(id);
    if (pool->second.size() == 0) by_address_.erase(pool);
  }
  all_.awaiting.erase(id);
  all_.logging_in.erase(id);
  conns_.erase(it);
}

size_t Admission::prelogin_from(std::string_view address) const {
  auto it = by_address_.find(std::string(address));
  return it == by_address_.end() ? 0 : it->second.size();
}

uint64_t DropLog::Counts::total() const {
  uint64_t t = 0;
  for (uint64_t v : n) t += v;
  return t;
}

DropLog::Counts DropLog::Add(Clock::time_point now, PreloginDrop why) {
  ++pending_.n[static_cast<size_t>(why)];
  if (logged_once_ && now - last_ < interval_) return {};
  logged_once_ = true;
  last_ = now;
  return TakePending();
}

bool DropLog::MayLogDetail(Clock::time_point now) {
  if (details_ == 0 || now - detail_since_ >= interval_) {
    detail_since_ = now;
    details_ = 0;
  }
  if (details_ >= detail_lines_) return false;
  ++details_;
  return true;
}

DropLog::Counts DropLog::TakePending() {
  Counts c = pending_;
  pending_ = {};
  return c;
}

std::string_view PeerAddressOf(std::string_view peer) {
  if (peer.starts_with('[')) {
    const size_t end = peer.find(']');
    return end == std::string_view::npos ? peer : peer.substr(1, end - 1);
  }
  const size_t colon = peer.rfind(':');
  return colon == std::string_view::npos ? peer : peer.substr(0, colon);
}

}  // namespace ferry::iscsi
