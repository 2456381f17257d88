// A remote iSCSI logical unit as a Ferry block device, through libiscsi (1.19).
//
// Open() (control path; blocks up to timeout_s) logs in once with a synchronous probe
// context and reads what the device needs: INQUIRY (must be a disk, peripheral type 0),
// READ CAPACITY (16, else 10), the supported VPD pages, Block Limits (B0h), Logical Block
// Provisioning (B2h), Device Identification (83h), and for the copy initiator the raw bytes
// of VPD 83h, 8Fh and RECEIVE COPY OPERATING PARAMETERS (pages()). The probe then logs out.
//
// Data path. One libiscsi context (one session) per reactor thread that submits, created
// lazily: libiscsi 1.19 has no threads, so a context is only ever touched by its reactor.
// Requests queue until that session is logged in. Its socket is waited on with the
// reactor's one-shot poll (Reactor::PollFd), re-armed after every iscsi_service(); a 1 s
// reactor timer drives libiscsi's timeouts and a NOP-Out keeps idle sessions alive.
//   read / write   READ(16) / WRITE(16), FUA for kIoFua, scatter-gather straight from the
//                  caller's iovecs
//   flush          SYNCHRONIZE CACHE(16)
//   discard        UNMAP, only when VPD B0h/B2h advertise it (else max_discard_bytes = 0)
//   write-zeroes   WRITE SAME(16) of a zero block, with UNMAP when LBPWS (else emulated by
//                  the block layer when the LU has no WRITE SAME)
// Answers go through one table (iscsi_sense.h): UNIT ATTENTION is retried, ABORTED COMMAND
// is retried once. CAPACITY DATA HAS CHANGED (on any command, raw ones included) re-reads
// the capacity, as does every login and reconnect of a session (a unit attention only
// reaches sessions that knew the old size), and the device takes a new size (logged): requests are
// checked against it from then on, and a LogicalUnit over the device raises the same unit attention
// for its own initiators. A changed block size is logged and not taken.
//
// Provisioning() stays the interface default ("all mapped"): GET LBA STATUS is a round trip
// to the target, and Provisioning() is a synchronous lookup cheap enough for a reactor
// thread; blocking a reactor on the network is not. QueryProvisioning(), the asynchronous
// form that SCSI GET LBA STATUS uses, asks the remote LU (iscsi_provisioning.cc).
//
// Reconnect. libiscsi reconnects inside iscsi_service() (new login, commands re-sent),
// at most kReconnectRetries times; the device logs one line when a session drops, when it
// is back, and when it gives up; requests then complete with kIoError. A later request
// starts a new session.
//
// Lifetime. The device may be destroyed on any thread once no request is in flight. The
// session of the destroying thread's reactor closes at once; sessions of reactor threads
// that have exited close without touching their reactors; sessions of reactors still
// running close on those reactors (posted), so those reactors must not be destroyed
// before their threads have run the posted task or exited.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backends/iscsi/iscsi_url.h"
#include "backends/iscsi/scsi_channel.h"
#include "backends/iscsi/tpc_codec.h"
#include "base/status.h"
#include "ferry/block_device.h"
#include "io/reactor.h"

namespace ferry::backends::iscsi {

struct IscsiOptions {
  std::string name;
  std::string url;  // iscsi://host[:port]/IQN/LUN
  std::string initiator_name = "iqn.2026-11.org.ferry:initiator";
  // CHAP (RFC 7143 12.1.3); empty user: no CHAP. Mutual when mutual_user is set. The
  // caller reads secrets from files; they are never logged.
  std::string chap_user;
  std::string chap_secret;
  std::string mutual_user;
  std::string mutual_secret;
  bool read_only = false;
  int timeout_s = 30;  // login, probe and per-command timeout
  // Which third-party copy this device, as a copy destination, may ask of the array.
  enum class Offload : uint8_t { kAuto, kXcopy, kOdx, kNone } offload = Offload::kAuto;
};

// Raw pages the third-party copy initiator (remote_copy.h) decodes itself; empty when the
// LU does not have them.
struct RemoteLuPages {
  std::vector<uint8_t> vpd83;  // Device Identification (SPC-4 7.8.6)
  std::vector<uint8_t> vpd8f;  // Third-party Copy (SPC-4 7.8.17)
  std::vector<uint8_t> rcop;   // RECEIVE COPY OPERATING PARAMETERS (SPC-4 6.18.4)
};

class Connection;
class RemoteCopier;
struct SessionConfig;

// Native copy (block::CopyOffload). A leg from another IscsiDevice is copied by the arrays
// (remote_copy.h): EXTENDED COPY when both LUs are behind one target, ODX tokens when both
// offer them. The capabilities are decoded from pages() at Open. A pair the array refused
// once (the reason is in the leg's `refusal`) is remembered as not offloadable for the
// device's lifetime, so later copies are emulated without asking again.
class IscsiDevice : public block::BlockDevice, public block::CopyOffload {
 public:
  // Errors: one line naming the URL and the cause (unreachable, unknown IQN, LUN not
  // present, CHAP failure, not a disk).
  static Result<std::shared_ptr<IscsiDevice>> Open(IscsiOptions options);
  ~IscsiDevice() override;
  IscsiDevice(const IscsiDevice&) = delete;
  IscsiDevice& operator=(const IscsiDevice&) = delete;

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "iscsi"; }
  const block::Geometry& geometry() const override { return geometry_; }
  const block::QueueLimits& limits() const override { return limits_; }
  bool read_only() const override { return read_only_; }
  void Submit(block::IoRequest& req) override;
  block::CopyOffload* copy_offload() override { return this; }
  bool CanCopyFrom(const block::BlockDevice& src, std::string* why_not) const override;
  void SubmitCopy(block::CopyLegRequest& req) override;
  // Aborts the leg's commands on the array (ABORT TASK, or COPY OPERATION ABORT for ODX).
  void CancelCopy(block::CopyLegRequest& req) override;
  const CopyCapabilities& copy_capabilities() const { return caps_; }
  // GET LBA STATUS on the remote LU when it is thin (LBPME); else everything is mapped.
  void QueryProvisioning(Lba lba, BlockCount max, uint32_t max_extents,
                         block::ProvisioningDone done) override;

  // Raw CDBs to this device's target, on the calling reactor's session (any reactor).
  ScsiChannel& channel() { return channel_; }
  const RemoteLuPages& pages() const { return pages_; }
  const std::string& target_iqn() const;
  const std::string& portal() const;  // "host:port" as connected
  uint64_t lun() const;

 private:
  class Channel : public ScsiChannel {
   public:
    explicit Channel(IscsiDevice* dev) : dev_(dev) {}
    void Execute(uint64_t lun, ScsiCommand& cmd) override;
    void Abort(ScsiCommand& cmd) override;

   private:
    IscsiDevice* dev_;
  };

  IscsiDevice();
  void CapacityChanged(uint64_t blocks, uint32_t block_size);
  // The calling reactor's session, created on first use.
  Connection& CurrentConnection();

  std::string name_;
  bool read_only_ = false;
  std::mutex capacity_mu_;
  block::Geometry geometry_;  // num_blocks written under capacity_mu_ (CapacityChanged)
  block::QueueLimits limits_;
  RemoteLuPages pages_;
  std::string portal_;
  std::shared_ptr<SessionConfig> config_;
  Channel channel_;
  std::mutex mu_;
  std::unordered_map<io::Reactor*, std::unique_ptr<Connection>> conns_;  // guarded by mu_
  CopyCapabilities caps_;
  bool thin_ = false;                           // READ CAPACITY(16) LBPME
  mutable std::mutex copy_mu_;                  // the copy state below
  std::map<std::string, std::string> refused_;  // source LU -> why; guarded by copy_mu_
  // Legs in flight, for CancelCopy; guarded by copy_mu_.
  std::map<const block::CopyLegRequest*, std::weak_ptr<RemoteCopier>> copiers_;
};

}  // namespace ferry::backends::iscsi
