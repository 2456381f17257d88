// The SIGKILL test's workload (tests/crash/): writes of 1 to 8 blocks with FUA one time in
// four, a SYNCHRONIZE CACHE(16) after every 16 writes, and with Options::xcopy an EXTENDED
// COPY(LID1) of 8 blocks within the LUN every 32 commands; Options::queue_depth commands in
// flight, never two on one block. Every command is entered in the model when sent and when
// it completes.
#pragma once

#include <cstdint>

#include "crash_session.h"

namespace ferry::crash_test {

struct Stats {
  uint64_t writes = 0, fua = 0, syncs = 0, copies = 0, failed = 0;
};

// Runs until the connection goes (returns true) or Options::seconds pass (false). Takes
// ownership of `c`: it is destroyed before returning, and the commands it still held count
// as failed (their outcome is unknown).
bool RunWorkload(iscsi_context* c, const Options& o, uint32_t bs, const tpc_test::Designator& naa,
                 Model* m, Stats* s);

}  // namespace ferry::crash_test
