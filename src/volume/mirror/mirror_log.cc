// The mirror's region log: construction, opening or formatting the disk log (Prepare),
// commits (write the whole log image, then flush), lazy cleaning, status.
#include <cstdlib>
#include <cstring>

#include "block/splitter.h"
#include "volume/mirror/mirror_core.h"

namespace ferry::volume::mirror {

namespace {

// A region that wrote its last write is marked clean on disk by a commit at most this
// long after (dm-mirror's lazy clean).
constexpr auto kCleanDelay = std::chrono::milliseconds(500);

// One write-then-flush or read of the log image. Control path (Prepare) and one per commit
// batch, so it allocates.
struct LogIo {
  explicit LogIo(uint64_t len)
      : buf(static_cast<uint8_t*>(std::aligned_alloc(kHeaderBytes, len)), &std::free), len(len) {
    iov = {buf.get(), len};
  }
  std::unique_ptr<uint8_t, decltype(&std::free)> buf;
  uint64_t len;
  iovec iov;
  block::IoRequest req;
  block::IoRequest flush;
};

// The callbacks of `io` hold `io` itself; once they have run, a posted task drops them so
// that the LogIo (and the core they hold) can be freed. The task does it when it is
// destroyed, so a reactor torn down before running it breaks the cycle too.
struct LogIoReleaser {
  explicit LogIoReleaser(std::shared_ptr<LogIo> p) : io(std::move(p)) {}
  LogIoReleaser(LogIoReleaser&&) noexcept = default;
  LogIoReleaser& operator=(LogIoReleaser&&) = delete;
  ~LogIoReleaser() {
    if (io == nullptr) return;
    io->req.done = nullptr;
    io->flush.done = nullptr;
  }
  std::shared_ptr<LogIo> io;
};

void ReleaseLater(io::Reactor* home, std::shared_ptr<LogIo> io) {
  home->Post([r = LogIoReleaser(std::move(io))] {});
}

}  // namespace

MirrorCore::MirrorCore(MirrorConfig cfg, uint64_t target_bytes, io::Reactor* home, DataMover* mover)
    : cfg_(std::move(cfg)), target_bytes_(target_bytes), home_(home), mover_(mover) {
  region_bytes_ = uint64_t{cfg_.region_sectors} * kSectorBytes;
  num_regions_ = (target_bytes_ + region_bytes_ - 1) / region_bytes_;
  rate_.store(cfg_.resync_rate, std::memory_order_relaxed);
  StartFresh();
  prepared_ = !cfg_.disk_log;  // a core log needs no I/O
}

MirrorCore::~MirrorCore() = default;

void MirrorCore::StartFresh() {
  regions_.assign(num_regions_, Region{});
  in_sync_.store(num_regions_, std::memory_order_relaxed);
  need_sync_ = 0;
  if (cfg_.sync == SyncMode::kNoSync) return;
  for (uint64_t r = 0; r < num_regions_; ++r) SetFlag(r, kNeedSync);
}

void MirrorCore::SetFlag(uint64_t r, uint8_t f) {
  Region& g = regions_[r];
  const bool was_in_sync = (g.flags & (kNeedSync | kStale)) == 0;
  if ((f & kNeedSync) && (g.flags & kNeedSync) == 0) ++need_sync_;
  g.flags |= f;
  if (was_in_sync && (g.flags & (kNeedSync | kStale)) != 0) in_sync_.fetch_sub(1);
}

void MirrorCore::ClearFlag(uint64_t r, uint8_t f) {
  Region& g = regions_[r];
  const bool was_in_sync = (g.flags & (kNeedSync | kStale)) == 0;
  if ((f & kNeedSync) && (g.flags & kNeedSync) != 0) --need_sync_;
  g.flags &= static_cast<uint8_t>(~f);
  if (!was_in_sync && (g.flags & (kNeedSync | kStale)) == 0) in_sync_.fetch_add(1);
}

void MirrorCore::Prepare(Target::PrepareDone done) {
  home_->Post([self = shared_from_this(), d = std::make_unique<Target::PrepareDone>(std::move(
                                              done))]() mutable { self->OpenLog(std::move(*d)); });
}

void MirrorCore::OpenLog(Target::PrepareDone done) {
  if (!cfg_.disk_log) {
    prepared_ = true;
    KickResync();
    done(ferry::Status::Ok());
    return;
  }
  auto io = std::make_shared<LogIo>(LogBytes(num_regions_));
  block::BlockDevice& dev = *cfg_.log_dev;
  io->req.op = block::IoOp::kRead;
  io->req.lba = Lba(0);
  io->req.blocks = BlockCount(io->len / dev.geometry().block_size);
  io->req.iov = &io->iov;
  io->req.iovcnt = 1;
  io->req.done = [self = shared_from_this(), io,
                  d = std::make_shared<Target::PrepareDone>(std::move(done))](IoStatus st) {
    ReleaseLater(self->home_, io);
    const std::string where = "log device '" + self->cfg_.log_name + "'";
    if (st != IoStatus::kOk) {
      (*d)(Unavailable("cannot read the mirror log on " + where + " (" +
                       std::string(IoStatusName(st)) + "); check the device"));
      return;
    }
    auto dec = DecodeLog({io->buf.get(), io->len});
    if (!dec.ok()) {
      (*d)(dec.status().WithContext(where));
      return;
    }
    const LogImage& img = dec->image;
    if (dec->kind == LogKind::kLog &&
        (img.region_sectors != self->cfg_.region_sectors ||
         img.region_count != self->num_regions_ || img.num_legs != self->legs_.size())) {
      (*d)(InvalidArgument(
          where + " holds a log of " + std::to_string(img.region_count) + " regions of " +
          std::to_string(img.region_sectors) + " sectors over " + std::to_string(img.num_legs) +
          " legs; the table has " + std::to_string(self->num_regions_) + " of " +
          std::to_string(self->cfg_.region_sectors) + " over " +
          std::to_string(self->legs_.size()) +
          " (zero the log device to format a new log; every region then resyncs)"));
      return;
    }
    if (dec->kind == LogKind::kLog) self->ApplyLog(img);
    self->prepared_ = true;
    // Commit once now: a blank log is formatted, an opened one records the table's state.
    self->RequestCommit([self, d] {
      if (self->log_failed_.load()) {
        (*d)(Unavailable("cannot write the mirror log on log device '" + self->cfg_.log_name +
                         "'; check the device"));
        return;
      }
      self->KickResync();
      (*d)(ferry::Status::Ok());
    });
  };
  block::SubmitSplit(dev, io->req);
}

void MirrorCore::ApplyLog(const LogImage& img) {
  regions_.assign(num_regions_, Region{});
  in_sync_.store(num_regions_, std::memory_order_relaxed);
  need_sync_ = 0;
  for (size_t i = 0; i < legs_.size(); ++i) {
    if (img.failed_mask & (1u << i)) legs_[i]->health.store('D');
    legs_[i]->catching_up = (img.catching_up_mask & (1u << i)) != 0;
  }
  durable_failed_ = img.failed_mask;
  for (uint64_t r = 0; r < num_regions_; ++r) {
    const bool dirty = !img.bitmaps_valid || TestBit(img.dirty, r);
    if (cfg_.sync == SyncMode::kSync || (dirty && cfg_.sync != SyncMode::kNoSync)) {
      SetFlag(r, kNeedSync);
    }
    // A region dirty at the crash may have been written without the failed legs.
    if ((img.bitmaps_valid && TestBit(img.stale, r)) || (dirty && img.failed_mask != 0)) {
      SetFlag(r, kStale);
    }
  }
}

LogImage MirrorCore::Snapshot() const {
  LogImage img;
  img.region_sectors = cfg_.region_sectors;
  img.region_count = num_regions_;
  img.num_legs = static_cast<uint32_t>(legs_.size());
  img.failed_mask = failed_mask();
  for (size_t i = 0; i < legs_.size(); ++i) {
    if (legs_[i]->catching_up) img.catching_up_mask |= 1u << i;
  }
  img.sequence = sequence_;
  img.dirty.assign(BitmapBytes(num_regions_), 0);
  img.stale.assign(BitmapBytes(num_regions_), 0);
  for (uint64_t r = 0; r < num_regions_; ++r) {
    const uint8_t f = regions_[r].flags;
    if (f & (kLogDirty | kNeedSync | kRecovering)) SetBit(img.dirty, r);
    if (f & kStale) SetBit(img.stale, r);
  }
  return img;
}

void MirrorCore::RequestCommit(CommitDone done) {
  next_waiters_.push_back(std::move(done));
  if (!commit_running_) StartCommit();
}

void MirrorCore::StartCommit() {
  commit_running_ = true;
  commit_wanted_ = false;
  commit_waiters_.swap(next_waiters_);
  committing_.swap(marking_);
  committing_failed_ = failed_mask();
  if (!cfg_.disk_log) {
    home_->Post([self = shared_from_this()] { self->CommitFinished(IoStatus::kOk); });
    return;
  }
  ++sequence_;
  std::vector<uint8_t> image = EncodeLog(Snapshot());
  auto io = std::make_shared<LogIo>(image.size());
  std::memcpy(io->buf.get(), image.data(), image.size());
  block::BlockDevice& dev = *cfg_.log_dev;
  io->req.op = block::IoOp::kWrite;
  io->req.lba = Lba(0);
  io->req.blocks = BlockCount(io->len / dev.geometry().block_size);
  io->req.iov = &io->iov;
  io->req.iovcnt = 1;
  io->req.done = [self = shared_from_this(), io](IoStatus st) {
    if (st != IoStatus::kOk) {
      ReleaseLater(self->home_, io);
      self->CommitFinished(st);
      return;
    }
    // The image is durable only after a flush of the log device.
    io->flush.op = block::IoOp::kFlush;
    io->flush.done = [self, io](IoStatus fst) {
      ReleaseLater(self->home_, io);
      self->CommitFinished(fst);
    };
    self->cfg_.log_dev->Submit(io->flush);
  };
  block::SubmitSplit(dev, io->req);
}

void MirrorCore::CommitFinished(IoStatus st) {
  // A failed log write leaves the log unreliable (status 'D'); I/O goes on so that the
  // volume stays available, and a readd then resyncs every region.
  if (st != IoStatus::kOk) log_failed_.store(true);
  log_commits_.fetch_add(1, std::memory_order_relaxed);
  for (uint64_t r : committing_) {
    if (regions_[r].flags & kLogDirty) regions_[r].flags |= kDurable;
  }
  committing_.clear();
  durable_failed_ = committing_failed_;
  commit_running_ = false;
  std::vector<CommitDone> waiters;
  waiters.swap(commit_waiters_);
  for (CommitDone& w : waiters) w();
  if (!commit_running_ && (!next_waiters_.empty() || commit_wanted_)) StartCommit();
}

void MirrorCore::MarkClean(uint64_t r) {
  Region& g = regions_[r];
  if (!cfg_.disk_log) {
    g.flags &= static_cast<uint8_t>(~(kLogDirty | kDurable));  // nothing on disk to clean
    return;
  }
  if ((g.flags & kCleanPending) != 0) return;
  g.flags |= kCleanPending;
  to_clean_.push_back(r);
  ScheduleClean();
}

void MirrorCore::ScheduleClean() {
  if (clean_timer_ || stopped_.load()) return;
  clean_timer_ = true;
  home_->RunAfter(kCleanDelay, [self = shared_from_this()] {
    self->clean_timer_ = false;
    if (!self->stopped_.load() && !self->suspended_.load()) self->CleanNow();
  });
}

// Writes that completed are not durable on the legs until a flush: a region is written as
// clean only after every live leg flushed, so that after a power cut the legs never differ
// in a region the log calls clean.
void MirrorCore::CleanNow() {
  if (to_clean_.empty()) return;
  struct Clean {
    std::vector<uint64_t> regions;
    std::vector<block::IoRequest> flushes;
    uint32_t remaining = 0;
    bool failed = false;
  };
  auto c = std::make_shared<Clean>();
  c->regions.swap(to_clean_);
  c->flushes.resize(legs_.size());
  auto finish = [](const std::shared_ptr<MirrorCore>& self, const std::shared_ptr<Clean>& c) {
    // The flushes' callbacks hold c: drop them once they have run (or the reactor is gone).
    struct Releaser {
      explicit Releaser(std::shared_ptr<Clean> p) : c(std::move(p)) {}
      Releaser(Releaser&&) noexcept = default;
      ~Releaser() {
        if (c != nullptr) {
          for (block::IoRequest& f : c->flushes) f.done = nullptr;
        }
      }
      std::shared_ptr<Clean> c;
    };
    self->home_->Post([r = Releaser(c)] {});
    for (uint64_t r : c->regions) {
      Region& g = self->regions_[r];
      if ((g.flags & kCleanPending) == 0) continue;  // written again meanwhile
      if (c->failed) {
        self->to_clean_.push_back(r);  // try again at the next clean
        continue;
      }
      g.flags &= static_cast<uint8_t>(~(kCleanPending | kLogDirty | kDurable));
    }
    if (c->failed) {
      self->ScheduleClean();
      return;
    }
    self->commit_wanted_ = true;
    if (!self->commit_running_) self->StartCommit();
  };
  for (size_t i = 0; i < legs_.size(); ++i) c->remaining += Alive(i) ? 1 : 0;
  if (c->remaining == 0) {
    c->failed = true;
    finish(shared_from_this(), c);
    return;
  }
  for (size_t i = 0; i < legs_.size(); ++i) {
    if (!Alive(i)) continue;
    block::IoRequest& f = c->flushes[i];
    f.op = block::IoOp::kFlush;
    f.done = [self = shared_from_this(), c, i, finish](IoStatus st) {
      if (st != IoStatus::kOk) {
        c->failed = true;
        if (self->cfg_.handle_errors) self->FailLeg(i, 'F');
      }
      if (--c->remaining == 0) finish(self, c);
    };
    legs_[i]->dev.get()->Submit(f);
  }
}

std::string MirrorCore::StatusText() const {
  std::string s = std::to_string(legs_.size());
  std::string health;
  for (const auto& l : legs_) {
    s += " " + l->name;
    health += l->health.load();
  }
  s += " " + std::to_string(in_sync_.load()) + "/" + std::to_string(num_regions_) + " 1 " + health;
  if (cfg_.disk_log) {
    s += " 3 disk " + cfg_.log_name + (log_failed_.load() ? " D" : " A");
  } else {
    s += " 1 core";
  }
  return s;
}

std::string MirrorCore::StatsText() const {
  std::string reads, writes;
  for (const auto& l : legs_) {
    reads += (reads.empty() ? "" : ",") + std::to_string(l->reads.load());
    writes += (writes.empty() ? "" : ",") + std::to_string(l->writes.load());
  }
  return "resync_bytes=" + std::to_string(resync_bytes_.load()) +
         " resync_regions=" + std::to_string(resync_regions_.load()) +
         " resync_ns=" + std::to_string(resync_ns_.load()) +
         " resync_rate=" + std::to_string(rate_.load()) +
         " log_commits=" + std::to_string(log_commits_.load()) + " reads=" + reads +
         " writes=" + writes;
}

}  // namespace ferry::volume::mirror
