// What a backend is to the rest of Ferry: a type name, its parameters, the URI scheme that
// names one of its devices, and a factory. backends/builtin.cc lists them; nothing else
// opens a backend by its concrete class (ferryd's backstores, `ferryctl copy`, libraries).
//
// Parameters are key = value pairs. From a URI or a command line every value is text
// (ParamValue::kText) and is parsed leniently ("64M", "yes"); from ferryd's JSON each value
// keeps its JSON type and must have the right one (a boolean key takes true or false, not
// "yes"). Each backend parses its parameters in exactly one function, used both to check a
// configuration without touching anything and to open the device.
//
// Errors about one parameter are InvalidArgument with the message "KEY: reason", so that a
// caller can put the key into its own context ("$.backstores.a.size: ...", "ram:1Q: ...").
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "base/status.h"
#include "ferry/block_device.h"

namespace ferry::backends {

class RamArena;

struct ParamValue {
  enum class Kind : uint8_t { kText, kString, kNumber, kBool } kind = Kind::kText;
  std::string text;  // numbers in decimal, booleans as "true" / "false"

  ParamValue() = default;
  ParamValue(std::string t) : text(std::move(t)) {}  // NOLINT: text from a command line
  ParamValue(const char* t) : text(t) {}             // NOLINT
  ParamValue(Kind k, std::string t) : kind(k), text(std::move(t)) {}
};

using BackendParams = std::map<std::string, ParamValue, std::less<>>;

// CHAP credentials a backend logs in with (initiator backends); secrets already read from
// their files, never logged.
struct ChapSecrets {
  std::string user;
  std::string secret;
  std::string mutual_user;  // empty: one-way CHAP
  std::string mutual_secret;
};

// What the opener provides. Every field is optional.
struct BackendContext {
  // Relative paths resolve against it (ferryd: its state directory); empty: the working
  // directory.
  std::string base_dir;
  // RAM devices of one arena copy natively between each other; null: each its own.
  std::shared_ptr<RamArena> ram_arena;
  // Credentials by name (ferryd's "auth_groups"); null: a parameter naming one is refused.
  std::function<Result<ChapSecrets>(std::string_view name)> auth_group;
};

// Typed, checked access to parameters; remembers which keys were read so that Finish()
// can refuse the others. Every error is "KEY: reason".
class ParamReader {
 public:
  explicit ParamReader(const BackendParams& params) : params_(params) {}

  // A size in bytes: a number, or text with a unit ("64M"). `def` when absent.
  Result<uint64_t> Size(std::string_view key, uint64_t def) { return SizeImpl(key, def, nullptr); }
  // Required size; `missing` is the reason given when it is absent.
  Result<uint64_t> RequiredSize(std::string_view key, std::string_view missing) {
    return SizeImpl(key, 0, &missing);
  }
  // A block size: absent gives `def`; otherwise a power of two, 512..65536.
  Result<uint32_t> BlockSize(std::string_view key, uint32_t def);
  Result<uint64_t> Uint(std::string_view key, uint64_t def, uint64_t max);
  Result<bool> Bool(std::string_view key, bool def);
  // Text; empty when absent unless `required`.
  Result<std::string> String(std::string_view key, bool required);
  bool Has(std::string_view key) const { return params_.count(key) != 0; }

  // Fails on the first key no getter asked for, naming the keys `backend` knows.
  Status Finish(std::string_view backend) const;

 private:
  const ParamValue* Take(std::string_view key);
  Result<uint64_t> SizeImpl(std::string_view key, uint64_t def, const std::string_view* missing);

  const BackendParams& params_;
  std::set<std::string, std::less<>> used_;
};

// "KEY: reason" as InvalidArgument.
Status ParamError(std::string_view key, std::string_view reason);

struct BackendType {
  std::string_view name;     // "ram", "file", "iscsi": the "type" of a ferryd backstore
  std::string_view summary;  // one line for --help
  std::string_view params;   // "size=SIZE [block_size=512] ..." for --help and docs
  // URI scheme ("ram" for "ram:1G", "iscsi" for "iscsi://..."); plain paths are files.
  std::string_view scheme;
  // Pure: the parameters a URI stands for ("ram:1G" -> size=1G). `uri` is the whole URI.
  Result<BackendParams> (*from_uri)(std::string_view uri);
  // Pure: checks the parameters without touching files, devices or the network.
  Status (*check)(const BackendParams& params);
  // Opens the device. Errors say what to fix and name the path or URL involved.
  Result<std::shared_ptr<block::BlockDevice>> (*create)(std::string name,
                                                        const BackendParams& params,
                                                        const BackendContext& context);
};

}  // namespace ferry::backends
