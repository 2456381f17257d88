// The device contract for the file backend: buffered 512 and 4096-byte blocks, O_DIRECT
// with 4096-byte blocks, in temporary files under /var/tmp (a disk file system: O_DIRECT
// and hole punching work there, unlike some tmpfs setups).
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "backends/contract/device_contract.h"
#include "backends/file/file_device.h"

namespace ferry::backends::contract {

inline std::vector<std::string>& TempFiles() {
  static std::vector<std::string> files;
  return files;
}

template <uint32_t kBs, bool kDirect>
struct FileFactory {
  static constexpr uint32_t kBlockSize = kBs;
  static constexpr const char* kName = kDirect ? "direct4k" : (kBs == 512 ? "file512" : "file4k");

  static std::shared_ptr<block::BlockDevice> Make(uint64_t size_bytes, uint32_t block_size) {
    return Create(size_bytes, block_size, false, nullptr);
  }
  static std::shared_ptr<block::BlockDevice> MakeReadOnly(uint64_t size_bytes, uint32_t block_size,
                                                          std::string* why_not) {
    return Create(size_bytes, block_size, true, why_not);
  }
  static void Cleanup() {
    for (const std::string& f : TempFiles()) unlink(f.c_str());
    TempFiles().clear();
  }

 private:
  static std::shared_ptr<block::BlockDevice> Create(uint64_t size, uint32_t bs, bool ro,
                                                    std::string* why_not) {
    char tmpl[] = "/var/tmp/ferry-contract-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) {
      ADD_FAILURE() << "mkstemp in /var/tmp failed";
      return nullptr;
    }
    close(fd);
    TempFiles().push_back(tmpl);
    std::filesystem::resize_file(tmpl, size);
    FileOptions o{.path = tmpl, .direct = kDirect, .read_only = ro, .block_size = bs};
    auto dev = FileDevice::Open(o);
    if (!dev.ok()) {
      if (why_not != nullptr) {
        *why_not = dev.status().ToString();
        return nullptr;
      }
      ADD_FAILURE() << dev.status().ToString();
      return nullptr;
    }
    return *dev;
  }
};

using FileFactories =
    ::testing::Types<FileFactory<512, false>, FileFactory<4096, false>, FileFactory<4096, true>>;
INSTANTIATE_TYPED_TEST_SUITE_P(File, DeviceContract, FileFactories, FactoryNames);

}  // namespace ferry::backends::contract
