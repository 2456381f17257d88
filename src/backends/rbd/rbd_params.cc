#include "backends/rbd/rbd_params.h"

namespace ferry::backends::rbd {
namespace {

// Pool, image and snapshot names: RADOS accepts nearly anything, but '/' and '@' would make
// the URI ambiguous and a control character or an empty name is always a mistake.
Status CheckName(std::string_view key, std::string_view value) {
  if (value.empty()) return ParamError(key, "must not be empty");
  for (char c : value) {
    if (c == '/' || c == '@') {
      return ParamError(key, "'" + std::string(value) + "' must not contain '/' or '@'");
    }
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return ParamError(key, "'" + std::string(value) + "' contains a control character");
    }
  }
  return Status::Ok();
}

}  // namespace

std::string RbdOptions::Spec() const {
  return pool + "/" + image + (snap.empty() ? "" : "@" + snap);
}

Result<RbdOptions> ParseRbdParams(const BackendParams& params) {
  ParamReader r(params);
  RbdOptions o;
  FERRY_ASSIGN_OR_RETURN(o.pool, r.String("pool", /*required=*/true));
  FERRY_ASSIGN_OR_RETURN(o.image, r.String("image", /*required=*/true));
  FERRY_ASSIGN_OR_RETURN(o.snap, r.String("snap", false));
  FERRY_ASSIGN_OR_RETURN(o.ceph_conf, r.String("ceph_conf", false));
  FERRY_ASSIGN_OR_RETURN(std::string client, r.String("client", false));
  FERRY_ASSIGN_OR_RETURN(o.keyring, r.String("keyring", false));
  FERRY_ASSIGN_OR_RETURN(o.block_size, r.BlockSize("block_size", 512));
  FERRY_ASSIGN_OR_RETURN(o.read_only, r.Bool("read_only", false));
  FERRY_ASSIGN_OR_RETURN(uint64_t timeout, r.Uint("timeout", 10, 3600));
  FERRY_RETURN_IF_ERROR(r.Finish("rbd"));
  FERRY_RETURN_IF_ERROR(CheckName("pool", o.pool));
  FERRY_RETURN_IF_ERROR(CheckName("image", o.image));
  if (r.Has("snap")) FERRY_RETURN_IF_ERROR(CheckName("snap", o.snap));
  if (!o.snap.empty()) {
    if (r.Has("read_only") && !o.read_only) {
      return ParamError("read_only", "a snapshot (snap=" + o.snap + ") is always read-only");
    }
    o.read_only = true;
  }
  if (client.starts_with("client.")) client.erase(0, 7);
  if (r.Has("client")) {
    if (client.empty()) return ParamError("client", "give a client id, as in client=admin");
    o.client = client;
  }
  if (timeout == 0) return ParamError("timeout", "must be at least 1 (seconds)");
  o.timeout_s = static_cast<int>(timeout);
  return o;
}

Result<BackendParams> RbdParamsFromUri(std::string_view uri) {
  auto bad = [uri](std::string_view why) {
    return InvalidArgument("'" + std::string(uri) + "': " + std::string(why) +
                           " (expected rbd:POOL/IMAGE[@SNAP])");
  };
  constexpr std::string_view kPrefix = "rbd:";
  if (!uri.starts_with(kPrefix)) return bad("not an rbd: URI");
  std::string_view rest = uri.substr(kPrefix.size());
  if (rest.starts_with("//")) return bad("no '//' after rbd:");
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return bad("no pool");
  BackendParams p;
  p["pool"] = std::string(rest.substr(0, slash));
  rest.remove_prefix(slash + 1);
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    p["snap"] = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
  }
  p["image"] = std::string(rest);
  for (const char* key : {"pool", "image", "snap"}) {
    auto it = p.find(key);
    if (it == p.end()) continue;
    if (Status s = CheckName(key, it->second.text); !s.ok()) return bad(s.message());
  }
  return p;
}

void ResolvePaths(std::string_view base_dir, RbdOptions* options) {
  if (base_dir.empty()) return;
  for (std::string* path : {&options->ceph_conf, &options->keyring}) {
    if (!path->empty() && (*path)[0] != '/') *path = std::string(base_dir) + "/" + *path;
  }
}

}  // namespace ferry::backends::rbd
