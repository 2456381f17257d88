// Synchronous wrappers for tests, tools and the fuzz target: run PoolMetadata's
// asynchronous calls on the calling thread's reactor until they complete.
#pragma once

#include <memory>
#include <optional>

#include "io/reactor.h"
#include "volume/thin/pool_metadata.h"

namespace ferry::volume::thin::testing {

inline Result<std::unique_ptr<PoolMetadata>> FormatSync(io::Reactor& r, block::BlockDevice& dev,
                                                        FormatOptions options) {
  std::optional<Result<std::unique_ptr<PoolMetadata>>> out;
  PoolMetadata::Format(dev, options, [&](Result<std::unique_ptr<PoolMetadata>> res) {
    out.emplace(std::move(res));
  });
  r.RunUntil([&] { return out.has_value(); });
  return std::move(*out);
}

inline Result<std::unique_ptr<PoolMetadata>> OpenSync(io::Reactor& r, block::BlockDevice& dev,
                                                      OpenOptions options = {}) {
  std::optional<Result<std::unique_ptr<PoolMetadata>>> out;
  PoolMetadata::Open(dev, options, [&](Result<std::unique_ptr<PoolMetadata>> res) {
    out.emplace(std::move(res));
  });
  r.RunUntil([&] { return out.has_value(); });
  return std::move(*out);
}

inline Status CommitSync(io::Reactor& r, PoolMetadata& pool) {
  std::optional<Status> out;
  pool.Commit([&](Status st) { out.emplace(std::move(st)); });
  r.RunUntil([&] { return out.has_value(); });
  return std::move(*out);
}

}  // namespace ferry::volume::thin::testing
