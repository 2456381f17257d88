// Test images in the cluster that tests/rbd/run.sh starts (tests/lib/ceph_cluster.sh): its
// config file comes in FERRY_RBD_CEPH_CONF, the client is client.admin and the pool "rbd".
// Without the variable every test is skipped, saying how to run it.
#pragma once

#include <gtest/gtest.h>
#include <rbd/librbd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backends/rbd/rbd_cluster.h"
#include "backends/rbd/rbd_device.h"

namespace ferry::backends::rbd::testing {

inline const char* CephConf() { return std::getenv("FERRY_RBD_CEPH_CONF"); }

// Skips every test of the binary when no cluster was given.
class NeedsCluster : public ::testing::Environment {
 public:
  void SetUp() override {
    if (CephConf() == nullptr || *CephConf() == '\0') {
      GTEST_SKIP() << "FERRY_RBD_CEPH_CONF is not set: run through tests/rbd/run.sh (ctest -R "
                      "rbd_backend), which starts a Ceph cluster";
    }
  }
};

inline RbdOptions TestOptions(const std::string& image) {
  RbdOptions o;
  o.pool = "rbd";
  o.image = image;
  o.ceph_conf = CephConf() == nullptr ? "" : CephConf();
  o.client = "admin";
  return o;
}

// Creates images with unique names and removes them (and their snapshots) at Cleanup().
class TestImages {
 public:
  // A new image of `size_bytes`, or "" after ADD_FAILURE. The cluster's default features
  // and object size (4 MiB), or the `features` and objects of 2^`order` bytes given.
  static std::string Create(uint64_t size_bytes, uint64_t features = 0, int order = 0) {
    const std::string name = NewName();
    auto pool = Pool();
    if (pool == nullptr) return "";
    const int r = features == 0
                      ? rbd_create(pool->get(), name.c_str(), size_bytes, &order)
                      : rbd_create2(pool->get(), name.c_str(), size_bytes, features, &order);
    if (r < 0) {
      ADD_FAILURE() << "rbd_create " << name << ": " << std::strerror(-r);
      return "";
    }
    names_.push_back(name);
    return name;
  }

  // A clone of `parent`@`snap` (protected here) with `features`, or "" after ADD_FAILURE.
  static std::string Clone(const std::string& parent, const std::string& snap, uint64_t features) {
    auto pool = Pool();
    rbd_image_t img = nullptr;
    if (pool == nullptr || rbd_open(pool->get(), parent.c_str(), &img, nullptr) < 0) return "";
    int r = rbd_snap_protect(img, snap.c_str());
    rbd_close(img);
    const std::string name = NewName();
    int order = 0;
    if (r == 0) {
      r = rbd_clone(pool->get(), parent.c_str(), snap.c_str(), pool->get(), name.c_str(), features,
                    &order);
    }
    if (r < 0) {
      ADD_FAILURE() << "rbd_clone " << name << ": " << std::strerror(-r);
      return "";
    }
    names_.push_back(name);
    return name;
  }

  // Takes snapshot `snap` of `image` (not opened by anyone else for writing).
  static bool Snapshot(const std::string& image, const std::string& snap) {
    auto pool = Pool();
    rbd_image_t img = nullptr;
    if (pool == nullptr || rbd_open(pool->get(), image.c_str(), &img, nullptr) < 0) return false;
    const int r = rbd_snap_create(img, snap.c_str());
    rbd_close(img);
    return r == 0;
  }

  // Resizes `image` through a handle of its own (as another client would). When a device
  // holds the image's exclusive lock, librbd asks the holder to carry the resize out.
  static int Resize(const std::string& image, uint64_t size_bytes) {
    auto pool = Pool();
    rbd_image_t img = nullptr;
    if (pool == nullptr) return -EIO;
    if (int r = rbd_open(pool->get(), image.c_str(), &img, nullptr); r < 0) return r;
    const int r = rbd_resize(img, size_bytes);
    rbd_close(img);
    return r;
  }

  // Calls `fn` with a handle of its own on `image` (as another client would) and returns what
  // it returns, or the error of rbd_open.
  template <typename Fn>
  static int WithImage(const std::string& image, Fn fn) {
    auto pool = Pool();
    rbd_image_t img = nullptr;
    if (pool == nullptr) return -EIO;
    if (int r = rbd_open(pool->get(), image.c_str(), &img, nullptr); r < 0) return r;
    const int r = fn(img);
    rbd_close(img);
    return r;
  }

  static void Cleanup() {
    auto pool = Pool();
    if (pool == nullptr) return;
    // Newest first: clones before their parents.
    for (auto it = names_.rbegin(); it != names_.rend(); ++it) {
      const std::string& name = *it;
      rbd_image_t img = nullptr;
      if (rbd_open(pool->get(), name.c_str(), &img, nullptr) == 0) {
        rbd_snap_info_t snaps[8];
        int max = 8;
        int n = rbd_snap_list(img, snaps, &max);
        for (int i = 0; i < n; ++i) {
          rbd_snap_unprotect(img, snaps[i].name);
          rbd_snap_remove(img, snaps[i].name);
        }
        if (n > 0) rbd_snap_list_end(snaps);
        rbd_close(img);
      }
      rbd_remove(pool->get(), name.c_str());
    }
    names_.clear();
    pool_.reset();
  }

 private:
  static std::string NewName() {
    return "ferry-test-" + std::to_string(getpid()) + "-" + std::to_string(counter_.fetch_add(1));
  }

  static PoolContext* Pool() {
    if (pool_ != nullptr) return pool_.get();
    auto cluster = RadosCluster::Connect(TestOptions(""));
    if (!cluster.ok()) {
      ADD_FAILURE() << cluster.status().ToString();
      return nullptr;
    }
    auto pool = (*cluster)->OpenPool("rbd");
    if (!pool.ok()) {
      ADD_FAILURE() << pool.status().ToString();
      return nullptr;
    }
    pool_ = std::make_unique<PoolContext>(std::move(*pool));
    return pool_.get();
  }

  static inline std::atomic<int> counter_{0};
  static inline std::vector<std::string> names_;
  static inline std::unique_ptr<PoolContext> pool_;
};

}  // namespace ferry::backends::rbd::testing
