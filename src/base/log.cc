#include "base/log.h"

#include <string>

namespace ferry {

bool SetLogLevel(std::string_view level) {
  auto l = spdlog::level::from_str(std::string(level));
  if (l == spdlog::level::off && level != "off") return false;
  spdlog::set_level(l);
  return true;
}

}  // namespace ferry
