// The SIGKILL test's workload (tests/crash/), also bench/soak's: writes of 1 to 8 blocks with
// FUA one time in four, a SYNCHRONIZE CACHE(16) after every 16 writes, and with
// Options::xcopy an EXTENDED COPY(LID1) of 8 blocks within the LUN every 32 commands (with
// Options::odx a token copy instead, every other time); Options::queue_depth commands in
// flight, never two on one block; ABORT TASK and LOGICAL UNIT RESET when asked. Every command
// is entered in the model when sent and when it completes.
#pragma once

#include <cstdint>

#include "crash_session.h"

namespace ferry::crash_test {

struct Stats {
  uint64_t writes = 0, fua = 0, syncs = 0, copies = 0, failed = 0;
  uint64_t token_copies = 0, aborts = 0, resets = 0, logouts = 0;  // bench/soak
};

// Runs until the connection goes (returns true) or Options::seconds pass (false). Takes
// ownership of `c`: it is destroyed before returning, and the commands it still held count
// as failed (their outcome is unknown). With Options::drain the commands in flight complete
// first and the session logs out.
bool RunWorkload(iscsi_context* c, const Options& o, uint32_t bs, const tpc_test::Designator& naa,
                 Model* m, Stats* s);

}  // namespace ferry::crash_test
