#include "backends/rbd/rbd_cluster.h"

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

#include "base/log.h"

namespace ferry::backends::rbd {

std::string ErrnoText(int err) { return std::strerror(err < 0 ? -err : err); }

namespace {

// Connected clusters by identity; entries expire with their last user.
std::mutex g_clusters_mu;
std::map<std::string, std::weak_ptr<RadosCluster>>& Clusters() {
  static auto* clusters = new std::map<std::string, std::weak_ptr<RadosCluster>>();
  return *clusters;
}

Status ConnectError(const std::string& what, int err) {
  const std::string msg = what + ": " + ErrnoText(err);
  switch (-err) {
    case EACCES:
    case EPERM: return PermissionDenied(msg + " (the cluster refused the client's key)");
    case ENOENT: return FailedPrecondition(msg + " (no keyring found for the client?)");
    default:
      // ETIMEDOUT (no monitor answered), ECONNREFUSED, ENETUNREACH, ...: the cluster is not
      // there now; ferryd reports the backstore and serves its other LUNs.
      return Unavailable(msg + " (cluster unreachable)");
  }
}

}  // namespace

PoolContext::PoolContext(std::shared_ptr<RadosCluster> cluster, rados_ioctx_t ioctx)
    : cluster_(std::move(cluster)), ioctx_(ioctx) {}

PoolContext::~PoolContext() { Reset(); }

PoolContext::PoolContext(PoolContext&& other) noexcept
    : cluster_(std::move(other.cluster_)), ioctx_(other.ioctx_) {
  other.ioctx_ = nullptr;
}

PoolContext& PoolContext::operator=(PoolContext&& other) noexcept {
  if (this != &other) {
    Reset();
    cluster_ = std::move(other.cluster_);
    ioctx_ = other.ioctx_;
    other.ioctx_ = nullptr;
  }
  return *this;
}

void PoolContext::Reset() {
  if (ioctx_ != nullptr) rados_ioctx_destroy(ioctx_);
  ioctx_ = nullptr;
  cluster_.reset();
}

Result<std::shared_ptr<RadosCluster>> RadosCluster::Connect(const RbdOptions& o) {
  const std::string key = o.ceph_conf + '\0' + o.client + '\0' + o.keyring;
  std::lock_guard<std::mutex> lock(g_clusters_mu);
  if (auto existing = Clusters()[key].lock()) return existing;
  FERRY_ASSIGN_OR_RETURN(auto cluster, ConnectNew(o));
  Clusters()[key] = cluster;
  return cluster;
}

Result<std::shared_ptr<RadosCluster>> RadosCluster::ConnectNew(const RbdOptions& o) {
  std::shared_ptr<RadosCluster> c(new RadosCluster());
  c->description_ = "cluster of " + (o.ceph_conf.empty() ? "the default ceph.conf" : o.ceph_conf) +
                    " as client." + o.client;
  if (int r = rados_create(&c->cluster_, o.client.c_str()); r < 0) {
    c->cluster_ = nullptr;
    return Internal(c->description_ + ": rados_create: " + ErrnoText(r));
  }
  int r = rados_conf_read_file(c->cluster_, o.ceph_conf.empty() ? nullptr : o.ceph_conf.c_str());
  if (r < 0) {
    return FailedPrecondition(c->description_ + ": cannot read the config: " + ErrnoText(r));
  }
  if (!o.keyring.empty()) {
    if (r = rados_conf_set(c->cluster_, "keyring", o.keyring.c_str()); r < 0) {
      return FailedPrecondition(c->description_ + ": keyring " + o.keyring + ": " + ErrnoText(r));
    }
  }
  // Bounded waits on the control path: connecting, and monitor commands. OSD operations
  // keep librados' default (wait for the OSD to come back), so that an OSD restart delays
  // I/O instead of failing it.
  const std::string timeout = std::to_string(o.timeout_s);
  for (const char* k : {"client_mount_timeout", "rados_mon_op_timeout"}) {
    if (r = rados_conf_set(c->cluster_, k, timeout.c_str()); r < 0) {
      return Internal(c->description_ + ": setting " + k + ": " + ErrnoText(r));
    }
  }
  // Discard every byte asked for (parts of objects are zeroed) instead of skipping parts
  // smaller than rbd_discard_granularity_bytes: a discarded range then reads back as zeroes,
  // which lets the SCSI layer report the LU as thin (LBPME, LBPRZ) with UNMAP.
  if (r = rados_conf_set(c->cluster_, "rbd_skip_partial_discard", "false"); r < 0) {
    return Internal(c->description_ + ": setting rbd_skip_partial_discard: " + ErrnoText(r));
  }
  if (r = rados_connect(c->cluster_); r < 0) return ConnectError(c->description_, r);
  FERRY_LOG_INFO("rbd: connected to the {}", c->description_);
  return c;
}

RadosCluster::~RadosCluster() {
  if (cluster_ != nullptr) rados_shutdown(cluster_);
}

Result<PoolContext> RadosCluster::OpenPool(const std::string& pool) {
  rados_ioctx_t ioctx = nullptr;
  if (int r = rados_ioctx_create(cluster_, pool.c_str(), &ioctx); r < 0) {
    if (r == -ENOENT) return NotFound("no pool '" + pool + "' in the " + description_);
    return Unavailable("pool '" + pool + "' of the " + description_ + ": " + ErrnoText(r));
  }
  return PoolContext(shared_from_this(), ioctx);
}

std::string RadosCluster::ConfGet(const char* key) const {
  char buf[256];
  if (rados_conf_get(cluster_, key, buf, sizeof(buf)) < 0) return "";
  return buf;
}

}  // namespace ferry::backends::rbd
