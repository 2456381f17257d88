// What a line of a thin pool shows the thin lines of other volumes, which find it through
// their volume's stacking capability and Target::pool_line() (target.h) rather than by its
// type: a thin line's constructor finds the pool its pool volume runs, and a copy into a thin
// line finds the thin device of its source.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

namespace ferry::volume::thin {

class Pool;

class PoolLine {
 public:
  virtual ~PoolLine() = default;
  // The pool: the one a thin-pool line runs (nullptr until its Prepare has completed), or the
  // one a thin line's device lives in. Any thread.
  virtual std::shared_ptr<Pool> pool() const = 0;
  // The thin device of a thin line; std::nullopt for a thin-pool line.
  virtual std::optional<uint32_t> thin_id() const = 0;
};

}  // namespace ferry::volume::thin
