#include "backends/ram/ram_backend.h"

#include "backends/ram/ram_device.h"

namespace ferry::backends {
namespace {

// The one parser of a ram backstore's parameters.
Result<RamOptions> Parse(const BackendParams& p) {
  ParamReader r(p);
  RamOptions o;
  FERRY_ASSIGN_OR_RETURN(o.size_bytes, r.RequiredSize("size", "a ram backstore needs a size"));
  FERRY_ASSIGN_OR_RETURN(o.block_size, r.BlockSize("block_size", 512));
  FERRY_ASSIGN_OR_RETURN(o.read_only, r.Bool("read_only", false));
  FERRY_RETURN_IF_ERROR(r.Finish("ram"));
  if (o.size_bytes == 0) return ParamError("size", "must be more than 0");
  if (o.size_bytes % o.block_size != 0) {
    return ParamError("size", "must be a multiple of block_size " + std::to_string(o.block_size));
  }
  return o;
}

Result<BackendParams> FromUri(std::string_view uri) {
  std::string_view size = uri.substr(uri.find(':') + 1);
  if (size.empty()) return InvalidArgument("'" + std::string(uri) + "': give a size, as in ram:1G");
  return BackendParams{{"size", std::string(size)}};
}

Status Check(const BackendParams& p) { return Parse(p).status(); }

Result<std::shared_ptr<block::BlockDevice>> Create(std::string name, const BackendParams& p,
                                                   const BackendContext& ctx) {
  FERRY_ASSIGN_OR_RETURN(RamOptions o, Parse(p));
  o.name = std::move(name);
  o.arena = ctx.ram_arena;
  FERRY_ASSIGN_OR_RETURN(auto dev, RamDevice::Create(std::move(o)));
  return std::shared_ptr<block::BlockDevice>(std::move(dev));
}

}  // namespace

const BackendType& RamBackendType() {
  static constexpr BackendType kType{
      .name = "ram",
      .summary = "sparse memory; native copy between RAM devices of one arena",
      .params = "size=SIZE [block_size=512] [read_only=false]",
      .scheme = "ram",
      .from_uri = &FromUri,
      .check = &Check,
      .create = &Create,
  };
  return kType;
}

}  // namespace ferry::backends
