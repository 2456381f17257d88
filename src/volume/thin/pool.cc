#include "volume/thin/pool.h"

#include <algorithm>
#include <cstring>
#include <future>
#include <mutex>

#include "block/splitter.h"
#include "volume/target.h"

namespace ferry::volume::thin {

namespace {

constexpr auto kCommitPeriod = std::chrono::seconds(1);

// One live pool per metadata device (a reloaded table reuses it).
struct Registry {
  std::mutex mu;
  std::map<const block::BlockDevice*, std::weak_ptr<Pool>> pools;
};
Registry& Pools() {
  static Registry* r = new Registry;
  return *r;
}

std::string DevName(const block::BlockDevice& d) { return "'" + std::string(d.name()) + "'"; }

// Reads the two superblock slots; `done(blank)` or an error.
struct BlankProbe {
  Pool::OpenDone done;
  block::IoRequest req;
  iovec iov{};
  std::vector<uint8_t> buf;
};

}  // namespace

Result<uint32_t> ParseThinId(std::string_view token) {
  FERRY_ASSIGN_OR_RETURN(uint64_t v, ParseNumber(token, "thin device id", kMaxThinId));
  return static_cast<uint32_t>(v);
}

Pool::Pool(std::shared_ptr<block::BlockDevice> meta, std::shared_ptr<block::BlockDevice> data,
           PoolOptions options, TargetEnv env)
    : meta_dev_(std::move(meta)), data_(std::move(data)), options_(options), env_(env) {
  zeroes_.assign(options_.data_block_bytes, 0);
}

Pool::~Pool() {
  std::lock_guard lock(Pools().mu);
  auto it = Pools().pools.find(meta_dev_.get());
  if (it != Pools().pools.end() && it->second.expired()) Pools().pools.erase(it);
}

void Pool::Open(std::shared_ptr<block::BlockDevice> meta, std::shared_ptr<block::BlockDevice> data,
                PoolOptions options, TargetEnv env, OpenDone done) {
  std::shared_ptr<Pool> pool;
  {
    std::lock_guard lock(Pools().mu);
    auto& slot = Pools().pools[meta.get()];
    pool = slot.lock();
    if (pool == nullptr) {
      pool.reset(new Pool(meta, data, options, env));
      slot = pool;
    } else if (pool->data_.get() != data.get() ||
               pool->options_.data_block_bytes != options.data_block_bytes) {
      pool = nullptr;
    }
  }
  if (pool == nullptr) {
    env.reactor->Post([done = std::move(done), m = DevName(*meta)]() mutable {
      done(FailedPrecondition("metadata device " + m +
                              " is in use by another pool with a different data device or "
                              "block size; remove that pool first"));
    });
    return;
  }
  auto opts = std::make_shared<PoolOptions>(options);
  pool->env_.reactor->Post([pool, done = std::move(done), opts]() mutable {
    // A reloaded table: the live pool serves it (once it is open).
    OpenDone reuse = [pool, done = std::move(done), opts](Result<std::shared_ptr<Pool>> r) {
      if (!r.ok()) return done(r.status());
      pool->options_ = *opts;
      if (ferry::Status s = pool->MaybeGrow(); !s.ok()) return done(std::move(s));
      done(pool);
    };
    if (pool->meta_ != nullptr) return reuse(pool);
    pool->open_waiters_.push_back(std::move(reuse));
    if (pool->open_waiters_.size() > 1) return;  // another table is opening it
    OpenOnReactor(pool, [pool](Result<std::shared_ptr<Pool>> r) {
      std::vector<OpenDone> waiters;
      waiters.swap(pool->open_waiters_);
      for (OpenDone& w : waiters) w(r);
    });
  });
}

void Pool::OpenOnReactor(std::shared_ptr<Pool> pool, OpenDone done) {
  auto probe = std::make_shared<BlankProbe>();
  const uint32_t bs = pool->meta_dev_->geometry().block_size;
  const uint64_t bytes = std::max<uint64_t>(2 * format::kBlockBytes, bs);
  if (pool->meta_dev_->geometry().size_bytes() < bytes) {
    done(InvalidArgument("metadata device " + DevName(*pool->meta_dev_) +
                         " is too small; give it at least 1 MiB"));
    return;
  }
  probe->buf.assign(bytes, 0xff);
  probe->iov = {probe->buf.data(), bytes};
  probe->req.op = block::IoOp::kRead;
  probe->req.lba = Lba(0);
  probe->req.blocks = BlockCount(bytes / bs);
  probe->req.iov = &probe->iov;
  probe->req.iovcnt = 1;
  probe->done = std::move(done);
  probe->req.done = [pool, probe](IoStatus st) mutable {
    // The request's callback holds the probe: clear it once this call is over.
    pool->env_.reactor->Post([probe] { probe->req.done = nullptr; });
    OpenDone done = std::move(probe->done);
    if (st != IoStatus::kOk) {
      done(Unavailable("reading metadata device " + DevName(*pool->meta_dev_) +
                       " failed: " + std::string(IoStatusName(st))));
      return;
    }
    const bool blank =
        std::all_of(probe->buf.begin(), probe->buf.end(), [](uint8_t b) { return b == 0; });
    OpenMetadata(std::move(pool), blank, std::move(done));
  };
  block::SubmitSplit(*pool->meta_dev_, probe->req);
}

void Pool::OpenMetadata(std::shared_ptr<Pool> pool, bool blank, OpenDone done) {
  if (pool->options_.read_only) {
    done(FailedPrecondition("metadata device " + DevName(*pool->meta_dev_) +
                            " is blank; load the pool without read_only once to format it"));
    return;
  }
  auto opened = [pool, done = std::move(done)](Result<std::unique_ptr<PoolMetadata>> r) mutable {
    if (!r.ok()) {
      done(r.status().WithContext("metadata device " + DevName(*pool->meta_dev_)));
      return;
    }
    pool->meta_ = std::move(r).value();
    if (ferry::Status s = pool->CheckOpened(); !s.ok() || !(s = pool->MaybeGrow()).ok()) {
      pool->meta_.reset();
      done(std::move(s));
      return;
    }
    std::weak_ptr<Pool> weak = pool;
    pool->meta_->set_discard_hook([weak](uint64_t first, uint64_t count) {
      if (auto p = weak.lock()) p->PassDown(first, count);
    });
    pool->env_.reactor->RunAfter(kCommitPeriod, [weak] {
      if (auto p = weak.lock()) p->Tick();
    });
    done(pool);
  };
  if (!blank) {
    PoolMetadata::Open(*pool->meta_dev_, OpenOptions{}, std::move(opened));
    return;
  }
  const uint64_t blocks = pool->data_->geometry().size_bytes() / pool->block_bytes();
  PoolMetadata::Format(
      *pool->meta_dev_,
      FormatOptions{.data_blocks = blocks, .data_block_bytes = pool->block_bytes()},
      std::move(opened));
}

ferry::Status Pool::CheckOpened() const {
  const uint64_t sectors = meta_->data_block_bytes() / 512;
  if (meta_->data_block_bytes() != block_bytes()) {
    return InvalidArgument("metadata device " + DevName(*meta_dev_) +
                           " was formatted with a data block size of " + std::to_string(sectors) +
                           " sectors; give that block size in the table");
  }
  const uint64_t have = data_->geometry().size_bytes() / block_bytes();
  if (have < meta_->data_blocks()) {
    return InvalidArgument("data device " + DevName(*data_) + " holds " + std::to_string(have) +
                           " data blocks but the metadata maps " +
                           std::to_string(meta_->data_blocks()) +
                           "; use the data device the pool was created with");
  }
  return ferry::Status::Ok();
}

ferry::Status Pool::MaybeGrow() {
  const uint64_t have = data_->geometry().size_bytes() / block_bytes();
  if (have <= meta_->data_blocks() || options_.read_only) return ferry::Status::Ok();
  FERRY_RETURN_IF_ERROR(meta_->Grow(have).WithContext("data device " + DevName(*data_)));
  FlushAndCommit(nullptr);
  WakeSpaceWaiters();
  return ferry::Status::Ok();
}

// ---- commits ----

void Pool::FlushAndCommit(IoDone done) {
  // Read-only (or after a failed commit) this only flushes: overwrites still get durable.
  commit_waiters_.push_back(std::move(done));
  if (!committing_) StartCommit();
}

void Pool::CommitSoon() {
  std::weak_ptr<Pool> weak = weak_from_this();
  env_.reactor->Post([weak] {
    if (auto p = weak.lock(); p && p->meta_ != nullptr) p->FlushAndCommit(nullptr);
  });
}

void Pool::StartCommit() {
  committing_ = true;
  in_commit_.swap(commit_waiters_);
  commit_waiters_.clear();
  flush_req_ = block::IoRequest{};
  flush_req_.op = block::IoOp::kFlush;
  flush_req_.done = [self = shared_from_this()](IoStatus st) {
    if (st != IoStatus::kOk || self->options_.read_only || self->metadata_error_ ||
        !self->meta_->dirty()) {
      self->CommitDone(st);
      return;
    }
    self->meta_->Commit([self](ferry::Status s) {
      if (!s.ok()) self->metadata_error_ = true;
      self->CommitDone(s.ok()                                       ? IoStatus::kOk
                       : s.code() == StatusCode::kResourceExhausted ? IoStatus::kNoSpace
                                                                    : IoStatus::kIoError);
    });
  };
  data_->Submit(flush_req_);
}

void Pool::CommitDone(IoStatus st) {
  std::vector<IoDone> done;
  done.swap(in_commit_);
  committing_ = false;
  for (IoDone& d : done) {
    if (d) d(st);
  }
  WakeSpaceWaiters();
  if (!commit_waiters_.empty() && !committing_) StartCommit();
}

void Pool::Tick() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<Waiter> expired;
  for (size_t i = 0; i < space_waiters_.size();) {
    if (no_space_timeout_.count() != 0 && space_waiters_[i].deadline <= now) {
      expired.push_back(std::move(space_waiters_[i]));
      space_waiters_.erase(space_waiters_.begin() + static_cast<ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  for (Waiter& w : expired) w.retry(false);
  if (meta_->dirty() && !committing_ && !options_.read_only && !metadata_error_) {
    FlushAndCommit(nullptr);
  }
  std::weak_ptr<Pool> weak = weak_from_this();
  env_.reactor->RunAfter(kCommitPeriod, [weak] {
    if (auto p = weak.lock()) p->Tick();
  });
}

// ---- cells, discards, space ----

bool Pool::Locked(uint32_t dev, uint64_t vblock) const { return cells_.contains({dev, vblock}); }

void Pool::Lock(uint32_t dev, uint64_t vblock) { cells_.try_emplace({dev, vblock}); }

void Pool::Unlock(uint32_t dev, uint64_t vblock) {
  auto it = cells_.find({dev, vblock});
  if (it == cells_.end()) return;
  std::vector<Retry> waiters = std::move(it->second);
  cells_.erase(it);
  for (Retry& r : waiters) r(true);
}

void Pool::WaitCell(uint32_t dev, uint64_t vblock, Retry retry) {
  cells_[{dev, vblock}].push_back(std::move(retry));
}

bool Pool::Discarding(uint64_t dblock) const {
  auto it = discarding_.upper_bound(dblock);
  if (it == discarding_.begin()) return false;
  --it;
  return dblock < it->first + it->second;
}

void Pool::WaitDiscard(Retry retry) { discard_waiters_.push_back(std::move(retry)); }

void Pool::PassDown(uint64_t first, uint64_t count) {
  if (options_.no_discard_passdown || options_.ignore_discard ||
      data_->limits().max_discard_bytes == 0) {
    return;
  }
  struct Op {
    block::IoRequest req;
  };
  auto op = std::make_shared<Op>();
  const uint64_t dbs = data_->geometry().block_size;
  op->req.op = block::IoOp::kDiscard;
  op->req.lba = Lba(first * block_bytes() / dbs);
  op->req.blocks = BlockCount(count * block_bytes() / dbs);
  discarding_[first] = count;
  op->req.done = [self = shared_from_this(), op, first](IoStatus) {
    self->env_.reactor->Post([op] { op->req.done = nullptr; });  // it holds op
    // A failed discard only leaves the old bytes in a free block: nothing reads them.
    self->discarding_.erase(first);
    std::vector<Retry> waiters;
    waiters.swap(self->discard_waiters_);
    for (Retry& r : waiters) r(true);
  };
  block::SubmitSplit(*data_, op->req);
}

void Pool::WaitForSpace(Retry retry) {
  out_of_space_ = true;
  space_waiters_.push_back(
      {std::move(retry), std::chrono::steady_clock::now() + no_space_timeout_});
  // Blocks freed in this transaction become allocatable when it commits.
  if (meta_->dirty()) FlushAndCommit(nullptr);
}

void Pool::BlocksReleased() {
  if (!space_waiters_.empty()) FlushAndCommit(nullptr);
}

void Pool::WakeSpaceWaiters() {
  if (meta_->free_data_blocks() == 0) return;
  out_of_space_ = false;
  std::vector<Waiter> waiters;
  waiters.swap(space_waiters_);
  for (Waiter& w : waiters) w.retry(true);
}

// ---- control path ----

void Pool::RunSync(const std::function<void()>& fn) {
  if (env_.reactor->InOwnerThread()) {
    fn();
    return;
  }
  std::promise<void> done;
  env_.reactor->Post([&fn, &done] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

std::string Pool::Status() {
  std::string s;
  RunSync([&] {
    const bool no_space = out_of_space_ || !space_waiters_.empty();
    s = std::to_string(meta_->txn()) + " " +
        std::to_string(meta_->meta_blocks() - meta_->free_meta_blocks()) + "/" +
        std::to_string(meta_->meta_blocks()) + " " + std::to_string(meta_->used_data_blocks()) +
        "/" + std::to_string(meta_->data_blocks()) + " - " +
        (options_.read_only || metadata_error_ ? "ro"
         : no_space                            ? "out_of_data_space"
                                               : "rw") +
        (options_.no_discard_passdown || options_.ignore_discard ? " no_discard_passdown"
                                                                 : " discard_passdown") +
        (options_.error_if_no_space ? " error_if_no_space" : " queue_if_no_space") + " " +
        (metadata_error_ ? "needs_check" : "-") + " " + std::to_string(options_.low_water_blocks);
  });
  return s;
}

Result<std::string> Pool::Message(std::span<const std::string> args) {
  Result<std::string> r = std::string();
  RunSync([&] { r = MessageOnReactor(args); });
  return r;
}

Result<std::string> Pool::MessageOnReactor(std::span<const std::string> args) {
  const std::string usage =
      "thin-pool messages: create_thin <id>, create_snap <id> <origin id>, delete <id>, "
      "no_space_timeout <seconds>";
  if (args.empty()) return InvalidArgument("no message; " + usage);
  const std::string& m = args[0];
  if (m == "no_space_timeout" && args.size() == 2) {
    FERRY_ASSIGN_OR_RETURN(uint64_t v, ParseNumber(args[1], "no_space_timeout", 86400));
    no_space_timeout_ = std::chrono::seconds(v);
    return std::string();
  }
  if (options_.read_only || metadata_error_) {
    return FailedPrecondition(
        "the pool is read-only; reload its table without read_only (and "
        "check the metadata if a commit failed) to change thin devices");
  }
  const uint64_t vblocks = kThinVirtualBytes / block_bytes();
  ferry::Status s =
      InvalidArgument("unknown message '" + m + "' or wrong argument count; " + usage);
  if (m == "create_thin" && args.size() == 2) {
    FERRY_ASSIGN_OR_RETURN(uint32_t dev, ParseThinId(args[1]));
    s = meta_->CreateThin(dev, vblocks);
  } else if (m == "create_snap" && args.size() == 3) {
    FERRY_ASSIGN_OR_RETURN(uint32_t dev, ParseThinId(args[1]));
    FERRY_ASSIGN_OR_RETURN(uint32_t origin, ParseThinId(args[2]));
    s = meta_->CreateSnapshot(origin, dev);
  } else if (m == "delete" && args.size() == 2) {
    FERRY_ASSIGN_OR_RETURN(uint32_t dev, ParseThinId(args[1]));
    s = meta_->DeleteThin(dev);
  }
  if (!s.ok()) return s;
  FlushAndCommit(nullptr);  // device changes are durable soon, like dm's message commit
  return std::string();
}

}  // namespace ferry::volume::thin
