#include "daemon/volumes.h"

#include <algorithm>
#include <set>

#include "base/log.h"
#include "copy/engine_mover.h"
#include "daemon/identity.h"
#include "io/reactor.h"

namespace ferry::daemon {

Result<std::unique_ptr<VolumeEnv>> VolumeEnv::Create(io::Reactor* reactor,
                                                     std::shared_ptr<block::DeviceRegistry> reg) {
  std::unique_ptr<VolumeEnv> e(new VolumeEnv());
  e->reactor_ = reactor;
  e->registry_ = std::move(reg);
  // Volume-internal copies (mirror resync, snapshot copy-on-write, thin-pool copies) have an
  // engine of their own, apart from the SCSI copy manager's, so that a throttle set for
  // third-party copy does not slow them down.
  FERRY_ASSIGN_OR_RETURN(e->engine_, copy::CopyEngine::Create(reactor, copy::EngineOptions{}));
  e->mover_ = copy::MakeEngineMover(e->engine_.get(), reactor);
  return e;
}

VolumeEnv::~VolumeEnv() = default;

volume::TableOptions VolumeEnv::Options(std::string* missing) const {
  volume::TableOptions o;
  o.lookup = [reg = registry_, missing](std::string_view name) {
    auto dev = reg->Find(name);
    if (dev == nullptr && missing != nullptr) *missing = std::string(name);
    return dev;
  };
  o.env = {.reactor = reactor_, .mover = mover_.get()};
  return o;
}

Status PrepareTableNow(const std::shared_ptr<volume::Table>& table, io::Reactor* reactor) {
  bool done = false;
  Status result;
  volume::PrepareTable(table, [&](Status st) {
    result = std::move(st);
    done = true;
  });
  reactor->RunUntil([&] { return done; });
  return result;
}

Result<Backstore*> AddVolume(Setup* s, std::shared_ptr<volume::Volume> vol,
                             const std::string& state_dir, uint64_t sanitize_bandwidth) {
  const std::string name(vol->name());
  if (s->backstores.contains(name)) {
    return AlreadyExists("'" + name + "' is already a backstore or volume: pick another name");
  }
  scsi::LuIdentity id;
  id.product = name.substr(0, 16);
  FERRY_RETURN_IF_ERROR(LoadOrCreateIdentity(state_dir, name, &id));
  FERRY_RETURN_IF_ERROR(s->registry->Add(vol));
  auto lu = std::make_shared<scsi::LogicalUnit>(vol, id, /*read_only=*/false);
  lu->set_sanitize_rate(sanitize_bandwidth);
  Backstore b{.config = {.name = name, .type = std::string(BackstoreConfig::kVolumeType)},
              .device = vol,
              .lu = std::move(lu),
              .volume = vol};
  return &(s->backstores[name] = std::move(b));
}

namespace {

std::string Where(const Config& c, size_t i) {
  return "$.volumes[" + std::to_string(i) + "] (" + c.volumes[i].name + ")";
}

// The volumes still waiting form a cycle or wait for each other: starting at `first`,
// follows the names each waits for and reports the loop it finds.
Status CycleError(const Config& c, size_t first, const std::vector<std::string>& waits_for,
                  const std::vector<std::string>& parse_error) {
  std::vector<size_t> chain = {first};
  std::set<size_t> seen = {first};
  for (;;) {
    const std::string& next = waits_for[chain.back()];
    size_t k = 0;
    while (k < c.volumes.size() && c.volumes[k].name != next) ++k;
    if (k == c.volumes.size() || waits_for[k].empty()) break;  // not part of a loop
    chain.push_back(k);
    if (!seen.insert(k).second) break;
  }
  // Report from the first volume of the loop.
  const size_t loop_at = chain.back();
  std::string path;
  for (size_t i = std::find(chain.begin(), chain.end(), loop_at) - chain.begin(); i < chain.size();
       ++i) {
    path += (path.empty() ? "" : " -> ") + c.volumes[chain[i]].name;
  }
  // The parser's error starts with "line N: "; keep that, the rest says "does not exist".
  const std::string& e = parse_error[loop_at];
  const std::string line = e.starts_with("line ") ? e.substr(0, e.find(':')) : "its table";
  return InvalidArgument(Where(c, loop_at) + ": " + line + " uses volume '" + waits_for[loop_at] +
                         "', and volumes name each other in a cycle (" + path +
                         "); a volume cannot sit on itself: break the cycle");
}

// One configured volume: parse (the lookup records a missing name), prepare, create.
// `*waits_for` is set instead of failing when the table names a configured volume that is
// not open yet.
Status OpenOne(const Config& c, size_t i, const std::string& state_dir, const VolumeEnv& env,
               Setup* s, std::string* waits_for, std::string* parse_error) {
  const VolumeConfig& vc = c.volumes[i];
  std::string missing;
  auto table = volume::Table::Parse(vc.table, env.Options(&missing));
  if (!table.ok()) {
    if (!missing.empty() && c.FindVolume(missing) != nullptr && !s->backstores.contains(missing)) {
      *waits_for = missing;
      *parse_error = std::string(table.status().message());
      return Status::Ok();
    }
    std::string why(table.status().message());
    if (!missing.empty()) why += "; the configuration has no backstore or volume of that name";
    return InvalidArgument(Where(c, i) + ": " + why);
  }
  if (Status st = PrepareTableNow(*table, env.reactor()); !st.ok()) {
    return Status(st.code(), Where(c, i) + ": " + std::string(st.message()));
  }
  auto vol = volume::Volume::Create(vc.name, std::move(*table));
  if (!vol.ok()) return vol.status().WithContext(Where(c, i));
  auto b = AddVolume(s, std::move(*vol), state_dir, c.sanitize_bandwidth);
  if (!b.ok()) return b.status().WithContext(Where(c, i));
  (*b)->from_config = true;
  waits_for->clear();
  return Status::Ok();
}

}  // namespace

Status OpenVolumes(const Config& c, const std::string& state_dir, const VolumeEnv& env, Setup* s) {
  std::vector<std::string> waits_for(c.volumes.size());
  std::vector<std::string> parse_error(c.volumes.size());
  std::vector<size_t> pending(c.volumes.size());
  for (size_t i = 0; i < pending.size(); ++i) pending[i] = i;
  // Each round opens every volume whose devices are all open; a round that opens none
  // leaves volumes that wait for each other.
  while (!pending.empty()) {
    std::vector<size_t> still;
    for (size_t i : pending) {
      FERRY_RETURN_IF_ERROR(OpenOne(c, i, state_dir, env, s, &waits_for[i], &parse_error[i]));
      if (!waits_for[i].empty()) still.push_back(i);
    }
    if (still.size() == pending.size()) return CycleError(c, still.front(), waits_for, parse_error);
    pending = std::move(still);
  }
  return Status::Ok();
}

std::vector<std::string> VolumeUsers(const Setup& s, const volume::Volume& vol,
                                     const std::vector<std::shared_ptr<iscsi::Target>>& targets) {
  std::vector<std::string> users;
  for (const auto& t : targets) {
    for (const auto& [lun, tl] : t->Luns()) {
      if (tl.lu != nullptr && &tl.lu->device() == &vol) {
        users.push_back("LUN " + std::to_string(lun) + " of " + t->config().name);
      }
    }
  }
  auto lines_of = [&](const volume::Table& table) {
    std::string lines;
    for (size_t i = 0; i < table.size(); ++i) {
      bool uses = false;
      table.target(i).ForEachUnderlying(
          [&](block::BlockDevice& d, uint64_t) { uses |= &d == &vol; });
      if (uses) lines += (lines.empty() ? "line " : ", ") + std::to_string(table.line(i));
    }
    return lines;
  };
  for (const auto& [name, b] : s.backstores) {
    if (b.volume == nullptr || b.volume.get() == &vol) continue;
    if (auto a = b.volume->active_table(); a != nullptr) {
      if (std::string l = lines_of(*a); !l.empty()) {
        users.push_back("volume '" + name + "' (" + l + ")");
      }
    }
    if (b.loaded != nullptr) {
      if (std::string l = lines_of(*b.loaded); !l.empty()) {
        users.push_back("the inactive table of volume '" + name + "' (" + l + ")");
      }
    }
  }
  return users;
}

Backstore* FindVolume(Setup& s, std::string_view name) {
  auto it = s.backstores.find(std::string(name));
  return it == s.backstores.end() || it->second.volume == nullptr ? nullptr : &it->second;
}

}  // namespace ferry::daemon
