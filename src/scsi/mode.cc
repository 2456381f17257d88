// SPC-4 6.11-6.14 MODE SENSE / MODE SELECT (6 and 10) with the caching (08h), control
// (0Ah) and informational exceptions (1Ch) pages. WCE, D_SENSE and SWP are changeable.
#include <algorithm>
#include <vector>

#include "base/endian.h"
#include "scsi/logical_unit.h"
#include "scsi/opcodes.h"

namespace ferry::scsi {
namespace {

enum PageControl : uint8_t { kCurrent = 0, kChangeable = 1, kDefault = 2, kSaved = 3 };

// One page as MODE SENSE returns it for `pc`.
std::vector<uint8_t> BuildPage(uint8_t code, PageControl pc, const LogicalUnit::ModeState& m) {
  const bool changeable = pc == kChangeable;
  const LogicalUnit::ModeState defaults{};
  const LogicalUnit::ModeState& v = pc == kDefault ? defaults : m;
  switch (code) {
    case 0x08: {  // SBC-3 6.4.5 Caching
      std::vector<uint8_t> p(20, 0);
      p[0] = 0x08;
      p[1] = 0x12;
      if (changeable)
        p[2] = 0x04;
      else
        p[2] = v.write_cache_enabled ? 0x04 : 0x00;
      return p;
    }
    case 0x0a: {  // SPC-4 7.5.8 Control
      std::vector<uint8_t> p(12, 0);
      p[0] = 0x0a;
      p[1] = 0x0a;
      if (changeable) {
        p[2] = 0x04;  // D_SENSE
        p[4] = 0x08;  // SWP
      } else {
        p[2] = v.descriptor_sense ? 0x04 : 0x00;
        p[4] = v.software_write_protect ? 0x08 : 0x00;
        p[3] = 0x10;  // queue algorithm modifier 1: unrestricted reordering
        p[5] = 0x40;  // TAS: tasks another nexus aborts end in TASK ABORTED, not silently
        StoreBe16(&p[8], 0xffff);  // busy timeout period: unlimited
      }
      return p;
    }
    case 0x1c: {  // SPC-4 7.5.13 Informational Exceptions Control: nothing to report
      std::vector<uint8_t> p(12, 0);
      p[0] = 0x1c;
      p[1] = 0x0a;
      return p;
    }
    default: return {};
  }
}

constexpr uint8_t kPages[] = {0x08, 0x0a, 0x1c};

}  // namespace

void LogicalUnit::ModeSense(Task& t, bool ten) {
  const uint8_t* c = t.cdb.data();
  const bool dbd = c[1] & 0x08;
  const bool llbaa = ten && (c[1] & 0x10);
  const auto pc = static_cast<PageControl>(c[2] >> 6);
  const uint8_t page = c[2] & 0x3f;
  const uint8_t subpage = c[3];
  if (pc == kSaved) {
    return t.Fail(MakeSense(SenseKey::kIllegalRequest, Asc::kSavingParametersNotSupported));
  }
  if (subpage != 0 && !(page == 0x3f && subpage == 0xff)) return t.Fail(InvalidFieldInCdb(3));
  const ModeState m = mode();
  std::vector<uint8_t> pages;
  for (uint8_t code : kPages) {
    if (page != 0x3f && page != code) continue;
    auto p = BuildPage(code, pc, m);
    pages.insert(pages.end(), p.begin(), p.end());
  }
  if (pages.empty() && page != 0x3f) return t.Fail(InvalidFieldInCdb(2, 5));
  // Block descriptor (SPC-4 7.5.5): short (8 bytes) or, with LLBAA, long (16 bytes).
  const block::Geometry& g = dev_->geometry();
  std::vector<uint8_t> bd;
  if (!dbd) {
    const uint64_t n = g.num_blocks.value();
    if (llbaa) {
      bd.assign(16, 0);
      StoreBe64(&bd[0], n);
      StoreBe32(&bd[12], g.block_size);
    } else {
      bd.assign(8, 0);
      StoreBe32(&bd[0], n > 0xffffffffull ? 0xffffffffu : static_cast<uint32_t>(n));
      StoreBe24(&bd[5], g.block_size);
    }
  }
  const uint8_t device_specific =
      static_cast<uint8_t>((write_protected() || t.write_protected ? 0x80 : 0) | 0x10);
  std::vector<uint8_t> d;
  if (ten) {
    d.assign(8, 0);
    StoreBe16(&d[0], static_cast<uint16_t>(6 + bd.size() + pages.size()));
    d[3] = device_specific;
    d[4] = llbaa && !dbd ? 0x01 : 0x00;  // LONGLBA
    StoreBe16(&d[6], static_cast<uint16_t>(bd.size()));
  } else {
    d.assign(4, 0);
    d[0] = static_cast<uint8_t>(3 + bd.size() + pages.size());
    d[2] = device_specific;
    d[3] = static_cast<uint8_t>(bd.size());
  }
  d.insert(d.end(), bd.begin(), bd.end());
  d.insert(d.end(), pages.begin(), pages.end());
  t.Reply(d);
}

void LogicalUnit::ModeSelect(Task& t, bool ten) {
  const uint8_t* c = t.cdb.data();
  const uint32_t len = ten ? LoadBe16(c + 7) : c[4];
  if (!(c[1] & 0x10)) return t.Fail(InvalidFieldInCdb(1, 4));  // PF must be 1
  if (c[1] & 0x01) {                                           // SP: nothing is saved
    return t.Fail(MakeSense(SenseKey::kIllegalRequest, Asc::kSavingParametersNotSupported));
  }
  if (len == 0) return;
  const size_t header = ten ? 8 : 4;
  if (t.data_out.size() < len || len < header) {
    return t.Fail(MakeSense(SenseKey::kIllegalRequest, Asc::kParameterListLengthError));
  }
  std::span<const uint8_t> p = t.data_out.first(len);
  const size_t bd_len = ten ? LoadBe16(&p[6]) : p[3];
  size_t pos = header + bd_len;
  if (pos > p.size()) return t.Fail(InvalidFieldInParameterList(ten ? 6 : 3));
  // SPC-4 7.5.5: one block descriptor at most, and it may only restate the geometry (0
  // blocks means "no change"); the block size and capacity cannot be changed here.
  const bool long_lba = ten && (p[4] & 0x01);
  if (bd_len != 0) {
    const block::Geometry& g = dev_->geometry();
    const uint64_t n = g.num_blocks.value();
    const size_t bd = header;
    bool ok;
    if (long_lba) {
      ok = bd_len == 16 && (LoadBe64(&p[bd]) == 0 || LoadBe64(&p[bd]) == n) &&
           LoadBe32(&p[bd + 12]) == g.block_size;
    } else {
      const uint32_t blocks = LoadBe32(&p[bd]);
      ok = bd_len == 8 && (blocks == 0 || blocks == (n > 0xffffffffull ? 0xffffffffu : n)) &&
           LoadBe24(&p[bd + 5]) == g.block_size;
    }
    if (!ok) return t.Fail(InvalidFieldInParameterList(static_cast<uint16_t>(bd)));
  }
  ModeState next = mode();
  while (pos < p.size()) {
    if (pos + 2 > p.size()) return t.Fail(InvalidFieldInParameterList(static_cast<uint16_t>(pos)));
    const uint8_t code = p[pos] & 0x3f;
    const size_t plen = 2 + static_cast<size_t>(p[pos + 1]);
    std::vector<uint8_t> cur = BuildPage(code, kCurrent, next);
    std::vector<uint8_t> chg = BuildPage(code, kChangeable, next);
    if (cur.empty() || (p[pos] & 0x40) || plen != cur.size() || pos + plen > p.size()) {
      return t.Fail(InvalidFieldInParameterList(static_cast<uint16_t>(pos)));
    }
    for (size_t i = 2; i < plen; ++i) {
      if ((p[pos + i] ^ cur[i]) & ~chg[i]) {
        return t.Fail(InvalidFieldInParameterList(static_cast<uint16_t>(pos + i)));
      }
    }
    if (code == 0x08) next.write_cache_enabled = p[pos + 2] & 0x04;
    if (code == 0x0a) {
      next.descriptor_sense = p[pos + 2] & 0x04;
      next.software_write_protect = p[pos + 4] & 0x08;
    }
    pos += plen;
  }
  std::lock_guard lock(mu_);
  const bool changed = next.write_cache_enabled != mode_.write_cache_enabled ||
                       next.descriptor_sense != mode_.descriptor_sense ||
                       next.software_write_protect != mode_.software_write_protect;
  mode_ = next;
  software_wp_.store(next.software_write_protect);
  if (changed) {  // SPC-4 7.5.1: the other I_T nexuses learn of it by a unit attention
    for (uint64_t n : seen_nexus_) {
      if (n != t.nexus) pending_ua_[n].push_back(Asc::kModeParametersChanged);
    }
  }
}

}  // namespace ferry::scsi
