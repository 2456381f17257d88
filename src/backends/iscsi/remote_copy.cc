#include "backends/iscsi/remote_copy.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <limits>
#include <random>

#include "base/endian.h"

namespace ferry::backends::iscsi {
namespace {

// RRTI data: 32-byte header, up to 255 bytes of sense, the token descriptor (6 + 512).
constexpr uint32_t kRrtiAllocBytes = 1024;
constexpr uint64_t kMaxRangeBlocks = std::numeric_limits<uint32_t>::max();

// List identifiers: unique per I_T nexus among the operations the array holds (a POPULATE
// TOKEN's stays held until its token is read, and for a while after). One counter for the
// process, from a random start, so that sessions re-established after a restart do not meet
// the identifiers their predecessors left held.
std::atomic<uint32_t>& ListIdCounter() {
  static std::atomic<uint32_t> counter{std::random_device{}()};
  return counter;
}
uint32_t NewListId() { return ListIdCounter().fetch_add(1, std::memory_order_relaxed); }

uint64_t FloorTo(uint64_t v, uint64_t unit) { return v / unit * unit; }

// Byte cap from a block-count limit; 0 (no limit) stays "none" as UINT64_MAX.
uint64_t BlocksCap(uint64_t blocks, uint32_t block_size) {
  if (blocks == 0 || blocks > std::numeric_limits<uint64_t>::max() / block_size) {
    return std::numeric_limits<uint64_t>::max();
  }
  return blocks * block_size;
}

}  // namespace

struct RemoteCopier::Op {
  Step step = Step::kIdle;
  bool waiting_retry = false;
  uint32_t retries = 0;
  ScsiCommand cmd;
  std::vector<uint8_t> params;
  // The unit of work: EXTENDED COPY segments, or the pieces one token covers.
  std::vector<B2BSegment> segments;
  std::vector<Piece> pieces;
  std::vector<BlockRange> ranges;  // scratch for the range descriptors being encoded
  uint64_t unit_bytes = 0;
  // Of the POPULATE TOKEN (for RRTI) or the EXTENDED COPY(LID4), for COPY OPERATION ABORT.
  uint32_t list_id = 0;
  RodToken token{};
  uint64_t token_bytes = 0;  // what the token covers (<= unit_bytes)
  uint64_t written = 0;      // bytes of the token already written
  uint64_t window = 0;       // bytes of the WRITE USING TOKEN in flight
  ScsiCommand abort_cmd;
  bool abort_busy = false;
  bool busy() const { return step != Step::kIdle || abort_busy; }
};

block::CopyMechanism ChooseRemoteCopy(const RemoteLu& src, const RemoteLu& dst, bool same_target,
                                      std::string* why_not) {
  if (src.caps == nullptr || dst.caps == nullptr || src.block_size == 0 || dst.block_size == 0) {
    if (why_not) *why_not = "copy capabilities of the LUs are unknown";
    return block::CopyMechanism::kNone;
  }
  const CopyCapabilities& s = *src.caps;
  const CopyCapabilities& d = *dst.caps;
  if (same_target && s.lid1 && d.lid1) return block::CopyMechanism::kXcopy;
  if (s.odx && d.odx) return block::CopyMechanism::kOdx;
  if (why_not == nullptr) return block::CopyMechanism::kNone;
  std::string x;
  if (!same_target) {
    x = "the LUs are behind different targets";
  } else {
    x = !d.lid1 ? "destination: " + d.why_no_xcopy : "source: " + s.why_no_xcopy;
  }
  const std::string o = !s.odx ? "source: " + s.why_no_odx : "destination: " + d.why_no_odx;
  *why_not = "no EXTENDED COPY (" + x + "); no ODX (" + o + ")";
  return block::CopyMechanism::kNone;
}

RemoteCopier::RemoteCopier(io::Reactor* reactor, const RemoteLu& src, const RemoteLu& dst,
                           bool same_target, RemoteCopyOptions options)
    : reactor_(reactor), src_(src), dst_(dst), options_(options) {
  mechanism_ = ChooseRemoteCopy(src, dst, same_target, &why_not_);
  lid4_ = mechanism_ == block::CopyMechanism::kXcopy && dst.caps->lid4 && options_.use_lid4;
  unit_bytes_ = std::max<uint64_t>({src.block_size, dst.block_size, 1});
  options_.max_in_flight = std::max<uint32_t>(options_.max_in_flight, 1);
  options_.max_command_bytes = std::max(options_.max_command_bytes, unit_bytes_);
  for (uint32_t i = 0; i < options_.max_in_flight; ++i) {
    ops_.push_back(std::make_unique<Op>());
    Op* op = ops_.back().get();
    op->cmd.done = [this, op] { OnDone(*op); };
    op->abort_cmd.done = [this, op] {
      op->abort_busy = false;
      MaybeFinish();
    };
  }
}

RemoteCopier::~RemoteCopier() = default;

bool RemoteCopier::Plan(std::span<const block::CopySegment> segments) {
  // Both sizes are powers of two, so a multiple of the larger is a multiple of both.
  const bool pow2 = (src_.block_size & (src_.block_size - 1)) == 0 &&
                    (dst_.block_size & (dst_.block_size - 1)) == 0;
  if (!pow2) {
    reason_ = "block sizes that are not powers of two";
    return false;
  }
  for (const block::CopySegment& s : segments) {
    if (s.len_bytes == 0) continue;
    if (s.src_offset_bytes % src_.block_size != 0 || s.dst_offset_bytes % dst_.block_size != 0 ||
        s.len_bytes % unit_bytes_ != 0) {
      reason_ = "a segment is not aligned to both LUs' block sizes";
      return false;
    }
    pieces_.push_back({s.src_offset_bytes, s.dst_offset_bytes, s.len_bytes});
  }
  return true;
}

void RemoteCopier::Start(std::span<const block::CopySegment> segments, Done done) {
  done_ = std::move(done);
  started_ = true;
  if (mechanism_ == block::CopyMechanism::kNone) {
    Refuse(why_not_);
  } else if (!Plan(segments)) {
    Refuse(reason_);
  } else {
    for (auto& op : ops_) {
      if (!StartUnit(*op)) break;
    }
  }
  // Never inside Start: MaybeFinish posts the completion.
  MaybeFinish();
}

RemoteCopier::Piece RemoteCopier::Take(uint64_t max_bytes) {
  const Piece& p = pieces_[next_piece_];
  Piece out{p.src_byte + next_offset_, p.dst_byte + next_offset_,
            std::min(p.bytes - next_offset_, max_bytes)};
  next_offset_ += out.bytes;
  if (next_offset_ == p.bytes) {
    ++next_piece_;
    next_offset_ = 0;
  }
  return out;
}

bool RemoteCopier::StartUnit(Op& op) {
  if (stop_ || next_piece_ == pieces_.size()) return false;
  op.retries = 0;
  if (mechanism_ == block::CopyMechanism::kXcopy) {
    if (!FillXcopyUnit(op)) return false;
    IssueXcopy(op);
  } else {
    if (!FillTokenUnit(op)) return false;
    IssuePopulate(op);
  }
  return true;
}

// SPC-4 6.4.6.5: a 02h segment moves at most 65535 source blocks and MAXIMUM SEGMENT LENGTH
// bytes; one command holds at most MAXIMUM SEGMENT DESCRIPTOR COUNT segments and MAXIMUM
// DESCRIPTOR LIST LENGTH bytes of descriptors (the destination's copy manager runs it).
bool RemoteCopier::FillXcopyUnit(Op& op) {
  const CopyCapabilities& d = *dst_.caps;
  uint64_t seg_cap = uint64_t{kMaxB2BSegmentBlocks} * src_.block_size;
  if (d.max_segment_bytes != 0) seg_cap = std::min<uint64_t>(seg_cap, d.max_segment_bytes);
  seg_cap = FloorTo(std::min(seg_cap, options_.max_command_bytes), unit_bytes_);
  // Segments of a power of two (unit_bytes_ is one, Plan): an array whose LUs are made of
  // power-of-two units (file-system blocks it clones by reflink, RBD objects the cluster
  // copies, thin chunks) then takes every segment of an aligned copy whole instead of
  // copying the edges of each. 65535 blocks of 512 bytes become 16 MiB, not 32 MiB - 512.
  seg_cap = std::bit_floor(seg_cap);
  if (seg_cap == 0) {
    Refuse("the array's MAXIMUM SEGMENT LENGTH (" + std::to_string(d.max_segment_bytes) +
           " bytes) is below one block");
    return false;
  }
  const size_t lists = d.max_descriptor_list_bytes;
  const size_t by_list =
      lists > 2 * kCscdDescriptorBytes ? (lists - 2 * kCscdDescriptorBytes) / kB2BSegmentBytes : 0;
  size_t max_segs = std::min<size_t>(d.max_segment_descriptors, by_list);
  if (lid4_) max_segs = std::min(max_segs, kMaxLid4Segments);
  if (max_segs == 0) {
    Refuse("the array's descriptor limits leave no room for a segment");
    return false;
  }
  op.segments.clear();
  op.unit_bytes = 0;
  while (op.segments.size() < max_segs && next_piece_ < pieces_.size() &&
         op.unit_bytes < options_.max_command_bytes) {
    const uint64_t room = FloorTo(options_.max_command_bytes - op.unit_bytes, unit_bytes_);
    if (room == 0) break;
    const Piece p = Take(std::min(seg_cap, room));
    op.segments.push_back({.blocks = static_cast<uint16_t>(p.bytes / src_.block_size),
                           .src_lba = p.src_byte / src_.block_size,
                           .dst_lba = p.dst_byte / dst_.block_size});
    op.unit_bytes += p.bytes;
  }
  return !op.segments.empty();
}

// SBC-3 POPULATE TOKEN: at most the source's MAXIMUM RANGE DESCRIPTORS ranges and MAXIMUM
// TOKEN TRANSFER SIZE blocks per token.
bool RemoteCopier::FillTokenUnit(Op& op) {
  const CopyCapabilities& s = *src_.caps;
  uint64_t cap =
      std::min(BlocksCap(s.max_token_transfer_blocks, src_.block_size), options_.max_command_bytes);
  cap = FloorTo(cap, unit_bytes_);
  const uint64_t range_cap =
      FloorTo(kMaxRangeBlocks * std::min(src_.block_size, dst_.block_size), unit_bytes_);
  if (cap == 0) {
    Refuse("the source's MAXIMUM TOKEN TRANSFER SIZE is below one block");
    return false;
  }
  op.pieces.clear();
  op.unit_bytes = 0;
  while (op.pieces.size() < s.max_range_descriptors && next_piece_ < pieces_.size() &&
         op.unit_bytes < cap) {
    const Piece p = Take(std::min(cap - op.unit_bytes, range_cap));
    op.pieces.push_back(p);
    op.unit_bytes += p.bytes;
  }
  return !op.pieces.empty();
}

void RemoteCopier::Send(Op& op, const RemoteLu& to) {
  ScsiCommand& c = op.cmd;
  c.data_out = op.params;
  c.transport = IoStatus::kOk;
  c.scsi_status = kScsiStatusGood;
  c.sense = {};
  c.data_in.clear();
  c.residual = 0;
  to.channel->Execute(to.lun, c);
}

// LID1: LIST ID USAGE 11b (no list identifier; nothing held, no RECEIVE COPY RESULTS needed)
// when the array supports it (SNLID 1), else 10b with a fresh identifier: results are not held
// either, and this initiator never asks for them. LID4 (where the array lists it): always 10b
// with a fresh 32-bit identifier, which COPY OPERATION ABORT names when the copy is cancelled.
void RemoteCopier::IssueXcopy(Op& op) {
  const CopyCapabilities& d = *dst_.caps;
  XcopyList list{.lid4 = lid4_,
                 .src = {src_.caps->designator, src_.block_size},
                 .dst = {d.designator, dst_.block_size},
                 .segments = op.segments};
  if (lid4_ || !d.snlid) {
    list.usage = ListIdUsage::kDiscard;
    list.list_id = lid4_ ? NewListId() : NewListId() & 0xff;
  }
  op.list_id = list.list_id;
  EncodeXcopy(list, &op.params);
  op.step = Step::kXcopy;
  SetCdb(op.cmd, ExtendedCopyCdb(lid4_, static_cast<uint32_t>(op.params.size())));
  op.cmd.data_in_len = 0;
  Send(op, dst_);
}

void RemoteCopier::IssuePopulate(Op& op) {
  op.ranges.clear();
  for (const Piece& p : op.pieces) {
    op.ranges.push_back(
        {p.src_byte / src_.block_size, static_cast<uint32_t>(p.bytes / src_.block_size)});
  }
  EncodePopulateToken(op.ranges, options_.token_timeout_s, &op.params);
  op.list_id = NewListId();
  op.step = Step::kPopulate;
  SetCdb(op.cmd, PopulateTokenCdb(op.list_id, static_cast<uint32_t>(op.params.size())));
  op.cmd.data_in_len = 0;
  Send(op, src_);
}

void RemoteCopier::IssueRrti(Op& op) {
  op.params.clear();
  op.step = Step::kRrti;
  SetCdb(op.cmd, ReceiveRodTokenInfoCdb(op.list_id, kRrtiAllocBytes));
  op.cmd.data_in_len = kRrtiAllocBytes;
  Send(op, src_);
}

// One WRITE USING TOKEN of the token's bytes from op.written: at most the destination's
// MAXIMUM RANGE DESCRIPTORS and MAXIMUM TOKEN TRANSFER SIZE, at OFFSET INTO ROD op.written
// (in destination blocks, SBC-3).
void RemoteCopier::IssueWrite(Op& op) {
  const CopyCapabilities& d = *dst_.caps;
  const uint64_t cap =
      FloorTo(BlocksCap(d.max_token_transfer_blocks, dst_.block_size), unit_bytes_);
  if (cap == 0 || d.max_range_descriptors == 0) {
    Refuse("the destination's ROD token limits are below one block");
    return EndUnit(op);
  }
  op.ranges.clear();
  op.window = 0;
  uint64_t pos = 0;  // bytes of the token before pieces[i]
  for (const Piece& p : op.pieces) {
    const uint64_t end = std::min(pos + p.bytes, op.token_bytes);
    const uint64_t from = std::max(pos, op.written + op.window);
    if (from < end) {
      const uint64_t n = std::min(end - from, cap - op.window);
      op.ranges.push_back({(p.dst_byte + (from - pos)) / dst_.block_size,
                           static_cast<uint32_t>(n / dst_.block_size)});
      op.window += n;
      if (op.window == cap || op.ranges.size() == d.max_range_descriptors) break;
    }
    pos += p.bytes;
  }
  EncodeWriteUsingToken(op.token, op.written / dst_.block_size, op.ranges, &op.params);
  op.step = Step::kWrite;
  SetCdb(op.cmd, WriteUsingTokenCdb(NewListId(), static_cast<uint32_t>(op.params.size())));
  op.cmd.data_in_len = 0;
  Send(op, dst_);
}

void RemoteCopier::OnDone(Op& op) {
  const Refusal r = Classify(op.cmd);
  if (r.kind == RefusalKind::kNone) return Advance(op);
  if (r.kind == RefusalKind::kTransient && !stop_ && op.retries < options_.max_retries) {
    return Retry(op);
  }
  switch (r.kind) {
    case RefusalKind::kTransient:
      Refuse(r.reason + ", still after " + std::to_string(op.retries) + " retries");
      break;
    case RefusalKind::kIoError:
    case RefusalKind::kTransport: Fail(r.status, r.reason); break;
    default: Refuse(r.reason); break;
  }
  EndUnit(op);
}

void RemoteCopier::Advance(Op& op) {
  switch (op.step) {
    case Step::kXcopy: bytes_done_ += op.unit_bytes; return EndUnit(op);
    case Step::kPopulate:
      if (stop_) return EndUnit(op);  // refused, failed or aborted meanwhile: the token expires
      op.retries = 0;
      return IssueRrti(op);
    case Step::kRrti:
      if (stop_) return EndUnit(op);
      return OnToken(op);
    case Step::kWrite:
      bytes_done_ += op.window;
      op.written += op.window;
      if (op.written < op.token_bytes && !stop_) {
        op.retries = 0;
        return IssueWrite(op);
      }
      if (op.token_bytes < op.unit_bytes) {
        Refuse("the ROD token covers " + std::to_string(op.token_bytes) + " of the " +
               std::to_string(op.unit_bytes) + " bytes asked (short transfer count)");
      }
      return EndUnit(op);
    case Step::kIdle: return;
  }
}

// SBC-3 RECEIVE ROD TOKEN INFORMATION after POPULATE TOKEN: the token and how much of the
// ranges it represents (a copy manager may cover less than asked).
void RemoteCopier::OnToken(Op& op) {
  std::string why;
  const std::optional<RodTokenInfo> info = DecodeRodTokenInfo(op.cmd.data_in, &why);
  if (!info) {
    Refuse(why);
    return EndUnit(op);
  }
  if (!info->has_token) {
    Refuse("POPULATE TOKEN made no ROD token (copy operation status " +
           std::to_string(info->copy_status) + ")");
    return EndUnit(op);
  }
  const std::optional<uint64_t> covered =
      TransferBytes(info->units, info->transfer_count, src_.block_size);
  if (!covered) {
    Refuse("RECEIVE ROD TOKEN INFORMATION: unknown transfer count units " +
           std::to_string(info->units));
    return EndUnit(op);
  }
  op.token = info->token;
  op.token_bytes = FloorTo(std::min(*covered, op.unit_bytes), unit_bytes_);
  op.written = 0;
  if (op.token_bytes == 0) {
    Refuse("the ROD token covers none of the " + std::to_string(op.unit_bytes) + " bytes asked");
    return EndUnit(op);
  }
  op.retries = 0;
  IssueWrite(op);
}

void RemoteCopier::EndUnit(Op& op) {
  op.step = Step::kIdle;
  if (!StartUnit(op)) MaybeFinish();
}

void RemoteCopier::Retry(Op& op) {
  ++op.retries;
  op.waiting_retry = true;
  const auto delay = std::min<std::chrono::milliseconds>(
      options_.retry_delay * (1u << std::min<uint32_t>(op.retries - 1, 7)),
      std::chrono::seconds(1));
  reactor_->RunAfter(delay, [this, o = &op] { Reissue(*o); });
}

void RemoteCopier::Reissue(Op& op) {
  op.waiting_retry = false;
  if (stop_) return EndUnit(op);
  switch (op.step) {
    case Step::kXcopy: return IssueXcopy(op);  // a fresh list identifier, if it uses one
    case Step::kPopulate: return IssuePopulate(op);
    case Step::kRrti: return IssueRrti(op);
    case Step::kWrite: return IssueWrite(op);
    case Step::kIdle: return;
  }
}

void RemoteCopier::Refuse(std::string reason) {
  if (!refused_ && failure_ == IoStatus::kOk && !aborted_) reason_ = std::move(reason);
  refused_ = true;
  stop_ = true;
}

void RemoteCopier::Fail(IoStatus status, std::string reason) {
  if (failure_ == IoStatus::kOk) {
    failure_ = status;
    reason_ = std::move(reason);
  }
  stop_ = true;
}

void RemoteCopier::Abort() {
  if (!started_ || finishing_ || aborted_) return;
  aborted_ = true;
  stop_ = true;
  if (failure_ == IoStatus::kOk) reason_ = "aborted";
  for (auto& op : ops_) {
    if (op->step == Step::kIdle || op->waiting_retry) continue;
    if (op->step == Step::kXcopy && !lid4_) {
      dst_.channel->Abort(op->cmd);
    } else {
      SendCopyAbort(*op);
    }
  }
}

// SPC-4 6.3 COPY OPERATION ABORT of the operation in flight, under that command's list id:
// POPULATE TOKEN (and its RRTI) at the source, WRITE USING TOKEN and EXTENDED COPY(LID4) at the
// destination.
void RemoteCopier::SendCopyAbort(Op& op) {
  if (op.abort_busy) return;
  const bool at_dst = op.step == Step::kWrite || op.step == Step::kXcopy;
  const uint32_t list_id = op.step == Step::kWrite ? LoadBe32(&op.cmd.cdb[6]) : op.list_id;
  const RemoteLu& to = at_dst ? dst_ : src_;
  SetCdb(op.abort_cmd, CopyOperationAbortCdb(list_id));
  op.abort_cmd.data_out = {};
  op.abort_cmd.data_in_len = 0;
  op.abort_busy = true;
  to.channel->Execute(to.lun, op.abort_cmd);
}

void RemoteCopier::MaybeFinish() {
  if (!started_ || finishing_) return;
  for (const auto& op : ops_) {
    if (op->busy()) return;
  }
  finishing_ = true;
  RemoteCopyResult r{.mechanism = mechanism_, .bytes_done = bytes_done_};
  if (failure_ != IoStatus::kOk) {
    r.status = failure_;
    r.reason = reason_;
  } else if (aborted_) {
    r.status = IoStatus::kAborted;
    r.reason = "aborted";
  } else if (refused_) {
    r.status = IoStatus::kNotSupported;
    r.reason = reason_;
  }
  // Posted, so `done` never runs inside Start or a channel's callback, and may destroy us.
  reactor_->Post([this, r = std::make_shared<RemoteCopyResult>(std::move(r))] {
    Done done = std::move(done_);
    done(*r);
  });
}

}  // namespace ferry::backends::iscsi
