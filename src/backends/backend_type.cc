#include "backends/backend_type.h"

#include <charconv>

#include "base/size_parse.h"

namespace ferry::backends {

using Kind = ParamValue::Kind;

Status ParamError(std::string_view key, std::string_view reason) {
  return InvalidArgument(std::string(key) + ": " + std::string(reason));
}

const ParamValue* ParamReader::Take(std::string_view key) {
  used_.insert(std::string(key));
  auto it = params_.find(key);
  return it == params_.end() ? nullptr : &it->second;
}

Result<uint64_t> ParamReader::SizeImpl(std::string_view key, uint64_t def,
                                       const std::string_view* missing) {
  const ParamValue* v = Take(key);
  if (v == nullptr) {
    if (missing != nullptr) return ParamError(key, *missing);
    return def;
  }
  if (v->kind == Kind::kBool) return ParamError(key, "expected a size like \"10G\" or bytes");
  auto r = ParseSize(v->text);
  if (!r.ok()) return ParamError(key, r.status().message());
  return *r;
}

Result<uint32_t> ParamReader::BlockSize(std::string_view key, uint32_t def) {
  if (!Has(key)) {
    Take(key);
    return def;
  }
  FERRY_ASSIGN_OR_RETURN(uint64_t bs, Uint(key, 0, 65536));
  if (bs < 512 || (bs & (bs - 1)) != 0)
    return ParamError(key, "must be a power of two, 512..65536");
  return static_cast<uint32_t>(bs);
}

Result<uint64_t> ParamReader::Uint(std::string_view key, uint64_t def, uint64_t max) {
  const ParamValue* v = Take(key);
  if (v == nullptr) return def;
  uint64_t n = 0;
  const char* end = v->text.data() + v->text.size();
  auto [p, ec] = std::from_chars(v->text.data(), end, n);
  if (v->kind == Kind::kBool || v->kind == Kind::kString || ec != std::errc() || p != end) {
    return ParamError(key, "expected a whole number 0.." + std::to_string(max) + ", got " +
                               (v->kind == Kind::kString ? "\"" + v->text + "\"" : v->text));
  }
  if (n > max) return ParamError(key, "must be at most " + std::to_string(max));
  return n;
}

Result<bool> ParamReader::Bool(std::string_view key, bool def) {
  const ParamValue* v = Take(key);
  if (v == nullptr) return def;
  const std::string& t = v->text;
  if (v->kind == Kind::kBool) return t == "true";
  if (v->kind == Kind::kText) {
    if (t == "1" || t == "true" || t == "yes" || t == "on") return true;
    if (t == "0" || t == "false" || t == "no" || t == "off") return false;
    return ParamError(key, "'" + t + "' is not a boolean (true/false)");
  }
  return ParamError(key, "expected true or false, got " +
                             (v->kind == Kind::kString ? "a string" : std::string("a number")));
}

Result<std::string> ParamReader::String(std::string_view key, bool required) {
  const ParamValue* v = Take(key);
  if (v == nullptr) {
    if (required) return ParamError(key, "required");
    return std::string();
  }
  if (v->kind == Kind::kBool || v->kind == Kind::kNumber) {
    return ParamError(key, "expected a string, got " + v->text);
  }
  if (required && v->text.empty()) return ParamError(key, "must not be empty");
  return v->text;
}

Status ParamReader::Finish(std::string_view backend) const {
  for (const auto& [k, v] : params_) {
    if (used_.count(k) != 0) continue;
    std::string known;
    for (const std::string& u : used_) known += (known.empty() ? "" : ", ") + u;
    return ParamError(
        k, "unknown parameter of a " + std::string(backend) + " backstore (known: " + known + ")");
  }
  return Status::Ok();
}

}  // namespace ferry::backends
