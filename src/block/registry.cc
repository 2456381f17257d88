#include "block/registry.h"

namespace ferry::block {

Status DeviceRegistry::Add(std::shared_ptr<BlockDevice> dev) {
  if (!dev) return InvalidArgument("no device");
  std::string name(dev->name());
  if (name.empty()) return InvalidArgument("device name is empty");
  std::lock_guard<std::mutex> lock(mu_);
  if (devices_.count(name) != 0) return AlreadyExists("device '" + name + "' already exists");
  devices_.emplace(std::move(name), std::move(dev));
  return Status::Ok();
}

std::shared_ptr<BlockDevice> DeviceRegistry::Find(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = devices_.find(name);
  return it == devices_.end() ? nullptr : it->second;
}

Status DeviceRegistry::Remove(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = devices_.find(name);
  if (it == devices_.end()) return NotFound("no device named '" + std::string(name) + "'");
  devices_.erase(it);
  return Status::Ok();
}

std::vector<std::string> DeviceRegistry::Names() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> names;
  for (const auto& [n, d] : devices_) names.push_back(n);
  return names;
}

}  // namespace ferry::block
