// The device contract for the rbd backend, against the cluster tests/rbd/run.sh starts: every
// device is a fresh image in pool "rbd"; the read-only device is a snapshot of one.
#include "backends/contract/device_contract.h"
#include "backends/rbd/testing/rbd_test_images.h"

namespace ferry::backends::contract {

template <uint32_t kBs>
struct RbdFactory {
  static constexpr uint32_t kBlockSize = kBs;
  static constexpr const char* kName = kBs == 512 ? "rbd512" : "rbd4k";

  static std::shared_ptr<block::BlockDevice> Make(uint64_t size_bytes, uint32_t block_size) {
    const std::string image = rbd::testing::TestImages::Create(size_bytes);
    return image.empty() ? nullptr : Open(image, "", block_size);
  }
  static std::shared_ptr<block::BlockDevice> MakeReadOnly(uint64_t size_bytes, uint32_t block_size,
                                                          std::string* why_not) {
    const std::string image = rbd::testing::TestImages::Create(size_bytes);
    if (image.empty() || !rbd::testing::TestImages::Snapshot(image, "ro")) {
      *why_not = "could not create an image and its snapshot";
      return nullptr;
    }
    return Open(image, "ro", block_size);
  }
  static void Cleanup() { rbd::testing::TestImages::Cleanup(); }

 private:
  static std::shared_ptr<block::BlockDevice> Open(const std::string& image, const std::string& snap,
                                                  uint32_t block_size) {
    rbd::RbdOptions o = rbd::testing::TestOptions(image);
    o.snap = snap;
    o.read_only = !snap.empty();
    o.block_size = block_size;
    auto dev = rbd::RbdDevice::Open(std::move(o));
    if (!dev.ok()) {
      ADD_FAILURE() << dev.status().ToString();
      return nullptr;
    }
    return *dev;
  }
};

const auto* const kNeedsCluster =
    ::testing::AddGlobalTestEnvironment(new rbd::testing::NeedsCluster());

using RbdFactories = ::testing::Types<RbdFactory<512>, RbdFactory<4096>>;
INSTANTIATE_TYPED_TEST_SUITE_P(Rbd, DeviceContract, RbdFactories, FactoryNames);

}  // namespace ferry::backends::contract
