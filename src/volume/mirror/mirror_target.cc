#include "volume/mirror/mirror_target.h"

#include <tuple>

#include "volume/mirror/mirror_core.h"

namespace ferry::volume::mirror {

namespace {

constexpr const char* kUsage =
    "expected <core|disk> <#log_args> <log_args...> <#legs> <dev> <offset>... "
    "[<#features> <features...>]";

// The log arguments: "core <region_size> [sync|nosync]" or "disk <dev> <region_size> ...".
ferry::Status ParseLog(const TargetArgs& a, std::span<const std::string> la, bool disk,
                       MirrorConfig* cfg) {
  const size_t fixed = disk ? 2 : 1;
  if (la.size() != fixed && la.size() != fixed + 1) {
    return InvalidArgument(
        std::string(disk ? "disk" : "core") + " log takes " +
        (disk ? "<log_dev> <region_size> [sync|nosync]" : "<region_size> [sync|nosync]") +
        ", got " + std::to_string(la.size()) + " log arguments");
  }
  FERRY_ASSIGN_OR_RETURN(uint64_t rs, ParseNumber(la[fixed - 1], "region size", UINT32_MAX));
  if (rs < 8 || (rs & (rs - 1)) != 0) {
    return InvalidArgument("region size " + std::to_string(rs) +
                           " is not a power of two >= 8 sectors");
  }
  cfg->region_sectors = static_cast<uint32_t>(rs);
  if (la.size() == fixed + 1) {
    if (la[fixed] == "sync") {
      cfg->sync = SyncMode::kSync;
    } else if (la[fixed] == "nosync") {
      cfg->sync = SyncMode::kNoSync;
    } else {
      return InvalidArgument("log argument '" + la[fixed] + "' is neither sync nor nosync");
    }
  }
  if (disk) {
    cfg->disk_log = true;
    cfg->log_name = la[0];
    const uint64_t regions = (a.num_sectors + rs - 1) / rs;
    if (regions > kMaxRegions) {
      return InvalidArgument(std::to_string(regions) + " regions is more than " +
                             std::to_string(kMaxRegions) + "; choose a larger region size");
    }
    FERRY_ASSIGN_OR_RETURN(cfg->log_dev,
                           ResolveDevice(a, la[0], 0, LogBytes(regions) / kSectorBytes));
    if (cfg->log_dev->geometry().block_size > kHeaderBytes) {
      return InvalidArgument("log device '" + la[0] + "' has " +
                             std::to_string(cfg->log_dev->geometry().block_size) +
                             "-byte blocks; the log needs blocks of at most 4096 bytes");
    }
  }
  return ferry::Status::Ok();
}

ferry::Status ParseFeatures(std::span<const std::string> f, MirrorConfig* cfg) {
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "handle_errors") {
      if (cfg->handle_errors) return InvalidArgument("feature handle_errors is given twice");
      cfg->handle_errors = true;
    } else if (f[i] == "resync_rate") {
      if (cfg->rate_given) return InvalidArgument("feature resync_rate is given twice");
      if (i + 1 >= f.size()) return InvalidArgument("resync_rate needs <bytes_per_s>");
      FERRY_ASSIGN_OR_RETURN(cfg->resync_rate, ParseNumber(f[++i], "resync_rate (bytes/s)"));
      cfg->rate_given = true;
    } else {
      return InvalidArgument("unknown feature '" + f[i] +
                             "' (known: handle_errors, resync_rate <bytes_per_s>)");
    }
  }
  return ferry::Status::Ok();
}

}  // namespace

MirrorTarget::MirrorTarget(uint64_t num_sectors, std::shared_ptr<MirrorCore> core)
    : Target(num_sectors), core_(std::move(core)) {}

MirrorTarget::~MirrorTarget() { core_->Shutdown(); }

Result<std::unique_ptr<Target>> MirrorTarget::Create(const TargetArgs& a) {
  if (a.env == nullptr || a.env->reactor == nullptr) {
    return FailedPrecondition(
        "needs a reactor for its region log and resync (set TableOptions::env.reactor)");
  }
  if (a.env->mover == nullptr) {
    return FailedPrecondition(
        "needs a data mover to resync legs (set TableOptions::env.mover, e.g. the copy "
        "engine's)");
  }
  std::span<const std::string> args = a.args;
  if (args.size() < 2) return InvalidArgument(std::string(kUsage) + ", got too few arguments");
  const bool disk = args[0] == "disk";
  if (!disk && args[0] != "core") {
    return InvalidArgument("log type '" + args[0] + "' is neither core nor disk");
  }
  FERRY_ASSIGN_OR_RETURN(uint64_t nla, ParseNumber(args[1], "number of log arguments", 3));
  if (args.size() < 2 + nla + 1) {
    return InvalidArgument(std::string(kUsage) + "; the line ends before <#legs>");
  }
  MirrorConfig cfg;
  FERRY_RETURN_IF_ERROR(ParseLog(a, args.subspan(2, nla), disk, &cfg));
  size_t at = 2 + nla;
  FERRY_ASSIGN_OR_RETURN(uint64_t legs, ParseNumber(args[at], "number of legs", kMaxLegs));
  if (legs < 2) {
    return InvalidArgument("number of legs " + std::to_string(legs) + " is less than 2");
  }
  ++at;
  if (args.size() - at < 2 * legs) {
    return InvalidArgument(std::to_string(legs) + " legs need " + std::to_string(2 * legs) +
                           " words (<dev> <offset> each), only " +
                           std::to_string(args.size() - at) + " follow");
  }
  std::vector<std::tuple<std::shared_ptr<block::BlockDevice>, std::string, uint64_t>> found;
  for (uint64_t i = 0; i < legs; ++i, at += 2) {
    FERRY_ASSIGN_OR_RETURN(uint64_t off, ParseNumber(args[at + 1], "leg offset"));
    auto dev = ResolveDevice(a, args[at], off, a.num_sectors);
    if (!dev.ok()) return dev.status().WithContext("leg " + std::to_string(i));
    if (cfg.disk_log && dev->get() == cfg.log_dev.get()) {
      return InvalidArgument("device '" + args[at] + "' is both a leg and the log device");
    }
    found.emplace_back(std::move(dev).value(), args[at], off);
  }
  if (at < args.size()) {
    FERRY_ASSIGN_OR_RETURN(uint64_t nf, ParseNumber(args[at], "number of feature arguments"));
    if (nf != args.size() - at - 1) {
      return InvalidArgument("number of feature arguments " + std::to_string(nf) +
                             " does not match the " + std::to_string(args.size() - at - 1) +
                             " words that follow it");
    }
    FERRY_RETURN_IF_ERROR(ParseFeatures(args.subspan(at + 1), &cfg));
  }
  auto core = std::make_shared<MirrorCore>(std::move(cfg), a.num_sectors * kSectorBytes,
                                           a.env->reactor, a.env->mover);
  for (auto& [dev, name, off] : found) core->AddLeg(std::move(dev), std::move(name), off);
  return std::unique_ptr<Target>(new MirrorTarget(a.num_sectors, std::move(core)));
}

void MirrorTarget::Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
                       std::vector<MappedPiece>* out) const {
  const auto& legs = core_->legs();
  if (op == block::IoOp::kFlush) {
    for (const auto& l : legs) {
      out->push_back({.kind = PieceKind::kDevice,
                      .dev = l->dev.get(),
                      .dev_offset_bytes = l->offset_sectors * kSectorBytes});
    }
    return;
  }
  // One piece per region, addressed to the first leg; SubmitPiece picks the legs.
  const uint64_t rb = core_->region_bytes();
  const uint64_t base = legs[0]->offset_sectors * kSectorBytes;
  while (len_bytes > 0) {
    const uint64_t take = std::min(len_bytes, rb - offset_bytes % rb);
    out->push_back({.volume_offset_bytes = offset_bytes,
                    .len_bytes = take,
                    .kind = PieceKind::kDevice,
                    .dev = legs[0]->dev.get(),
                    .dev_offset_bytes = base + offset_bytes});
    offset_bytes += take;
    len_bytes -= take;
  }
}

void MirrorTarget::SubmitPiece(PieceIo& io) { core_->Submit(io); }

std::string MirrorTarget::TableArgs() const {
  const MirrorConfig& c = core_->config();
  std::string log_args = c.disk_log ? c.log_name + " " : "";
  log_args += std::to_string(c.region_sectors);
  int n = c.disk_log ? 2 : 1;
  if (c.sync != SyncMode::kDefault) {
    log_args += c.sync == SyncMode::kSync ? " sync" : " nosync";
    ++n;
  }
  std::string s = std::string(c.disk_log ? "disk " : "core ") + std::to_string(n) + " " + log_args +
                  " " + std::to_string(core_->legs().size());
  for (const auto& l : core_->legs()) s += " " + l->name + " " + std::to_string(l->offset_sectors);
  std::string features;
  int nf = 0;
  if (c.handle_errors) {
    features += " handle_errors";
    ++nf;
  }
  if (c.rate_given) {
    features += " resync_rate " + std::to_string(c.resync_rate);
    nf += 2;
  }
  if (nf > 0) s += " " + std::to_string(nf) + features;
  return s;
}

std::string MirrorTarget::Status() const { return core_->StatusText(); }

Result<std::string> MirrorTarget::Message(std::span<const std::string> args) {
  const auto& legs = core_->legs();
  if (args.size() == 2 && args[0] == "readd") {
    for (size_t i = 0; i < legs.size(); ++i) {
      if (legs[i]->name == args[1] || std::to_string(i) == args[1]) {
        if (legs[i]->health.load() == 'A') {
          return FailedPrecondition("leg " + args[1] + " is not failed; nothing to readd");
        }
        core_->PostReadd(i);
        return std::string();
      }
    }
    return NotFound("no leg '" + args[1] + "' (give a leg's device name or 0-based index)");
  }
  if (args.size() == 1 && args[0] == "resync") {
    core_->PostFullResync();
    return std::string();
  }
  if (args.size() == 2 && args[0] == "resync_rate") {
    FERRY_ASSIGN_OR_RETURN(uint64_t rate, ParseNumber(args[1], "resync_rate (bytes/s)"));
    core_->SetRate(rate);
    return std::string();
  }
  if (args.size() == 1 && args[0] == "stats") return core_->StatsText();
  return InvalidArgument(
      "mirror messages are 'readd <leg>', 'resync', 'resync_rate <bytes_per_s>' and 'stats'");
}

void MirrorTarget::ForEachUnderlying(
    const std::function<void(block::BlockDevice&, uint64_t)>& fn) const {
  for (const auto& l : core_->legs()) fn(*l->dev.get(), l->offset_sectors);
  if (core_->config().disk_log) fn(*core_->config().log_dev, 0);
}

void MirrorTarget::Prepare(PrepareDone done) { core_->Prepare(std::move(done)); }
void MirrorTarget::Presuspend() { core_->Presuspend(); }
void MirrorTarget::Resume() { core_->Resume(); }

}  // namespace ferry::volume::mirror
