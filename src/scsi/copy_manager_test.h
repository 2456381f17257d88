// The copy manager's unit-test fixture: logical units over RAM devices, one copy manager,
// one reactor, and builders of the third-party copy CDBs and parameter lists (SPC-4 6.4,
// 6.18; SBC-3 POPULATE TOKEN, WRITE USING TOKEN). Shared by copy_manager_test.cc,
// copy_results_test.cc, xcopy_test.cc and odx_test.cc.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "backends/faulty/faulty_device.h"
#include "backends/ram/ram_device.h"
#include "io/reactor.h"
#include "scsi/copy_manager.h"
#include "scsi/logical_unit.h"
#include "scsi/nexus.h"
#include "scsi/tpc_params.h"

namespace ferry::scsi::tpc_test {

using Bytes = std::vector<uint8_t>;
using Cdb = std::array<uint8_t, 16>;

// One command and its buffers; kept at a stable address until it completes.
struct Cmd {
  Task task;
  Bytes out;  // data-out: the parameter list, or a WRITE's data
  Bytes in;   // data-in buffer
  bool done = false;
  std::span<const uint8_t> data() const { return {in.data(), task.data_in_bytes}; }
};

// Descriptor builders (32-byte E4h CSCD; segment descriptors 02h, 0Ah, 07h).
enum class Designator : uint8_t { kT10 = 1, kEui64 = 2, kNaa = 3 };
Bytes Cscd(const LogicalUnit& lu, Designator type = Designator::kNaa);
Bytes Seg02(uint16_t src, uint16_t dst, uint16_t blocks, uint64_t src_lba, uint64_t dst_lba,
            bool dc = false);
Bytes Seg0A(uint16_t src, uint16_t dst, uint32_t bytes, uint64_t src_lba, uint64_t dst_lba,
            uint16_t src_offset, uint16_t dst_offset);
Bytes Seg07(uint16_t src);

struct XcopyList {
  bool lid4 = false;
  uint32_t list_id = 0;
  ListIdUsage usage = ListIdUsage::kHold;
  bool immed = false;  // LID4
  std::vector<Bytes> cscds;
  std::vector<Bytes> segments;
  // Where the CSCD list starts: 16 (LID1) or 48 (LID4). Segment i then starts at
  // SegmentOffset(i).
  size_t header() const { return lid4 ? 48 : 16; }
  uint16_t SegmentOffset(size_t i) const;
  Bytes Encode() const;
};

// SBC-3 block device range descriptor.
struct Range {
  uint64_t lba;
  uint32_t blocks;
};
Bytes PopulateTokenList(std::vector<Range> ranges, uint32_t timeout_s = 0, bool rtv = false,
                        uint32_t rod_type = 0);
Bytes WriteUsingTokenList(std::span<const uint8_t> token, std::vector<Range> ranges,
                          uint64_t offset_into_rod = 0, bool del_tkn = false, bool immed = false);
// SBC-3 block device zero ROD token.
Bytes ZeroToken();

// CDBs.
Cdb XcopyCdb(bool lid4, uint32_t param_len);
Cdb PopulateTokenCdb(uint32_t list_id, uint32_t param_len);
Cdb WriteUsingTokenCdb(uint32_t list_id, uint32_t param_len);
Cdb CopyOperationAbortCdb(uint32_t list_id);
// 84h with the list identifier where the service action keeps it (byte 2, or bytes 2-5).
Cdb CopyInCdb(uint8_t sa, uint32_t list_id, uint32_t alloc_len = 4096);

// Deterministic test data: `bytes` bytes that differ for every seed and offset.
Bytes Pattern(size_t bytes, uint32_t seed);

// Status, sense key and ASC/ASCQ, printed in hex when they differ.
::testing::AssertionResult HasSense(const Cmd& c, SenseKey key, Asc asc);
::testing::AssertionResult IsGood(const Cmd& c);

class CopyManagerTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kNexus = 1;
  void SetUp() override;
  void TearDown() override;
  // Options of the fixture's copy manager; subclasses change them (throttle).
  virtual CopyManagerOptions Options() const;

  // A logical unit over `dev`, with the fixture's copy manager; `tag` makes its identity.
  std::shared_ptr<LogicalUnit> MakeLu(std::shared_ptr<block::BlockDevice> dev, uint8_t tag,
                                      bool write_protected = false,
                                      std::shared_ptr<CopyManager> manager = nullptr);

  // Sends one command to `lu`; the result is ready once Wait() returns.
  std::unique_ptr<Cmd> Start(LogicalUnit& lu, const Cdb& cdb, Bytes out = {},
                             size_t in_bytes = 4096, uint64_t nexus = kNexus,
                             std::shared_ptr<const NexusView> view = nullptr);
  Cmd& Wait(Cmd& c);
  std::unique_ptr<Cmd> Run(LogicalUnit& lu, const Cdb& cdb, Bytes out = {}, size_t in_bytes = 4096,
                           uint64_t nexus = kNexus,
                           std::shared_ptr<const NexusView> view = nullptr);
  // Runs the reactor for `d` (a reactor timer, no sleeping).
  void RunFor(std::chrono::milliseconds d);
  // Until no copy of the fixture's manager is running.
  void RunUntilIdle();

  // EXTENDED COPY of `list` sent to `lu`.
  std::unique_ptr<Cmd> Xcopy(LogicalUnit& lu, const XcopyList& list, uint64_t nexus = kNexus,
                             std::shared_ptr<const NexusView> view = nullptr);
  // POPULATE TOKEN, then the 512-byte token from RECEIVE ROD TOKEN INFORMATION (empty, with
  // a test failure, when either fails).
  Bytes Populate(LogicalUnit& lu, uint32_t list_id, std::vector<Range> ranges,
                 uint32_t timeout_s = 0, std::shared_ptr<const NexusView> view = nullptr);
  std::unique_ptr<Cmd> WriteUsingToken(LogicalUnit& lu, uint32_t list_id, const Bytes& list,
                                       uint64_t nexus = kNexus,
                                       std::shared_ptr<const NexusView> view = nullptr);

  // Block I/O through the logical unit (WRITE(16), READ(16)).
  void Write(LogicalUnit& lu, uint64_t lba, const Bytes& data);
  Bytes Read(LogicalUnit& lu, uint64_t lba, uint32_t blocks);
  // Fills `blocks` blocks at `lba` with Pattern(seed) and returns what it wrote.
  Bytes Fill(LogicalUnit& lu, uint64_t lba, uint32_t blocks, uint32_t seed);

  std::unique_ptr<io::Reactor> reactor_;
  std::shared_ptr<CopyManager> cm_;
  std::shared_ptr<backends::RamArena> arena_;  // a_, b_, wp_, hidden_, faulty's inner device
  // a_, b_: 8 MiB of 512-byte blocks; k4_: 1 MiB of 4096-byte blocks in another arena;
  // wp_: write-protected LU; hidden_: not in view_; f_: a faulty device over RAM.
  std::shared_ptr<LogicalUnit> a_, b_, k4_, wp_, hidden_, f_;
  std::shared_ptr<backends::FaultyDevice> faulty_;
  std::shared_ptr<const NexusView> view_;  // every LU but hidden_
};

// The fixture with a copy engine throttled to 1 MiB/s in 64 KiB legs, so that a copy of a
// few MiB runs long enough to be watched, aborted and raced.
class ThrottledCopyTest : public CopyManagerTest {
 protected:
  CopyManagerOptions Options() const override;
};

}  // namespace ferry::scsi::tpc_test
