#include "volume/flakey_target.h"

#include <cstring>

namespace ferry::volume {

namespace {
constexpr uint8_t kSubmittedDown = 1;

bool IsWrite(block::IoOp op) { return op != block::IoOp::kRead; }
}  // namespace

Result<std::unique_ptr<Target>> FlakeyTarget::Create(const TargetArgs& a) {
  if (a.args.size() < 4) {
    return InvalidArgument(
        "expected <dev> <offset> <up_interval> <down_interval> "
        "[<#feature_args> <feature_args>...], got " +
        std::to_string(a.args.size()) + " arguments");
  }
  FERRY_ASSIGN_OR_RETURN(uint64_t offset, ParseNumber(a.args[1], "offset"));
  FERRY_ASSIGN_OR_RETURN(uint64_t up, ParseNumber(a.args[2], "up interval", UINT32_MAX));
  FERRY_ASSIGN_OR_RETURN(uint64_t down, ParseNumber(a.args[3], "down interval", UINT32_MAX));
  if (up + down == 0) {
    return InvalidArgument("up interval + down interval is 0 seconds; give at least 1");
  }
  Features f;
  bool any = false;
  if (a.args.size() > 4) {
    FERRY_ASSIGN_OR_RETURN(uint64_t n, ParseNumber(a.args[4], "number of feature arguments"));
    if (n != a.args.size() - 5) {
      return InvalidArgument("number of feature arguments " + std::to_string(n) +
                             " does not match the " + std::to_string(a.args.size() - 5) +
                             " words that follow it");
    }
    FERRY_RETURN_IF_ERROR(ParseFeatures(a.args.subspan(5), &f));
    any = n > 0;
  }
  FERRY_ASSIGN_OR_RETURN(auto dev, ResolveDevice(a, a.args[0], offset, a.num_sectors));
  std::unique_ptr<FlakeyTarget> t(new FlakeyTarget(a.num_sectors, std::move(dev)));
  t->name_ = a.args[0];
  t->offset_sectors_ = offset;
  t->up_s_ = up;
  t->down_s_ = down;
  t->f_ = f;
  t->any_feature_ = any;
  t->clock_ = *a.clock;
  t->start_ = t->clock_();
  return std::unique_ptr<Target>(std::move(t));
}

Status FlakeyTarget::ParseFeatures(std::span<const std::string> args, Features* f) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& w = args[i];
    bool* flag = w == "drop_writes"    ? &f->drop_writes
                 : w == "error_writes" ? &f->error_writes
                 : w == "error_reads"  ? &f->error_reads
                                       : nullptr;
    if (flag != nullptr) {
      if (*flag) return InvalidArgument("feature " + w + " is given twice");
      *flag = true;
      continue;
    }
    if (w != "corrupt_bio_byte") {
      return InvalidArgument("unknown feature '" + w +
                             "' (known: drop_writes, error_writes, error_reads, "
                             "corrupt_bio_byte)");
    }
    if (f->corrupt) return InvalidArgument("feature corrupt_bio_byte is given twice");
    if (args.size() - i - 1 < 4) {
      return InvalidArgument(
          "corrupt_bio_byte needs 4 arguments: <Nth_byte> <r|w> <value> "
          "<flags>");
    }
    FERRY_ASSIGN_OR_RETURN(f->corrupt_byte,
                           ParseNumber(args[i + 1], "corrupt_bio_byte Nth_byte", UINT32_MAX));
    if (f->corrupt_byte == 0) {
      return InvalidArgument("corrupt_bio_byte Nth_byte counts from 1; 0 is not a byte");
    }
    if (args[i + 2] != "r" && args[i + 2] != "w") {
      return InvalidArgument("corrupt_bio_byte direction '" + args[i + 2] +
                             "' is neither r (reads) nor w (writes)");
    }
    f->corrupt_writes = args[i + 2] == "w";
    FERRY_ASSIGN_OR_RETURN(uint64_t v, ParseNumber(args[i + 3], "corrupt_bio_byte value", 255));
    f->corrupt_value = static_cast<uint8_t>(v);
    FERRY_ASSIGN_OR_RETURN(uint64_t fl,
                           ParseNumber(args[i + 4], "corrupt_bio_byte flags", UINT32_MAX));
    f->corrupt_flags = static_cast<uint32_t>(fl);
    f->corrupt = true;
    i += 4;
  }
  if (f->drop_writes && f->error_writes) {
    return InvalidArgument("features drop_writes and error_writes conflict; choose one");
  }
  if (f->corrupt && f->corrupt_writes && (f->drop_writes || f->error_writes)) {
    return InvalidArgument("corrupt_bio_byte on writes (w) conflicts with " +
                           std::string(f->drop_writes ? "drop_writes" : "error_writes"));
  }
  return ferry::Status::Ok();
}

void FlakeyTarget::Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
                       std::vector<MappedPiece>* out) const {
  if (op == block::IoOp::kFlush) offset_bytes = len_bytes = 0;
  out->push_back({.volume_offset_bytes = offset_bytes,
                  .len_bytes = len_bytes,
                  .kind = PieceKind::kDevice,
                  .dev = dev_.get(),
                  .dev_offset_bytes = offset_sectors_ * kSectorBytes + offset_bytes});
}

bool FlakeyTarget::down() const {
  const int forced = forced_.load(std::memory_order_relaxed);
  if (forced != 0) return forced == 2;
  const auto elapsed = clock_() - start_;
  if (elapsed.count() < 0) return false;
  const uint64_t s =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(elapsed).count());
  return s % (up_s_ + down_s_) >= up_s_;
}

bool FlakeyTarget::CorruptMatches(const PieceIo& io, bool write) const {
  return f_.corrupt && f_.corrupt_writes == write &&
         (io.child.flags & f_.corrupt_flags) == f_.corrupt_flags &&
         f_.corrupt_byte <= io.piece.len_bytes;
}

void FlakeyTarget::SubmitPiece(PieceIo& io) {
  if (!down()) {
    Target::SubmitPiece(io);
    return;
  }
  io.flags |= kSubmittedDown;
  const bool error_reads = f_.error_reads || !any_feature_;
  const bool error_writes = f_.error_writes || !any_feature_;
  if (!IsWrite(io.child.op)) {
    if (error_reads) {
      CompletePosted(io.child.done, IoStatus::kIoError);
    } else {
      Target::SubmitPiece(io);  // EndIo may corrupt the data
    }
    return;
  }
  if (f_.drop_writes) {
    CompletePosted(io.child.done, IoStatus::kOk);
    return;
  }
  if (error_writes) {
    CompletePosted(io.child.done, IoStatus::kIoError);
    return;
  }
  if (io.child.op == block::IoOp::kWrite && CorruptMatches(io, /*write=*/true)) {
    // The caller's buffer is borrowed read-only: corrupt a private copy. Flakey is a test
    // target, so this allocation on the I/O path is acceptable.
    const uint64_t len = io.piece.len_bytes;
    io.bounce.reset(new std::byte[len]);
    uint64_t at = 0;
    for (uint32_t i = 0; i < io.child.iovcnt; ++i) {
      std::memcpy(io.bounce.get() + at, io.child.iov[i].iov_base, io.child.iov[i].iov_len);
      at += io.child.iov[i].iov_len;
    }
    io.bounce[f_.corrupt_byte - 1] = static_cast<std::byte>(f_.corrupt_value);
    io.bounce_iov = {io.bounce.get(), len};
    io.child.iov = &io.bounce_iov;
    io.child.iovcnt = 1;
  }
  Target::SubmitPiece(io);
}

IoStatus FlakeyTarget::EndIo(PieceIo& io, IoStatus st) {
  io.bounce.reset();
  if (st != IoStatus::kOk || (io.flags & kSubmittedDown) == 0 ||
      io.child.op != block::IoOp::kRead || !CorruptMatches(io, /*write=*/false)) {
    return st;
  }
  uint64_t skip = f_.corrupt_byte - 1;
  for (uint32_t i = 0; i < io.child.iovcnt; ++i) {
    if (skip < io.child.iov[i].iov_len) {
      static_cast<uint8_t*>(io.child.iov[i].iov_base)[skip] = f_.corrupt_value;
      break;
    }
    skip -= io.child.iov[i].iov_len;
  }
  return st;
}

std::string FlakeyTarget::TableArgs() const {
  std::string words;
  int n = 0;
  auto add = [&](const std::string& w) {
    words += " " + w;
    ++n;
  };
  if (f_.drop_writes) add("drop_writes");
  if (f_.error_writes) add("error_writes");
  if (f_.error_reads) add("error_reads");
  if (f_.corrupt) {
    add("corrupt_bio_byte");
    add(std::to_string(f_.corrupt_byte));
    add(f_.corrupt_writes ? "w" : "r");
    add(std::to_string(f_.corrupt_value));
    add(std::to_string(f_.corrupt_flags));
  }
  return name_ + " " + std::to_string(offset_sectors_) + " " + std::to_string(up_s_) + " " +
         std::to_string(down_s_) + " " + std::to_string(n) + words;
}

std::string FlakeyTarget::Status() const {
  return std::string(down() ? "down" : "up") +
         (forced_.load(std::memory_order_relaxed) != 0 ? " forced" : " auto");
}

Result<std::string> FlakeyTarget::Message(std::span<const std::string> args) {
  if (args.size() == 1) {
    const int mode = args[0] == "auto" ? 0 : args[0] == "up" ? 1 : args[0] == "down" ? 2 : -1;
    if (mode >= 0) {
      forced_.store(mode, std::memory_order_relaxed);
      return std::string();
    }
  }
  return InvalidArgument(
      "flakey messages are 'up', 'down' (force the state) and 'auto' "
      "(follow the intervals again)");
}

}  // namespace ferry::volume
