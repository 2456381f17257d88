#include "volume/thin/thin_pool_target.h"

#include "io/reactor.h"

namespace ferry::volume::thin {

namespace {
// dm-thin's limits: 64 KiB .. 1 GiB, a multiple of 64 KiB.
constexpr uint64_t kMinBlockSectors = 128;
constexpr uint64_t kMaxBlockSectors = 2097152;
}  // namespace

Result<std::unique_ptr<Target>> ThinPoolTarget::Create(const TargetArgs& a) {
  if (a.args.size() < 4) {
    return InvalidArgument(
        "expected <metadata dev> <data dev> <data block size (sectors)> <low water mark "
        "(blocks)> [<#features> <features>...], got " +
        std::to_string(a.args.size()) + " arguments");
  }
  FERRY_ASSIGN_OR_RETURN(uint64_t block_sectors,
                         ParseNumber(a.args[2], "data block size", kMaxBlockSectors));
  if (block_sectors < kMinBlockSectors || block_sectors % kMinBlockSectors != 0) {
    return InvalidArgument("data block size " + std::to_string(block_sectors) +
                           " sectors is not a multiple of 128 sectors (64 KiB) between 128 and " +
                           std::to_string(kMaxBlockSectors));
  }
  FERRY_ASSIGN_OR_RETURN(uint64_t lwm, ParseNumber(a.args[3], "low water mark"));
  PoolOptions o;
  o.data_block_bytes = static_cast<uint32_t>(block_sectors * kSectorBytes);
  o.low_water_blocks = lwm;
  if (a.args.size() > 4) {
    FERRY_ASSIGN_OR_RETURN(uint64_t n, ParseNumber(a.args[4], "number of features"));
    if (n != a.args.size() - 5) {
      return InvalidArgument("number of features " + std::to_string(n) + " does not match the " +
                             std::to_string(a.args.size() - 5) + " words that follow it");
    }
    FERRY_RETURN_IF_ERROR(ParseFeatures(a.args.subspan(5), &o));
  }
  if (a.env == nullptr || a.env->reactor == nullptr || a.env->mover == nullptr) {
    return FailedPrecondition(
        "needs a reactor and a data mover (TableOptions::env); the owner of the table must "
        "provide them");
  }
  auto meta = ResolveDevice(a, a.args[0], 0, 0);
  if (!meta.ok()) return meta.status().WithContext("metadata device");
  auto data = ResolveDevice(a, a.args[1], 0, a.num_sectors);
  if (!data.ok()) return data.status().WithContext("data device");
  if ((*data)->geometry().size_bytes() < o.data_block_bytes) {
    return InvalidArgument("data device '" + a.args[1] + "' is smaller than one data block");
  }
  if (o.data_block_bytes % (*data)->geometry().block_size != 0) {
    return InvalidArgument("data block size is not a multiple of data device '" + a.args[1] +
                           "''s block size");
  }
  std::unique_ptr<ThinPoolTarget> t(new ThinPoolTarget(a.num_sectors, *meta, *data));
  t->meta_name_ = a.args[0];
  t->data_name_ = a.args[1];
  t->options_ = o;
  t->env_ = *a.env;
  return std::unique_ptr<Target>(std::move(t));
}

ferry::Status ThinPoolTarget::ParseFeatures(std::span<const std::string> args, PoolOptions* o) {
  for (const std::string& w : args) {
    bool* flag = w == "skip_block_zeroing"    ? &o->skip_block_zeroing
                 : w == "ignore_discard"      ? &o->ignore_discard
                 : w == "no_discard_passdown" ? &o->no_discard_passdown
                 : w == "read_only"           ? &o->read_only
                 : w == "error_if_no_space"   ? &o->error_if_no_space
                                              : nullptr;
    if (flag == nullptr) {
      return InvalidArgument("unknown feature '" + w +
                             "' (known: skip_block_zeroing, ignore_discard, "
                             "no_discard_passdown, read_only, error_if_no_space)");
    }
    if (*flag) return InvalidArgument("feature " + w + " is given twice");
    *flag = true;
  }
  return ferry::Status::Ok();
}

void ThinPoolTarget::Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
                         std::vector<MappedPiece>* out) const {
  if (op == block::IoOp::kFlush) offset_bytes = len_bytes = 0;
  out->push_back({.volume_offset_bytes = offset_bytes,
                  .len_bytes = len_bytes,
                  .kind = PieceKind::kDevice,
                  .dev = data_.get(),
                  .dev_offset_bytes = offset_bytes});
}

std::string ThinPoolTarget::TableArgs() const {
  std::string words;
  int n = 0;
  auto add = [&](bool on, const char* w) {
    if (!on) return;
    words += " ";
    words += w;
    ++n;
  };
  add(options_.skip_block_zeroing, "skip_block_zeroing");
  add(options_.ignore_discard, "ignore_discard");
  add(options_.no_discard_passdown, "no_discard_passdown");
  add(options_.read_only, "read_only");
  add(options_.error_if_no_space, "error_if_no_space");
  return meta_name_ + " " + data_name_ + " " +
         std::to_string(options_.data_block_bytes / kSectorBytes) + " " +
         std::to_string(options_.low_water_blocks) + " " + std::to_string(n) + words;
}

std::string ThinPoolTarget::Status() const { return pool_ ? pool_->Status() : "Fail"; }

Result<std::string> ThinPoolTarget::Message(std::span<const std::string> args) {
  if (pool_ == nullptr) return FailedPrecondition("the pool is not prepared yet");
  return pool_->Message(args);
}

void ThinPoolTarget::ForEachUnderlying(
    const std::function<void(block::BlockDevice&, uint64_t)>& fn) const {
  fn(*meta_.get(), 0);
  fn(*data_.get(), 0);
}

void ThinPoolTarget::Prepare(PrepareDone done) {
  Pool::Open(
      meta_.shared(), data_.shared(), options_, env_,
      [this, d = std::make_shared<PrepareDone>(std::move(done))](Result<std::shared_ptr<Pool>> r) {
        if (!r.ok()) {
          (*d)(r.status());
          return;
        }
        pool_ = std::move(r).value();
        (*d)(ferry::Status::Ok());
      });
}

void ThinPoolTarget::SubmitPiece(PieceIo& io) {
  if (io.child.op != block::IoOp::kFlush || pool_ == nullptr) {
    Target::SubmitPiece(io);
    return;
  }
  // The commit flushes the data device before it writes the metadata.
  io::Reactor* home = io::Reactor::Current();
  pool_->reactor()->Post([pool = pool_, &io, home] {
    pool->FlushAndCommit(
        [&io, home](IoStatus st) { home->Post([&io, st] { io.child.done(st); }); });
  });
}

void ThinPoolTarget::Presuspend() {
  if (pool_) pool_->CommitSoon();
}

}  // namespace ferry::volume::thin
