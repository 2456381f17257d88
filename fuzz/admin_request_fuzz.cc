// Fuzz target: ferryd's admin socket request decoder (DecodeAdminRequest) and the answer
// encoders. Invariants: never crashes; errors carry a JSON-RPC error code; answers are
// single-line JSON whatever the request id held.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/admin.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  int code = 0;
  auto r = ferry::daemon::DecodeAdminRequest(line, &code);
  if (!r.ok()) {
    if (code != -32700 && code != -32600) std::abort();
    return 0;
  }
  if (code != 0 || !r->params.is_object()) std::abort();
  const std::string a = ferry::daemon::EncodeAdminResult(r->id, r->params);
  const std::string e = ferry::daemon::EncodeAdminError(r->id, -32601, r->method);
  if (a.find('\n') != std::string::npos || e.find('\n') != std::string::npos) std::abort();
  return 0;
}
