// The device contract for the RAM backend (512 and 4096-byte blocks).
#include "backends/contract/device_contract.h"
#include "backends/ram/ram_device.h"

namespace ferry::backends::contract {

template <uint32_t kBs>
struct RamFactory {
  static constexpr uint32_t kBlockSize = kBs;
  static constexpr const char* kName = kBs == 512 ? "ram512" : "ram4k";

  static std::shared_ptr<block::BlockDevice> Make(uint64_t size_bytes, uint32_t block_size) {
    return Create(size_bytes, block_size, false);
  }
  static std::shared_ptr<block::BlockDevice> MakeReadOnly(uint64_t size_bytes, uint32_t block_size,
                                                          std::string*) {
    return Create(size_bytes, block_size, true);
  }

 private:
  static std::shared_ptr<block::BlockDevice> Create(uint64_t size, uint32_t bs, bool ro) {
    auto dev = RamDevice::Create(
        {.name = "contract", .size_bytes = size, .block_size = bs, .read_only = ro});
    if (!dev.ok()) {
      ADD_FAILURE() << dev.status().ToString();
      return nullptr;
    }
    return *dev;
  }
};

using RamFactories = ::testing::Types<RamFactory<512>, RamFactory<4096>>;
INSTANTIATE_TYPED_TEST_SUITE_P(Ram, DeviceContract, RamFactories, FactoryNames);

}  // namespace ferry::backends::contract
