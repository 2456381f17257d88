// The device contract for the iSCSI backend, against an in-process Ferry iSCSI target on
// 127.0.0.1 (testing/iscsi_test_target.h): every device is a fresh RAM LU on that target,
// which does third-party copy, so the native-copy cases run as EXTENDED COPY.
#include "backends/contract/device_contract.h"
#include "backends/iscsi/iscsi_device.h"
#include "backends/iscsi/testing/iscsi_test_target.h"

namespace ferry::backends::contract {

template <uint32_t kBs>
struct IscsiFactory {
  static constexpr uint32_t kBlockSize = kBs;
  static constexpr const char* kName = kBs == 512 ? "iscsi512" : "iscsi4k";

  static std::shared_ptr<block::BlockDevice> Make(uint64_t size_bytes, uint32_t block_size) {
    return Open(size_bytes, block_size, false);
  }
  static std::shared_ptr<block::BlockDevice> MakeReadOnly(uint64_t size_bytes, uint32_t block_size,
                                                          std::string*) {
    return Open(size_bytes, block_size, true);
  }
  // A fresh target per test, stopped (its reactor thread joined) once the test has dropped
  // its devices: no target thread is left running while the process exits.
  static void Cleanup() { target_.reset(); }

 private:
  static iscsi::testing::TestTarget& Target() {
    // With a copy manager: native copies inside a device are EXTENDED COPY on the target.
    if (target_ == nullptr) {
      target_ = std::make_unique<iscsi::testing::TestTarget>(nullptr, /*third_party_copy=*/true);
    }
    return *target_;
  }
  static inline std::unique_ptr<iscsi::testing::TestTarget> target_;
  static std::shared_ptr<block::BlockDevice> Open(uint64_t size, uint32_t bs, bool ro) {
    uint64_t lun = Target().AddRamLun(size, bs);
    auto dev = iscsi::IscsiDevice::Open(
        {.name = "contract", .url = Target().Url(lun), .read_only = ro, .timeout_s = 10});
    if (!dev.ok()) {
      ADD_FAILURE() << dev.status().ToString();
      return nullptr;
    }
    return *dev;
  }
};

using IscsiFactories = ::testing::Types<IscsiFactory<512>, IscsiFactory<4096>>;
INSTANTIATE_TYPED_TEST_SUITE_P(Iscsi, DeviceContract, IscsiFactories, FactoryNames);

}  // namespace ferry::backends::contract
