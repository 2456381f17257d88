// The device contract for the file backend: buffered 512 and 4096-byte blocks, O_DIRECT
// with 4096-byte blocks, in temporary files. Files go to /var/tmp (a disk file system on
// most machines: hole punching and O_DIRECT work there), else /tmp, else the working
// directory; O_DIRECT devices use the first of these that accepts O_DIRECT.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

// The directory for temp files: the first candidate where a file can be created and, for
// `direct`, opened with O_DIRECT. Empty when there is none; `why` then lists the attempts.
inline std::string PickTempDir(bool direct, std::string* why) {
  for (const std::string& dir :
       {std::string("/var/tmp"), std::string("/tmp"), std::filesystem::current_path().string()}) {
    std::string tmpl = dir + "/ferry-contract-probe-XXXXXX";
    int fd = mkstemp(tmpl.data());
    if (fd < 0) {
      *why += dir + ": cannot create files; ";
      continue;
    }
    close(fd);
    int dfd = direct ? open(tmpl.c_str(), O_RDWR | O_DIRECT) : -1;
    int err = errno;
    if (dfd >= 0) close(dfd);
    unlink(tmpl.c_str());
    if (!direct || dfd >= 0) return dir;
    *why += dir + ": O_DIRECT refused (" + std::strerror(err) + "); ";
  }
  return "";
}

inline const std::string& TempDir(bool direct) {
  static std::string why[2];
  static const std::string dirs[2] = {PickTempDir(false, &why[0]), PickTempDir(true, &why[1])};
  if (dirs[direct].empty()) ADD_FAILURE() << "no directory for temp files: " << why[direct];
  return dirs[direct];
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
    const std::string& dir = TempDir(kDirect);
    if (dir.empty()) {
      if (why_not != nullptr) *why_not = "no directory for temp files";
      return nullptr;
    }
    std::string tmpl = dir + "/ferry-contract-XXXXXX";
    int fd = mkstemp(tmpl.data());
    if (fd < 0) {
      ADD_FAILURE() << "mkstemp in " << dir << " failed: " << std::strerror(errno);
      return nullptr;
    }
    close(fd);
    TempFiles().push_back(tmpl);
    std::filesystem::resize_file(tmpl, size);
    FileOptions o{.path = tmpl, .direct = kDirect, .read_only = ro, .block_size = bs};
    auto dev = FileDevice::Open(o);
    if (!dev.ok()) {
      // A read-only open of a file this test just made has no excuse to fail: a failure,
      // not a skip.
      if (why_not != nullptr) *why_not = dev.status().ToString();
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
