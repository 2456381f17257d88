// The block-device interface: the contract every backend and every volume implements.
//
// Threads. Submit() and SubmitCopy() are called on a reactor thread (io::Reactor::Current()
// is not null). The request completes on that same reactor thread.
//
// Completion. Every submitted request completes exactly once, by calling its `done`
// callback, and never inside the submit call itself: a device that finishes synchronously
// (RAM) posts the completion to the reactor. After `done` runs the device no longer
// touches the request.
//
// Ownership. The caller owns the request object and the payload buffers it points to and
// keeps both alive and unchanged until completion. Devices never allocate payload memory
// on behalf of the caller.
//
// Ranges. A request must lie inside the device (lba + blocks <= num_blocks) and have
// blocks > 0 (except flush); read and write payload must be exactly blocks * block_size
// bytes, with buffer addresses and lengths aligned to limits().buffer_alignment. A request
// that breaks these rules completes with IoStatus::kInvalid and changes nothing.
//
// Sizes. A device may refuse requests larger than its limits with kInvalid; callers that
// do not want to care submit through block::SubmitSplit (splitter.h), which splits at the
// limits and retries kNoResources.
//
// Lifetime. A device outlives every request submitted to it; destroying a device with
// requests in flight is a caller bug.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/inline_function.h"
#include "base/io_status.h"
#include "base/units.h"

namespace ferry::volume {
class Stack;  // the volume layer's stacking capability (src/volume/stack.h)
}

namespace ferry::block {

class BlockDevice;

enum class IoOp : uint8_t {
  kRead,
  kWrite,
  kFlush,        // make every completed write durable; lba/blocks ignored
  kDiscard,      // the range may read back as anything until written; space may be freed
  kWriteZeroes,  // the range reads back as zeroes
  // The payload (one iovec of one block) written to every block of the range. Only on a
  // device whose limits().max_write_same_bytes covers the range; kNotSupported means "write
  // the pattern yourself" and nothing was written.
  kWriteSame,
  // The payload (one iovec of 2 x blocks x block size) is compare data then write data: when
  // the range holds the compare data it is replaced by the write data, atomically against
  // every other writer of the device, also other hosts of a shared one (a Ceph image);
  // otherwise nothing is written and the request completes with kMiscompare, with
  // IoRequest::miscompare_offset the first differing byte from the start of the range. Only
  // on a device whose limits().max_compare_write_bytes covers the range; kNotSupported means
  // "do it under your own lock" and nothing was compared or written.
  kCompareAndWrite,
};
std::string_view IoOpName(IoOp op);

// Request flags.
inline constexpr uint8_t kIoFua = 1u << 0;  // write is durable when it completes

using IoCallback = InlineFunction<void(IoStatus), 48>;

struct IoRequest {
  IoOp op = IoOp::kRead;
  uint8_t flags = 0;
  Lba lba;
  BlockCount blocks;
  // Payload of reads and writes, borrowed until completion; unused by other ops.
  const iovec* iov = nullptr;
  uint32_t iovcnt = 0;
  IoCallback done;
  // kCompareAndWrite that completed with kMiscompare: the first differing byte, counted
  // from the start of the range. Set by the device.
  uint64_t miscompare_offset = 0;
};

struct Geometry {
  uint32_t block_size = 512;  // bytes, a power of two
  BlockCount num_blocks;
  uint64_t size_bytes() const { return num_blocks.value() * block_size; }
};

// What a device accepts in one request. The block layer splits to fit.
struct QueueLimits {
  uint64_t max_io_bytes = 1u << 20;      // read and write payload per request
  uint32_t buffer_alignment = 1;         // payload address and length alignment (O_DIRECT)
  uint32_t max_iovecs = 1024;            // iovecs per request
  uint64_t max_discard_bytes = 0;        // 0: discard not supported
  uint64_t max_write_zeroes_bytes = 0;   // 0: write-zeroes emulated by writing zeroes
  uint64_t max_write_same_bytes = 0;     // range of one kWriteSame; 0: none (write the pattern)
  uint64_t max_compare_write_bytes = 0;  // range of one kCompareAndWrite; 0: none
  // A discarded range reads back as zeroes (RAM chunks, holes punched in a file); false
  // when what a discard leaves behind is undefined (many block devices).
  bool discard_zeroes_data = false;
  // Space is freed in units of this many bytes (aligned); 0: a block.
  uint32_t discard_granularity_bytes = 0;
  // The unit the medium writes whole (a page, a file-system block, a disk's physical
  // sector); smaller writes cost a read-modify-write. 0: the logical block size.
  uint32_t physical_block_bytes = 0;
  // Native copy (see CopyOffload). 0 max_copy_bytes: the device cannot copy natively.
  uint64_t max_copy_bytes = 0;          // bytes per copy leg
  uint32_t max_copy_segments = 0;       // segments per copy leg
  uint32_t copy_granularity_bytes = 0;  // offsets and lengths of a leg are multiples of this
};

// How a copy leg moved its bytes; reported in copy results and metrics.
enum class CopyMechanism : uint8_t {
  kNone,
  kEmulated,       // read into bounce buffers and written back by the copy engine
  kRamNative,      // memmove inside one RAM arena
  kReflink,        // FICLONERANGE: blocks shared, no data moved
  kCopyFileRange,  // copy_file_range: the kernel moved the data
  kThinShare,      // thin volumes of one pool: blocks shared in the metadata, no data moved
  kXcopy,          // EXTENDED COPY(LID1) run by a remote array (iSCSI backend)
  kOdx,            // POPULATE TOKEN + WRITE USING TOKEN run by a remote array (iSCSI backend)
  kRadosCopy,      // RADOS copy-from between objects of one Ceph cluster: bytes stay in the OSDs
  kRbdGateway,     // read and written through librbd by the rbd backend, holes skipped
};
std::string_view CopyMechanismName(CopyMechanism m);

// One contiguous piece of a copy leg, in bytes: src_offset on the source device,
// dst_offset on the destination device. Offsets and length are multiples of both devices'
// block sizes.
struct CopySegment {
  uint64_t src_offset_bytes = 0;
  uint64_t dst_offset_bytes = 0;
  uint64_t len_bytes = 0;
};

// A native copy leg: segments of `src` copied into the device it is submitted to.
struct CopyLegRequest {
  BlockDevice* src = nullptr;
  std::span<const CopySegment> segments;  // borrowed until completion
  IoCallback done;
  // Set by the device before it completes with kOk: which mechanism moved the data.
  CopyMechanism mechanism = CopyMechanism::kNone;
  // Of the leg's bytes, how many were shared by reflink when `mechanism` is another one
  // (a leg whose unaligned ends were copied and whose middle was cloned); 0 otherwise.
  uint64_t reflinked_bytes = 0;
  // Of the leg's other bytes, how many `secondary` moved when a device used two mechanisms
  // in one leg (an RBD leg copied in the cluster whose unaligned ends went through the
  // gateway); kNone and 0 otherwise.
  CopyMechanism secondary = CopyMechanism::kNone;
  uint64_t secondary_bytes = 0;
  // Set by a device that completes with kNotSupported and can say why (a remote array's
  // refusal); the copy engine shows it to the user. A device that completes with kOk by a
  // lesser mechanism may set it to say why the better one was not used (also shown).
  // Empty otherwise.
  std::string refusal;
};

// The copy-offload capability of a destination device.
//
// SubmitCopy follows the threading, completion and ownership rules above. Completing with
// kNotSupported means "emulate this leg": the destination range may be partly written,
// and the caller rewrites all of it. A leg whose segments overlap on the same device
// behaves like memmove per segment. Legs must respect the destination's copy limits.
class CopyOffload {
 public:
  virtual ~CopyOffload() = default;
  // True when legs from `src` into this device can be copied natively. No I/O; any
  // thread. When false and `why_not` is not null, it gets a reason for the user.
  virtual bool CanCopyFrom(const BlockDevice& src, std::string* why_not) const = 0;
  virtual void SubmitCopy(CopyLegRequest& req) = 0;
  // Asks the device to stop a leg in flight (its copy was cancelled): a device whose copies
  // run elsewhere (a remote array) aborts them there. On the submitting reactor. The leg
  // still completes exactly once, with kAborted or with what it had finished. The default
  // does nothing: the leg runs to its end.
  virtual void CancelCopy(CopyLegRequest& req) { (void)req; }
};

// Provisioning status of a run of blocks (GET LBA STATUS, SBC-3 5.6).
struct ProvisioningExtent {
  bool mapped = true;  // false: deallocated (reads as zeroes, holds no space)
  BlockCount blocks;   // how many blocks from the queried LBA share this status (>= 1)
};
// Consecutive runs from the queried LBA, or an error status and none.
using ProvisioningDone = std::function<void(IoStatus, std::vector<ProvisioningExtent>)>;

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;

  // The instance name (unique in a registry) and the backend type ("ram", "file").
  virtual std::string_view name() const = 0;
  virtual std::string_view type() const = 0;
  // The block size is fixed for the device's lifetime; num_blocks may change while it is
  // open (a volume's table reloaded, a remote LU or image resized): the device replaces it
  // and readers on other threads see the old or the new value. Requests are checked against
  // the size at submission; a SCSI LU over the device tells its initiators (CAPACITY DATA
  // HAS CHANGED) at their next command.
  virtual const Geometry& geometry() const = 0;
  virtual const QueueLimits& limits() const = 0;
  // Writes, discards and write-zeroes complete with kReadOnly.
  virtual bool read_only() const { return false; }

  virtual void Submit(IoRequest& req) = 0;

  // The native-copy capability, or nullptr when the device has none (the default).
  virtual CopyOffload* copy_offload() { return nullptr; }

  // The stacking capability of a device built on other devices by a table of targets (a
  // volume), which the layers above use to hold it open, walk its table and pin it for
  // copies; nullptr for every other device (the default). The volume layer declares the
  // interface; the block layer only carries it, as it carries CopyOffload.
  virtual volume::Stack* stack() { return nullptr; }
  virtual const volume::Stack* stack() const { return nullptr; }

  // Whether blocks from `lba` (inside the device) hold space, and how many blocks from
  // there, at most `max` (> 0), share that status. A metadata lookup (a map, lseek
  // SEEK_DATA), cheap enough for a reactor thread; any thread. Devices that cannot tell
  // report everything mapped (the default).
  virtual ProvisioningExtent Provisioning(Lba lba, BlockCount max) const {
    (void)lba;
    return {true, max};
  }

  // The same, asynchronously, for callers that can wait (SCSI GET LBA STATUS): up to
  // `max_extents` consecutive runs from `lba` (inside the device), covering at most `max`
  // blocks. Submit's thread and completion rules apply: `done` runs later on the calling
  // reactor, never inside this call. The default asks Provisioning() run by run; a device
  // whose status costs a round trip (a remote LU) overrides it.
  virtual void QueryProvisioning(Lba lba, BlockCount max, uint32_t max_extents,
                                 ProvisioningDone done);
};

// Checks a request against the device's geometry and limits (the "Ranges" rules above,
// and the read-only rule). Returns kOk or the status to complete the request with.
IoStatus ValidateRequest(const BlockDevice& dev, const IoRequest& req);

}  // namespace ferry::block
