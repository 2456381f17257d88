#include "volume/target.h"

#include <cstring>

#include "block/splitter.h"
#include "io/reactor.h"
#include "volume/stack.h"

namespace ferry::volume {

// A table holds the stacks it names open (DeviceRef, target.h).
DeviceRef::DeviceRef(std::shared_ptr<block::BlockDevice> dev) : dev_(std::move(dev)) {
  if (Stack* s = dev_ != nullptr ? dev_->stack() : nullptr) s->Open();
}

DeviceRef::~DeviceRef() {
  if (Stack* s = dev_ != nullptr ? dev_->stack() : nullptr) s->Close();
}

void CompletePosted(block::IoCallback& done, IoStatus st) {
  io::Reactor::Current()->Post([&done, st] { done(st); });
}

void Target::SubmitPiece(PieceIo& io) {
  switch (io.piece.kind) {
    case PieceKind::kDevice: block::SubmitSplit(*io.piece.dev, io.child); return;
    case PieceKind::kZero:
      // dm-zero: reads return zeroes, writes (and discards) are accepted and dropped.
      if (io.child.op == block::IoOp::kRead) {
        for (uint32_t i = 0; i < io.child.iovcnt; ++i) {
          std::memset(io.child.iov[i].iov_base, 0, io.child.iov[i].iov_len);
        }
      }
      CompletePosted(io.child.done, IoStatus::kOk);
      return;
    case PieceKind::kError: CompletePosted(io.child.done, IoStatus::kIoError); return;
  }
}

void Target::SubmitCopy(block::CopyLegRequest& req) {
  CompletePosted(req.done, IoStatus::kNotSupported);
}

Result<std::string> Target::Message(std::span<const std::string> args) {
  (void)args;
  return InvalidArgument("target takes no messages");
}

Result<uint64_t> ParseNumber(std::string_view token, std::string_view what, uint64_t max) {
  if (token.empty() || token.size() > 40) {
    return InvalidArgument(std::string(what) + " '" + std::string(token) +
                           "' is not a decimal number");
  }
  uint64_t v = 0;
  for (char c : token) {
    if (c < '0' || c > '9') {
      return InvalidArgument(std::string(what) + " '" + std::string(token) +
                             "' is not a decimal number");
    }
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) {
      return InvalidArgument(std::string(what) + " '" + std::string(token) + "' overflows 64 bits");
    }
    v = v * 10 + digit;
  }
  if (v > max) {
    return InvalidArgument(std::string(what) + " " + std::to_string(v) + " is larger than " +
                           std::to_string(max));
  }
  return v;
}

Result<std::shared_ptr<block::BlockDevice>> ResolveDevice(const TargetArgs& a,
                                                          std::string_view name,
                                                          uint64_t offset_sectors,
                                                          uint64_t len_sectors) {
  std::shared_ptr<block::BlockDevice> dev;
  if (a.lookup != nullptr && *a.lookup) dev = (*a.lookup)(name);
  if (dev == nullptr) {
    return NotFound("device '" + std::string(name) + "' does not exist (create it first)");
  }
  const uint64_t dev_sectors = dev->geometry().size_bytes() / kSectorBytes;
  if (offset_sectors > dev_sectors || len_sectors > dev_sectors - offset_sectors) {
    return OutOfRange("device '" + std::string(name) + "' has " + std::to_string(dev_sectors) +
                      " sectors; offset " + std::to_string(offset_sectors) + " + length " +
                      std::to_string(len_sectors) +
                      " runs past its end (shorten the line or lower the offset)");
  }
  return dev;
}

}  // namespace ferry::volume
