#include "daemon/reload.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "base/log.h"
#include "daemon/config_diff.h"
#include "daemon/config_errors.h"
#include "daemon/volume_methods.h"
#include "daemon/volumes.h"

namespace ferry::daemon {
namespace {

using json = nlohmann::json;
using Creds = std::shared_ptr<const iscsi::ChapCredentials>;

// "$.section.name" or "$.section["na-me"]", as ParseConfig names objects.
std::string NamedPath(std::string_view section, const std::string& name) {
  const bool plain = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
  return "$." + std::string(section) + (plain ? "." + name : "[" + json(name).dump() + "]");
}

Status ErrorsStatus(const std::vector<std::string>& errors) {
  std::string text = std::to_string(errors.size()) + (errors.size() == 1 ? " error" : " errors") +
                     " in the configuration; nothing was changed:";
  for (const std::string& e : errors) text += "\n" + e;
  return InvalidArgument(text);
}

const Backstore* BackstoreOfLu(const Setup& s, const scsi::LogicalUnit* lu) {
  for (const auto& [name, b] : s.backstores) {
    if (b.lu.get() == lu) return &b;
  }
  return nullptr;
}

bool SameCreds(const Creds& a, const Creds& b) {
  if (a == nullptr || b == nullptr) return a == b;
  return a->user == b->user && a->secret == b->secret && a->mutual_user == b->mutual_user &&
         a->mutual_secret == b->mutual_secret;
}

// The volumes whose active table (or loaded one) sits on `dev`.
std::vector<std::string> VolumesOn(const Setup& s, const block::BlockDevice* dev) {
  std::vector<std::string> out;
  for (const auto& [name, b] : s.backstores) {
    if (b.volume == nullptr || b.volume.get() == dev) continue;
    bool uses = false;
    for (const auto& t : {b.volume->active_table(), b.loaded}) {
      for (size_t i = 0; t != nullptr && i < t->size(); ++i) {
        t->target(i).ForEachUnderlying([&](block::BlockDevice& d, uint64_t) { uses |= &d == dev; });
      }
    }
    if (uses) out.push_back(name);
  }
  return out;
}

class ReloadJob : public std::enable_shared_from_this<ReloadJob> {
 public:
  ReloadJob(DaemonState& d, Config next, bool dry_run, ReloadDone done)
      : d_(d), next_(std::move(next)), dry_run_(dry_run), done_(std::move(done)) {}

  void Start();

 private:
  void LoadAuth();
  void CheckDevicesInUse();
  void OpenBackstores();
  void BindPortals();
  void BuildVolumes();
  bool WaitsForVolume(const std::string& name) const;
  void VolumeReady(size_t i, std::shared_ptr<volume::Table> table, Status st);
  void CheckTableDevices(size_t i, const volume::Table& table);
  void Rollback();
  void Commit();
  void ApplyTargets();
  void SwapNextVolume();
  void DropRemoved();
  void StopUnusedPortals();
  void Finish();
  std::string VolumePath(size_t i) const {
    return "$.volumes[" + std::to_string(i) + "] (" + next_.volumes[i].name + ")";
  }
  bool Changes(std::string_view what, ChangeKind k, const std::string& name) const {
    return plan_.Names(what, k).contains(name);
  }

  DaemonState& d_;
  Config next_;
  bool dry_run_;
  ReloadDone done_;
  ReloadPlan plan_;
  std::vector<std::string> errors_;
  std::vector<std::string> warnings_;
  std::map<std::string, Creds> auth_;
  std::set<std::string> secrets_changed_;
  std::map<std::string, Backstore> opened_;  // added and reopened backstores
  std::vector<std::string> registered_;      // added backstores put in the registry
  std::vector<std::string> new_portals_;     // keys of d_.bound this reload bound
  std::vector<size_t> pending_;              // volumes of next_ to build (added, changed)
  std::vector<std::string> created_;         // added volumes, created
  std::vector<std::string> loaded_;          // changed volumes, new table loaded inactive
  std::vector<std::string> swap_;            // changed volumes still to suspend and resume
};

void ReloadJob::Start() {
  LoadAuth();
  plan_ = PlanReload(RunningConfig(d_), next_, secrets_changed_);
  CheckDevicesInUse();
  const bool nothing = std::all_of(plan_.items.begin(), plan_.items.end(),
                                   [](const PlanItem& i) { return i.what == "setting"; });
  if (!dry_run_ && errors_.empty() && nothing) {
    d_.config = next_;  // settings for the next start: what `config save` writes from now on
    NoteConfigGenerations(d_);
  }
  if (dry_run_ || !errors_.empty() || nothing) return Finish();
  d_.reloading = true;
  OpenBackstores();
  BindPortals();
  if (!errors_.empty()) return Rollback();
  for (size_t i = 0; i < next_.volumes.size(); ++i) {
    const std::string& n = next_.volumes[i].name;
    if (Changes("volume", ChangeKind::kAdd, n) || Changes("volume", ChangeKind::kChange, n)) {
      pending_.push_back(i);
    }
  }
  BuildVolumes();
}

// Every secret file again: credentials that changed touch the sessions that use them.
void ReloadJob::LoadAuth() {
  for (const AuthGroupConfig& a : next_.auth_groups) {
    auto creds = LoadAuthGroup(a);
    if (!creds.ok()) {
      errors_.push_back(NamedPath("auth_groups", a.name) + ": " +
                        std::string(creds.status().message()));
      continue;
    }
    auth_[a.name] = *creds;
    const AuthGroupConfig* was = d_.config.FindAuthGroup(a.name);
    auto it = d_.setup.auth.find(a.name);
    if (was != nullptr && *was == a && it != d_.setup.auth.end() &&
        !SameCreds(it->second, *creds)) {
      secrets_changed_.insert(a.name);
    }
  }
}

// A backstore or volume that goes, or a backstore reopened, must not be under a volume that
// stays as it is: its table holds the device.
void ReloadJob::CheckDevicesInUse() {
  auto check = [&](const std::string& name, const std::string& path, const char* verb) {
    auto it = d_.setup.backstores.find(name);
    if (it == d_.setup.backstores.end() || it->second.device == nullptr) return;
    for (const std::string& v : VolumesOn(d_.setup, it->second.device.get())) {
      if (Changes("volume", ChangeKind::kRemove, v) || Changes("volume", ChangeKind::kChange, v)) {
        continue;  // goes, or gets a new table (checked once it is parsed)
      }
      errors_.push_back(path + ": cannot be " + verb + " while volume '" + v +
                        "' sits on it (change or remove that volume in the same file)");
    }
  };
  for (const std::string& n : plan_.Names("backstore", ChangeKind::kRemove)) {
    check(n, NamedPath("backstores", n), "removed");
  }
  for (const std::string& n : plan_.Names("backstore", ChangeKind::kChange)) {
    check(n, NamedPath("backstores", n), "reopened with new settings");
  }
  for (const std::string& n : plan_.Names("volume", ChangeKind::kRemove)) {
    check(n, "$.volumes (" + n + ")", "removed");
  }
}

void ReloadJob::OpenBackstores() {
  const backends::BackendContext ctx = MakeBackendContext(d_.setup, auth_, d_.state_dir);
  for (const BackstoreConfig& b : next_.backstores) {
    const bool add = Changes("backstore", ChangeKind::kAdd, b.name);
    if (!add && !Changes("backstore", ChangeKind::kChange, b.name)) continue;
    auto opened = OpenBackstore(b, ctx, d_.state_dir, next_.sanitize_bandwidth);
    if (!opened.ok()) {
      errors_.push_back(NamedPath("backstores", b.name) + ": " +
                        std::string(opened.status().message()));
      continue;
    }
    if (add) {  // volumes of this reload may sit on it
      if (Status st = d_.setup.registry->Add(opened->device); !st.ok()) {
        errors_.push_back(NamedPath("backstores", b.name) + ": " + std::string(st.message()));
        continue;
      }
      registered_.push_back(b.name);
    }
    opened_[b.name] = std::move(*opened);
  }
}

// New portals listen before any target names them.
void ReloadJob::BindPortals() {
  for (const TargetConfig& t : next_.targets) {
    if (!Changes("target", ChangeKind::kAdd, t.name) &&
        !Changes("target", ChangeKind::kChange, t.name)) {
      continue;
    }
    for (size_t gi = 0; gi < t.portal_groups.size(); ++gi) {
      for (size_t k = 0; k < t.portal_groups[gi].portals.size(); ++k) {
        const PortalConfig& p = t.portal_groups[gi].portals[k];
        const std::string key = PortalKey(gi, p);
        if (d_.bound.contains(key)) continue;
        auto port = d_.server->Listen(p.ip, p.port);
        if (!port.ok()) {
          errors_.push_back(NamedPath("targets", t.name) + ".portal_groups[" + std::to_string(gi) +
                            "].portals[" + std::to_string(k) + "]: cannot listen on " + p.Text() +
                            ": " + std::string(port.status().message()));
          continue;
        }
        const bool v6 = p.ip.find(':') != std::string::npos;
        d_.bound[key] = (v6 ? "[" + p.ip + "]" : p.ip) + ":" + std::to_string(*port);
        new_portals_.push_back(key);
      }
    }
  }
}

bool ReloadJob::WaitsForVolume(const std::string& name) const {
  return std::any_of(pending_.begin(), pending_.end(),
                     [&](size_t i) { return next_.volumes[i].name == name; });
}

// One volume at a time, each once the devices its table names exist (volumes of this
// reload included); then the switch.
void ReloadJob::BuildVolumes() {
  while (!pending_.empty()) {
    // The first volume whose table parses, or fails for another reason than a volume of
    // this reload it waits for.
    std::optional<Result<std::shared_ptr<volume::Table>>> table;
    size_t k = 0;
    for (; k < pending_.size(); ++k) {
      std::string missing;
      const VolumeConfig& v = next_.volumes[pending_[k]];
      table.emplace(volume::Table::Parse(v.table, d_.volume_env->Options(&missing)));
      if (table->ok() || missing.empty() || missing == v.name || !WaitsForVolume(missing)) break;
    }
    if (k == pending_.size()) {
      for (size_t i : pending_) {
        errors_.push_back(VolumePath(i) + ": its table waits for a volume that waits for it");
      }
      break;
    }
    const size_t i = pending_[k];
    pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(k));
    if (!table->ok()) {
      errors_.push_back(VolumePath(i) + ": " + std::string(table->status().message()));
      continue;
    }
    volume::PrepareTable(**table, [self = shared_from_this(), i, t = **table](Status st) {
      self->VolumeReady(i, t, std::move(st));
    });
    return;
  }
  pending_.clear();
  if (!errors_.empty()) return Rollback();
  Commit();
}

// A new table must not sit on what this reload takes away or reopens.
void ReloadJob::CheckTableDevices(size_t i, const volume::Table& table) {
  std::set<std::string> gone = plan_.Names("backstore", ChangeKind::kRemove);
  for (const std::string& n : plan_.Names("backstore", ChangeKind::kChange)) gone.insert(n);
  for (const std::string& n : plan_.Names("volume", ChangeKind::kRemove)) gone.insert(n);
  for (size_t k = 0; k < table.size(); ++k) {
    table.target(k).ForEachUnderlying([&](block::BlockDevice& dev, uint64_t) {
      if (gone.contains(std::string(dev.name()))) {
        errors_.push_back(VolumePath(i) + ": line " + std::to_string(table.line(k)) + " sits on '" +
                          std::string(dev.name()) +
                          "', which this configuration removes or reopens");
      }
    });
  }
}

void ReloadJob::VolumeReady(size_t i, std::shared_ptr<volume::Table> table, Status st) {
  const std::string& name = next_.volumes[i].name;
  if (!st.ok()) {
    errors_.push_back(VolumePath(i) + ": " + std::string(st.message()));
    return BuildVolumes();
  }
  const size_t before = errors_.size();
  CheckTableDevices(i, *table);
  if (errors_.size() != before) return BuildVolumes();
  if (Backstore* b = FindVolume(d_.setup, name); b != nullptr) {  // a changed table
    if (Status s = b->volume->Load(table); !s.ok()) {
      errors_.push_back(VolumePath(i) + ": " + std::string(s.message()));
    } else {
      b->loaded = std::move(table);
      loaded_.push_back(name);
    }
    return BuildVolumes();
  }
  auto vol = volume::Volume::Create(name, std::move(table));
  auto b = vol.ok() ? AddVolume(&d_.setup, *vol, d_.state_dir, next_.sanitize_bandwidth)
                    : Result<Backstore*>(vol.status());
  if (!b.ok()) {
    errors_.push_back(VolumePath(i) + ": " + std::string(b.status().message()));
    return BuildVolumes();
  }
  (*b)->from_config = true;
  if (d_.copy != nullptr) (*b)->lu->set_copy_manager(d_.copy);
  const auto pr = std::filesystem::path(d_.state_dir) / "reservations" / (name + ".json");
  if (std::string err = (*b)->lu->PersistReservationsIn(pr); !err.empty()) {
    warnings_.push_back("volume " + name + ": persistent reservations not restored: " + err);
  }
  created_.push_back(name);
  BuildVolumes();
}

// Undoes the preparation: nothing an initiator could see changed.
void ReloadJob::Rollback() {
  for (const std::string& n : loaded_) {
    if (Backstore* b = FindVolume(d_.setup, n); b != nullptr) {
      b->volume->ClearInactive();
      b->loaded.reset();
    }
  }
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
    if (Backstore* b = FindVolume(d_.setup, *it); b != nullptr) {
      if (Status st = b->volume->Remove(); !st.ok()) {
        FERRY_LOG_WARN("reload: volume {} made for the reload stays: {}", *it, st.message());
        continue;
      }
      (void)d_.setup.registry->Remove(*it);
      d_.setup.backstores.erase(*it);
    }
  }
  for (const std::string& n : registered_) (void)d_.setup.registry->Remove(n);
  for (const std::string& key : new_portals_) {
    d_.server->StopListening(d_.bound[key]);
    d_.bound.erase(key);
  }
  FERRY_LOG_WARN("reload: {} errors, nothing changed", errors_.size());
  Finish();
}

void ReloadJob::Commit() {
  for (const PlanItem& i : plan_.items) {
    const char* sign = i.kind == ChangeKind::kAdd ? "+" : i.kind == ChangeKind::kRemove ? "-" : "~";
    FERRY_LOG_INFO("reload: {} {} {}", sign, i.what, i.name);
  }
  d_.setup.auth = auth_;
  for (auto& [name, b] : opened_) {
    if (d_.copy != nullptr) b.lu->set_copy_manager(d_.copy);
    const auto pr = std::filesystem::path(d_.state_dir) / "reservations" / (name + ".json");
    if (std::string err = b.lu->PersistReservationsIn(pr); !err.empty()) {
      warnings_.push_back("backstore " + name + ": persistent reservations not restored: " + err);
    }
    if (!Changes("backstore", ChangeKind::kAdd, name)) {  // reopened: the new device's name
      (void)d_.setup.registry->Remove(name);
      (void)d_.setup.registry->Add(b.device);
    }
    d_.setup.unavailable.erase(name);
    d_.setup.backstores[name] = std::move(b);
  }
  ApplyTargets();
  swap_ = loaded_;
  SwapNextVolume();
}

// Added targets join, changed ones are replaced (each session re-checked), removed ones go
// with their sessions. A LUN's hold on a volume passes from the old target to the new one.
void ReloadJob::ApplyTargets() {
  Config made = next_;
  std::erase_if(made.targets, [&](const TargetConfig& t) {
    return !Changes("target", ChangeKind::kAdd, t.name) &&
           !Changes("target", ChangeKind::kChange, t.name);
  });
  auto release_volumes = [&](const iscsi::Target& old) {
    for (const auto& [n, tl] : old.Luns()) {
      for (auto& [name, b] : d_.setup.backstores) {
        if (b.volume != nullptr && tl.lu != nullptr && &tl.lu->device() == b.volume.get()) {
          b.volume->Close();
        }
      }
    }
  };
  auto find = [&](const std::string& name) -> std::shared_ptr<iscsi::Target> {
    for (const auto& t : d_.server->targets()) {
      if (t->config().name == name) return t;
    }
    return nullptr;
  };
  for (auto& t : MakeTargets(made, d_.setup, d_.bound)) {
    auto old = find(t->config().name);
    if (old == nullptr) {
      d_.server->AddTarget(std::move(t));
      continue;
    }
    release_volumes(*old);
    (void)d_.server->ReplaceTarget(std::move(t));
  }
  for (const std::string& name : plan_.Names("target", ChangeKind::kRemove)) {
    if (auto old = find(name); old != nullptr) {
      release_volumes(*old);
      (void)d_.server->RemoveTarget(name);
    }
  }
}

void ReloadJob::SwapNextVolume() {
  if (swap_.empty()) return DropRemoved();
  const std::string name = swap_.back();
  swap_.pop_back();
  Backstore* b = FindVolume(d_.setup, name);
  if (b == nullptr) return SwapNextVolume();
  auto vol = b->volume;
  vol->Suspend(std::chrono::milliseconds(kDefaultSuspendDeadlineMs),
               [self = shared_from_this(), vol](Status st) {
                 const std::string name(vol->name());
                 Status r = st.ok() ? vol->Resume() : st;
                 if (Backstore* b = FindVolume(self->d_.setup, name); b != nullptr && r.ok()) {
                   b->loaded.reset();
                 }
                 if (!r.ok()) {
                   self->warnings_.push_back("volume " + name + ": the new table is loaded " +
                                             "but not active: " + std::string(r.message()));
                 }
                 self->SwapNextVolume();
               });
}

// Volumes (those on top first), backstores and portals nobody uses any more.
void ReloadJob::DropRemoved() {
  std::set<std::string> volumes = plan_.Names("volume", ChangeKind::kRemove);
  for (bool progress = true; progress && !volumes.empty();) {
    progress = false;
    for (auto it = volumes.begin(); it != volumes.end();) {
      Backstore* b = FindVolume(d_.setup, *it);
      if (b != nullptr && !VolumesOn(d_.setup, b->volume.get()).empty()) {
        ++it;
        continue;
      }
      if (b != nullptr) {
        if (Status st = b->volume->Remove(); !st.ok()) {
          warnings_.push_back("volume " + *it + " stays: " + std::string(st.message()));
        } else {
          (void)d_.setup.registry->Remove(*it);
          d_.setup.backstores.erase(*it);
        }
      }
      it = volumes.erase(it);
      progress = true;
    }
  }
  for (const std::string& n : plan_.Names("backstore", ChangeKind::kRemove)) {
    (void)d_.setup.registry->Remove(n);
    d_.setup.backstores.erase(n);
    d_.setup.unavailable.erase(n);
  }
  StopUnusedPortals();
  d_.config = std::move(next_);
  NoteConfigGenerations(d_);
  d_.reloading = false;
  Finish();
}

void ReloadJob::StopUnusedPortals() {
  std::set<std::string> used;
  for (const TargetConfig& t : next_.targets) {
    for (size_t gi = 0; gi < t.portal_groups.size(); ++gi) {
      for (const PortalConfig& p : t.portal_groups[gi].portals) used.insert(PortalKey(gi, p));
    }
  }
  std::set<std::string> addresses_used;
  for (const std::string& k : used) {
    if (auto it = d_.bound.find(k); it != d_.bound.end()) addresses_used.insert(it->second);
  }
  for (auto it = d_.bound.begin(); it != d_.bound.end();) {
    if (used.contains(it->first)) {
      ++it;
      continue;
    }
    if (!addresses_used.contains(it->second)) d_.server->StopListening(it->second);
    it = d_.bound.erase(it);
  }
}

void ReloadJob::Finish() {
  d_.reloading = false;
  const bool applied = !dry_run_ && errors_.empty();
  json result = {{"changes", PlanJson(plan_)}, {"text", PlanText(plan_)},
                 {"applied", applied},         {"restart_needed", plan_.RestartOnly()},
                 {"warnings", warnings_},      {"errors", errors_}};
  for (const std::string& w : warnings_) FERRY_LOG_WARN("reload: {}", w);
  if (!errors_.empty()) return done_(ErrorsStatus(errors_), std::move(result));
  if (applied) FERRY_LOG_INFO("reload: applied ({} changes)", plan_.items.size());
  done_(Status::Ok(), std::move(result));
}

}  // namespace

Config RunningConfig(const DaemonState& d) {
  Config c = d.config;
  for (TargetConfig& t : c.targets) {
    auto target = d.server != nullptr ? d.server->FindTarget(t.name) : nullptr;
    if (target == nullptr) continue;
    std::vector<TargetLunConfig> luns;
    for (const auto& [n, tl] : target->Luns()) {
      if (const Backstore* b = BackstoreOfLu(d.setup, tl.lu.get()); b != nullptr) {
        luns.push_back({.lun = n, .backstore = b->config.name, .write_protect = tl.write_protect});
      }
    }
    for (const TargetLunConfig& l : t.luns) {  // not served: their store was unreachable
      if (d.setup.unavailable.contains(l.backstore)) luns.push_back(l);
    }
    std::sort(luns.begin(), luns.end(), [](const auto& a, const auto& b) { return a.lun < b.lun; });
    t.luns = std::move(luns);
    for (AclConfig& a : t.acls) {
      if (!a.luns) continue;
      std::erase_if(*a.luns, [&](const LunMapConfig& m) {
        return std::none_of(t.luns.begin(), t.luns.end(),
                            [&](const TargetLunConfig& l) { return l.lun == m.lun; });
      });
    }
  }
  std::vector<VolumeConfig> volumes;
  auto text_of = [&](const std::string& name, const Backstore& b) {
    auto g = d.config_generations.find(name);
    const VolumeConfig* v = d.config.FindVolume(name);
    if (v != nullptr && g != d.config_generations.end() && g->second == b.volume->generation()) {
      return v->table;
    }
    std::string text = b.volume->TableText();
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
  };
  for (const VolumeConfig& v : c.volumes) {
    auto it = d.setup.backstores.find(v.name);
    if (it == d.setup.backstores.end() || it->second.volume == nullptr) continue;
    volumes.push_back({.name = v.name, .table = text_of(v.name, it->second)});
  }
  for (const auto& [name, b] : d.setup.backstores) {
    if (b.volume == nullptr || c.FindVolume(name) != nullptr) continue;
    volumes.push_back({.name = name, .table = text_of(name, b)});
  }
  c.volumes = std::move(volumes);
  return c;
}

void NoteConfigGenerations(DaemonState& d) {
  d.config_generations.clear();
  for (const VolumeConfig& v : d.config.volumes) {
    if (Backstore* b = FindVolume(d.setup, v.name); b != nullptr) {
      d.config_generations[v.name] = b->volume->generation();
    }
  }
}

void Reload(DaemonState& d, std::string text, bool dry_run, ReloadDone done) {
  if (d.reloading) return done(FailedPrecondition("a reload is under way; try again"), {});
  if (d.server == nullptr || d.volume_env == nullptr) {
    return done(FailedPrecondition("ferryd is not serving yet"), {});
  }
  const std::vector<std::string> errors = ConfigErrors(text);
  if (!errors.empty()) {
    return done(ErrorsStatus(errors), {{"errors", errors}, {"applied", false}});
  }
  auto next = ParseConfig(text);
  if (!next.ok()) return done(next.status(), {});
  auto job = std::make_shared<ReloadJob>(d, std::move(*next), dry_run, std::move(done));
  job->Start();
}

void ReloadConfigFile(DaemonState& d, ReloadDone done) {
  if (d.config_path.empty()) {
    return done(FailedPrecondition("ferryd runs its embedded default configuration: there is "
                                   "no file to reload (start it with --config FILE)"),
                {});
  }
  std::ifstream in(d.config_path);
  if (!in) return done(NotFound("cannot read " + d.config_path), {});
  std::stringstream text;
  text << in.rdbuf();
  Reload(d, text.str(), /*dry_run=*/false, std::move(done));
}

}  // namespace ferry::daemon
