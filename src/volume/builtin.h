// The target types a table line may name: an explicit list, no static constructors.
// Adding a target = one class + one line in builtin.cc + one CMake line + one doc page.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "volume/target.h"

namespace ferry::volume {

// Builds a target from a line's arguments. Errors say what to fix, without the
// "line N: <type>:" prefix (the table parser adds it).
using TargetFactory = Result<std::unique_ptr<Target>> (*)(const TargetArgs&);

struct TargetType {
  std::string_view name;
  TargetFactory create;
};

std::span<const TargetType> BuiltinTargets();
// nullptr when `name` is not a builtin target type.
const TargetType* FindTargetType(std::string_view name);
// "linear, striped, ..." for error messages.
std::string TargetTypeNames();

}  // namespace ferry::volume
