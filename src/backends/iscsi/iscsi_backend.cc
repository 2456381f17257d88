#include "backends/iscsi/iscsi_backend.h"

#include "backends/iscsi/iscsi_device.h"
#include "backends/iscsi/iscsi_url.h"
#include "base/secret_file.h"

namespace ferry::backends::iscsi {
namespace {

struct Parsed {
  IscsiOptions options;
  std::string auth_group;
  std::string secret_file;
  std::string mutual_secret_file;
};

Status CheckChap(const Parsed& p) {
  const IscsiOptions& o = p.options;
  if (!p.auth_group.empty() && !o.chap_user.empty()) {
    return ParamError("auth_group", "give either auth_group or chap_user, not both");
  }
  if (o.chap_user.empty() != p.secret_file.empty()) {
    return ParamError(o.chap_user.empty() ? "chap_secret_file" : "chap_user",
                      "CHAP needs both chap_user and chap_secret_file");
  }
  if (o.mutual_user.empty() != p.mutual_secret_file.empty()) {
    return ParamError(o.mutual_user.empty() ? "mutual_secret_file" : "mutual_user",
                      "mutual CHAP needs both mutual_user and mutual_secret_file");
  }
  if (!o.mutual_user.empty() && o.chap_user.empty()) {
    return ParamError("mutual_user", "mutual CHAP needs one-way CHAP too (chap_user)");
  }
  return Status::Ok();
}

// The one parser of an iscsi backstore's parameters. Reads no file.
Result<Parsed> Parse(const BackendParams& params) {
  ParamReader r(params);
  Parsed p;
  IscsiOptions& o = p.options;
  FERRY_ASSIGN_OR_RETURN(o.url, r.String("url", /*required=*/true));
  FERRY_ASSIGN_OR_RETURN(p.auth_group, r.String("auth_group", false));
  FERRY_ASSIGN_OR_RETURN(o.chap_user, r.String("chap_user", false));
  FERRY_ASSIGN_OR_RETURN(p.secret_file, r.String("chap_secret_file", false));
  FERRY_ASSIGN_OR_RETURN(o.mutual_user, r.String("mutual_user", false));
  FERRY_ASSIGN_OR_RETURN(p.mutual_secret_file, r.String("mutual_secret_file", false));
  FERRY_ASSIGN_OR_RETURN(std::string initiator, r.String("initiator_name", false));
  if (!initiator.empty()) o.initiator_name = initiator;
  FERRY_ASSIGN_OR_RETURN(uint64_t timeout, r.Uint("timeout", 30, 3600));
  if (timeout == 0) return ParamError("timeout", "must be at least 1 (seconds)");
  o.timeout_s = static_cast<int>(timeout);
  FERRY_ASSIGN_OR_RETURN(o.read_only, r.Bool("read_only", false));
  FERRY_ASSIGN_OR_RETURN(std::string offload, r.String("offload", false));
  FERRY_RETURN_IF_ERROR(r.Finish("iscsi"));
  using Offload = IscsiOptions::Offload;
  if (offload.empty() || offload == "auto") {
    o.offload = Offload::kAuto;
  } else if (offload == "xcopy") {
    o.offload = Offload::kXcopy;
  } else if (offload == "odx") {
    o.offload = Offload::kOdx;
  } else if (offload == "none") {
    o.offload = Offload::kNone;
  } else {
    return ParamError("offload", "'" + offload + "' is not one of auto, xcopy, odx, none");
  }
  auto url = ParseIscsiUrl(o.url);
  if (!url.ok()) return ParamError("url", url.status().message());
  FERRY_RETURN_IF_ERROR(CheckChap(p));
  return p;
}

// iscsi://[USER[%SECRET_FILE]@]HOST... -> url without the user part, chap_user,
// chap_secret_file.
Result<BackendParams> FromUri(std::string_view uri) {
  constexpr std::string_view kPrefix = "iscsi://";
  if (!uri.starts_with(kPrefix)) {
    return InvalidArgument("'" + std::string(uri) + "': expected iscsi://HOST[:PORT]/IQN/LUN");
  }
  std::string_view rest = uri.substr(kPrefix.size());
  BackendParams p;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    std::string_view user = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    if (size_t pct = user.find('%'); pct != std::string_view::npos) {
      p["chap_secret_file"] = std::string(user.substr(pct + 1));
      user = user.substr(0, pct);
    }
    if (user.empty()) {
      return InvalidArgument("'" + std::string(uri) + "': empty CHAP user before '@'");
    }
    p["chap_user"] = std::string(user);
  }
  p["url"] = std::string(kPrefix) + std::string(rest);
  if (auto url = ParseIscsiUrl(p["url"].text); !url.ok()) return url.status();
  return p;
}

Status Check(const BackendParams& p) { return Parse(p).status(); }

Status ReadSecrets(const Parsed& p, const BackendContext& ctx, IscsiOptions* o) {
  if (!p.auth_group.empty()) {
    if (!ctx.auth_group) return ParamError("auth_group", "no auth groups here");
    FERRY_ASSIGN_OR_RETURN(ChapSecrets c, ctx.auth_group(p.auth_group));
    o->chap_user = c.user;
    o->chap_secret = c.secret;
    o->mutual_user = c.mutual_user;
    o->mutual_secret = c.mutual_secret;
    return Status::Ok();
  }
  if (!p.secret_file.empty()) {
    FERRY_ASSIGN_OR_RETURN(o->chap_secret, ReadSecretFile(p.secret_file));
  }
  if (!p.mutual_secret_file.empty()) {
    FERRY_ASSIGN_OR_RETURN(o->mutual_secret, ReadSecretFile(p.mutual_secret_file));
  }
  return Status::Ok();
}

Result<std::shared_ptr<block::BlockDevice>> Create(std::string name, const BackendParams& params,
                                                   const BackendContext& ctx) {
  FERRY_ASSIGN_OR_RETURN(Parsed p, Parse(params));
  IscsiOptions o = std::move(p.options);
  o.name = std::move(name);
  Status secrets = ReadSecrets(p, ctx, &o);
  if (!secrets.ok()) return secrets.WithContext("iSCSI " + o.url);
  FERRY_ASSIGN_OR_RETURN(auto dev, IscsiDevice::Open(std::move(o)));
  return std::shared_ptr<block::BlockDevice>(std::move(dev));
}

}  // namespace

const BackendType& IscsiBackendType() {
  static constexpr BackendType kType{
      .name = "iscsi",
      .summary =
          "a LUN of a remote iSCSI target; native copy by EXTENDED COPY or ODX on the "
          "array",
      .params =
          "url=iscsi://HOST[:PORT]/IQN/LUN [auth_group=NAME | chap_user=USER "
          "chap_secret_file=FILE [mutual_user=USER mutual_secret_file=FILE]] "
          "[initiator_name=IQN] [timeout=30] [read_only=false] [offload=auto|xcopy|odx|none]",
      .scheme = "iscsi",
      .from_uri = &FromUri,
      .check = &Check,
      .create = &Create,
  };
  return kType;
}

}  // namespace ferry::backends::iscsi
