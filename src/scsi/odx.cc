// SBC-3 5.x POPULATE TOKEN and WRITE USING TOKEN (the SCSI side of Windows ODX): a token
// names source ranges at a point in time; writing with it is one copy-engine request.
#include <algorithm>

#include "base/endian.h"
#include "scsi/copy_manager.h"
#include "scsi/copy_op.h"
#include "scsi/copy_runner.h"
#include "scsi/logical_unit.h"
#include "scsi/nexus.h"
#include "scsi/rod_token.h"
#include "scsi/token_store.h"

namespace ferry::scsi {
namespace {

// Checks a range list against the LU: inside the capacity (LBA OUT OF RANGE), not
// overlapping (INVALID FIELD pointing at the later range), not above the transfer size.
// `list_offset`: where the first range descriptor sits in the parameter list.
std::optional<Sense> CheckRanges(std::span<const BlockRange> ranges, const block::Geometry& g,
                                 uint16_t list_offset, uint16_t length_field) {
  const uint64_t cap = g.num_blocks.value();
  for (size_t i = 0; i < ranges.size(); ++i) {
    const BlockRange& r = ranges[i];
    if (r.lba > cap || r.blocks > cap - r.lba) {
      Sense s = MakeSense(SenseKey::kIllegalRequest, Asc::kLbaOutOfRange);
      s.information = r.lba;
      return s;
    }
    for (size_t j = 0; j < i; ++j) {
      if (r.lba < ranges[j].lba + ranges[j].blocks && ranges[j].lba < r.lba + r.blocks) {
        return InvalidFieldInParameterList(static_cast<uint16_t>(list_offset + 16 * i));
      }
    }
  }
  if (TotalBlocks(ranges) * g.block_size > kMaxTokenTransferBytes) {
    return InvalidFieldInParameterList(length_field);
  }
  return std::nullopt;
}

std::vector<copy::Extent> Extents(std::span<const BlockRange> ranges) {
  std::vector<copy::Extent> out;
  for (const BlockRange& r : ranges) out.push_back({Lba(r.lba), BlockCount(r.blocks)});
  return out;
}

// The part of a token's ranges from `skip` bytes on, `bytes` long, in source blocks.
std::vector<copy::Extent> Slice(std::span<const BlockRange> ranges, uint32_t bs, uint64_t skip,
                                uint64_t bytes) {
  std::vector<copy::Extent> out;
  for (const BlockRange& r : ranges) {
    uint64_t lba = r.lba, n = r.blocks;
    const uint64_t drop = std::min<uint64_t>(n, skip / bs);
    lba += drop;
    n -= drop;
    skip -= drop * bs;
    n = std::min<uint64_t>(n, bytes / bs);
    if (n == 0) continue;
    out.push_back({Lba(lba), BlockCount(n)});
    bytes -= n * bs;
  }
  return out;
}

// Destination extents cut to `bytes`.
std::vector<copy::Extent> Truncate(std::vector<copy::Extent> ex, uint32_t bs, uint64_t bytes) {
  std::vector<copy::Extent> out;
  for (const copy::Extent& e : ex) {
    const uint64_t n = std::min<uint64_t>(e.blocks.value(), bytes / bs);
    if (n == 0) break;
    out.push_back({e.lba, BlockCount(n)});
    bytes -= n * bs;
  }
  return out;
}

class TokenRunner : public CopyRunner {
 public:
  TokenRunner(std::shared_ptr<CopyManager> m, std::shared_ptr<CopyOp> op, Task* task, TaskDone done,
              Copy copy, std::shared_ptr<TokenEntry> entry, bool del_tkn, TokenStore* store)
      : CopyRunner(std::move(m), std::move(op), task, std::move(done)),
        dst_lu_(copy.dst_lu),
        dst_extents_(copy.desc.dsts[0].extents),
        copy_(std::move(copy)),
        entry_(std::move(entry)),
        del_tkn_(del_tkn),
        store_(store) {
    own_token_ = entry_.get();
  }

 protected:
  Step Produce(size_t i) override {
    if (i > 0) return End{};
    return std::move(copy_);
  }
  // The token must still be valid after its data was read: a write that landed meanwhile
  // revoked it, and the copy may hold new data (SBC-3 point in time).
  std::optional<Sense> Verify() override {
    if (entry_ == nullptr) return std::nullopt;  // the zero token
    if (del_tkn_) store_->Delete(entry_->id);
    if (entry_->revoked) {
      return ParameterListError(Asc::kInvalidTokenOperationTokenRevoked, 16);
    }
    // The copy may have overwritten the token's own ranges (own_token_ spared it while it
    // read them): from now on it would not represent the data it was made over.
    if (dst_lu_ == entry_->lu_ptr) {
      for (const copy::Extent& e : dst_extents_) {
        store_->NoteWrite(dst_lu_, e.lba.value(), e.blocks.value(), nullptr);
      }
    }
    return std::nullopt;
  }

 private:
  const LogicalUnit* const dst_lu_;
  const std::vector<copy::Extent> dst_extents_;
  Copy copy_;
  std::shared_ptr<TokenEntry> entry_;
  const bool del_tkn_;
  TokenStore* const store_;
};

}  // namespace

// SBC-3 5.11 POPULATE TOKEN: no data moves; the token is retrieved with RECEIVE ROD TOKEN
// INFORMATION under the same list identifier.
void CopyManager::PopulateToken(LogicalUnit& lu, Task& t, TaskDone done) {
  auto complete = [&] { CompleteLater(done); };
  const uint32_t list_id = LoadBe32(&t.cdb[6]);
  const uint32_t len = LoadBe32(&t.cdb[10]);
  n_populate_++;
  if (len < 16) {
    t.Fail(InvalidFieldInCdb(10));
    return complete();
  }
  if (t.data_out.size() < len) {
    t.Fail(MakeSense(SenseKey::kIllegalRequest, Asc::kParameterListLengthError));
    return complete();
  }
  PopulateTokenResult r = DecodePopulateToken(t.data_out.first(len));
  if (auto* s = std::get_if<Sense>(&r)) {
    t.Fail(*s);
    return complete();
  }
  PopulateTokenParams p = std::move(std::get<PopulateTokenParams>(r));
  if (p.rtv && p.rod_type != kRodTypePitDefault && p.rod_type != kRodTypePitChangeVulnerable &&
      p.rod_type != kRodTypePitAny) {
    t.Fail(InvalidFieldInParameterList(8));
    return complete();
  }
  if (p.inactivity_timeout_s > options_.max_token_timeout_s) {
    t.Fail(InvalidFieldInParameterList(4));
    return complete();
  }
  const block::Geometry& g = lu.device().geometry();
  if (auto s = CheckRanges(p.ranges, g, 16, 14)) {
    t.Fail(*s);
    return complete();
  }
  const NexusLu* self = t.view ? t.view->Find(&lu) : nullptr;
  if (self == nullptr) {
    t.Fail(MakeSense(SenseKey::kIllegalRequest, Asc::kCopySourceOrDestinationNotAuthorized));
    return complete();
  }
  std::shared_ptr<CopyOp> op = StartOp(lu, t, list_id, kSaPopulateToken, ListIdUsage::kHold);
  if (op == nullptr) return complete();
  active_++;
  const uint32_t timeout =
      p.inactivity_timeout_s == 0 ? options_.default_token_timeout_s : p.inactivity_timeout_s;
  auto made = tokens_->Create(self->lu, std::move(p.ranges), timeout);
  {
    std::lock_guard l(op->mu);
    op->count_blocks = true;
    op->block_size = g.block_size;
    if (auto* s = std::get_if<Sense>(&made)) {
      op->failed = true;
      op->sense = *s;
      op->status = CopyOpStatus::kCompletedWithErrors;
      t.Fail(*s);
    } else {
      const auto& e = std::get<std::shared_ptr<TokenEntry>>(made);
      op->has_token = true;
      op->token = e->token;
      op->bytes_total = op->bytes_done = e->bytes;
      op->status = CopyOpStatus::kCompleted;
    }
  }
  EndOp(op);
  complete();
}

// SBC-3 5.52 WRITE USING TOKEN.
void CopyManager::WriteUsingToken(LogicalUnit& lu, Task& t, TaskDone done) {
  auto complete = [&] { CompleteLater(done); };
  auto fail = [&](const Sense& s) {
    t.Fail(s);
    complete();
  };
  const uint32_t list_id = LoadBe32(&t.cdb[6]);
  const uint32_t len = LoadBe32(&t.cdb[10]);
  n_wut_++;
  if (len == 0) return fail(InvalidFieldInCdb(10));
  if (t.data_out.size() < len) {
    return fail(MakeSense(SenseKey::kIllegalRequest, Asc::kParameterListLengthError));
  }
  WriteUsingTokenResult r = DecodeWriteUsingToken(t.data_out.first(len));
  if (auto* s = std::get_if<Sense>(&r)) return fail(*s);
  const WriteUsingTokenParams& p = std::get<WriteUsingTokenParams>(r);
  const block::Geometry& g = lu.device().geometry();
  if (t.write_protected || lu.write_protected() || lu.device().read_only()) {
    return fail(MakeSense(SenseKey::kDataProtect, Asc::kWriteProtected));
  }
  if (auto s = CheckRanges(p.ranges, g, 536, 534)) return fail(*s);
  const uint64_t dst_bytes = TotalBlocks(p.ranges) * g.block_size;
  CopyRunner::Copy copy;
  copy.dst_lu = &lu;
  std::shared_ptr<TokenEntry> entry;
  uint64_t bytes = dst_bytes;
  RodTokenResult rt = DecodeRodToken(p.token);
  if (auto* s = std::get_if<Sense>(&rt)) return fail(*s);
  if (std::get<RodToken>(rt).rod_type == kRodTypeBlockDeviceZero) {
    copy.desc.dsts = {{&lu.device(), Extents(p.ranges)}};
  } else {
    auto used = tokens_->Use(p.token);
    if (auto* s = std::get_if<Sense>(&used)) return fail(*s);
    entry = std::get<std::shared_ptr<TokenEntry>>(used);
    std::shared_ptr<LogicalUnit> src = entry->lu.lock();
    if (src == nullptr)
      return fail(ParameterListError(Asc::kInvalidTokenOperationTokenRevoked, 16));
    // The writer must be able to reach the source itself (copy.md: access control).
    if (t.view == nullptr || t.view->Find(src.get()) == nullptr) {
      return fail(ParameterListError(Asc::kCopySourceOrDestinationNotAuthorized, 16));
    }
    const uint64_t skip = p.offset_into_rod * g.block_size;
    if (p.offset_into_rod > entry->bytes / g.block_size || skip >= entry->bytes ||
        skip % entry->block_size != 0) {
      return fail(InvalidFieldInParameterList(8));
    }
    bytes = std::min(dst_bytes, entry->bytes - skip);
    const uint32_t unit = std::max(g.block_size, entry->block_size);
    copy.desc.src = &src->device();
    copy.desc.src_extents = Slice(entry->ranges, entry->block_size, skip, bytes);
    copy.desc.dsts = {{&lu.device(), Truncate(Extents(p.ranges), g.block_size, bytes)}};
    for (const auto* list : {&copy.desc.src_extents, &copy.desc.dsts[0].extents}) {
      const uint32_t bs = list == &copy.desc.src_extents ? entry->block_size : g.block_size;
      for (const copy::Extent& e : *list) {
        if (e.blocks.value() * bs % unit != 0) {
          return fail(ParameterListError(Asc::kUnexpectedInexactSegment, 534));
        }
      }
    }
  }
  if (bytes == 0) return complete();
  std::shared_ptr<CopyOp> op = StartOp(lu, t, list_id, kSaWriteUsingToken, ListIdUsage::kHold);
  if (op == nullptr) return complete();
  {
    std::lock_guard l(op->mu);
    op->count_blocks = true;
    op->block_size = g.block_size;
    op->bytes_total = bytes;
    op->residual = bytes < dst_bytes;
    op->status = p.immed ? CopyOpStatus::kInBackground : CopyOpStatus::kInForeground;
  }
  auto runner = std::make_shared<TokenRunner>(
      shared_from_this(), op, p.immed ? nullptr : &t, p.immed ? TaskDone{} : std::move(done),
      std::move(copy), std::move(entry), p.del_tkn, tokens_.get());
  if (!p.immed) {
    t.cancel = [w = std::weak_ptr<CopyOp>(op)] {
      if (auto o = w.lock()) o->Cancel();
    };
  }
  runner->Start();
  if (p.immed) complete();
}

}  // namespace ferry::scsi
