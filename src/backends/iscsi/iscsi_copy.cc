// IscsiDevice as a copy destination (block::CopyOffload): legs between two remote LUs are
// moved by the arrays (remote_copy.h); everything else is left to the copy engine.
#include <memory>

#include "backends/iscsi/iscsi_device.h"
#include "backends/iscsi/remote_copy.h"
#include "base/log.h"

namespace ferry::backends::iscsi {
namespace {

// The LU a refusal is remembered for: the same LU reached through two devices is one LU.
std::string LuKey(const IscsiDevice& d) {
  return d.portal() + "/" + d.target_iqn() + "/" + std::to_string(d.lun());
}

// EXTENDED COPY reaches the source only when its E4h CSCD names a LU of the destination's
// target: the array resolves designators among the LUs of the I_T nexus the command came on.
bool SameTarget(const IscsiDevice& a, const IscsiDevice& b) {
  return a.portal() == b.portal() && a.target_iqn() == b.target_iqn();
}

}  // namespace

bool IscsiDevice::CanCopyFrom(const block::BlockDevice& src, std::string* why_not) const {
  auto say = [why_not](std::string s) {
    if (why_not != nullptr) *why_not = std::move(s);
    return false;
  };
  const auto* s = dynamic_cast<const IscsiDevice*>(&src);
  if (s == nullptr) {
    return say("'" + std::string(src.name()) + "' is a " + std::string(src.type()) +
               " device; remote arrays copy only between their own LUNs");
  }
  if (read_only_) return say("'" + name_ + "' is open read-only");
  {
    std::lock_guard l(copy_mu_);
    auto it = refused_.find(LuKey(*s));
    if (it != refused_.end()) return say("the array refused this pair before: " + it->second);
  }
  const RemoteLu from{.lun = s->lun(), .block_size = s->geometry_.block_size, .caps = &s->caps_};
  const RemoteLu to{.lun = lun(), .block_size = geometry_.block_size, .caps = &caps_};
  std::string why;
  if (ChooseRemoteCopy(from, to, SameTarget(*s, *this), &why) == block::CopyMechanism::kNone) {
    return say(why);
  }
  return true;
}

void IscsiDevice::SubmitCopy(block::CopyLegRequest& req) {
  io::Reactor* reactor = io::Reactor::Current();
  auto finish = [reactor, &req](IoStatus st) { reactor->Post([&req, st] { req.done(st); }); };
  if (read_only_) return finish(IoStatus::kReadOnly);
  auto* src = dynamic_cast<IscsiDevice*>(req.src);
  if (src == nullptr || !CanCopyFrom(*src, &req.refusal)) return finish(IoStatus::kNotSupported);
  const RemoteLu from{.channel = &src->channel(),
                      .lun = src->lun(),
                      .block_size = src->geometry_.block_size,
                      .caps = &src->caps_};
  const RemoteLu to{
      .channel = &channel(), .lun = lun(), .block_size = geometry_.block_size, .caps = &caps_};
  // Owned by its own completion: RemoteCopier hands `done` out before calling it, so the
  // copier is destroyed when the completion is, after it has run.
  auto copier = std::make_shared<RemoteCopier>(reactor, from, to, SameTarget(*src, *this));
  const std::string key = LuKey(*src);
  {
    std::lock_guard l(copy_mu_);
    copiers_[&req] = copier;
  }
  copier->Start(req.segments, [this, &req, copier, key](const RemoteCopyResult& r) {
    {
      std::lock_guard l(copy_mu_);
      copiers_.erase(&req);
    }
    req.mechanism = r.mechanism;
    if (r.status == IoStatus::kNotSupported) {
      req.refusal = r.reason;
      std::lock_guard l(copy_mu_);
      if (refused_.emplace(key, r.reason).second) {
        FERRY_LOG_WARN(
            "iscsi {}: the array refused {} from {}: {}; copies of this pair are "
            "emulated from now on",
            name_, block::CopyMechanismName(r.mechanism), key, r.reason);
      }
    }
    req.done(r.status);
  });
}

void IscsiDevice::CancelCopy(block::CopyLegRequest& req) {
  std::shared_ptr<RemoteCopier> copier;
  {
    std::lock_guard l(copy_mu_);
    auto it = copiers_.find(&req);
    if (it != copiers_.end()) copier = it->second.lock();
  }
  if (copier != nullptr) copier->Abort();
}

}  // namespace ferry::backends::iscsi
