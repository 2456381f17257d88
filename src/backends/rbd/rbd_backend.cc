#include "backends/rbd/rbd_backend.h"

#include "backends/rbd/rbd_params.h"

#if FERRY_HAVE_LIBRBD
#include "backends/rbd/rbd_device.h"
#endif

namespace ferry::backends::rbd {
namespace {

Status Check(const BackendParams& p) { return ParseRbdParams(p).status(); }

Result<std::shared_ptr<block::BlockDevice>> Create(std::string name, const BackendParams& params,
                                                   const BackendContext& ctx) {
  FERRY_ASSIGN_OR_RETURN(RbdOptions o, ParseRbdParams(params));
  o.name = std::move(name);
  ResolvePaths(ctx.base_dir, &o);
#if FERRY_HAVE_LIBRBD
  FERRY_ASSIGN_OR_RETURN(auto dev, RbdDevice::Open(std::move(o)));
  return std::shared_ptr<block::BlockDevice>(std::move(dev));
#else
  return Unavailable("rbd:" + o.Spec() +
                     ": this Ferry was built without librbd (install librbd-dev and "
                     "librados-dev, then rebuild)");
#endif
}

}  // namespace

bool HaveLibrbd() { return FERRY_HAVE_LIBRBD != 0; }

const BackendType& RbdBackendType() {
  static constexpr BackendType kType{
      .name = "rbd",
      .summary = "an image of a Ceph cluster through librbd",
      .params =
          "pool=POOL image=IMAGE [snap=SNAP] [ceph_conf=FILE] [client=admin] "
          "[keyring=FILE] [block_size=512] [read_only=false] [timeout=10]",
      .scheme = "rbd",
      .from_uri = &RbdParamsFromUri,
      .check = &Check,
      .create = &Create,
  };
  return kType;
}

}  // namespace ferry::backends::rbd
