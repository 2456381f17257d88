// The SIGKILL test's initiator side (tests/crash/): a libiscsi session to one LUN and the
// steps every mode shares.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "crash_model.h"
#include "tpc/tpc_client.h"

struct iscsi_context;

namespace ferry::crash_test {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string portal, target, initiator = "iqn.2026-12.org.ferry:crash", model;
  int lun = 0;
  uint64_t blocks = 2048;  // the range the workload writes and checks, from LBA 0
  double seconds = 0;      // 0: until the connection goes
  uint32_t queue_depth = 16;
  bool xcopy = false, pr = false, verify_only = false;
  uint32_t isid = 1;  // ISID qualifier: the same I_T nexus run after run
  // bench/soak (tests/soak/): several clients share a LUN, each on its own blocks, and no
  // crash happens, so reads must see every acknowledged write.
  uint64_t first_lba = 0;    // the model's block 0 is this LBA
  bool odx = false;          // POPULATE TOKEN, RRTI, WRITE USING TOKEN every 32 commands
  uint32_t abort_every = 0;  // ABORT TASK of a command in flight every N commands (0: never)
  double reset_every = 0;    // LOGICAL UNIT RESET every S seconds (0: never)
  bool drain = false;        // when the time is up, wait for the commands in flight
  bool visible = false;      // verify with Model::CheckVisible instead of Model::Check
};

// Logs in (retrying for up to 20 s while ferryd starts) and clears the unit attentions;
// libiscsi's automatic reconnect is off, so a killed ferryd ends the session. Null on
// failure (printed).
iscsi_context* Connect(const Options& o);
// READ CAPACITY(16): the block size (0 on failure) and the LU's blocks.
uint32_t BlockSize(iscsi_context* c, int lun, uint64_t* lu_blocks);
// The LU's NAA designator (VPD 83h, association LU).
bool Naa(iscsi_context* c, int lun, tpc_test::Designator* d);

std::string ReadFile(const std::string& path);  // "" when missing
bool WriteFileAtomic(const std::string& path, const std::string& text);

// Reads the model's blocks and checks each; blocks that pass become durable in the model.
// Returns the number of bad blocks (each printed, up to 20).
int VerifyAll(iscsi_context* c, const Options& o, uint32_t bs, Model* m);

}  // namespace ferry::crash_test
