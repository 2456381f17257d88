// Issue 5: SCSI-3 persistent reservations as a Windows failover cluster uses them, through a
// real initiator (libiscsi, the tests/tpc client) and across restarts of ferryd. run.sh runs
// the phases in order against one state directory, restarting ferryd between them:
//   Phase1  nodes A and B register with APTPL=1, A reserves Write Exclusive - Registrants
//           Only; registrants write, an unregistered node C reads but may not write;
//   Phase2  (ferryd restarted) the registrations and the reservation are back; node A is
//           lost, B preempts it: A is fenced, B holds the reservation;
//   Phase3  (ferryd restarted again) the preemption was kept; B clears everything.
// Every step runs on both LUNs: 0 (RAM backstore pr-ram) and 1 (file backstore pr-file).
//
// The PERSISTENT RESERVE IN/OUT CDBs and parameter lists are encoded here from SPC-4 6.15 and
// 6.16, not with Ferry's codecs (see tpc_client.h).
#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "../tpc/tpc_client.h"

namespace ferry::pr_test {
namespace {

using tpc_test::Bytes;
using tpc_test::Describe;
using tpc_test::Env;
using tpc_test::Get16;
using tpc_test::Get32;
using tpc_test::Get64;
using tpc_test::IsCheck;
using tpc_test::IsGood;
using tpc_test::Pattern;
using tpc_test::Put16;
using tpc_test::Put32;
using tpc_test::Put64;
using tpc_test::Reply;
using tpc_test::SameBytes;
using tpc_test::Session;

// The cluster: two nodes and an outsider, each one I_T nexus with a fixed ISID, so that the
// sessions of a later phase are the same initiator ports (registrations are per initiator
// port: name and ISID).
constexpr char kNodeA[] = "iqn.1991-05.com.microsoft:node-a";
constexpr char kNodeB[] = "iqn.1991-05.com.microsoft:node-b";
constexpr char kNodeC[] = "iqn.1991-05.com.microsoft:node-c";
constexpr uint16_t kIsidA = 0x000a;
constexpr uint16_t kIsidB = 0x000b;
constexpr uint16_t kIsidC = 0x000c;
// Windows' keys end in "MSFT"; the first bytes tell the nodes apart.
constexpr uint64_t kKeyA = 0x0000'0a01'4d53'4654;
constexpr uint64_t kKeyB = 0x0000'0b01'4d53'4654;
constexpr uint64_t kKeyC = 0x0000'0c01'4d53'4654;

struct Disk {
  int lun;
  const char* backstore;  // ferryd-pr.json: the APTPL file is <state>/reservations/<name>.json
  bool keeps_data;        // a file backstore keeps its blocks through a restart, RAM does not
};
constexpr Disk kDisks[] = {{0, "pr-ram", false}, {1, "pr-file", true}};

// SPC-4 6.16.2 service actions, 6.15.1 service actions, 6.16.3 flags, 6.15.3 type.
constexpr uint8_t kRegister = 0x00;
constexpr uint8_t kReserve = 0x01;
constexpr uint8_t kClear = 0x03;
constexpr uint8_t kPreempt = 0x04;
constexpr uint8_t kRegisterAndIgnore = 0x06;
constexpr uint8_t kReadKeys = 0x00;
constexpr uint8_t kReadReservation = 0x01;
constexpr uint8_t kReportCapabilities = 0x02;
constexpr uint8_t kAptpl = 0x01;
constexpr uint8_t kWriteExclusiveRegistrantsOnly = 0x05;
constexpr int kReservationConflict = 0x18;
constexpr uint16_t kRegistrationsPreempted = 0x2a05;  // SPC-4 5.13.11.2.4
constexpr uint16_t kPrInAlloc = 1024;

// Blocks each node writes (fixed seeds: phase 2 checks what phase 1 wrote on the file LUN).
constexpr uint64_t kLbaA = 4;
constexpr uint64_t kLbaB = 8;
constexpr uint64_t kLbaC = 12;
uint64_t SeedOf(char node, int lun, int phase) {
  return 0x5eed'0000'0000ull | uint64_t{static_cast<uint8_t>(node)} << 16 | uint64_t(lun) << 8 |
         uint64_t(phase);
}

std::string Hex(uint64_t v) {
  char b[20];
  std::snprintf(b, sizeof(b), "%016llx", static_cast<unsigned long long>(v));
  return b;
}
std::string HexKeys(std::vector<uint64_t> keys) {
  std::sort(keys.begin(), keys.end());
  std::string s = "{";
  for (uint64_t k : keys) s += (s.size() > 1 ? ", " : "") + Hex(k);
  return s + "}";
}

// --- PERSISTENT RESERVE OUT / IN ----------------------------------------------------------

using Cdb10 = std::array<uint8_t, 10>;

// SPC-4 6.16.1: SERVICE ACTION, SCOPE (LU_SCOPE, 0) and TYPE, PARAMETER LIST LENGTH.
Cdb10 PrOutCdb(uint8_t sa, uint8_t type, uint32_t len) {
  Cdb10 c{};
  c[0] = 0x5f;
  c[1] = sa;
  c[2] = type & 0x0f;
  Put32(&c[5], len);
  return c;
}

// SPC-4 6.16.3 basic parameter list: RESERVATION KEY, SERVICE ACTION RESERVATION KEY, 4
// obsolete bytes, flags (APTPL bit 0, ALL_TG_PT bit 2, SPEC_I_PT bit 3), reserved, obsolete.
Bytes PrOutList(uint64_t key, uint64_t sa_key, uint8_t flags) {
  Bytes p(24, 0);
  Put64(&p[0], key);
  Put64(&p[8], sa_key);
  p[20] = flags;
  return p;
}

Reply PrOut(Session& s, int lun, uint8_t sa, uint8_t type, uint64_t key, uint64_t sa_key,
            uint8_t flags = 0) {
  const Bytes p = PrOutList(key, sa_key, flags);
  return s.Out(lun, PrOutCdb(sa, type, static_cast<uint32_t>(p.size())), p);
}

// SPC-4 6.15.1: SERVICE ACTION, ALLOCATION LENGTH.
Reply PrIn(Session& s, int lun, uint8_t sa) {
  Cdb10 c{};
  c[0] = 0x5e;
  c[1] = sa;
  Put16(&c[7], kPrInAlloc);
  return s.In(lun, c, kPrInAlloc);
}

struct Keys {
  uint32_t generation = 0;
  std::vector<uint64_t> keys;
};

// SPC-4 6.15.2 READ KEYS: PRGENERATION, ADDITIONAL LENGTH, the keys. Nullopt after a test
// failure when the command fails or the data is malformed.
std::optional<Keys> ReadKeys(Session& s, int lun, const char* who) {
  const Reply r = PrIn(s, lun, kReadKeys);
  if (!r.good()) {
    ADD_FAILURE() << who << ": READ KEYS on LUN " << lun << ": " << Describe(r);
    return std::nullopt;
  }
  if (r.data.size() < 8) {
    ADD_FAILURE() << who << ": READ KEYS on LUN " << lun << " returned " << r.data.size()
                  << " bytes, less than its 8-byte header";
    return std::nullopt;
  }
  const uint32_t len = Get32(&r.data[4]);
  if (len % 8 != 0 || 8 + size_t{len} > r.data.size()) {
    ADD_FAILURE() << who << ": READ KEYS on LUN " << lun << ": ADDITIONAL LENGTH " << len
                  << " with " << r.data.size() << " bytes returned";
    return std::nullopt;
  }
  Keys k{.generation = Get32(&r.data[0])};
  for (size_t i = 8; i < 8 + size_t{len}; i += 8) k.keys.push_back(Get64(&r.data[i]));
  return k;
}

struct Reservation {
  uint32_t generation = 0;
  bool present = false;
  uint64_t key = 0;
  uint8_t scope_type = 0;
};

// SPC-4 6.15.3 READ RESERVATION: PRGENERATION, ADDITIONAL LENGTH (0 or 10h), then the
// RESERVATION KEY, 4 obsolete bytes, a reserved byte and SCOPE/TYPE at byte 21.
std::optional<Reservation> ReadReservation(Session& s, int lun, const char* who) {
  const Reply r = PrIn(s, lun, kReadReservation);
  if (!r.good()) {
    ADD_FAILURE() << who << ": READ RESERVATION on LUN " << lun << ": " << Describe(r);
    return std::nullopt;
  }
  if (r.data.size() < 8) {
    ADD_FAILURE() << who << ": READ RESERVATION on LUN " << lun << " returned " << r.data.size()
                  << " bytes, less than its 8-byte header";
    return std::nullopt;
  }
  Reservation v{.generation = Get32(&r.data[0])};
  const uint32_t len = Get32(&r.data[4]);
  if (len == 0) return v;
  if (len != 0x10 || r.data.size() < 24) {
    ADD_FAILURE() << who << ": READ RESERVATION on LUN " << lun << ": ADDITIONAL LENGTH " << len
                  << " (want 0 or 16) with " << r.data.size() << " bytes returned";
    return std::nullopt;
  }
  v.present = true;
  v.key = Get64(&r.data[8]);
  v.scope_type = r.data[21];
  return v;
}

testing::AssertionResult IsConflict(const Reply& r) {
  if (r.status == kReservationConflict) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "expected RESERVATION CONFLICT (18h), got " << Describe(r);
}

// Checks READ KEYS from `who` against `want` (any order).
void ExpectKeys(Session& s, int lun, const char* who, std::vector<uint64_t> want,
                uint32_t* generation = nullptr) {
  const std::optional<Keys> k = ReadKeys(s, lun, who);
  ASSERT_TRUE(k);
  std::vector<uint64_t> got = k->keys;
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want) << who << ": READ KEYS on LUN " << lun << " lists " << HexKeys(got)
                       << ", want " << HexKeys(want);
  if (generation != nullptr) *generation = k->generation;
}

// Checks READ RESERVATION from `who`: a WERO reservation held by `holder`, or none (0).
void ExpectReservation(Session& s, int lun, const char* who, uint64_t holder) {
  const std::optional<Reservation> r = ReadReservation(s, lun, who);
  ASSERT_TRUE(r);
  if (holder == 0) {
    EXPECT_FALSE(r->present) << who << ": LUN " << lun << " still shows a reservation by key "
                             << Hex(r->key) << ", scope/type " << int{r->scope_type};
    return;
  }
  ASSERT_TRUE(r->present) << who << ": LUN " << lun << " shows no reservation, want one by "
                          << Hex(holder);
  EXPECT_EQ(Hex(r->key), Hex(holder)) << who << ": READ RESERVATION key on LUN " << lun;
  EXPECT_EQ(r->scope_type, kWriteExclusiveRegistrantsOnly)
      << who << ": READ RESERVATION scope/type on LUN " << lun
      << " (want LU_SCOPE, Write Exclusive - Registrants Only)";
}

// --- block I/O: WRITE(10) / READ(10) of one block, status kept ------------------------------

Reply WriteBlock(Session& s, int lun, uint64_t lba, uint64_t seed) {
  const uint32_t bs = s.Info(lun).block_size;
  Cdb10 c{};
  c[0] = 0x2a;
  Put32(&c[2], static_cast<uint32_t>(lba));
  Put16(&c[7], 1);
  return s.Out(lun, c, Pattern(seed, lba * bs, bs));
}

Reply ReadBlock(Session& s, int lun, uint64_t lba) {
  const uint32_t bs = s.Info(lun).block_size;
  Cdb10 c{};
  c[0] = 0x28;
  Put32(&c[2], static_cast<uint32_t>(lba));
  Put16(&c[7], 1);
  return s.In(lun, c, bs);
}

// The block at `lba` holds what WriteBlock(seed) wrote.
void ExpectBlock(Session& s, int lun, const char* who, uint64_t lba, uint64_t seed) {
  const Reply r = ReadBlock(s, lun, lba);
  ASSERT_TRUE(IsGood(r)) << who << ": READ(10) LBA " << lba << " on LUN " << lun;
  const uint32_t bs = s.Info(lun).block_size;
  EXPECT_TRUE(SameBytes(r.data, Pattern(seed, lba * bs, bs)))
      << who << ": LBA " << lba << " on LUN " << lun;
}

// --- sessions, files ---------------------------------------------------------------------

std::unique_ptr<Session> Node(const char* name, uint16_t isid) {
  std::string error;
  // Connect clears the unit attentions of both LUNs (TEST UNIT READY until GOOD): after a
  // restart the first command of a session may meet one, and that is normal.
  auto s = Session::ConnectWithIsid(Env("FERRY_PORTAL"), Env("FERRY_TARGET"), name, isid, {0, 1},
                                    &error);
  if (s == nullptr) ADD_FAILURE() << "login as " << name << ": " << error;
  return s;
}

std::filesystem::path AptplFile(const Disk& d) {
  return std::filesystem::path(Env("FERRY_STATE")) / "reservations" /
         (std::string(d.backstore) + ".json");
}

// The keys and reservation the APTPL file holds (pr_state.h: "registrations" with hex
// "key" strings, "reservation" a type or null).
struct FileState {
  std::vector<uint64_t> keys;
  bool reserved = false;
};
std::optional<FileState> ReadAptplFile(const Disk& d) {
  const std::filesystem::path f = AptplFile(d);
  std::ifstream in(f);
  if (!in) {
    ADD_FAILURE() << "no APTPL file " << f << " for LUN " << d.lun;
    return std::nullopt;
  }
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("registrations") ||
      !j["registrations"].is_array()) {
    ADD_FAILURE() << f << " is not an APTPL state file";
    return std::nullopt;
  }
  FileState s;
  s.reserved = j.contains("reservation") && !j["reservation"].is_null();
  for (const auto& r : j["registrations"]) {
    if (!r.contains("key") || !r["key"].is_string()) {
      ADD_FAILURE() << f << ": a registration without a string key: " << r.dump();
      return std::nullopt;
    }
    s.keys.push_back(std::stoull(r["key"].get<std::string>(), nullptr, 16));
  }
  return s;
}

// PRGENERATION as phase 1 left it, kept in FERRY_WORK for the log of phase 2 (which expects
// 0: a restart is a power on).
std::filesystem::path GenerationFile(const Disk& d) {
  return std::filesystem::path(Env("FERRY_WORK")) /
         ("phase1-generation-lun" + std::to_string(d.lun));
}

class ClusterTest : public testing::Test {
 protected:
  void SetUp() override {
    if (Env("FERRY_PORTAL").empty() || Env("FERRY_TARGET").empty() || Env("FERRY_STATE").empty() ||
        Env("FERRY_WORK").empty()) {
      GTEST_FAIL() << "FERRY_PORTAL, FERRY_TARGET, FERRY_STATE and FERRY_WORK must be set: run "
                      "tests/reservations/run.sh";
    }
  }
};

// Phase 1: the cluster forms. SPC-4 5.13.7 registering, 5.13.9 reserving, 5.13.1 table 65
// (Write Exclusive - Registrants Only: registrants read and write, others only read).
TEST_F(ClusterTest, Phase1RegisterReserveFence) {
  auto a = Node(kNodeA, kIsidA);
  auto b = Node(kNodeB, kIsidB);
  auto c = Node(kNodeC, kIsidC);
  ASSERT_TRUE(a && b && c);
  for (const Disk& d : kDisks) {
    SCOPED_TRACE("LUN " + std::to_string(d.lun) + " (" + d.backstore + ")");
    const int lun = d.lun;
    uint32_t gen0 = 0;
    ASSERT_NO_FATAL_FAILURE(ExpectKeys(*b, lun, "B before registering", {}, &gen0));
    ASSERT_NO_FATAL_FAILURE(ExpectReservation(*b, lun, "B before registering", 0));

    // A registers with REGISTER (current key 0), B with REGISTER AND IGNORE EXISTING KEY as
    // the Windows cluster service does; both ask for persistence through power loss.
    ASSERT_TRUE(IsGood(PrOut(*a, lun, kRegister, 0, 0, kKeyA, kAptpl))) << "A: REGISTER APTPL=1";
    ASSERT_TRUE(IsGood(PrOut(*b, lun, kRegisterAndIgnore, 0, 0, kKeyB, kAptpl)))
        << "B: REGISTER AND IGNORE EXISTING KEY APTPL=1";
    uint32_t gen = 0;
    ASSERT_NO_FATAL_FAILURE(ExpectKeys(*a, lun, "A after both registered", {kKeyA, kKeyB}, &gen));
    EXPECT_EQ(gen, gen0 + 2) << "PRGENERATION: one step per REGISTER (SPC-4 6.15.2)";

    // SPC-4 6.15.4 REPORT CAPABILITIES: PTPL_C (byte 2 bit 0) and PTPL_A (byte 3 bit 0).
    const Reply caps = PrIn(*c, lun, kReportCapabilities);
    ASSERT_TRUE(IsGood(caps)) << "C: REPORT CAPABILITIES";
    ASSERT_GE(caps.data.size(), 8u) << "REPORT CAPABILITIES data";
    EXPECT_TRUE(caps.data[2] & 0x01) << "PTPL_C is 0: APTPL not supported";
    EXPECT_TRUE(caps.data[3] & 0x01) << "PTPL_A is 0 after REGISTER with APTPL=1";
    if (caps.data[3] & 0x80) {  // TMV: the type mask is valid; WR_EX_RO is byte 4 bit 5
      EXPECT_TRUE(caps.data[4] & 0x20) << "type mask lacks Write Exclusive - Registrants Only";
    }

    // A reserves; B cannot take the reservation by RESERVE, only by PREEMPT (phase 2).
    ASSERT_TRUE(IsGood(PrOut(*a, lun, kReserve, kWriteExclusiveRegistrantsOnly, kKeyA, 0)))
        << "A: RESERVE type 5 (WERO)";
    EXPECT_TRUE(IsGood(PrOut(*a, lun, kReserve, kWriteExclusiveRegistrantsOnly, kKeyA, 0)))
        << "A: RESERVE again by the holder, same type (SPC-4 5.13.9: GOOD)";
    EXPECT_TRUE(IsConflict(PrOut(*b, lun, kReserve, kWriteExclusiveRegistrantsOnly, kKeyB, 0)))
        << "B: RESERVE while A holds the reservation";
    EXPECT_TRUE(IsConflict(PrOut(*c, lun, kReserve, kWriteExclusiveRegistrantsOnly, kKeyC, 0)))
        << "C (unregistered): RESERVE";
    ASSERT_NO_FATAL_FAILURE(ExpectReservation(*b, lun, "B after A reserved", kKeyA));
    ASSERT_NO_FATAL_FAILURE(ExpectKeys(*c, lun, "C after A reserved", {kKeyA, kKeyB}, &gen));
    EXPECT_EQ(gen, gen0 + 2) << "PRGENERATION changed by RESERVE (SPC-4 6.15.2: it must not)";

    // Registrants write, the outsider only reads.
    EXPECT_TRUE(IsGood(WriteBlock(*a, lun, kLbaA, SeedOf('A', lun, 1)))) << "A (holder): WRITE";
    EXPECT_TRUE(IsGood(WriteBlock(*b, lun, kLbaB, SeedOf('B', lun, 1))))
        << "B (registrant, not holder): WRITE under WERO";
    EXPECT_TRUE(IsConflict(WriteBlock(*c, lun, kLbaC, SeedOf('C', lun, 1))))
        << "C (unregistered): WRITE under WERO";
    ASSERT_NO_FATAL_FAILURE(
        ExpectBlock(*c, lun, "C (unregistered) reads B's block", kLbaB, SeedOf('B', lun, 1)));
    ASSERT_NO_FATAL_FAILURE(ExpectBlock(*b, lun, "B reads A's block", kLbaA, SeedOf('A', lun, 1)));

    // The APTPL file holds both registrations and the reservation.
    const std::optional<FileState> f = ReadAptplFile(d);
    ASSERT_TRUE(f);
    std::vector<uint64_t> keys = f->keys;
    std::sort(keys.begin(), keys.end());
    EXPECT_EQ(HexKeys(keys), HexKeys({kKeyA, kKeyB})) << AptplFile(d);
    EXPECT_TRUE(f->reserved) << AptplFile(d) << " has no reservation";

    std::ofstream(GenerationFile(d)) << gen << "\n";
    std::printf("LUN %d: PRgeneration %u after phase 1\n", lun, gen);
  }
}

// Phase 2, after a restart: the APTPL state is back (SPC-4 5.13.5); node A is lost and B
// preempts it (5.13.11.2.4): A's registration goes, B holds a WERO reservation, A's session
// learns it by REGISTRATIONS PREEMPTED and is fenced.
TEST_F(ClusterTest, Phase2AfterRestartPreemptLostNode) {
  auto b = Node(kNodeB, kIsidB);
  auto c = Node(kNodeC, kIsidC);
  // Node A's session is logged in but silent from here on: the node hangs.
  auto a = Node(kNodeA, kIsidA);
  ASSERT_TRUE(a && b && c);
  for (const Disk& d : kDisks) {
    SCOPED_TRACE("LUN " + std::to_string(d.lun) + " (" + d.backstore + ")");
    const int lun = d.lun;
    uint32_t gen = 0;
    ASSERT_NO_FATAL_FAILURE(ExpectKeys(*b, lun, "B after the restart", {kKeyA, kKeyB}, &gen));
    ASSERT_NO_FATAL_FAILURE(ExpectReservation(*b, lun, "B after the restart", kKeyA));
    uint32_t before = 0;
    if (std::ifstream(GenerationFile(d)) >> before) {
      std::printf("LUN %d: PRgeneration %u before the restart, %u after it\n", lun, before, gen);
    }
    EXPECT_EQ(gen, 0u) << "PRGENERATION after the restart (SPC-4 6.15.2: set to zero by a power "
                          "on, regardless of APTPL)";
    const Reply caps = PrIn(*b, lun, kReportCapabilities);
    ASSERT_TRUE(IsGood(caps)) << "B: REPORT CAPABILITIES";
    ASSERT_GE(caps.data.size(), 8u) << "REPORT CAPABILITIES data";
    EXPECT_TRUE(caps.data[3] & 0x01) << "PTPL_A is 0 after a restart from the APTPL state";

    EXPECT_TRUE(IsConflict(WriteBlock(*c, lun, kLbaC, SeedOf('C', lun, 2))))
        << "C (unregistered): WRITE under the restored WERO reservation";
    if (d.keeps_data) {
      ASSERT_NO_FATAL_FAILURE(ExpectBlock(*c, lun, "C reads B's block from before the restart",
                                          kLbaB, SeedOf('B', lun, 1)));
    }
    EXPECT_TRUE(IsGood(WriteBlock(*b, lun, kLbaB, SeedOf('B', lun, 2))))
        << "B (registrant): WRITE under the restored reservation";

    // A is gone: B preempts A's key, keeping the type.
    ASSERT_TRUE(IsGood(PrOut(*b, lun, kPreempt, kWriteExclusiveRegistrantsOnly, kKeyB, kKeyA)))
        << "B: PREEMPT type 5, service action reservation key = A's key";
    uint32_t after = 0;
    ASSERT_NO_FATAL_FAILURE(ExpectKeys(*b, lun, "B after PREEMPT", {kKeyB}, &after));
    EXPECT_EQ(after, gen + 1) << "PRGENERATION: one step for PREEMPT (SPC-4 6.15.2)";
    ASSERT_NO_FATAL_FAILURE(ExpectReservation(*c, lun, "C after PREEMPT", kKeyB));

    // A's session: its next command reports the preemption, then A is fenced.
    const uint8_t tur[6] = {};
    const Reply ua = a->Run(lun, tur, SCSI_XFER_NONE, 0);
    EXPECT_TRUE(IsCheck(ua, tpc_test::kUnitAttention, {kRegistrationsPreempted}))
        << "A: first command after B preempted it (want UNIT ATTENTION 2A/05 REGISTRATIONS "
           "PREEMPTED)";
    EXPECT_TRUE(IsGood(a->Run(lun, tur, SCSI_XFER_NONE, 0)))
        << "A: TEST UNIT READY after the unit attention (no other should be pending)";
    EXPECT_TRUE(IsConflict(WriteBlock(*a, lun, kLbaA, SeedOf('A', lun, 2))))
        << "A (preempted): WRITE";
    EXPECT_TRUE(IsConflict(PrOut(*a, lun, kReserve, kWriteExclusiveRegistrantsOnly, kKeyA, 0)))
        << "A (preempted): RESERVE with its old key";
    ASSERT_NO_FATAL_FAILURE(ExpectKeys(*a, lun, "A (preempted) reads the keys", {kKeyB}));

    EXPECT_TRUE(IsGood(WriteBlock(*b, lun, kLbaB, SeedOf('B', lun, 3)))) << "B (holder): WRITE";
    EXPECT_TRUE(IsConflict(WriteBlock(*c, lun, kLbaC, SeedOf('C', lun, 2))))
        << "C (unregistered): WRITE under B's reservation";
    ASSERT_NO_FATAL_FAILURE(ExpectBlock(*a, lun, "A reads B's block (WERO lets anyone read)", kLbaB,
                                        SeedOf('B', lun, 3)));

    const std::optional<FileState> f = ReadAptplFile(d);
    ASSERT_TRUE(f);
    EXPECT_EQ(HexKeys(f->keys), HexKeys({kKeyB})) << AptplFile(d) << " after PREEMPT";
    EXPECT_TRUE(f->reserved) << AptplFile(d) << " has no reservation after PREEMPT";
  }
  // Node A comes back as a new session of the same initiator port: still not registered.
  a.reset();
  auto a2 = Node(kNodeA, kIsidA);
  ASSERT_TRUE(a2);
  for (const Disk& d : kDisks) {
    SCOPED_TRACE("LUN " + std::to_string(d.lun) + " (" + d.backstore + ")");
    EXPECT_TRUE(IsConflict(WriteBlock(*a2, d.lun, kLbaA, SeedOf('A', d.lun, 3))))
        << "A, logged in again after being preempted: WRITE";
  }
}

// Phase 3, after a second restart: the preemption persisted; then B clears (SPC-4
// 5.13.11.2.7) and the LU is open to everyone again.
TEST_F(ClusterTest, Phase3AfterSecondRestartClear) {
  auto a = Node(kNodeA, kIsidA);
  auto b = Node(kNodeB, kIsidB);
  auto c = Node(kNodeC, kIsidC);
  ASSERT_TRUE(a && b && c);
  for (const Disk& d : kDisks) {
    SCOPED_TRACE("LUN " + std::to_string(d.lun) + " (" + d.backstore + ")");
    const int lun = d.lun;
    uint32_t gen = 0;
    ASSERT_NO_FATAL_FAILURE(ExpectKeys(*c, lun, "C after the second restart", {kKeyB}, &gen));
    EXPECT_EQ(gen, 0u) << "PRGENERATION after the restart (SPC-4 6.15.2)";
    ASSERT_NO_FATAL_FAILURE(ExpectReservation(*c, lun, "C after the second restart", kKeyB));
    EXPECT_TRUE(IsConflict(WriteBlock(*a, lun, kLbaA, SeedOf('A', lun, 4))))
        << "A (preempted before the restart): WRITE";
    EXPECT_TRUE(IsGood(WriteBlock(*b, lun, kLbaB, SeedOf('B', lun, 4)))) << "B (holder): WRITE";

    ASSERT_TRUE(IsGood(PrOut(*b, lun, kClear, 0, kKeyB, 0))) << "B: CLEAR";
    uint32_t after = 0;
    ASSERT_NO_FATAL_FAILURE(ExpectKeys(*b, lun, "B after CLEAR", {}, &after));
    EXPECT_EQ(after, gen + 1) << "PRGENERATION: one step for CLEAR (SPC-4 6.15.2)";
    ASSERT_NO_FATAL_FAILURE(ExpectReservation(*b, lun, "B after CLEAR", 0));
    EXPECT_TRUE(IsGood(WriteBlock(*c, lun, kLbaC, SeedOf('C', lun, 4))))
        << "C: WRITE once no reservation is left";
    EXPECT_TRUE(IsGood(WriteBlock(*a, lun, kLbaA, SeedOf('A', lun, 4))))
        << "A: WRITE once no reservation is left";

    // The APTPL file keeps nothing: gone, or an empty state (CLEAR's APTPL bit is ignored,
    // SPC-4 6.16.3, so the last valid one, 1, still stands).
    if (std::filesystem::exists(AptplFile(d))) {
      const std::optional<FileState> f = ReadAptplFile(d);
      ASSERT_TRUE(f);
      EXPECT_TRUE(f->keys.empty()) << AptplFile(d) << " still lists " << HexKeys(f->keys);
      EXPECT_FALSE(f->reserved) << AptplFile(d) << " still has a reservation";
    }
  }
}

}  // namespace
}  // namespace ferry::pr_test
