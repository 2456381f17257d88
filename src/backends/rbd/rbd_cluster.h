// A connection to a Ceph cluster through librados, shared by the rbd devices (and tests) that
// name the same config file, client id and keyring: one set of librados threads and one
// monitor session per cluster identity, not per image.
//
// Connect() is control path: it blocks up to the timeout while librados reads the config,
// authenticates with the monitors (cephx, the key from the keyring file) and fetches the
// maps. Errors: kUnavailable when no monitor answers in time (the cluster is down or
// unreachable), kPermissionDenied when the key is refused, kFailedPrecondition when the
// config or keyring file cannot be used. Messages name the config file and the client.
#pragma once

#include <rados/librados.h>

#include <memory>
#include <string>
#include <string_view>

#include "backends/rbd/rbd_params.h"
#include "base/status.h"

namespace ferry::backends::rbd {

// strerror of a librados / librbd return (negative errno) or of an errno.
std::string ErrnoText(int err);

// An I/O context on one pool (owned; destroyed before its cluster, which it keeps alive).
class PoolContext {
 public:
  PoolContext() = default;
  PoolContext(std::shared_ptr<class RadosCluster> cluster, rados_ioctx_t ioctx);
  ~PoolContext();
  PoolContext(PoolContext&& other) noexcept;
  PoolContext& operator=(PoolContext&& other) noexcept;
  rados_ioctx_t get() const { return ioctx_; }

 private:
  void Reset();
  std::shared_ptr<class RadosCluster> cluster_;
  rados_ioctx_t ioctx_ = nullptr;
};

class RadosCluster : public std::enable_shared_from_this<RadosCluster> {
 public:
  // The cluster `options` names (ceph_conf, client, keyring, timeout_s): an existing
  // connection with the same identity, or a new one.
  static Result<std::shared_ptr<RadosCluster>> Connect(const RbdOptions& options);
  ~RadosCluster();  // rados_shutdown
  RadosCluster(const RadosCluster&) = delete;
  RadosCluster& operator=(const RadosCluster&) = delete;

  rados_t handle() const { return cluster_; }
  // "cluster of CONF as client.ID", for messages.
  const std::string& description() const { return description_; }
  // An I/O context on `pool`; kNotFound naming the pool when it does not exist.
  Result<PoolContext> OpenPool(const std::string& pool);
  // A config value as librados sees it ("" when unknown).
  std::string ConfGet(const char* key) const;

 private:
  RadosCluster() = default;
  static Result<std::shared_ptr<RadosCluster>> ConnectNew(const RbdOptions& options);

  rados_t cluster_ = nullptr;
  std::string description_;
};

}  // namespace ferry::backends::rbd
