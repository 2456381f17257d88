// The device contract for faulty(ram) without faults, with and without a completion delay.
#include "backends/contract/device_contract.h"
#include "backends/faulty/faulty_device.h"
#include "backends/ram/ram_device.h"

namespace ferry::backends::contract {

template <int kDelayUs>
struct FaultyRamFactory {
  static constexpr const char* kName = kDelayUs == 0 ? "faulty_ram" : "faulty_ram_delayed";

  static std::shared_ptr<block::BlockDevice> Make(uint64_t size_bytes, uint32_t block_size) {
    return Create(size_bytes, block_size, false);
  }
  static std::shared_ptr<block::BlockDevice> MakeReadOnly(uint64_t size_bytes, uint32_t block_size,
                                                          std::string*) {
    return Create(size_bytes, block_size, true);
  }

 private:
  static std::shared_ptr<block::BlockDevice> Create(uint64_t size, uint32_t bs, bool ro) {
    auto ram =
        RamDevice::Create({.name = "ram", .size_bytes = size, .block_size = bs, .read_only = ro});
    if (!ram.ok()) {
      ADD_FAILURE() << ram.status().ToString();
      return nullptr;
    }
    auto dev = std::make_shared<FaultyDevice>(*ram);
    dev->SetDelay(std::chrono::microseconds(kDelayUs));
    return dev;
  }
};

using FaultyFactories = ::testing::Types<FaultyRamFactory<0>, FaultyRamFactory<30>>;
INSTANTIATE_TYPED_TEST_SUITE_P(Faulty, DeviceContract, FaultyFactories, FactoryNames);

}  // namespace ferry::backends::contract
