// SPC-4 6.6 INQUIRY: standard data and the vital product data pages.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/endian.h"
#include "scsi/copy_manager.h"
#include "scsi/logical_unit.h"
#include "scsi/nexus.h"

namespace ferry::scsi {
namespace {

// Supported VPD pages, ascending; 8Fh only with a copy manager.
constexpr uint8_t kVpdPages[] = {0x00, 0x80, 0x83, 0x86, 0x8f, 0xb0, 0xb1, 0xb2};

void PutPadded(uint8_t* p, std::string_view s, size_t n) {
  std::memset(p, ' ', n);
  std::memcpy(p, s.data(), std::min(n, s.size()));
}

// SPC-4 6.6.2 standard INQUIRY data, 96 bytes.
std::vector<uint8_t> Standard(const LuIdentity& id, bool third_party_copy) {
  std::vector<uint8_t> d(96, 0);
  d[0] = 0x00;                         // peripheral qualifier 0, direct access block device
  d[2] = 0x06;                         // SPC-4
  d[3] = 0x12;                         // HISUP, response data format 2
  d[4] = 96 - 5;                       // additional length
  d[5] = 0x20;                         // TPGS 10b: explicit asymmetric access only (alua.h)
  if (third_party_copy) d[5] |= 0x08;  // 3PC: EXTENDED COPY and the token commands
  d[7] = 0x02;                         // CMDQUE
  PutPadded(&d[8], id.vendor, 8);
  PutPadded(&d[16], id.product, 16);
  PutPadded(&d[32], id.revision, 4);
  // Version descriptors (SPC-4 table 144): SAM-5, SPC-4, SBC-3, iSCSI (no version).
  const uint16_t versions[] = {0x00a0, 0x0460, 0x04c0, 0x0960};
  for (size_t i = 0; i < 4; ++i) StoreBe16(&d[58 + 2 * i], versions[i]);
  return d;
}

void Designator(std::vector<uint8_t>* d, uint8_t proto_codeset, uint8_t piv_assoc_type,
                std::span<const uint8_t> value) {
  d->push_back(proto_codeset);
  d->push_back(piv_assoc_type);
  d->push_back(0);
  d->push_back(static_cast<uint8_t>(value.size()));
  d->insert(d->end(), value.begin(), value.end());
}

// SPC-4 7.8.6 Device Identification: NAA, EUI-64, T10 vendor id (each names the LU in an
// EXTENDED COPY CSCD descriptor, and are the same on every path), then the target port the
// command came through: its relative identifier, its group and its SCSI name.
std::vector<uint8_t> DeviceIdentification(const LogicalUnit& lu, const NexusView* view) {
  const LuIdentity& id = lu.identity();
  std::vector<uint8_t> d = {0x00, 0x83, 0, 0};
  Designator(&d, 0x01, 0x03, id.naa);      // binary, LU, NAA
  Designator(&d, 0x01, 0x02, lu.Eui64());  // binary, LU, EUI-64
  const std::string t10 = lu.T10VendorId();
  Designator(&d, 0x02, 0x01,
             {reinterpret_cast<const uint8_t*>(t10.data()), t10.size()});  // ASCII, LU, T10
  uint8_t rel[4] = {0, 0, 0, 0};
  StoreBe16(&rel[2], view != nullptr ? view->relative_target_port : id.relative_port);
  Designator(&d, 0x51, 0x94, rel);  // iSCSI, PIV, target port, relative target port
  uint8_t tpg[4] = {0, 0, 0, 0};
  StoreBe16(&tpg[2], view != nullptr ? view->target_port_group : id.target_port_group);
  Designator(&d, 0x51, 0x95, tpg);  // iSCSI, PIV, target port, target port group
  if (view != nullptr && !view->target_name.empty()) {
    // SCSI name string of the target port (SPC-4 7.7.3.11): "<iqn>,t,0x<tpgt>", UTF-8,
    // null-terminated and padded with nulls to a multiple of four bytes.
    char tag[16];
    const int n = std::snprintf(tag, sizeof(tag), ",t,0x%04x", view->relative_target_port);
    std::string name = view->target_name + std::string(tag, static_cast<size_t>(n));
    name.resize(std::min<size_t>((name.size() + 4) & ~size_t{3}, 252), '\0');
    Designator(&d, 0x53, 0x98,
               {reinterpret_cast<const uint8_t*>(name.data()), name.size()});  // port name
  }
  StoreBe16(&d[2], static_cast<uint16_t>(d.size() - 4));
  return d;
}

std::vector<uint8_t> Page(uint8_t code, size_t len) {
  std::vector<uint8_t> d(4 + len, 0);
  d[1] = code;
  StoreBe16(&d[2], static_cast<uint16_t>(len));
  return d;
}

}  // namespace

// SBC-3 6.5.3 Block Limits, the fields past the transfer lengths: COMPARE AND WRITE,
// UNMAP, WRITE SAME and WRITE ATOMIC limits. WSNZ 0: WRITE SAME of 0 blocks runs to the end.
void LogicalUnit::BlockLimitsProvisioning(std::vector<uint8_t>* page) const {
  std::vector<uint8_t>& d = *page;
  const block::Geometry& g = dev_->geometry();
  d[5] = static_cast<uint8_t>(MaxCompareAndWriteBlocks());
  if (ThinProvisioned()) {
    StoreBe32(&d[20], kMaxUnmapBlocks);
    StoreBe32(&d[24], kMaxUnmapDescriptors);
    // Deallocation happens in whole chunks (RAM) or file-system blocks: unmap those.
    const uint64_t gran =
        std::max<uint64_t>(dev_->limits().discard_granularity_bytes, g.block_size);
    StoreBe32(&d[28], static_cast<uint32_t>(gran / g.block_size));
  }
  StoreBe64(&d[36], MaxWriteSameBlocks());
  StoreBe32(&d[44], MaxAtomicBlocks());  // maximum atomic transfer length
  StoreBe32(&d[48], 1);                  // atomic alignment
  StoreBe32(&d[52], 1);                  // atomic transfer length granularity
}

void LogicalUnit::Inquiry(Task& t) {
  const uint8_t* c = t.cdb.data();
  const bool evpd = c[1] & 0x01;
  if (c[1] & 0x02) return t.Fail(InvalidFieldInCdb(1, 1));  // CMDDT (obsolete)
  if (!evpd) {
    if (c[2] != 0) return t.Fail(InvalidFieldInCdb(2));
    return t.Reply(Standard(id_, tpc_ != nullptr));
  }
  std::vector<uint8_t> d;
  const block::Geometry& g = dev_->geometry();
  switch (c[2]) {
    case 0x00:  // SPC-4 7.8.13 Supported VPD pages
      d = Page(0x00, 0);
      for (uint8_t p : kVpdPages) {
        if (p != 0x8f || tpc_ != nullptr) d.push_back(p);
      }
      StoreBe16(&d[2], static_cast<uint16_t>(d.size() - 4));
      break;
    case 0x80:  // SPC-4 7.8.15 Unit Serial Number
      d = Page(0x80, id_.serial.size());
      std::copy(id_.serial.begin(), id_.serial.end(), d.begin() + 4);
      break;
    case 0x83: d = DeviceIdentification(*this, t.view.get()); break;
    case 0x8f:  // SPC-4 7.8.17 Third-party Copy
      if (tpc_ == nullptr) return t.Fail(InvalidFieldInCdb(2));
      d = tpc_->ThirdPartyCopyVpd(*this);
      break;
    case 0x86:  // SPC-4 7.8.7 Extended INQUIRY Data
      d = Page(0x86, 0x3c);
      d[5] = 0x07;  // HEADSUP, ORDSUP, SIMPSUP
      break;
    case 0xb0: {  // SBC-3 6.5.3 Block Limits
      d = Page(0xb0, 0x3c);
      const uint32_t max_blocks = static_cast<uint32_t>(kMaxTransferBytes / g.block_size);
      StoreBe16(&d[6], static_cast<uint16_t>(1u << PhysicalBlockExponent()));  // granularity
      StoreBe32(&d[8], max_blocks);  // maximum transfer length
      StoreBe32(&d[12], static_cast<uint32_t>((1u << 20) / g.block_size));  // optimal
      BlockLimitsProvisioning(&d);
      break;
    }
    case 0xb1:  // SBC-3 6.5.2 Block Device Characteristics
      d = Page(0xb1, 0x3c);
      StoreBe16(&d[4], 1);  // non-rotating medium
      // WABEREQ 01b: after SANITIZE BLOCK ERASE a read succeeds (the blocks read zeroes).
      if (SanitizeSupported(0x02)) d[7] = 0x40;
      break;
    case 0xb2:  // SBC-3 6.5.4 Logical Block Provisioning
      d = Page(0xb2, 4);
      // LBPU, LBPWS, LBPWS10, LBPRZ when blocks can be deallocated; thin, else full.
      if (ThinProvisioned()) {
        d[5] = 0xe4;
        d[6] = 0x02;
      }
      break;
    default: return t.Fail(InvalidFieldInCdb(2));
  }
  t.Reply(d);
}

}  // namespace ferry::scsi
