// A Ceph RBD image as a Ferry block device, through librbd's C API (Ceph 16.2).
//
// Open() (control path; blocks up to the options' timeout) connects to the cluster
// (rbd_cluster.h, shared with other devices of the same cluster identity), opens the image
// (a snapshot read-only), and, when the device is writable and the image has the
// exclusive-lock feature, takes the image's exclusive lock for the device's lifetime:
// another client holding it makes Open fail naming the holder, instead of the two
// gateways taking the lock from each other on every write.
//
// Data path. Every request is one librbd asynchronous call (rbd_aio_readv / writev /
// flush / discard / write_zeroes; a FUA write is a write, then a flush). Its completion is
// created without a callback: librbd only queues it on the image and writes the image's
// eventfd (rbd_set_image_notification). Ferry's reactors wait on that eventfd with their
// one-shot poll (Reactor::PollFd) and take finished completions with rbd_poll_io_events,
// so no Ferry code runs on librbd's threads.
//
// One image handle and one eventfd per device, shared by the reactors that submit to it:
// librbd keeps one notification fd per image handle, and one handle per reactor would make
// the handles of one gateway fight over the image's exclusive lock. A reactor keeps its
// poll armed while it has requests in flight; whichever reactor wakes takes every finished
// completion and hands each to the reactor that submitted it (Reactor::Post), which
// completes the request. Each reactor's state (poll, counters, a free list of request
// records, so the data path does not allocate once warm) lives as long as the device.
//
// Limits. Reads and writes up to 4 MiB (an RBD object) and 1024 iovecs; discard and
// write-zeroes up to 1 GiB per request. rbd_cluster.cc turns rbd_skip_partial_discard off,
// so a discard covers every byte asked for and reads back as zeroes (discard_zeroes_data).
//
// Resize. Open registers an update watch on the image (rbd_update_watch; not for a
// snapshot, whose size is fixed). librbd calls it on one of its threads when the image's
// header changes (a resize by any client, the lock owner carrying it out); the callback only
// reads the size (rbd_get_size) and stores the new num_blocks under size_mu_ (geometry()
// readers see the old or the new value, block_device.h). A LogicalUnit over the device
// notices at the next command (CAPACITY DATA HAS CHANGED). The block size never changes.
//
// Provisioning. QueryProvisioning (SCSI GET LBA STATUS) asks rbd_diff_iterate2 on a worker
// thread of the device (it has no asynchronous form and may go to the network) and posts the
// runs back; the synchronous Provisioning() keeps the default, everything mapped.
//
// Copies (rbd_copy.cc). A writable device copies natively from any rbd device of the same
// cluster (same fsid): block::CopyOffload. Each leg is planned on the device's worker thread
// (rbd_copy_plan.h): the source's holes (rbd_diff_iterate2, parents included) are zeroed on
// the destination, not read; whole objects are copied inside the cluster by RADOS copy-from
// (ObjectWriteOperation::copy_from2 with the destination's snapshot context) when that is
// safe, and the rest is read and written through librbd, up to kCopyDepth steps in flight per
// leg (buffers of 4 MiB, reused). Server-side copy is safe only when the device holds the
// destination's exclusive lock, both images have one object size and no striping, the
// destination has no journal (which writes behind librbd would bypass), the source is not a
// snapshot and neither image starts with a LUKS header; each
// condition that rules it out is named in the leg's result (CopyLegRequest::refusal) and the
// bytes go through the gateway. Both images are flushed before the cluster copies (librbd's
// writearound cache may hold acknowledged writes), and the destination's cache is invalidated
// after. A destination with an object map has each object marked in it through librbd before
// the cluster replaces the object (MarkObject). A source object missing although the source
// holds data there (a clone's parent data)
// is read through librbd. librados calls the copy-from completions on its own thread, which
// only posts them to the leg's reactor. A segment whose source and destination overlap on
// one image is refused (kNotSupported): the engine copies it in order.
//
// Lifetime. Destroy the device with no request in flight (block_device.h); then no poll is
// armed, and the destructor removes the update watch (waiting for a callback in progress),
// joins the worker and closes the image (flushing librbd's cache) on the calling thread.
#pragma once

#include <rbd/librbd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/rbd/rbd_cluster.h"
#include "backends/rbd/rbd_params.h"
#include "backends/rbd/rbd_worker.h"
#include "base/status.h"
#include "ferry/block_device.h"
#include "io/reactor.h"

namespace ferry::backends::rbd {

struct CopyInfo;

class RbdDevice : public block::BlockDevice, public block::CopyOffload {
 public:
  // Errors name POOL/IMAGE and the cause: kUnavailable (cluster unreachable), kNotFound
  // (no such pool, image or snapshot), kFailedPrecondition (the exclusive lock is held by
  // another client; the image is too small for one block), kPermissionDenied.
  static Result<std::shared_ptr<RbdDevice>> Open(RbdOptions options);
  ~RbdDevice() override;
  RbdDevice(const RbdDevice&) = delete;
  RbdDevice& operator=(const RbdDevice&) = delete;

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "rbd"; }
  const block::Geometry& geometry() const override { return geometry_; }
  const block::QueueLimits& limits() const override { return limits_; }
  bool read_only() const override { return read_only_; }
  void Submit(block::IoRequest& req) override;
  // From rbd_diff_iterate2 on the device's worker thread (rbd_provisioning.cc).
  void QueryProvisioning(Lba lba, BlockCount max, uint32_t max_extents,
                         block::ProvisioningDone done) override;

  block::CopyOffload* copy_offload() override { return read_only_ ? nullptr : this; }
  // True for an rbd source of the same cluster (rbd_copy.cc).
  bool CanCopyFrom(const block::BlockDevice& src, std::string* why_not) const override;
  void SubmitCopy(block::CopyLegRequest& req) override;

  const std::string& spec() const { return spec_; }  // POOL/IMAGE[@SNAP]
  uint64_t object_size_bytes() const { return object_size_; }

  // Bytes this device received as a copy destination, by how they moved.
  struct CopyStats {
    uint64_t server_bytes = 0;    // copied by the OSDs (copy-from)
    uint64_t gateway_bytes = 0;   // read from the source and written by this gateway
    uint64_t zeroed_bytes = 0;    // holes of the source, zeroed without reading
    uint64_t parent_objects = 0;  // source objects read through librbd (a clone's parent)
    uint64_t marked_objects = 0;  // objects marked in the object map before the OSDs copied
    uint64_t fallback_legs = 0;   // legs that could not use server-side copy
  };
  CopyStats copy_stats() const;

 private:
  struct Op;
  struct ReactorState;
  struct CopyLeg;

  RbdDevice() = default;
  Status OpenImage(const RbdOptions& o);
  Status SetUpNotification();
  Status TakeExclusiveLock();
  void SetGeometryAndLimits(uint64_t size_bytes, uint32_t block_size);
  void WatchSize();
  // On a librbd thread: the image's header changed; takes its size if that changed.
  static void OnImageUpdated(void* arg);
  // On a librbd thread: a compare-and-write finished (librbd 16.2 does not announce those
  // on the eventfd); hands the result to the submitting reactor.
  static void OnCompareAndWriteDone(rbd_completion_t c, void* arg);
  void ReadSize();

  ReactorState& CurrentState();
  // Starts `op`'s next librbd call; a negative errno when librbd refused it.
  int Start(Op* op);
  void Arm(ReactorState& st);
  // `st`'s poll fired (res: the poll mask or -errno).
  void OnEventFd(ReactorState& st, int32_t res);
  // On any reactor: takes every finished completion off the image and routes it.
  void Drain();
  // On the op's reactor: the librbd call finished with `ret` (>= 0 or -errno).
  void Finish(Op* op, ssize_t ret);
  void Complete(Op* op, IoStatus status);

  // rbd_copy.cc
  Status ReadCopyInfo();
  BlockingWorker& Worker();
  // Why RADOS copy-from must not write into this image from `src`; "" when it may. Worker.
  std::string ServerSideRefusal(const RbdDevice& src) const;
  void PrepareCopy(CopyLeg* leg);  // worker thread
  void PumpCopy(CopyLeg* leg);     // leg's reactor, as the next ones
  void IssueStep(CopyLeg* leg, size_t slot);
  void MarkObject(CopyLeg* leg, size_t slot);
  void IssueServerCopy(CopyLeg* leg, size_t slot);
  void ServerStepDone(CopyLeg* leg, size_t slot, int r);
  void StepDone(CopyLeg* leg, size_t slot, IoStatus st);
  void FinishCopy(CopyLeg* leg);
  void CompleteCopy(CopyLeg* leg);

  std::string name_;
  std::string spec_;
  bool read_only_ = false;
  uint64_t object_size_ = 0;
  std::mutex size_mu_;
  block::Geometry geometry_;  // num_blocks written under size_mu_ (ReadSize)
  block::QueueLimits limits_;
  std::shared_ptr<RadosCluster> cluster_;
  PoolContext pool_;
  rbd_image_t image_ = nullptr;
  int event_fd_ = -1;
  uint64_t watch_handle_ = 0;
  bool watching_ = false;  // an update watch is registered (watch_handle_)
  std::mutex mu_;
  std::unordered_map<io::Reactor*, std::unique_ptr<ReactorState>> states_;  // guarded by mu_
  std::unique_ptr<BlockingWorker> worker_;  // provisioning queries; created under mu_, joined first
  std::unique_ptr<CopyInfo> copy_;          // what copies need; null when it could not be read
};

}  // namespace ferry::backends::rbd
