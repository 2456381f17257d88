#include "backends/file/file_backend.h"

#include <filesystem>

#include "backends/file/file_device.h"

namespace ferry::backends {
namespace {

// The one parser of a file backstore's parameters.
Result<FileOptions> Parse(const BackendParams& p) {
  ParamReader r(p);
  FileOptions o;
  FERRY_ASSIGN_OR_RETURN(o.path, r.String("path", /*required=*/true));
  FERRY_ASSIGN_OR_RETURN(o.size_bytes, r.Size("size", 0));
  FERRY_ASSIGN_OR_RETURN(o.create, r.Bool("create", false));
  FERRY_ASSIGN_OR_RETURN(o.direct, r.Bool("direct", false));
  FERRY_ASSIGN_OR_RETURN(o.block_size, r.BlockSize("block_size", 0));
  FERRY_ASSIGN_OR_RETURN(o.read_only, r.Bool("read_only", false));
  FERRY_ASSIGN_OR_RETURN(bool bytes, r.Bool("byte_addressed", false));
  FERRY_RETURN_IF_ERROR(r.Finish("file"));
  if (bytes) {
    if (o.block_size != 0 || o.direct) {
      return ParamError("byte_addressed", "excludes block_size and direct");
    }
    o.block_size = 1;
  }
  if (o.create && o.size_bytes == 0) return ParamError("size", "\"create\": true needs a size");
  // Without block_size the file device picks its own (512, or a block device's) and checks
  // the size against it when it opens.
  if (o.block_size > 1 && o.size_bytes % o.block_size != 0) {
    return ParamError("size", "must be a multiple of block_size " + std::to_string(o.block_size));
  }
  return o;
}

Result<BackendParams> FromUri(std::string_view uri) {
  std::string_view path = uri;
  if (path.starts_with("file://")) {
    path.remove_prefix(7);
    if (!path.starts_with("/")) {
      return InvalidArgument("'" + std::string(uri) +
                             "': file:// takes an absolute path (file:///srv/a.img); use "
                             "file:PATH for a relative one");
    }
  } else if (path.starts_with("file:")) {
    path.remove_prefix(5);
  }
  if (path.empty()) return InvalidArgument("'" + std::string(uri) + "': no path");
  return BackendParams{{"path", std::string(path)}};
}

Status Check(const BackendParams& p) { return Parse(p).status(); }

Result<std::shared_ptr<block::BlockDevice>> Create(std::string name, const BackendParams& p,
                                                   const BackendContext& ctx) {
  FERRY_ASSIGN_OR_RETURN(FileOptions o, Parse(p));
  o.name = std::move(name);
  std::filesystem::path path(o.path);
  if (path.is_relative() && !ctx.base_dir.empty())
    o.path = (std::filesystem::path(ctx.base_dir) / path).string();
  FERRY_ASSIGN_OR_RETURN(auto dev, FileDevice::Open(std::move(o)));
  return std::shared_ptr<block::BlockDevice>(std::move(dev));
}

}  // namespace

const BackendType& FileBackendType() {
  static constexpr BackendType kType{
      .name = "file",
      .summary = "regular file or block device through io_uring; reflink / copy_file_range",
      .params =
          "path=PATH [size=SIZE] [create=false] [direct=false] [block_size=512] "
          "[read_only=false] [byte_addressed=false]",
      .scheme = "file",
      .from_uri = &FromUri,
      .check = &Check,
      .create = &Create,
  };
  return kType;
}

}  // namespace ferry::backends
