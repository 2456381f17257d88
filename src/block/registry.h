// The device registry: named block devices of one process (ferryd, ferryctl, tests).
//
// Thread-safe. Devices are shared_ptr so a LUN or a copy holding a device keeps it alive
// after it is removed from the registry.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "ferry/block_device.h"

namespace ferry::block {

class DeviceRegistry {
 public:
  // Fails with kAlreadyExists when the name is taken, kInvalidArgument when it is empty.
  Status Add(std::shared_ptr<BlockDevice> dev);
  // nullptr when absent.
  std::shared_ptr<BlockDevice> Find(std::string_view name) const;
  // Fails with kNotFound when absent.
  Status Remove(std::string_view name);
  std::vector<std::string> Names() const;  // sorted

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<BlockDevice>, std::less<>> devices_;
};

}  // namespace ferry::block
