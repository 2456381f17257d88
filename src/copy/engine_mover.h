// volume::DataMover over the copy engine: how mirror resync, snapshot copy-on-write and
// merge, and thin-pool copies reach the one copy engine from the volume layer below it.
#pragma once

#include <memory>

#include "ferry/copy.h"
#include "volume/data_mover.h"

namespace ferry::copy {

// `engine` lives on `reactor`; both must outlive the mover and every move in flight.
std::unique_ptr<volume::DataMover> MakeEngineMover(CopyEngine* engine, io::Reactor* reactor);

}  // namespace ferry::copy
