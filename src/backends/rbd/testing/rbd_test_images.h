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
  // A new image of `size_bytes`, or "" after ADD_FAILURE.
  static std::string Create(uint64_t size_bytes) {
    const std::string name =
        "ferry-test-" + std::to_string(getpid()) + "-" + std::to_string(counter_.fetch_add(1));
    auto pool = Pool();
    if (pool == nullptr) return "";
    int order = 0;
    if (int r = rbd_create(pool->get(), name.c_str(), size_bytes, &order); r < 0) {
      ADD_FAILURE() << "rbd_create " << name << ": " << std::strerror(-r);
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

  static void Cleanup() {
    auto pool = Pool();
    if (pool == nullptr) return;
    for (const std::string& name : names_) {
      rbd_image_t img = nullptr;
      if (rbd_open(pool->get(), name.c_str(), &img, nullptr) == 0) {
        rbd_snap_info_t snaps[8];
        int max = 8;
        int n = rbd_snap_list(img, snaps, &max);
        for (int i = 0; i < n; ++i) rbd_snap_remove(img, snaps[i].name);
        if (n > 0) rbd_snap_list_end(snaps);
        rbd_close(img);
      }
      rbd_remove(pool->get(), name.c_str());
    }
    names_.clear();
    pool_.reset();
  }

 private:
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
