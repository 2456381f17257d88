// A small SCSI initiator over libiscsi for the third-party copy tests: sessions logged in
// under a chosen initiator name, raw CDBs with their status and decoded sense, block I/O,
// deterministic data patterns, and encoders for the parameter lists of EXTENDED COPY
// (SPC-4 6.4 / 6.5), POPULATE TOKEN and WRITE USING TOKEN (SBC-3), written from
// ../shared/reference/scsi-third-party-copy.md section 3.
//
// This is an external initiator on purpose: nothing here includes Ferry's own codecs, so a
// shared misreading of the standard cannot make both sides agree.
#pragma once

#include <gtest/gtest.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ferry::tpc_test {

using Bytes = std::vector<uint8_t>;

// --- big-endian fields -------------------------------------------------------------------
void Put16(uint8_t* p, uint16_t v);
void Put32(uint8_t* p, uint32_t v);
void Put64(uint8_t* p, uint64_t v);
uint16_t Get16(const uint8_t* p);
uint32_t Get32(const uint8_t* p);
uint64_t Get64(const uint8_t* p);

// The environment run.sh sets (FERRY_PORTAL, FERRY_TARGET, ...); "" when unset.
std::string Env(const char* name);

// --- sense data (SPC-4 4.5) ----------------------------------------------------------------
inline constexpr uint8_t kIllegalRequest = 0x05;
inline constexpr uint8_t kUnitAttention = 0x06;
inline constexpr uint8_t kDataProtect = 0x07;
inline constexpr uint8_t kCopyAborted = 0x0a;

struct Sense {
  uint8_t response_code = 0;  // 70h/71h fixed, 72h/73h descriptor
  uint8_t key = 0;
  uint8_t asc = 0;
  uint8_t ascq = 0;
  std::optional<uint64_t> command_specific;  // COMMAND-SPECIFIC INFORMATION
  bool sksv = false;                         // SENSE-KEY SPECIFIC valid
  uint8_t sks0 = 0;                          // SKS byte 0 (C/D, BPV, bit pointer / SD)
  uint16_t field_pointer = 0;
  Bytes raw;
  uint16_t code() const { return static_cast<uint16_t>(asc << 8 | ascq); }
  bool in_cdb() const { return (sks0 & 0x40) != 0; }
};
// Fixed or descriptor format; an empty or unknown buffer decodes to key 0.
Sense DecodeSense(std::span<const uint8_t> raw);

// A completed command: SCSI status (or -1 when the transport failed), sense, data-in.
struct Reply {
  int status = -1;
  Sense sense;
  Bytes data;
  std::string transport_error;
  bool good() const { return status == SCSI_STATUS_GOOD; }
};
// "GOOD", "CHECK CONDITION 0A/0D/02 (csi 2, field 4)", "transport error: ...".
std::string Describe(const Reply& r);

testing::AssertionResult IsGood(const Reply& r);
// CHECK CONDITION with `key` and one of `codes` (ASC << 8 | ASCQ).
testing::AssertionResult IsCheck(const Reply& r, uint8_t key,
                                 std::initializer_list<uint16_t> codes);

// --- data patterns -----------------------------------------------------------------------
// The bytes at [offset, offset + len) of an endless stream named by `seed`; any window of
// it can be recomputed, so expected contents never have to be kept.
Bytes Pattern(uint64_t seed, uint64_t offset, size_t len);
// A fresh seed per call (tests never see each other's data).
uint64_t NewSeed();
// Equal bytes, else the first differing offset and the lengths.
testing::AssertionResult SameBytes(std::span<const uint8_t> got, std::span<const uint8_t> want);

// --- VPD 83h ------------------------------------------------------------------------------
struct Designator {
  uint8_t code_set = 0;  // 1 binary, 2 ASCII
  uint8_t type = 0;      // 1 T10 vendor id, 2 EUI-64, 3 NAA
  Bytes value;
};
struct LunInfo {
  uint32_t block_size = 0;
  uint64_t blocks = 0;
  std::vector<Designator> lu_designators;  // association 00b (the LU)
  const Designator* Find(uint8_t type) const;
  const Designator& Naa() const;  // fails the test when missing
};

// --- CDBs ----------------------------------------------------------------------------------
using Cdb = std::array<uint8_t, 16>;
Cdb ThirdPartyCopyOut(uint8_t sa, uint32_t param_len);  // 83h: EXTENDED COPY(LID1) etc.
Cdb PopulateToken(uint32_t list_id, uint32_t param_len);
Cdb WriteUsingToken(uint32_t list_id, uint32_t param_len);
Cdb CopyOperationAbort(uint32_t list_id);
// 84h RECEIVE COPY RESULTS / RRTI / REPORT ALL ROD TOKENS: one-byte list id for SAs 00h-04h,
// four bytes for 05h-07h.
Cdb ThirdPartyCopyIn(uint8_t sa, uint32_t list_id, uint32_t alloc);

inline constexpr uint8_t kSaXcopyLid1 = 0x00;
inline constexpr uint8_t kSaXcopyLid4 = 0x01;
inline constexpr uint8_t kSaPopulateToken = 0x10;
inline constexpr uint8_t kSaWriteUsingToken = 0x11;
inline constexpr uint8_t kSaCopyOperationAbort = 0x1c;
inline constexpr uint8_t kSaCopyStatusLid1 = 0x00;
inline constexpr uint8_t kSaOperatingParameters = 0x03;
inline constexpr uint8_t kSaFailureDetails = 0x04;
inline constexpr uint8_t kSaCopyStatusLid4 = 0x05;
inline constexpr uint8_t kSaRrti = 0x07;
inline constexpr uint8_t kSaReportAllRodTokens = 0x08;

// --- EXTENDED COPY parameter lists ---------------------------------------------------------
using Cscd = std::array<uint8_t, 32>;
// E4h identification descriptor (SPC-4 6.4.5.6) naming an LU by `d`, disk block length
// `block_size` in bytes 29-31.
Cscd CscdE4(const Designator& d, uint32_t block_size);
// 02h block to block (28 bytes): NUMBER OF BLOCKS counts source blocks, or destination
// blocks with `dc`.
Bytes SegmentB2B(uint16_t src, uint16_t dst, uint16_t blocks, uint64_t src_lba, uint64_t dst_lba,
                 bool dc = false);
// 0Ah block to block with byte offsets (32 bytes).
Bytes SegmentB2BOffset(uint16_t src, uint16_t dst, uint32_t bytes, uint64_t src_lba,
                       uint64_t dst_lba, uint16_t src_off = 0, uint16_t dst_off = 0);
// 07h verify CSCD (12 bytes).
Bytes SegmentVerify(uint16_t cscd, bool tur);

inline constexpr uint16_t kCscdThisLu = 0xffff;
inline constexpr uint8_t kUsageHold = 0;  // LIST ID USAGE 00b
inline constexpr uint8_t kUsageDiscard = 2;
inline constexpr uint8_t kUsageDisable = 3;

struct CopyList {
  uint32_t list_id = 0;
  uint8_t usage = kUsageDisable;
  bool immed = false;  // LID4 only
  std::vector<Cscd> cscds;
  std::vector<Bytes> segments;
};
Bytes EncodeLid1(const CopyList& l);  // 16-byte header (SPC-4 6.4.3)
Bytes EncodeLid4(const CopyList& l);  // 48-byte header, list format 01h (SPC-4 6.5.3)

// --- ROD tokens (SBC-3) --------------------------------------------------------------------
inline constexpr size_t kTokenBytes = 512;
using Token = std::array<uint8_t, kTokenBytes>;
struct Range {
  uint64_t lba = 0;
  uint32_t blocks = 0;
};
Bytes PopulateTokenParams(std::span<const Range> ranges, uint32_t timeout_s = 0,
                          bool immed = false);
Bytes WriteUsingTokenParams(const Token& token, std::span<const Range> ranges,
                            uint64_t offset_into_rod = 0, bool del_tkn = false);
Token ZeroToken();  // block device zero ROD token FFFF0001h

// The parsed 32-byte header shared by RECEIVE COPY STATUS(LID4) and RRTI (SPC-4 6.18.5).
struct CopyStatus4 {
  uint8_t response_to_sa = 0;
  uint8_t status = 0;  // COPY OPERATION STATUS
  uint32_t estimated_delay_ms = 0;
  uint8_t completion_status = 0;
  uint8_t units = 0;
  uint64_t transfer_count = 0;
  uint16_t segments_processed = 0;
  Bytes sense;
  std::optional<Token> token;  // RRTI with a ROD token descriptor
  uint32_t token_descriptors_len = 0;
};
// Fails the test (and returns nullopt) when `data` is too short for what it claims.
std::optional<CopyStatus4> ParseCopyStatus4(std::span<const uint8_t> data);
// TRANSFER COUNT in bytes: units 00h bytes, 01h KiB, 02h MiB, F1h logical blocks.
std::optional<uint64_t> TransferBytes(uint8_t units, uint64_t count, uint32_t block_size);

// ferryd is another process: what a test waits for there (a background copy, a token's
// inactivity timeout) can only be polled with a deadline or waited out. The waiting lives
// here, so that the *_test.cc files stay sleep-free as scripts/check wants.
bool PollUntil(const std::function<bool()>& ready, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval = std::chrono::milliseconds(20));
void WaitOut(std::chrono::milliseconds d);

// --- a session ----------------------------------------------------------------------------
struct AsyncCommand;

class Session {
 public:
  // Logs in to `target` at `portal` ("ip:port") as `initiator` and clears the unit
  // attentions of `luns`. Null with *error set on failure.
  static std::unique_ptr<Session> Connect(const std::string& portal, const std::string& target,
                                          const std::string& initiator,
                                          const std::vector<int>& luns, std::string* error);
  // The same with an ISID of the EN format (RFC 7143 11.12.5, type 01b) ending in
  // `isid_qualifier`. Sessions under one initiator name are different I_T nexuses only with
  // different ISIDs (the same ISID reinstates the older session), and libiscsi's own random
  // ISIDs (type 10b) never equal these.
  static std::unique_ptr<Session> ConnectWithIsid(const std::string& portal,
                                                  const std::string& target,
                                                  const std::string& initiator,
                                                  uint16_t isid_qualifier,
                                                  const std::vector<int>& luns, std::string* error);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Reply Run(int lun, std::span<const uint8_t> cdb, int dir, uint32_t xfer_len,
            std::span<const uint8_t> out = {});
  Reply In(int lun, std::span<const uint8_t> cdb, uint32_t alloc) {
    return Run(lun, cdb, SCSI_XFER_READ, alloc);
  }
  Reply Out(int lun, std::span<const uint8_t> cdb, std::span<const uint8_t> data) {
    return Run(lun, cdb, data.empty() ? SCSI_XFER_NONE : SCSI_XFER_WRITE,
               static_cast<uint32_t>(data.size()), data);
  }

  // Third-party copy commands.
  Reply Xcopy1(int lun, const CopyList& l);
  Reply Xcopy4(int lun, const CopyList& l);
  Reply Populate(int lun, uint32_t list_id, std::span<const Range> ranges, uint32_t timeout_s = 0,
                 bool immed = false);
  // RRTI for `list_id`: the token, or nullopt after adding a test failure.
  std::optional<Token> ReceiveToken(int lun, uint32_t list_id);
  // POPULATE TOKEN then RRTI.
  std::optional<Token> MakeToken(int lun, uint32_t list_id, std::span<const Range> ranges,
                                 uint32_t timeout_s = 0);
  Reply WriteUsing(int lun, uint32_t list_id, const Token& t, std::span<const Range> ranges,
                   uint64_t offset_into_rod = 0, bool del_tkn = false);
  // RECEIVE COPY STATUS(LID4) of `list_id`.
  Reply CopyStatusLid4(int lun, uint32_t list_id);
  // Polls it until the copy is no longer in progress (10h-12h): the last status, or
  // nullopt after adding a test failure.
  std::optional<CopyStatus4> WaitCopyDone(int lun, uint32_t list_id,
                                          std::chrono::milliseconds timeout);

  // Block I/O with WRITE(16) / READ(16), split below the target's transfer limit. Failures
  // are test failures.
  void Write(int lun, uint64_t lba, std::span<const uint8_t> data);
  Bytes Read(int lun, uint64_t lba, uint64_t blocks);
  // Writes Pattern(seed) over [lba, lba + blocks): the pattern offset is the byte address.
  void Fill(int lun, uint64_t lba, uint64_t blocks, uint64_t seed);
  // What Fill(seed) wrote at [lba, lba + blocks) of an LU with `block_size`.
  static Bytes Expected(uint64_t seed, uint64_t lba, uint64_t blocks, uint32_t block_size);

  // READ CAPACITY(16) and VPD 83h, cached per LUN.
  const LunInfo& Info(int lun);
  // An E4h CSCD naming `lun` by its designator of `type` (3 NAA, 2 EUI-64, 1 T10).
  Cscd CscdOf(int lun, uint8_t type = 3);
  // TEST UNIT READY until no UNIT ATTENTION is left (a few tries).
  bool ClearUnitAttentions(int lun);

  // Asynchronous commands and task management (libiscsi's event interface).
  void Start(int lun, std::span<const uint8_t> cdb, int dir, uint32_t xfer_len,
             std::span<const uint8_t> out, AsyncCommand* cmd);
  // Services the connection until `done()`; false after `timeout` or on a dead connection.
  bool PumpUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout);
  // The same over several sessions at once (one poll loop), so that commands started on each
  // are in flight together. False after `timeout` or when one of them breaks; then every one
  // of them is given up (as Run does after a timeout): commands still outstanding end
  // cancelled, and the AsyncCommands need only outlive the sessions.
  static bool PumpAll(std::span<Session* const> sessions, const std::function<bool()>& done,
                      std::chrono::milliseconds timeout);
  // The reply of a command Start() sent, once it is done: status, sense, data-in.
  Reply Finished(AsyncCommand* cmd);
  // ABORT TASK of `cmd` / LUN RESET: the TMF response (RFC 7143 11.6.1), or -1.
  int AbortTask(AsyncCommand* cmd);
  int LunReset(int lun);

  // A command timed out or the connection died: every later command fails at once.
  bool broken() const { return broken_; }

 private:
  explicit Session(iscsi_context* iscsi) : iscsi_(iscsi) {}
  static std::unique_ptr<Session> Login(const std::string& portal, const std::string& target,
                                        const std::string& initiator,
                                        std::optional<uint16_t> isid_qualifier,
                                        const std::vector<int>& luns, std::string* error);
  // One iscsi_service() call with what poll() reported; false (and broken) on failure.
  bool Service(short revents);
  // Marks the session broken and closes it: libiscsi cancels what is outstanding.
  void Abandon(const std::string& why);
  int WaitTmf(int rc, const bool* done, const uint32_t* response);

  iscsi_context* iscsi_;
  bool broken_ = false;
  std::string broken_reason_;
  std::map<int, LunInfo> info_;
};

struct AsyncCommand {
  scsi_task* task = nullptr;
  iscsi_data out{};
  Bytes out_bytes;
  bool done = false;
  bool cancelled = false;
  bool harvested = false;  // Finished() took status, sense and data from the task
  Reply reply;
  ~AsyncCommand();
};

// Sessions shared by the tests of one binary (logging in once is enough); a broken session
// is replaced on the next call. Null when the login fails (ConnectError() says why).
inline constexpr char kClientName[] = "iqn.2026-11.org.ferry:tpc-client";
inline constexpr char kOtherName[] = "iqn.2026-11.org.ferry:tpc-other";
Session* Client();  // tpc-client on FERRY_TARGET: LUNs 0-4
Session* Other();   // tpc-other on FERRY_TARGET: LUN 0 (the target's LUN 5)
Session* Slow();    // tpc-client on the throttled instance (FERRY_SLOW_*): LUNs 0-1
const std::string& ConnectError();

// List identifiers no other test uses: one byte for LID1, four for LID4 and tokens.
uint8_t NewListId1();
uint32_t NewListId();

// Runs `ferryctl --socket S status --json`: the "copy" object, or null after a failure.
struct CopyCounters {
  // "commands": a number, or an object of counters ("extended_copy", "failed", ...).
  uint64_t commands = 0;
  std::map<std::string, uint64_t> commands_by_name;
  uint64_t bytes_offloaded = 0;
  uint64_t bytes_emulated = 0;
  std::map<std::string, uint64_t> mechanisms;
  // Present when ferryctl reports them: copies in progress ("active") and the "tokens"
  // counters ("live", "created", "revoked").
  std::optional<uint64_t> active;
  std::map<std::string, uint64_t> tokens;
};
std::optional<CopyCounters> ReadCopyCounters();

// The bytes a token over `ranges` represents, for an LU written with Fill(seed).
Bytes RodBytes(uint64_t seed, std::span<const Range> ranges, uint32_t block_size);

// Tests that talk to the main target as tpc-client.
class TpcTest : public testing::Test {
 protected:
  void SetUp() override {
    c_ = Client();
    ASSERT_NE(c_, nullptr) << ConnectError();
  }
  Session& c() { return *c_; }

 private:
  Session* c_ = nullptr;
};

}  // namespace ferry::tpc_test
