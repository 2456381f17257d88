// Context's devices: opened by URI through the backend registry, on the reactor thread.
#include <sys/stat.h>

#include <cerrno>

#include "backends/builtin.h"
#include "block/splitter.h"
#include "io/reactor.h"
#include "lib/context.h"
#include "lib/error.h"

namespace ferry::api {
namespace {

constexpr uint32_t kKnownDevFlags = FERRY_DEV_RDONLY | FERRY_DEV_DIRECT;

// Backend parameters the flags add. Buffered regular files are byte-addressed, as in
// `ferryctl copy` (docs/adr: byte-addressed files), so any offset can be copied.
Result<backends::BackendParams> ExtraParams(const std::string& uri, uint32_t flags) {
  FERRY_ASSIGN_OR_RETURN(backends::BackendSpec spec, backends::ParseDeviceUri(uri));
  backends::BackendParams extra;
  if (flags & FERRY_DEV_RDONLY) extra["read_only"] = "true";
  if (spec.type != "file") {
    if (flags & FERRY_DEV_DIRECT) {
      return InvalidArgument("'" + uri + "': FERRY_DEV_DIRECT applies to files only");
    }
    return extra;
  }
  if (flags & FERRY_DEV_DIRECT) {
    extra["direct"] = "true";
    return extra;
  }
  struct stat st {};
  const std::string& path = spec.params.at("path").text;
  if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) extra["byte_addressed"] = "true";
  return extra;
}

}  // namespace

int Context::Open(const std::string& uri, uint32_t flags, ferry_dev** out) {
  if (flags & ~kKnownDevFlags) {
    return Fail(-EINVAL, "ferry_dev_open: unknown flags 0x" + std::to_string(flags));
  }
  auto extra = ExtraParams(uri, flags);
  if (!extra.ok()) return Fail(extra.status());
  Result<std::shared_ptr<block::BlockDevice>> dev = Internal("not opened");
  RunSync([&] { dev = backends::OpenDeviceUri(uri, "", *extra, backend_context_); });
  if (!dev.ok()) {
    // The registry's messages name the URI unless the file backend's name the path.
    return Fail(dev.status());
  }
  auto handle = std::make_unique<ferry_dev>();
  handle->ctx = this;
  handle->dev = std::move(dev).value();
  handle->uri = uri;
  *out = handle.get();
  std::lock_guard<std::mutex> lock(mu_);
  devices_.emplace(handle.get(), std::move(handle));
  return 0;
}

int Context::Close(ferry_dev* dev) {
  std::unique_ptr<ferry_dev> owned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = devices_.find(dev);
    if (it == devices_.end()) return Fail(-EINVAL, "ferry_dev_close: not an open device");
    if (dev->copies_in_flight > 0) {
      return Fail(-EBUSY, "ferry_dev_close: '" + dev->uri + "' is used by " +
                              std::to_string(dev->copies_in_flight) + " copies in flight");
    }
    owned = std::move(it->second);
    devices_.erase(it);
  }
  RunSync([&] { owned.reset(); });
  return 0;
}

int Context::Flush(ferry_dev* dev) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  IoStatus status = IoStatus::kOk;
  block::IoRequest req;
  req.op = block::IoOp::kFlush;
  req.done = [&](IoStatus st) {
    std::lock_guard<std::mutex> lock(mu);
    status = st;
    done = true;
    cv.notify_one();
  };
  reactor_->Post([dev, &req] { block::SubmitSplit(*dev->dev, req); });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  if (status != IoStatus::kOk) {
    return Fail(ErrnoOf(status),
                "ferry_dev_flush: '" + dev->uri + "': " + std::string(IoStatusName(status)));
  }
  return 0;
}

}  // namespace ferry::api
