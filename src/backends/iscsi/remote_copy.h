// One native copy leg between two LUs of remote arrays, moved by the arrays themselves:
// EXTENDED COPY when both LUs sit behind one target (SPC-4 6.4 LID1, or 6.5 LID4 where the
// destination lists it in VPD 8Fh), else POPULATE TOKEN +
// WRITE USING TOKEN (SBC-3, "ODX") when both offer ROD tokens: tokens are portable between the
// targets of one array, and WRITE USING TOKEN refuses a token from another array, which then
// reads as "not offloadable" below.
//
// Who does what. The device (IscsiDevice) reads VPD 83h, VPD 8Fh and RECEIVE COPY OPERATING
// PARAMETERS of each LU at attach (the CDB builders are in tpc_codec.h), decodes them with
// DecodeCopyCapabilities, and keeps the result for the LU's lifetime. Its CanCopyFrom asks
// ChooseRemoteCopy; its SubmitCopy makes one RemoteCopier per leg and completes the leg from
// the RemoteCopier's result: kNotSupported means "emulate this leg" (block_device.h), and it
// is also the device's cue to remember the pair as not offloadable, with `reason`.
//
// Commands. EXTENDED COPY goes to the destination LU (its copy manager pulls from the source
// by the E4h CSCD naming it). POPULATE TOKEN and RECEIVE ROD TOKEN INFORMATION go to the source
// LU, WRITE USING TOKEN to the destination LU, each through that LU's channel. The leg is cut by
// the arrays' limits (65535 blocks and MAXIMUM SEGMENT LENGTH per 02h segment, segment and
// descriptor-list limits per EXTENDED COPY; MAXIMUM TOKEN TRANSFER SIZE and MAXIMUM RANGE
// DESCRIPTORS per token, with WRITE USING TOKEN draining a long token by OFFSET INTO ROD) and
// at most `max_in_flight` commands (or tokens) run at once.
//
// Outcomes. A refusal (ILLEGAL REQUEST, COPY ABORTED, a ROD token that covers less than asked,
// ... see Classify in tpc_codec.h) stops issuing work and completes kNotSupported with the
// reason once the commands in flight are done. BUSY, TASK SET FULL, UNIT ATTENTION and
// similar are retried up to `max_retries` times per command, with a growing delay; after that
// the leg is refused the same way. MEDIUM ERROR, HARDWARE ERROR, DATA PROTECT fail the leg with
// that IoStatus, as does a command that got no answer (the channel's transport status).
//
// Threads. Everything runs on `reactor`'s thread: construct, Start and Abort there; the
// channels complete there; `done` runs there exactly once, never inside Start.
//
// Lifetime. The channels and the capabilities are borrowed and must outlive the copier; the
// copier itself must stay alive until `done` has run (it may be destroyed inside `done`).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backends/iscsi/scsi_channel.h"
#include "backends/iscsi/tpc_codec.h"
#include "ferry/block_device.h"
#include "io/reactor.h"

namespace ferry::backends::iscsi {

// One end of the copy.
struct RemoteLu {
  ScsiChannel* channel = nullptr;  // connected to this LU's target
  uint64_t lun = 0;
  uint32_t block_size = 0;                 // logical block size (READ CAPACITY)
  const CopyCapabilities* caps = nullptr;  // from DecodeCopyCapabilities
};

// The mechanism a leg from `src` into `dst` would use: kXcopy when both LUs are behind one
// target (`same_target`) and both do LID1, else kOdx when both do ROD tokens, else kNone with
// *why_not (when not null) saying why for each mechanism. No I/O.
block::CopyMechanism ChooseRemoteCopy(const RemoteLu& src, const RemoteLu& dst, bool same_target,
                                      std::string* why_not);

struct RemoteCopyOptions {
  uint32_t max_in_flight = 4;                 // EXTENDED COPY commands, or tokens, at once
  uint32_t max_retries = 6;                   // per command, for transient statuses
  std::chrono::milliseconds retry_delay{10};  // before the first retry; doubles, up to 1 s
  // Bytes per EXTENDED COPY command and per ROD token, below the arrays' own limits: smaller
  // commands keep several in flight and each one short (initiator command timeouts).
  uint64_t max_command_bytes = 256ull << 20;
  uint32_t token_timeout_s = 0;  // POPULATE TOKEN INACTIVITY TIMEOUT; 0: the array's default
  // EXTENDED COPY(LID4) where the destination lists it (else LID1).
  bool use_lid4 = true;
};

struct RemoteCopyResult {
  IoStatus status = IoStatus::kOk;  // kOk, kNotSupported (emulate), kAborted, or a failure
  block::CopyMechanism mechanism = block::CopyMechanism::kNone;  // what was used or tried
  // Bytes the arrays reported copied (commands that completed GOOD). On kNotSupported these
  // need not be a prefix of the leg: several commands run at once.
  uint64_t bytes_done = 0;
  std::string reason;  // why, when status is not kOk
};

class RemoteCopier {
 public:
  using Done = std::function<void(const RemoteCopyResult&)>;

  RemoteCopier(io::Reactor* reactor, const RemoteLu& src, const RemoteLu& dst, bool same_target,
               RemoteCopyOptions options = {});
  ~RemoteCopier();
  RemoteCopier(const RemoteCopier&) = delete;
  RemoteCopier& operator=(const RemoteCopier&) = delete;

  // ChooseRemoteCopy for this pair, decided at construction.
  block::CopyMechanism mechanism() const { return mechanism_; }

  // Copies `segments` (byte offsets and lengths, multiples of both block sizes; borrowed until
  // `done`) from the source LU into the destination LU. Call once.
  void Start(std::span<const block::CopySegment> segments, Done done);

  // Stops the copy: no new commands; EXTENDED COPY(LID1) commands in flight get ABORT TASK,
  // EXTENDED COPY(LID4) and ROD token operations in flight get COPY OPERATION ABORT. `done` then
  // runs with kAborted (or the failure that came first) once every command has completed. No effect
  // after `done`.
  void Abort();

 private:
  struct Piece {  // a run of the leg that the copy moves as one
    uint64_t src_byte = 0;
    uint64_t dst_byte = 0;
    uint64_t bytes = 0;
  };
  enum class Step : uint8_t { kIdle, kXcopy, kPopulate, kRrti, kWrite };
  struct Op;  // one command slot: a unit of work and the commands that move it

  bool Plan(std::span<const block::CopySegment> segments);
  Piece Take(uint64_t max_bytes);  // the next piece of the leg, at most max_bytes
  bool StartUnit(Op& op);
  bool FillXcopyUnit(Op& op);
  bool FillTokenUnit(Op& op);
  void IssueXcopy(Op& op);
  void IssuePopulate(Op& op);
  void IssueRrti(Op& op);
  void IssueWrite(Op& op);
  void Send(Op& op, const RemoteLu& to);
  void OnDone(Op& op);
  void Advance(Op& op);
  void OnToken(Op& op);
  void EndUnit(Op& op);
  void Retry(Op& op);
  void Reissue(Op& op);
  void Refuse(std::string reason);
  void Fail(IoStatus status, std::string reason);
  void SendCopyAbort(Op& op);
  void MaybeFinish();

  io::Reactor* reactor_;
  RemoteLu src_;
  RemoteLu dst_;
  RemoteCopyOptions options_;
  block::CopyMechanism mechanism_;
  bool lid4_ = false;  // EXTENDED COPY(LID4) rather than LID1
  std::string why_not_;
  uint64_t unit_bytes_;  // max(block sizes): every cut falls on a block of both LUs

  std::vector<Piece> pieces_;
  size_t next_piece_ = 0;
  uint64_t next_offset_ = 0;  // into pieces_[next_piece_]
  std::vector<std::unique_ptr<Op>> ops_;

  Done done_;
  bool started_ = false;
  bool finishing_ = false;
  bool stop_ = false;  // no new work: refused, failed or aborted
  bool aborted_ = false;
  IoStatus failure_ = IoStatus::kOk;
  bool refused_ = false;
  std::string reason_;
  uint64_t bytes_done_ = 0;
};

}  // namespace ferry::backends::iscsi
