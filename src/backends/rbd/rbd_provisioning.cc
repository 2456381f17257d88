// GET LBA STATUS for RBD images: which ranges hold data, from rbd_diff_iterate2 (against
// the image's creation, parents included). librbd has no asynchronous form of it and it
// may read object maps or list objects over the network, so it runs on a worker thread
// of the device, never on a reactor; the answer is posted back to the asking reactor.
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <thread>

#include "backends/rbd/rbd_device.h"
#include "backends/rbd/rbd_worker.h"
#include "base/log.h"

namespace ferry::backends::rbd {
namespace {

struct Extent {
  uint64_t off;
  uint64_t len;
};

int CollectExtent(uint64_t off, size_t len, int exists, void* arg) {
  if (exists != 0 && len > 0) static_cast<std::vector<Extent>*>(arg)->push_back({off, len});
  return 0;
}

// Runs of mapped / unmapped blocks from `lba`, covering at most `max` blocks and at most
// `max_extents` runs; a block is mapped when any byte of it holds data.
std::vector<block::ProvisioningExtent> ToRuns(std::vector<Extent> data, uint64_t lba, uint64_t max,
                                              uint32_t bs, uint32_t max_extents) {
  std::sort(data.begin(), data.end(),
            [](const Extent& a, const Extent& b) { return a.off < b.off; });
  std::vector<block::ProvisioningExtent> runs;
  auto add = [&runs](bool mapped, uint64_t blocks) {
    if (blocks == 0) return;
    if (!runs.empty() && runs.back().mapped == mapped) {
      runs.back().blocks = BlockCount(runs.back().blocks.value() + blocks);
    } else {
      runs.push_back({mapped, BlockCount(blocks)});
    }
  };
  const uint64_t end = lba + max;
  uint64_t at = lba;
  for (const Extent& e : data) {
    const uint64_t first = std::max(e.off / bs, at);
    const uint64_t last = std::min((e.off + e.len + bs - 1) / bs, end);
    if (last <= first) continue;
    add(false, first - at);
    add(true, last - first);
    at = last;
  }
  add(false, end - at);
  if (runs.size() > max_extents) runs.resize(max_extents);
  return runs;
}

}  // namespace

void RbdDevice::QueryProvisioning(Lba lba, BlockCount max, uint32_t max_extents,
                                  block::ProvisioningDone done) {
  io::Reactor* reactor = io::Reactor::Current();
  const uint32_t bs = geometry_.block_size;
  auto job = [this, reactor, bs, lba = lba.value(), max = max.value(),
              max_extents = std::max<uint32_t>(max_extents, 1), done = std::move(done)]() mutable {
    std::vector<Extent> data;
    const int r = rbd_diff_iterate2(image_, nullptr, lba * bs, max * bs, /*include_parent=*/1,
                                    /*whole_object=*/0, &CollectExtent, &data);
    IoStatus status = IoStatus::kOk;
    std::vector<block::ProvisioningExtent> runs;
    if (r < 0) {
      FERRY_LOG_WARN("rbd:{}: rbd_diff_iterate2: {}", spec_, std::strerror(-r));
      status = IoStatusFromErrno(r);
    } else {
      runs = ToRuns(std::move(data), lba, max, bs, max_extents);
    }
    auto answer = std::make_shared<std::pair<block::ProvisioningDone, decltype(runs)>>(
        std::move(done), std::move(runs));
    reactor->Post([answer, status] { answer->first(status, std::move(answer->second)); });
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (worker_ == nullptr) worker_ = std::make_unique<BlockingWorker>();
  }
  worker_->Add(std::move(job));
}

}  // namespace ferry::backends::rbd
