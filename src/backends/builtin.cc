#include "backends/builtin.h"

#include <set>

#include "backends/file/file_device.h"
#include "backends/ram/ram_device.h"
#include "base/size_parse.h"

namespace ferry::backends {
namespace {

// Reads parameters and remembers which were used, so unknown keys can be reported.
class ParamReader {
 public:
  ParamReader(std::string_view backend, const BackendParams& params)
      : backend_(backend), params_(params) {}

  Result<uint64_t> Size(std::string_view key, uint64_t def, bool required = false) {
    auto it = Take(key);
    if (it == params_.end()) {
      if (required) return Error(key, "is required");
      return def;
    }
    auto r = ParseSize(it->second);
    if (!r.ok()) return Error(key, std::string(r.status().message()));
    return *r;
  }

  Result<bool> Bool(std::string_view key, bool def) {
    auto it = Take(key);
    if (it == params_.end()) return def;
    const std::string& v = it->second;
    if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
    if (v == "0" || v == "false" || v == "no" || v == "off") return false;
    return Error(key, "'" + v + "' is not a boolean (true/false)");
  }

  Result<std::string> String(std::string_view key, bool required) {
    auto it = Take(key);
    if (it == params_.end()) {
      if (required) return Error(key, "is required");
      return std::string();
    }
    return it->second;
  }

  // Fails on keys that no getter asked for.
  Status CheckAllUsed(std::string_view known) const {
    for (const auto& [k, v] : params_) {
      if (used_.count(k) == 0) {
        return InvalidArgument("backend " + std::string(backend_) + ": unknown parameter '" + k +
                               "' (known: " + std::string(known) + ")");
      }
    }
    return Status::Ok();
  }

 private:
  BackendParams::const_iterator Take(std::string_view key) {
    used_.insert(std::string(key));
    return params_.find(key);
  }
  Status Error(std::string_view key, const std::string& what) const {
    return InvalidArgument("backend " + std::string(backend_) + ": parameter '" + std::string(key) +
                           "' " + what);
  }

  std::string_view backend_;
  const BackendParams& params_;
  std::set<std::string, std::less<>> used_;
};

constexpr std::string_view kRamParams = "size=SIZE [block_size=512] [read_only=false]";
constexpr std::string_view kFileParams =
    "path=PATH [size=SIZE] [create=false] [direct=false] [block_size=512] [read_only=false]";

Result<std::shared_ptr<block::BlockDevice>> CreateRam(std::string name, const BackendParams& p) {
  ParamReader r("ram", p);
  RamOptions o;
  o.name = std::move(name);
  FERRY_ASSIGN_OR_RETURN(o.size_bytes, r.Size("size", 0, /*required=*/true));
  FERRY_ASSIGN_OR_RETURN(uint64_t bs, r.Size("block_size", 512));
  FERRY_ASSIGN_OR_RETURN(o.read_only, r.Bool("read_only", false));
  FERRY_RETURN_IF_ERROR(r.CheckAllUsed("size, block_size, read_only"));
  if (bs > UINT32_MAX) return InvalidArgument("backend ram: block_size too large");
  o.block_size = static_cast<uint32_t>(bs);
  FERRY_ASSIGN_OR_RETURN(auto dev, RamDevice::Create(std::move(o)));
  return std::shared_ptr<block::BlockDevice>(std::move(dev));
}

Result<std::shared_ptr<block::BlockDevice>> CreateFile(std::string name, const BackendParams& p) {
  ParamReader r("file", p);
  FileOptions o;
  o.name = std::move(name);
  FERRY_ASSIGN_OR_RETURN(o.path, r.String("path", /*required=*/true));
  FERRY_ASSIGN_OR_RETURN(o.size_bytes, r.Size("size", 0));
  FERRY_ASSIGN_OR_RETURN(o.create, r.Bool("create", false));
  FERRY_ASSIGN_OR_RETURN(o.direct, r.Bool("direct", false));
  FERRY_ASSIGN_OR_RETURN(o.read_only, r.Bool("read_only", false));
  FERRY_ASSIGN_OR_RETURN(uint64_t bs, r.Size("block_size", 0));
  FERRY_RETURN_IF_ERROR(r.CheckAllUsed("path, size, create, direct, block_size, read_only"));
  if (bs > UINT32_MAX) return InvalidArgument("backend file: block_size too large");
  o.block_size = static_cast<uint32_t>(bs);
  FERRY_ASSIGN_OR_RETURN(auto dev, FileDevice::Open(std::move(o)));
  return std::shared_ptr<block::BlockDevice>(std::move(dev));
}

constexpr BackendType kBackends[] = {
    {"ram", "sparse memory; native copy inside one arena", kRamParams, &CreateRam},
    {"file", "regular file or block device through io_uring; reflink / copy_file_range",
     kFileParams, &CreateFile},
};

}  // namespace

std::span<const BackendType> BuiltinBackends() { return kBackends; }

Result<std::shared_ptr<block::BlockDevice>> CreateBackend(std::string_view type, std::string name,
                                                          const BackendParams& params) {
  for (const BackendType& b : kBackends) {
    if (b.name == type) return b.create(std::move(name), params);
  }
  std::string known;
  for (const BackendType& b : kBackends) {
    if (!known.empty()) known += ", ";
    known += b.name;
  }
  return InvalidArgument("unknown backend type '" + std::string(type) + "' (known: " + known + ")");
}

}  // namespace ferry::backends
