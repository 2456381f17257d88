#include "backends/iscsi/iscsi_probe.h"

// clang-format off
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
// clang-format on

#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace ferry::backends::iscsi {
namespace {

uint64_t GetBe(const std::vector<uint8_t>& b, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = v << 8 | (at + i < b.size() ? b[at + i] : 0);
  return v;
}

struct ContextDeleter {
  void operator()(iscsi_context* c) const {
    if (iscsi_is_logged_in(c)) iscsi_logout_sync(c);
    iscsi_destroy_context(c);
  }
};
using ContextPtr = std::unique_ptr<iscsi_context, ContextDeleter>;

struct TaskDeleter {
  void operator()(scsi_task* t) const { scsi_free_scsi_task(t); }
};
using TaskPtr = std::unique_ptr<scsi_task, TaskDeleter>;

// The Data-In bytes of a GOOD command; empty (and *why set) otherwise.
std::vector<uint8_t> DataIn(iscsi_context* ctx, scsi_task* raw, std::string* why) {
  TaskPtr task(raw);
  if (task == nullptr) {
    *why = iscsi_get_error(ctx);
    return {};
  }
  if (task->status != SCSI_STATUS_GOOD) {
    *why = std::string(iscsi_get_error(ctx));
    return {};
  }
  return std::vector<uint8_t>(task->datain.data, task->datain.data + task->datain.size);
}

// SPC-4 6.6 INQUIRY of a VPD page, with the page's own length.
std::vector<uint8_t> Vpd(iscsi_context* ctx, int lun, uint8_t page, std::string* why) {
  auto data = DataIn(ctx, iscsi_inquiry_sync(ctx, lun, 1, page, 255), why);
  if (data.size() >= 4) {
    size_t len = 4 + GetBe(data, 2, 2);
    if (len > data.size()) {
      data = DataIn(ctx, iscsi_inquiry_sync(ctx, lun, 1, page, static_cast<int>(len)), why);
    }
  }
  return data;
}

Status Fail(const SessionConfig& cfg, const std::string& what) {
  return FailedPrecondition("iSCSI " + cfg.url_text + ": " + what);
}

// libiscsi's error text on one line.
std::string ErrorText(iscsi_context* ctx) {
  std::string e = iscsi_get_error(ctx);
  for (char& ch : e) {
    if (ch == '\n' || ch == '\r') ch = ' ';
  }
  while (!e.empty() && e.back() == ' ') e.pop_back();
  return e;
}

Status NotPresent(const SessionConfig& cfg) {
  return NotFound("iSCSI " + cfg.url_text + ": LUN " + std::to_string(cfg.url.lun) +
                  " not present");
}

// RFC 7143 11.13.5 login status, from libiscsi's error text.
Status LoginError(const SessionConfig& cfg, const std::string& err) {
  auto has = [&](const char* s) { return err.find(s) != std::string::npos; };
  if (has("Target not found") || has("Target removed")) {
    return NotFound("iSCSI " + cfg.url_text + ": unknown target IQN '" + cfg.url.target_iqn +
                    "' (" + err + ")");
  }
  if (has("Authentication fail") || has("Authorization fail") || has("CHAP")) {
    return PermissionDenied("iSCSI " + cfg.url_text + ": CHAP authentication failed (" + err + ")");
  }
  return Fail(cfg, "login failed (" + err + ")");
}

// TCP connect, login, and TEST UNIT READY (SPC-4 6.37) through the unit attentions a new
// session collects.
Status Connect(const SessionConfig& cfg, iscsi_context* ctx) {
  if (iscsi_connect_sync(ctx, cfg.url.portal().c_str()) != 0) {
    // libiscsi 1.19 often overwrites the socket error with one about reconnecting.
    std::string err = ErrorText(ctx);
    if (err.find("reconnect") != std::string::npos) err = "connection refused or timed out";
    return Unavailable("iSCSI " + cfg.url_text + ": cannot reach " + cfg.url.portal() + " (" + err +
                       ")");
  }
  if (iscsi_login_sync(ctx) != 0) return LoginError(cfg, ErrorText(ctx));
  const int lun = static_cast<int>(cfg.url.lun);
  for (int i = 0; i < 8; ++i) {
    TaskPtr tur(iscsi_testunitready_sync(ctx, lun));
    if (tur == nullptr) return Fail(cfg, "TEST UNIT READY failed (" + ErrorText(ctx) + ")");
    if (tur->status != SCSI_STATUS_CHECK_CONDITION) break;
    if (tur->sense.key == SCSI_SENSE_ILLEGAL_REQUEST && tur->sense.ascq == 0x2500) {
      return NotPresent(cfg);  // LOGICAL UNIT NOT SUPPORTED
    }
    if (tur->sense.key != SCSI_SENSE_UNIT_ATTENTION) break;
  }
  return Status::Ok();
}

Status ReadCapacity(const SessionConfig& cfg, iscsi_context* ctx, int lun, ProbedLu* lu) {
  std::string why;
  auto rc16 = DataIn(ctx, iscsi_readcapacity16_sync(ctx, lun), &why);
  if (rc16.size() >= 16) {
    lu->num_blocks = GetBe(rc16, 0, 8) + 1;
    lu->block_size = static_cast<uint32_t>(GetBe(rc16, 8, 4));
    lu->lbppbe = rc16[13] & 0x0f;
    lu->lbpme = (rc16[14] & 0x80) != 0;
    lu->lbprz = (rc16[14] & 0x40) != 0;
  } else {
    auto rc10 = DataIn(ctx, iscsi_readcapacity10_sync(ctx, lun, 0, 0), &why);
    if (rc10.size() < 8) return Fail(cfg, "READ CAPACITY failed (" + why + ")");
    lu->num_blocks = GetBe(rc10, 0, 4) + 1;
    lu->block_size = static_cast<uint32_t>(GetBe(rc10, 4, 4));
  }
  uint32_t bs = lu->block_size;
  if (bs < 512 || (bs & (bs - 1)) != 0) {
    return Fail(cfg, "block size " + std::to_string(bs) + " is not a power of two >= 512");
  }
  return Status::Ok();
}

void ReadVpdPages(iscsi_context* ctx, int lun, ProbedLu* lu) {
  std::string why;
  auto supported = Vpd(ctx, lun, 0x00, &why);  // SPC-4 7.8.13 Supported VPD Pages
  auto listed = [&](uint8_t page) {
    for (size_t i = 4; i < supported.size(); ++i) {
      if (supported[i] == page) return true;
    }
    return false;
  };
  if (listed(0xb0)) {
    auto b0 = Vpd(ctx, lun, 0xb0, &why);  // SBC-3 6.6.4 Block Limits
    if (b0.size() >= 44) {
      lu->has_block_limits = true;
      lu->max_transfer_blocks = static_cast<uint32_t>(GetBe(b0, 8, 4));
      lu->optimal_transfer_blocks = static_cast<uint32_t>(GetBe(b0, 12, 4));
      lu->max_unmap_lba_count = static_cast<uint32_t>(GetBe(b0, 20, 4));
      lu->max_unmap_descriptors = static_cast<uint32_t>(GetBe(b0, 24, 4));
      lu->unmap_granularity_blocks = static_cast<uint32_t>(GetBe(b0, 28, 4));
      lu->max_write_same_blocks = GetBe(b0, 36, 8);
    }
  }
  if (listed(0xb2)) {
    auto b2 = Vpd(ctx, lun, 0xb2, &why);  // SBC-3 6.6.6 Logical Block Provisioning
    if (b2.size() >= 6) {
      lu->lbpu = (b2[5] & 0x80) != 0;
      lu->lbpws = (b2[5] & 0x40) != 0;
    }
  }
  if (listed(0x83)) lu->pages.vpd83 = Vpd(ctx, lun, 0x83, &why);
  if (listed(0x8f)) lu->pages.vpd8f = Vpd(ctx, lun, 0x8f, &why);
  // SPC-4 6.18.4 RECEIVE COPY OPERATING PARAMETERS (service action 03h); optional.
  lu->pages.rcop = DataIn(ctx, iscsi_receive_copy_results_sync(ctx, lun, 3, 0, 1024), &why);
}

}  // namespace

Result<ProbedLu> ProbeRemoteLu(const SessionConfig& cfg) {
  ContextPtr ctx(iscsi_create_context(cfg.initiator_name.c_str()));
  if (ctx == nullptr) return Fail(cfg, "cannot create a libiscsi context");
  if (!ConfigureContext(ctx.get(), cfg)) {
    return Fail(cfg, std::string("bad session settings: ") + iscsi_get_error(ctx.get()));
  }
  iscsi_set_noautoreconnect(ctx.get(), 1);
  const int lun = static_cast<int>(cfg.url.lun);
  FERRY_RETURN_IF_ERROR(Connect(cfg, ctx.get()));
  std::string why;
  auto inq = DataIn(ctx.get(), iscsi_inquiry_sync(ctx.get(), lun, 0, 0, 96), &why);
  if (inq.empty()) return Fail(cfg, "INQUIRY failed (" + why + ")");
  if ((inq[0] >> 5) == 3) return NotPresent(cfg);  // SPC-4 6.6.2: qualifier 011b, no LU
  if ((inq[0] & 0x1f) != 0) {
    return FailedPrecondition("iSCSI " + cfg.url_text + ": not a disk (peripheral device type " +
                              std::to_string(inq[0] & 0x1f) + ")");
  }
  ProbedLu lu;
  FERRY_RETURN_IF_ERROR(ReadCapacity(cfg, ctx.get(), lun, &lu));
  ReadVpdPages(ctx.get(), lun, &lu);
  return lu;
}

}  // namespace ferry::backends::iscsi
