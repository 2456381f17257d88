#include "backends/builtin.h"

#include <cctype>

#include "backends/file/file_backend.h"
#include "backends/iscsi/iscsi_backend.h"
#include "backends/ram/ram_backend.h"
#include "backends/rbd/rbd_backend.h"

namespace ferry::backends {
namespace {

const BackendType* const kBackends[] = {
    &RamBackendType(),
    &FileBackendType(),
    &iscsi::IscsiBackendType(),
    &rbd::RbdBackendType(),
};

std::string KnownTypes() {
  std::string known;
  for (const BackendType* b : kBackends)
    known += (known.empty() ? "" : ", ") + std::string(b->name);
  return known;
}

Status UnknownType(std::string_view type) {
  return InvalidArgument("unknown backend type '" + std::string(type) +
                         "' (known: " + KnownTypes() + ")");
}

// The scheme of "scheme:rest" (RFC 3986 3.1: a letter, then letters, digits, + - .), or
// empty when `uri` does not start with one.
std::string_view Scheme(std::string_view uri) {
  size_t colon = uri.find(':');
  if (colon == std::string_view::npos || colon == 0) return {};
  if (!std::isalpha(static_cast<unsigned char>(uri[0]))) return {};
  for (size_t i = 1; i < colon; ++i) {
    const unsigned char c = uri[i];
    if (!std::isalnum(c) && c != '+' && c != '-' && c != '.') return {};
  }
  return uri.substr(0, colon);
}

Status AddQuery(std::string_view uri, std::string_view query, BackendParams* params) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return InvalidArgument("'" + std::string(uri) + "': '" + std::string(kv) +
                             "' in the query is not KEY=VALUE");
    }
    const std::string key(kv.substr(0, eq));
    if (params->count(key) != 0) {
      return InvalidArgument("'" + std::string(uri) + "': '" + key + "' is given twice");
    }
    (*params)[key] = std::string(kv.substr(eq + 1));
  }
  return Status::Ok();
}

}  // namespace

std::span<const BackendType* const> BuiltinBackends() { return kBackends; }

const BackendType* FindBackend(std::string_view type) {
  for (const BackendType* b : kBackends) {
    if (b->name == type) return b;
  }
  return nullptr;
}

Result<BackendSpec> ParseDeviceUri(std::string_view uri) {
  if (uri.empty()) return InvalidArgument("empty device name (give a path or a URI)");
  const std::string_view scheme = Scheme(uri);
  const BackendType* type = FindBackend("file");
  if (!scheme.empty()) {
    type = nullptr;
    for (const BackendType* b : kBackends) {
      if (b->scheme == scheme) type = b;
    }
    if (type == nullptr) {
      std::string schemes;
      for (const BackendType* b : kBackends) schemes += std::string(b->scheme) + ": ";
      return InvalidArgument("'" + std::string(uri) + "': unknown URI scheme '" +
                             std::string(scheme) + "' (known: " + schemes + "or a path; write ./" +
                             std::string(uri) + " for a file whose name has a colon)");
    }
  }
  // "?key=value&key=value" after a URI of another backend than files (whose names may hold
  // a '?') adds parameters: iscsi://host/IQN/0?timeout=5.
  std::string_view query;
  if (type->name != "file") {
    if (size_t q = uri.find('?'); q != std::string_view::npos) {
      query = uri.substr(q + 1);
      uri = uri.substr(0, q);
    }
  }
  FERRY_ASSIGN_OR_RETURN(BackendParams params, type->from_uri(uri));
  FERRY_RETURN_IF_ERROR(AddQuery(uri, query, &params));
  return BackendSpec{std::string(type->name), std::move(params)};
}

Status CheckBackend(std::string_view type, const BackendParams& params) {
  const BackendType* b = FindBackend(type);
  if (b == nullptr) return UnknownType(type);
  return b->check(params);
}

Result<std::shared_ptr<block::BlockDevice>> CreateBackend(std::string_view type, std::string name,
                                                          const BackendParams& params,
                                                          const BackendContext& context) {
  const BackendType* b = FindBackend(type);
  if (b == nullptr) return UnknownType(type);
  return b->create(std::move(name), params, context);
}

Result<std::shared_ptr<block::BlockDevice>> OpenDeviceUri(std::string_view uri, std::string name,
                                                          const BackendParams& extra,
                                                          const BackendContext& context) {
  // The backend's own messages usually name its device already (a URL without the user
  // part and the query): then the URI is not said twice.
  std::string_view core = uri.substr(0, uri.find('?'));
  if (size_t at = core.find('@'); at != std::string_view::npos) core.remove_prefix(at + 1);
  auto named = [uri, core](const Status& s) {
    if (s.message().find(core) != std::string_view::npos) return s;
    return s.WithContext("'" + std::string(uri) + "'");
  };
  auto spec = ParseDeviceUri(uri);
  if (!spec.ok()) return spec.status();
  for (const auto& [k, v] : extra) spec->params[k] = v;
  if (name.empty()) name = std::string(uri);
  auto dev = CreateBackend(spec->type, std::move(name), spec->params, context);
  if (!dev.ok()) return named(dev.status());
  return dev;
}

}  // namespace ferry::backends
