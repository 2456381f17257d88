#include "crash_session.h"

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ferry::crash_test {

namespace {

// Issues a command again while another initiator's LU reset gets in the way (bench/soak):
// it ended TASK ABORTED, or this nexus's UNIT ATTENTION came first.
template <typename Issue>
scsi_task* Retrying(Issue issue) {
  for (int attempt = 0;; ++attempt) {
    scsi_task* t = issue();
    const bool again =
        t != nullptr &&
        (t->status == SCSI_STATUS_TASK_ABORTED ||
         (t->status == SCSI_STATUS_CHECK_CONDITION && t->sense.key == SCSI_SENSE_UNIT_ATTENTION));
    if (!again || attempt == 20) return t;
    scsi_free_scsi_task(t);
  }
}

}  // namespace

iscsi_context* Connect(const Options& o) {
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  for (;;) {
    iscsi_context* c = iscsi_create_context(o.initiator.c_str());
    if (c == nullptr) return nullptr;
    iscsi_set_targetname(c, o.target.c_str());
    iscsi_set_session_type(c, ISCSI_SESSION_NORMAL);
    iscsi_set_header_digest(c, ISCSI_HEADER_DIGEST_NONE);
    iscsi_set_isid_en(c, 0xfe77, o.isid);  // the same I_T nexus run after run
    iscsi_set_noautoreconnect(c, 1);
    if (iscsi_full_connect_sync(c, o.portal.c_str(), o.lun) == 0) {
      for (int i = 0; i < 8; ++i) {  // the unit attentions of a restart
        scsi_task* t = iscsi_testunitready_sync(c, o.lun);
        const bool good = t != nullptr && t->status == SCSI_STATUS_GOOD;
        if (t != nullptr) scsi_free_scsi_task(t);
        if (good) return c;
      }
      std::fprintf(stderr, "crash_client: LUN %d never became ready\n", o.lun);
      iscsi_destroy_context(c);
      return nullptr;
    }
    iscsi_destroy_context(c);
    if (Clock::now() > deadline) return nullptr;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

uint32_t BlockSize(iscsi_context* c, int lun, uint64_t* lu_blocks) {
  scsi_task* t = Retrying([&] { return iscsi_readcapacity16_sync(c, lun); });
  uint32_t bs = 0;
  if (t != nullptr && t->status == SCSI_STATUS_GOOD) {
    auto* rc = static_cast<scsi_readcapacity16*>(scsi_datain_unmarshall(t));
    if (rc != nullptr) {
      bs = rc->block_length;
      *lu_blocks = rc->returned_lba + 1;
    }
  }
  if (t != nullptr) scsi_free_scsi_task(t);
  return bs;
}

// The LU's NAA designator (VPD 83h, association LU), for the EXTENDED COPY CSCD.
bool Naa(iscsi_context* c, int lun, tpc_test::Designator* d) {
  scsi_task* t = Retrying([&] { return iscsi_inquiry_sync(c, lun, 1, 0x83, 1024); });
  bool found = false;
  if (t != nullptr && t->status == SCSI_STATUS_GOOD && t->datain.size >= 4) {
    const uint8_t* p = t->datain.data;
    const size_t end = std::min<size_t>(t->datain.size, 4 + (p[2] << 8 | p[3]));
    for (size_t off = 4; off + 4 <= end && !found; off += 4 + p[off + 3]) {
      const uint8_t type = p[off + 1] & 0x0f, assoc = (p[off + 1] >> 4) & 3;
      if (type != 3 || assoc != 0 || off + 4 + p[off + 3] > end) continue;
      d->code_set = p[off] & 0x0f;
      d->type = 3;
      d->value.assign(p + off + 4, p + off + 4 + p[off + 3]);
      found = true;
    }
  }
  if (t != nullptr) scsi_free_scsi_task(t);
  return found;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool WriteFileAtomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

// Reads every block of the model's range and checks it. Returns the number of bad blocks.
int VerifyAll(iscsi_context* c, const Options& o, uint32_t bs, Model* m) {
  int bad = 0;
  constexpr uint64_t kChunk = 128;
  for (uint64_t lba = 0; lba < m->blocks(); lba += kChunk) {
    const uint64_t n = std::min(kChunk, m->blocks() - lba);
    scsi_task* t = Retrying([&] {
      return iscsi_read16_sync(c, o.lun, o.first_lba + lba, static_cast<uint32_t>(n * bs),
                               static_cast<int>(bs), 0, 0, 0, 0, 0);
    });
    if (t == nullptr || t->status != SCSI_STATUS_GOOD ||
        t->datain.size != static_cast<int>(n * bs)) {
      std::fprintf(stderr, "crash_client: LUN %d: READ(16) at LBA %llu failed: %s\n", o.lun,
                   static_cast<unsigned long long>(o.first_lba + lba), iscsi_get_error(c));
      if (t != nullptr) scsi_free_scsi_task(t);
      return bad + 1;
    }
    for (uint64_t i = 0; i < n; ++i) {
      const std::span<const uint8_t> block(t->datain.data + i * bs, bs);
      const auto got = DecodeBlock(block);
      const std::string why =
          got ? (o.visible ? m->CheckVisible(lba + i, *got) : m->Check(lba + i, *got))
              : "LBA " + std::to_string(lba + i) + " holds a torn or foreign block";
      if (!why.empty()) {
        if (bad < 20) std::fprintf(stderr, "crash_client: LUN %d: %s\n", o.lun, why.c_str());
        ++bad;
      } else {
        m->Observe(lba + i, *got);
      }
    }
    scsi_free_scsi_task(t);
  }
  return bad;
}

}  // namespace ferry::crash_test
