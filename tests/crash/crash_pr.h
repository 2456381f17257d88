// The SIGKILL test's persistent reservation mode (tests/crash/): one I_T nexus keeps
// replacing its registration key (REGISTER AND IGNORE EXISTING KEY with APTPL) and holds a
// Write Exclusive reservation. After a kill and restart, READ KEYS and READ RESERVATION must
// show the last acknowledged key (or the one in flight) and the reservation once it was
// acknowledged: SPC-4 5.14.5, APTPL.
#pragma once

#include "crash_session.h"

namespace ferry::crash_test {

// The exit status of crash_client (0 done, 1 a lost registration or reservation, 2 setup).
int RunPr(const Options& o);

}  // namespace ferry::crash_test
