#include "backends/iscsi/iscsi_device.h"

#include <algorithm>
#include <atomic>

#include "backends/iscsi/iscsi_connection.h"
#include "backends/iscsi/iscsi_probe.h"
#include "base/log.h"

namespace ferry::backends::iscsi {
namespace {

constexpr uint64_t kMaxIoBytes = 1u << 20;
constexpr uint64_t kMaxOneCommandBytes = 1ull << 30;  // discard / write-zeroes per request
// A native copy leg: the copier cuts it into commands by the arrays' limits and runs a few at
// once, so legs can be large; the engine runs several legs in flight.
constexpr uint64_t kMaxCopyLegBytes = 1ull << 30;
constexpr uint32_t kMaxCopyLegSegments = 256;

// Turns false when the thread exits: a device destroyed later must not touch that thread's
// reactor (see the Lifetime note in the header).
struct ThreadAlive {
  std::shared_ptr<std::atomic<bool>> flag = std::make_shared<std::atomic<bool>>(true);
  ~ThreadAlive() { flag->store(false); }
};
thread_local ThreadAlive t_alive;

block::QueueLimits LimitsFor(const ProbedLu& lu) {
  const uint64_t bs = lu.block_size;
  block::QueueLimits l;
  l.max_io_bytes = kMaxIoBytes;
  if (lu.max_transfer_blocks != 0) {
    l.max_io_bytes = std::min<uint64_t>(l.max_io_bytes, lu.max_transfer_blocks * bs);
  }
  l.max_io_bytes = std::max<uint64_t>(l.max_io_bytes, bs);
  l.buffer_alignment = 1;
  l.max_iovecs = 1024;
  // UNMAP only when the LU says it is thin (LBPME), supports UNMAP (LBPU) and has limits.
  if (lu.lbpme && lu.lbpu && lu.max_unmap_lba_count != 0 && lu.max_unmap_descriptors != 0) {
    l.max_discard_bytes = std::min<uint64_t>(lu.max_unmap_lba_count * bs, kMaxOneCommandBytes);
    l.max_discard_bytes -= l.max_discard_bytes % bs;
    l.discard_zeroes_data = lu.lbprz;
    if (lu.unmap_granularity_blocks > 1) {
      l.discard_granularity_bytes = static_cast<uint32_t>(lu.unmap_granularity_blocks * bs);
    }
  }
  if (lu.max_write_same_blocks != 0) {
    l.max_write_zeroes_bytes = std::min<uint64_t>(
        std::min<uint64_t>(lu.max_write_same_blocks, UINT32_MAX) * bs, kMaxOneCommandBytes);
  }
  l.physical_block_bytes = lu.lbppbe < 16 ? static_cast<uint32_t>(bs << lu.lbppbe) : 0;
  return l;
}

// What the LU offers for third-party copy, less what `offload` rules out.
CopyCapabilities CopyCapabilitiesFor(const RemoteLuPages& pages, IscsiOptions::Offload offload) {
  CopyCapabilities caps = DecodeCopyCapabilities(pages.vpd83, pages.vpd8f, pages.rcop);
  using Offload = IscsiOptions::Offload;
  if (offload == Offload::kOdx || offload == Offload::kNone) {
    caps.lid1 = false;
    caps.why_no_xcopy = offload == Offload::kNone ? "offload=none" : "offload=odx";
  }
  if (offload == Offload::kXcopy || offload == Offload::kNone) {
    caps.odx = false;
    caps.why_no_odx = offload == Offload::kNone ? "offload=none" : "offload=xcopy";
  }
  return caps;
}

}  // namespace

Result<std::shared_ptr<IscsiDevice>> IscsiDevice::Open(IscsiOptions options) {
  FERRY_ASSIGN_OR_RETURN(IscsiUrl url, ParseIscsiUrl(options.url));
  if (options.timeout_s <= 0) {
    return InvalidArgument("iSCSI " + options.url + ": timeout_s must be positive");
  }
  if (options.chap_user.empty() && !options.mutual_user.empty()) {
    return InvalidArgument("iSCSI " + options.url + ": mutual CHAP needs chap_user as well");
  }
  auto cfg = std::make_shared<SessionConfig>();
  cfg->url_text = options.url;
  cfg->url = std::move(url);
  cfg->initiator_name = options.initiator_name;
  cfg->chap_user = options.chap_user;
  cfg->chap_secret = options.chap_secret;
  cfg->mutual_user = options.mutual_user;
  cfg->mutual_secret = options.mutual_secret;
  cfg->timeout_s = options.timeout_s;
  FERRY_ASSIGN_OR_RETURN(ProbedLu lu, ProbeRemoteLu(*cfg));
  cfg->block_size = lu.block_size;
  cfg->write_same_unmap = lu.lbpws && lu.lbprz;

  std::shared_ptr<IscsiDevice> dev(new IscsiDevice());
  dev->name_ = options.name.empty() ? options.url : options.name;
  dev->read_only_ = options.read_only;
  dev->geometry_.block_size = lu.block_size;
  dev->geometry_.num_blocks = BlockCount(lu.num_blocks);
  dev->limits_ = LimitsFor(lu);
  dev->thin_ = lu.lbpme;
  dev->pages_ = std::move(lu.pages);
  dev->caps_ = CopyCapabilitiesFor(dev->pages_, options.offload);
  dev->limits_.max_copy_bytes = kMaxCopyLegBytes;
  dev->limits_.max_copy_segments = kMaxCopyLegSegments;
  dev->limits_.copy_granularity_bytes = lu.block_size;
  dev->portal_ = cfg->url.portal();
  cfg->capacity_changed = [weak = std::weak_ptr<IscsiDevice>(dev)](uint64_t blocks, uint32_t bs) {
    if (auto d = weak.lock()) d->CapacityChanged(blocks, bs);
  };
  dev->config_ = std::move(cfg);
  FERRY_LOG_INFO("iscsi {}: {} blocks of {} bytes, max I/O {} bytes, discard {}, write-zeroes {}",
                 dev->config_->url_text, lu.num_blocks, lu.block_size, dev->limits_.max_io_bytes,
                 dev->limits_.max_discard_bytes, dev->limits_.max_write_zeroes_bytes);
  return dev;
}

IscsiDevice::IscsiDevice() : channel_(this) {}

IscsiDevice::~IscsiDevice() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [reactor, conn] : conns_) {
    if (reactor == io::Reactor::Current() || !conn->owner_alive()) {
      conn.reset();
    } else {
      Connection* raw = conn.release();
      reactor->Post([raw] { delete raw; });
    }
  }
}

// The target said CAPACITY DATA HAS CHANGED and READ CAPACITY answered: the device takes the
// new size (geometry() readers see the old or the new one); LogicalUnits over it notice at
// their next command and tell their own initiators (logical_unit.cc). A new block size
// cannot be taken while open: requests keep the old one, and the log says to reopen.
void IscsiDevice::CapacityChanged(uint64_t blocks, uint32_t block_size) {
  std::lock_guard<std::mutex> lock(capacity_mu_);
  if (block_size != geometry_.block_size) {
    FERRY_LOG_ERROR(
        "iscsi {}: the LU's block size changed from {} to {} bytes; the device keeps {} "
        "(remove and add the backstore again)",
        config_->url_text, geometry_.block_size, block_size, geometry_.block_size);
    return;
  }
  if (blocks == geometry_.num_blocks.value() || blocks == 0) return;
  FERRY_LOG_WARN("iscsi {}: capacity changed from {} to {} blocks of {} bytes", config_->url_text,
                 geometry_.num_blocks.value(), blocks, block_size);
  geometry_.num_blocks = BlockCount(blocks);
}

const std::string& IscsiDevice::target_iqn() const { return config_->url.target_iqn; }
uint64_t IscsiDevice::lun() const { return config_->url.lun; }
const std::string& IscsiDevice::portal() const { return portal_; }

Connection& IscsiDevice::CurrentConnection() {
  io::Reactor* r = io::Reactor::Current();
  std::lock_guard<std::mutex> lock(mu_);
  auto& conn = conns_[r];
  if (conn == nullptr) conn = std::make_unique<Connection>(config_, r, t_alive.flag);
  return *conn;
}

void IscsiDevice::Submit(block::IoRequest& req) {
  IoStatus st = block::ValidateRequest(*this, req);
  const uint64_t bytes = req.blocks.bytes(geometry_.block_size);
  if (st == IoStatus::kOk && req.op == block::IoOp::kDiscard && bytes > limits_.max_discard_bytes) {
    st = IoStatus::kInvalid;
  }
  if (st == IoStatus::kOk && req.op == block::IoOp::kWriteZeroes) {
    if (limits_.max_write_zeroes_bytes == 0) st = IoStatus::kNotSupported;
    if (bytes > limits_.max_write_zeroes_bytes) st = IoStatus::kInvalid;
  }
  if (st != IoStatus::kOk) {
    io::Reactor::Current()->RunAfter(std::chrono::nanoseconds(0), [&req, st] { req.done(st); });
    return;
  }
  CurrentConnection().SubmitBlock(req);
}

void IscsiDevice::Channel::Execute(uint64_t lun, ScsiCommand& cmd) {
  dev_->CurrentConnection().Execute(lun, cmd);
}

void IscsiDevice::Channel::Abort(ScsiCommand& cmd) { dev_->CurrentConnection().Abort(cmd); }

}  // namespace ferry::backends::iscsi
