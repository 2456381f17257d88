// How targets move data between devices (mirror resync, snapshot copy-on-write and merge,
// thin-pool copies): through the one copy engine (DESIGN.md, "Where the wire meets the
// copy engine"), which sits above this layer. The owner of a table (ferryd, a test) hands
// its targets a DataMover in TargetEnv; src/copy/engine_mover.h implements it over a
// copy::CopyEngine, so a target's copies offload natively where the devices allow and are
// emulated with pipelined reads and writes elsewhere.
//
// Threads. Move() may be called from any thread; `done` runs exactly once, on the mover's
// reactor (reactor()), never inside Move().
#pragma once

#include <cstdint>
#include <string>

#include "base/inline_function.h"
#include "base/io_status.h"
#include "ferry/block_device.h"

namespace ferry::io {
class Reactor;
}

namespace ferry::volume {

// One range copy in bytes; offsets and length are multiples of both devices' block sizes.
struct MoveRequest {
  block::BlockDevice* src = nullptr;
  uint64_t src_offset_bytes = 0;
  block::BlockDevice* dst = nullptr;
  uint64_t dst_offset_bytes = 0;
  uint64_t len_bytes = 0;
};

struct MoveResult {
  IoStatus status = IoStatus::kOk;  // kOk only when every byte reached the destination
  std::string error;                // what failed and where, when status is not kOk
  uint64_t offloaded_bytes = 0;     // moved natively by the devices
  uint64_t emulated_bytes = 0;      // moved by reads and writes
};

class DataMover {
 public:
  using MoveDone = InlineFunction<void(MoveResult), 64>;
  virtual ~DataMover() = default;
  // The devices must stay alive until `done` runs.
  virtual void Move(const MoveRequest& req, MoveDone done) = 0;
  virtual io::Reactor* reactor() const = 0;
};

// What targets that keep state or move data get from the owner of their table.
struct TargetEnv {
  // Home thread of targets with single-threaded state (thin-pool metadata, snapshot
  // exception stores, mirror region logs and resync). nullptr: such targets refuse to be
  // built ("needs a reactor").
  io::Reactor* reactor = nullptr;
  // nullptr: targets that need to copy data refuse to be built.
  DataMover* mover = nullptr;
};

}  // namespace ferry::volume
