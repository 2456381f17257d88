// A volume target: the device-mapper `target_type` of Ferry.
//
// A target owns one line of a table: it maps a range of the volume (relative to the start of
// its line) onto ranges of underlying devices, or onto nothing (zero, error). The mapping is
// a pure function, Map(), so that the copy engine's translate step (src/copy/translate.h)
// can walk a copy range down a stack of volumes without doing I/O; the Volume uses the same
// function to split reads and writes.
//
// Lifecycle. A target is built by its factory (builtin.h) from the arguments of a table line
// and lives as long as its table. Its table arguments print back (TableArgs) so that parse
// -> print -> parse gives the same table.
//
// Threads. A table is shared by every reactor that submits I/O to the volume: Map,
// SubmitPiece and EndIo may run on several reactor threads at once, so mutable state inside
// a target is atomic or locked. Status, TableArgs and Message are control-path calls (any
// thread).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/inline_function.h"
#include "base/status.h"
#include "ferry/block_device.h"
#include "volume/data_mover.h"

namespace ferry::volume {

namespace thin {
class PoolLine;
}

inline constexpr uint64_t kSectorBytes = 512;  // table offsets and lengths are dm sectors

// What a piece of a volume range lands on.
enum class PieceKind : uint8_t {
  kDevice,  // `dev` at `dev_offset_bytes`
  kZero,    // reads return zeroes, writes are dropped (dm-zero)
  kError,   // every request fails (dm-error)
};

// One contiguous piece of a mapped volume range.
struct MappedPiece {
  uint64_t volume_offset_bytes = 0;  // where the piece starts on the volume
  uint64_t len_bytes = 0;            // 0 only for flush pieces
  PieceKind kind = PieceKind::kDevice;
  block::BlockDevice* dev = nullptr;  // kDevice only; kept alive by the table
  uint64_t dev_offset_bytes = 0;
  uint32_t target_index = 0;  // the table line (0-based) the piece comes from
  uint32_t stripe = 0;        // striped: which stripe; 0 otherwise
};

// One piece of a volume request in flight: the child request addresses `piece.dev` (lba and
// blocks in its block size) with the parent's payload sliced to the piece. Targets may keep
// per-piece state in the scratch fields.
struct PieceIo {
  MappedPiece piece;
  block::IoRequest child;
  uint8_t flags = 0;                                // target scratch (flakey: submitted while down)
  std::unique_ptr<std::byte[]> bounce;              // target scratch (flakey: corrupted write copy)
  iovec bounce_iov{};                               // target scratch
  std::chrono::steady_clock::time_point submitted;  // set by the volume
};

// Resolves a device name of a table line; nullptr when there is none.
using DeviceLookup = std::function<std::shared_ptr<block::BlockDevice>(std::string_view)>;
// The clock of time-driven targets (flakey); tests inject their own.
using TargetClock = std::function<std::chrono::steady_clock::time_point()>;

// A reference from a table to an underlying device. While it exists, a stack it names (a
// volume, stack.h) counts as open (Volume::Remove refuses).
class DeviceRef {
 public:
  DeviceRef() = default;
  explicit DeviceRef(std::shared_ptr<block::BlockDevice> dev);
  ~DeviceRef();
  DeviceRef(DeviceRef&& o) noexcept : dev_(std::move(o.dev_)) {}
  DeviceRef& operator=(DeviceRef&&) = delete;
  DeviceRef(const DeviceRef&) = delete;
  DeviceRef& operator=(const DeviceRef&) = delete;
  block::BlockDevice* get() const { return dev_.get(); }
  const std::shared_ptr<block::BlockDevice>& shared() const { return dev_; }

 private:
  std::shared_ptr<block::BlockDevice> dev_;
};

// What a factory gets: the line's length and arguments and the environment.
struct TargetArgs {
  uint64_t num_sectors = 0;
  std::span<const std::string> args;
  const DeviceLookup* lookup = nullptr;
  const TargetClock* clock = nullptr;
  const TargetEnv* env = nullptr;  // never null when built by Table::Parse
};

class Target {
 public:
  explicit Target(uint64_t num_sectors) : num_sectors_(num_sectors) {}
  virtual ~Target() = default;
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  virtual std::string_view type() const = 0;
  uint64_t num_sectors() const { return num_sectors_; }

  // Pure mapping (no I/O, any thread): appends the pieces of [offset, offset + len) bytes of
  // this target for `op`, cut at every boundary (device, stripe chunk). Offsets are relative
  // to the target's start; the caller fills volume_offset_bytes and target_index and keeps
  // the range inside the target. For kFlush (offset and len ignored) it appends one piece
  // of length 0 per device that must see the flush.
  virtual void Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
                   std::vector<MappedPiece>* out) const = 0;

  // Runs one piece on a reactor thread: completes io.child.done exactly once, never inline.
  // The default forwards kDevice pieces (through block::SubmitSplit), fills reads of kZero
  // pieces with zeroes and drops their writes, and fails kError pieces with kIoError.
  virtual void SubmitPiece(PieceIo& io);
  // Called when a piece's child completed with `st`; returns the status of the piece.
  virtual IoStatus EndIo(PieceIo& io, IoStatus st) {
    (void)io;
    return st;
  }

  // The line's arguments as they print in a table (canonical form, parses back the same).
  virtual std::string TableArgs() const = 0;
  // Runtime status (dmsetup status), "" when the target has none.
  virtual std::string Status() const { return ""; }
  // A message (dmsetup message). Returns text for the caller ("" for none) or an error.
  virtual Result<std::string> Message(std::span<const std::string> args);

  // Devices the target uses, with the offset it starts at on each, in sectors.
  virtual void ForEachUnderlying(
      const std::function<void(block::BlockDevice&, uint64_t offset_sectors)>& fn) const {
    (void)fn;
  }
  // Extra alignment constraints of the target against the volume block size (in sectors,
  // a power of two); device offsets are checked by the table. "" when fine.
  virtual std::string CheckAlignment(uint64_t block_sectors) const {
    (void)block_sectors;
    return "";
  }
  // True when a copy may bypass the target: its kDevice pieces behave exactly like the
  // device ranges they name (no I/O-time behaviour in SubmitPiece or EndIo that a copy must
  // see), so the copy engine's translate step may walk a copy range through it to those
  // devices. Linear and striped are; targets that inject faults, delay, or own the data
  // (flakey, delay, mirror, snapshot, thin) are not, and copies go through their volume's
  // Submit. Defaults to false.
  virtual bool copy_transparent() const { return false; }
  // Native copies into this line, for targets that own their data (thin: blocks shared
  // inside one pool). Volume::copy_offload() offers them for legs whose destination lies
  // inside one such line. copy_granularity_bytes() > 0 enables them: a leg's offsets and
  // lengths on the line are multiples of it (the copy engine emulates unaligned edges).
  virtual uint32_t copy_granularity_bytes() const { return 0; }
  // True when legs from `src` can be copied natively into this line. No I/O; any thread.
  virtual bool CanCopyFrom(const block::BlockDevice& src, std::string* why_not) const {
    (void)src;
    if (why_not != nullptr) *why_not = std::string(type()) + " lines have no native copy";
    return false;
  }
  // A native copy leg into this line: destination offsets are relative to the line's start,
  // source offsets are on req.src. Completes req.done once, never inline, on the calling
  // reactor, and sets req.mechanism on success; kNotSupported: the engine emulates the leg.
  virtual void SubmitCopy(block::CopyLegRequest& req);
  // Asynchronous preparation once the table is built and before it serves I/O: opening or
  // formatting on-disk state (thin-pool metadata, a snapshot's exception store, a mirror's
  // region log). `done` runs exactly once, on any thread, possibly inside the call; an
  // error fails the create or load that built the table (its message says what to fix).
  // Called once per table, by PrepareTable (table.h). The default completes OK at once.
  using PrepareDone = InlineFunction<void(ferry::Status), 48>;
  virtual void Prepare(PrepareDone done) { done(ferry::Status::Ok()); }
  // Provisioning of the line's blocks from `offset_bytes` (GET LBA STATUS, Volume::Provisioning)
  // for targets that own their mapping (thin): the status of the first block and how many
  // blocks of `block_size` bytes from there (at most len_bytes / block_size) share it.
  // std::nullopt (the default): the volume asks the devices Map() names.
  virtual std::optional<block::ProvisioningExtent> Provisioning(uint64_t offset_bytes,
                                                                uint64_t len_bytes,
                                                                uint32_t block_size) const {
    (void)offset_bytes;
    (void)len_bytes;
    (void)block_size;
    return std::nullopt;
  }
  // The line's place in a thin pool (thin/pool_line.h): a thin-pool line runs one, a thin
  // line is a thin device of one. Thin lines ask it of the lines of other volumes (a pool
  // volume, a copy's source) through Stack::active_table, without knowing their types.
  // nullptr (the default) for lines outside any pool.
  virtual const thin::PoolLine* pool_line() const { return nullptr; }
  // Hooks around suspend and resume (dm's presuspend / resume); the defaults do nothing.
  virtual void Presuspend() {}
  virtual void Resume() {}

 private:
  const uint64_t num_sectors_;
};

// Completes `done` with `st` from a posted task on the current reactor.
void CompletePosted(block::IoCallback& done, IoStatus st);

// Factory helpers, for targets: messages without the "line N: type:" prefix (the table adds
// it).
// Parses a decimal unsigned number; `what` names the argument in the error.
Result<uint64_t> ParseNumber(std::string_view token, std::string_view what,
                             uint64_t max = UINT64_MAX);
// Looks up `name`; checks that [offset, offset + len) sectors lies inside it.
Result<std::shared_ptr<block::BlockDevice>> ResolveDevice(const TargetArgs& a,
                                                          std::string_view name,
                                                          uint64_t offset_sectors,
                                                          uint64_t len_sectors);

}  // namespace ferry::volume
