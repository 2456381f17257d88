// IscsiDevice::QueryProvisioning: the remote LU's own GET LBA STATUS (SBC-3 5.6), so that a
// gateway reports what the array deallocated (after UNMAP, WRITE SAME with UNMAP, SANITIZE).
#include <algorithm>
#include <memory>

#include "backends/iscsi/iscsi_device.h"
#include "backends/iscsi/iscsi_sense.h"
#include "base/endian.h"

namespace ferry::backends::iscsi {
namespace {

constexpr uint8_t kGetLbaStatus = 0x9e;  // SERVICE ACTION IN(16)
constexpr uint8_t kGetLbaStatusSa = 0x12;
constexpr size_t kHeaderBytes = 8;
constexpr size_t kDescriptorBytes = 16;

struct Query {
  ScsiCommand cmd;
  uint64_t lba = 0;
  uint64_t max_blocks = 0;
  block::ProvisioningDone done;
  int retries = 4;
};

// The runs from q.lba in a GET LBA STATUS answer, clipped to what was asked; a first
// descriptor that does not start at the LBA asked for is not an answer to the question.
std::vector<block::ProvisioningExtent> Decode(const Query& q) {
  std::vector<block::ProvisioningExtent> runs;
  const std::vector<uint8_t>& d = q.cmd.data_in;
  if (d.size() < kHeaderBytes) return runs;
  const size_t len = std::min<size_t>(d.size(), LoadBe32(d.data()) + 4ull);
  uint64_t at = q.lba;
  const uint64_t end = q.lba + q.max_blocks;
  for (size_t off = kHeaderBytes; off + kDescriptorBytes <= len && at < end;
       off += kDescriptorBytes) {
    const uint8_t* p = d.data() + off;
    const uint64_t start = LoadBe64(p);
    const uint64_t n = LoadBe32(p + 8);
    if (start > at || start + n <= at || n == 0) break;
    const uint64_t blocks = std::min(start + n, end) - at;
    runs.push_back({.mapped = (p[12] & 0x0f) == 0, .blocks = BlockCount(blocks)});
    at += blocks;
  }
  return runs;
}

void Send(ScsiChannel& channel, uint64_t lun, Query* q) {
  q->cmd.done = [&channel, lun, q] {
    std::unique_ptr<Query> owned(q);
    if (q->cmd.transport != IoStatus::kOk) return q->done(q->cmd.transport, {});
    const SenseVerdict v = ClassifyScsiResult(q->cmd.scsi_status, q->cmd.sense);
    if (v.action != SenseAction::kComplete && --q->retries > 0) {
      q->cmd.data_in.clear();
      return Send(channel, lun, owned.release());
    }
    if (v.status != IoStatus::kOk) return q->done(v.status, {});
    std::vector<block::ProvisioningExtent> runs = Decode(*q);
    if (runs.empty()) return q->done(IoStatus::kIoError, {});
    q->done(IoStatus::kOk, std::move(runs));
  };
  channel.Execute(lun, q->cmd);
}

}  // namespace

void IscsiDevice::QueryProvisioning(Lba lba, BlockCount max, uint32_t max_extents,
                                    block::ProvisioningDone done) {
  // A fully provisioned LU has nothing but mapped blocks (and may not know the command).
  if (!thin_) return BlockDevice::QueryProvisioning(lba, max, max_extents, std::move(done));
  auto* q = new Query{.lba = lba.value(), .max_blocks = max.value(), .done = std::move(done)};
  const uint32_t alloc = static_cast<uint32_t>(
      kHeaderBytes + kDescriptorBytes * std::clamp<uint32_t>(max_extents, 1, 1024));
  q->cmd.cdb[0] = kGetLbaStatus;
  q->cmd.cdb[1] = kGetLbaStatusSa;
  StoreBe64(q->cmd.cdb + 2, lba.value());
  StoreBe32(q->cmd.cdb + 10, alloc);
  q->cmd.cdb_len = 16;
  q->cmd.data_in_len = alloc;
  Send(channel(), this->lun(), q);
}

}  // namespace ferry::backends::iscsi
