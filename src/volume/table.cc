#include "volume/table.h"

#include <algorithm>

#include "volume/builtin.h"

namespace ferry::volume {

namespace {

// The largest table whose byte size fits 64 bits.
constexpr uint64_t kMaxSectors = UINT64_MAX / kSectorBytes;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::vector<std::string> Tokens(std::string_view line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    size_t j = i;
    while (j < line.size() && !IsSpace(line[j])) ++j;
    if (j > i) out.emplace_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string LinePrefix(uint32_t line) { return "line " + std::to_string(line); }

}  // namespace

DeviceLookup LookupIn(const block::DeviceRegistry& registry) {
  return [&registry](std::string_view name) { return registry.Find(name); };
}

Result<std::shared_ptr<Table>> Table::Parse(std::string_view text, const TableOptions& options) {
  std::shared_ptr<Table> t(new Table());
  const TargetClock clock =
      options.clock ? options.clock : TargetClock([] { return std::chrono::steady_clock::now(); });
  uint32_t line_no = 0;
  uint64_t next = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    std::vector<std::string> tok = Tokens(line);
    if (tok.empty() || tok[0][0] == '#') continue;
    const std::string at = LinePrefix(line_no);
    if (tok.size() < 3) {
      return InvalidArgument(at +
                             ": expected <start_sector> <num_sectors> <target_type> "
                             "[<args>...], got " +
                             std::to_string(tok.size()) + " field" + (tok.size() == 1 ? "" : "s"));
    }
    auto start = ParseNumber(tok[0], "start sector");
    if (!start.ok()) return start.status().WithContext(at);
    auto len = ParseNumber(tok[1], "length");
    if (!len.ok()) return len.status().WithContext(at);
    const TargetType* type = FindTargetType(tok[2]);
    if (type == nullptr) {
      return InvalidArgument(at + ": unknown target type '" + tok[2] +
                             "' (known: " + TargetTypeNames() + ")");
    }
    const std::string where = at + ": " + tok[2];
    if (*start != next) {
      return InvalidArgument(
          where + ": starts at sector " + std::to_string(*start) +
          (t->entries_.empty() ? std::string(" but the first line must start at sector 0")
                               : " but the previous line ends at sector " + std::to_string(next)) +
          " (lines must be contiguous, without gaps or overlaps)");
    }
    if (*len == 0) return InvalidArgument(where + ": length must be greater than 0 sectors");
    if (*len > kMaxSectors - next) {
      return InvalidArgument(where + ": the table would be longer than " +
                             std::to_string(kMaxSectors) + " sectors");
    }
    const std::vector<std::string> args(tok.begin() + 3, tok.end());
    TargetArgs ta{.num_sectors = *len,
                  .args = args,
                  .lookup = &options.lookup,
                  .clock = &clock,
                  .env = &options.env};
    auto target = type->create(ta);
    if (!target.ok()) return target.status().WithContext(where);
    t->entries_.push_back({next, *len, line_no, std::move(target).value()});
    next += *len;
  }
  if (t->entries_.empty()) return InvalidArgument("the table has no lines");
  t->num_sectors_ = next;
  FERRY_RETURN_IF_ERROR(t->Finish());
  return t;
}

Status Table::Finish() {
  uint32_t bs = 512;
  ForEachUnderlying(
      [&](block::BlockDevice& d, uint64_t) { bs = std::max(bs, d.geometry().block_size); });
  block_size_ = bs;
  const uint64_t bsec = bs / kSectorBytes;
  const std::string why = " is not a multiple of the volume block size " + std::to_string(bs) +
                          " (" + std::to_string(bsec) +
                          " sectors, the largest block size of the table's devices)";
  for (const Entry& e : entries_) {
    const std::string where = LinePrefix(e.line) + ": " + std::string(e.target->type());
    if (e.start_sectors % bsec != 0) {
      return InvalidArgument(where + ": start sector " + std::to_string(e.start_sectors) + why);
    }
    if (e.num_sectors % bsec != 0) {
      return InvalidArgument(where + ": length " + std::to_string(e.num_sectors) + why);
    }
    std::string bad;
    e.target->ForEachUnderlying([&](block::BlockDevice& d, uint64_t off) {
      if (bad.empty() && off % bsec != 0) {
        bad = "offset " + std::to_string(off) + " on device '" + std::string(d.name()) + "'";
      }
    });
    if (!bad.empty()) return InvalidArgument(where + ": " + bad + why);
    bad = e.target->CheckAlignment(bsec);
    if (!bad.empty()) return InvalidArgument(where + ": " + bad);
  }
  // Limits: what every device accepts. The volume splits requests at its pieces and submits
  // each through block::SubmitSplit, so devices' limits bound pieces, not the volume.
  block::QueueLimits l;
  l.max_io_bytes = 1u << 20;
  l.max_discard_bytes = UINT64_MAX;
  l.max_write_zeroes_bytes = UINT64_MAX;
  l.discard_zeroes_data = true;
  bool any = false;
  ForEachUnderlying([&](block::BlockDevice& d, uint64_t) {
    const block::QueueLimits& dl = d.limits();
    if (!any) l.max_io_bytes = dl.max_io_bytes;
    any = true;
    l.max_io_bytes = std::max<uint64_t>(std::min(l.max_io_bytes, dl.max_io_bytes), bs);
    l.buffer_alignment = std::max(l.buffer_alignment, dl.buffer_alignment);
    l.max_discard_bytes = std::min(l.max_discard_bytes, dl.max_discard_bytes);
    l.max_write_zeroes_bytes = std::min(l.max_write_zeroes_bytes, dl.max_write_zeroes_bytes);
    l.discard_zeroes_data = l.discard_zeroes_data && dl.discard_zeroes_data;
    l.discard_granularity_bytes =
        std::max(l.discard_granularity_bytes, dl.discard_granularity_bytes);
    l.physical_block_bytes = std::max(l.physical_block_bytes, dl.physical_block_bytes);
  });
  if (l.max_discard_bytes != 0 && l.max_discard_bytes < bs) l.max_discard_bytes = bs;
  if (l.max_write_zeroes_bytes != 0 && l.max_write_zeroes_bytes < bs) {
    l.max_write_zeroes_bytes = bs;
  }
  l.max_copy_bytes = 0;  // copies go through translate (src/copy/translate.h), not SubmitCopy
  l.max_copy_segments = 0;
  l.copy_granularity_bytes = 0;
  limits_ = l;
  return Status::Ok();
}

std::string Table::ToText() const {
  std::string s;
  for (const Entry& e : entries_) {
    s += std::to_string(e.start_sectors) + " " + std::to_string(e.num_sectors) + " ";
    s += e.target->type();
    const std::string args = e.target->TableArgs();
    if (!args.empty()) s += " " + args;
    s += "\n";
  }
  return s;
}

std::string Table::StatusText() const {
  std::string s;
  for (const Entry& e : entries_) {
    s += std::to_string(e.start_sectors) + " " + std::to_string(e.num_sectors) + " ";
    s += e.target->type();
    const std::string st = e.target->Status();
    if (!st.empty()) s += " " + st;
    s += "\n";
  }
  return s;
}

size_t Table::FindTarget(uint64_t sector) const {
  if (sector >= num_sectors_) return entries_.size();
  auto it = std::upper_bound(entries_.begin(), entries_.end(), sector,
                             [](uint64_t s, const Entry& e) { return s < e.start_sectors; });
  return static_cast<size_t>(it - entries_.begin()) - 1;
}

Status Table::Map(block::IoOp op, uint64_t offset_bytes, uint64_t len_bytes,
                  std::vector<MappedPiece>* out) const {
  if (op == block::IoOp::kFlush) {
    for (size_t i = 0; i < entries_.size(); ++i) {
      const size_t first = out->size();
      entries_[i].target->Map(op, 0, 0, out);
      for (size_t k = first; k < out->size(); ++k) {
        (*out)[k].target_index = static_cast<uint32_t>(i);
        (*out)[k].volume_offset_bytes = 0;
        (*out)[k].len_bytes = 0;
      }
    }
    return Status::Ok();
  }
  const uint64_t total = num_sectors_ * kSectorBytes;
  if (offset_bytes > total || len_bytes > total - offset_bytes) {
    return OutOfRange("range [" + std::to_string(offset_bytes) + ", +" + std::to_string(len_bytes) +
                      ") bytes is outside the table (" + std::to_string(total) + " bytes)");
  }
  size_t i = FindTarget(offset_bytes / kSectorBytes);
  while (len_bytes > 0) {
    const Entry& e = entries_[i];
    const uint64_t start = e.start_sectors * kSectorBytes;
    const uint64_t end = start + e.num_sectors * kSectorBytes;
    const uint64_t n = std::min(len_bytes, end - offset_bytes);
    const size_t first = out->size();
    e.target->Map(op, offset_bytes - start, n, out);
    for (size_t k = first; k < out->size(); ++k) {
      (*out)[k].volume_offset_bytes += start;
      (*out)[k].target_index = static_cast<uint32_t>(i);
    }
    offset_bytes += n;
    len_bytes -= n;
    ++i;
  }
  return Status::Ok();
}

void Table::ForEachUnderlying(const std::function<void(block::BlockDevice&, uint64_t)>& fn) const {
  for (const Entry& e : entries_) e.target->ForEachUnderlying(fn);
}

namespace {

struct PrepareState {
  std::shared_ptr<Table> table;
  Target::PrepareDone done;
};

// Prepares line `i` and, when it succeeds, the ones after it. Tables have few lines, so
// the recursion (when targets complete inline) stays shallow.
void PrepareFrom(std::shared_ptr<PrepareState> p, size_t i) {
  if (i == p->table->size()) return p->done(Status::Ok());
  p->table->target(i).Prepare([p, i](Status st) {
    if (st.ok()) return PrepareFrom(p, i + 1);
    const Table& t = *p->table;
    p->done(st.WithContext(LinePrefix(t.line(i)) + ": " + std::string(t.target(i).type())));
  });
}

}  // namespace

void PrepareTable(std::shared_ptr<Table> table, Target::PrepareDone done) {
  PrepareFrom(std::make_shared<PrepareState>(PrepareState{std::move(table), std::move(done)}), 0);
}

}  // namespace ferry::volume
