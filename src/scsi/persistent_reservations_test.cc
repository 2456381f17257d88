#include "scsi/persistent_reservations.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/endian.h"
#include "scsi/pr_test_builders.h"

namespace ferry::scsi {
namespace {

using Bytes = std::vector<uint8_t>;
using OutResult = PersistentReservations::OutResult;

// Service actions and types by their numbers, as the tables in SPC-4 list them.
constexpr uint8_t kRegister = 0x0, kReserve = 0x1, kRelease = 0x2, kClear = 0x3, kPreempt = 0x4,
                  kPreemptAbort = 0x5, kRegisterIgnore = 0x6, kRegisterMove = 0x7;
constexpr uint8_t kWe = 1, kEa = 3, kWeRo = 5, kEaRo = 6, kWeAr = 7, kEaAr = 8;
constexpr uint8_t kAllTypes[] = {kWe, kEa, kWeRo, kEaRo, kWeAr, kEaAr};
constexpr uint8_t kAptpl = 0x01, kAllTgPt = 0x04, kSpecIPt = 0x08;

PrNexus Nexus(const std::string& name, uint8_t session = 1, uint16_t port = 1) {
  PrNexus n;
  n.initiator_name = name;
  n.isid = {0x23, 0xd0, 0x00, 0x00, 0x00, session};
  n.relative_target_port = port;
  n.id = NexusIdFor(n.initiator_name, n.isid);
  return n;
}

using pr_testing::Basic;

Bytes Tid(const PrNexus& n) {
  Bytes t;
  EncodeIscsiTransportId(n.initiator_name, n.isid, &t);
  return t;
}

// A format 00b TransportID (initiator device name only).
Bytes DeviceTid(const std::string& name) {
  Bytes t(4 + std::max<size_t>(20, (name.size() + 1 + 3) / 4 * 4), 0);
  t[0] = 0x05;
  StoreBe16(&t[2], static_cast<uint16_t>(t.size() - 4));
  std::copy(name.begin(), name.end(), t.begin() + 4);
  return t;
}

Bytes SpecIPt(uint64_t sark, std::initializer_list<Bytes> tids, uint8_t flags = 0) {
  Bytes p = Basic(0, sark, kSpecIPt | flags);
  p.resize(28);
  for (const Bytes& t : tids) p.insert(p.end(), t.begin(), t.end());
  StoreBe32(&p[24], static_cast<uint32_t>(p.size() - 28));
  return p;
}

Bytes Move(uint64_t key, uint64_t sark, const Bytes& tid, bool unreg = false, uint16_t port = 1) {
  Bytes p(24, 0);
  StoreBe64(&p[0], key);
  StoreBe64(&p[8], sark);
  p[17] = unreg ? 0x02 : 0;
  StoreBe16(&p[18], port);
  StoreBe32(&p[20], static_cast<uint32_t>(tid.size()));
  p.insert(p.end(), tid.begin(), tid.end());
  return p;
}

bool HasUa(const OutResult& r, const PrNexus& n, Asc asc) {
  return std::find(r.effects.unit_attentions.begin(), r.effects.unit_attentions.end(),
                   std::pair{n.id, asc}) != r.effects.unit_attentions.end();
}

void ExpectCheck(const OutResult& r, Asc asc, std::optional<uint16_t> byte = std::nullopt,
                 std::optional<uint8_t> bit = std::nullopt) {
  ASSERT_EQ(r.status, Status::kCheckCondition);
  ASSERT_TRUE(r.sense);
  EXPECT_EQ(r.sense->key, SenseKey::kIllegalRequest);
  EXPECT_EQ(r.sense->asc, asc);
  EXPECT_EQ(r.sense->has_field_pointer, byte.has_value());
  if (byte) {
    EXPECT_EQ(r.sense->field_byte, *byte);
    EXPECT_EQ(r.sense->field_bit, bit);
  }
}

class PrTest : public ::testing::Test {
 protected:
  PrTest() { Reset(); }

  void Reset(const std::filesystem::path& aptpl = {}) {
    pr_ = std::make_unique<PersistentReservations>(aptpl);
  }

  OutResult OutList(const PrNexus& n, uint8_t sa, uint8_t type, const Bytes& list) {
    uint8_t cdb[10] = {0x5f, sa, type};
    StoreBe32(&cdb[5], static_cast<uint32_t>(list.size()));
    return pr_->Out(n, cdb, list);
  }
  OutResult Out(const PrNexus& n, uint8_t sa, uint64_t key, uint64_t sark, uint8_t type = 0,
                uint8_t flags = 0) {
    return OutList(n, sa, type, Basic(key, sark, flags));
  }
  void Register(const PrNexus& n, uint64_t key, uint8_t flags = 0) {
    ASSERT_EQ(Out(n, kRegisterIgnore, 0, key, 0, flags).status, Status::kGood);
  }
  void Reserve(const PrNexus& n, uint64_t key, uint8_t type) {
    ASSERT_EQ(Out(n, kReserve, key, 0, type).status, Status::kGood);
  }

  Bytes In(uint8_t sa) {
    const uint8_t cdb[10] = {0x5e, sa, 0, 0, 0, 0, 0, 0xff, 0xff, 0};
    Bytes out;
    EXPECT_FALSE(pr_->In(cdb, &out));
    return out;
  }
  std::vector<uint64_t> Keys() {
    const Bytes d = In(0);
    EXPECT_EQ(LoadBe32(&d[4]), d.size() - 8);
    std::vector<uint64_t> keys;
    for (size_t i = 8; i + 8 <= d.size(); i += 8) keys.push_back(LoadBe64(&d[i]));
    return keys;
  }
  uint32_t Generation() { return LoadBe32(In(0).data()); }
  struct Resv {
    bool present = false;
    uint64_t key = 0;
    uint8_t type = 0;
    bool operator==(const Resv&) const = default;
  };
  Resv Reservation() {
    const Bytes d = In(1);
    if (LoadBe32(&d[4]) == 0) return {};
    EXPECT_EQ(LoadBe32(&d[4]), 16u);
    return {true, LoadBe64(&d[8]), d[21]};
  }

  bool Allowed(const PrNexus& n, std::initializer_list<uint8_t> bytes) {
    uint8_t cdb[16] = {};
    std::copy(bytes.begin(), bytes.end(), cdb);
    return !pr_->Conflicts(n, cdb);
  }
  bool CanRead(const PrNexus& n) { return Allowed(n, {0x28}); }
  bool CanWrite(const PrNexus& n) { return Allowed(n, {0x2a}); }

  std::unique_ptr<PersistentReservations> pr_;
  const PrNexus a_ = Nexus("iqn.2026-11.org.test:node-a");
  const PrNexus b_ = Nexus("iqn.2026-11.org.test:node-b");
  const PrNexus c_ = Nexus("iqn.2026-11.org.test:node-c");
};

// SPC-4 5.13.7 table 68.
TEST_F(PrTest, RegisterAndIgnoreExistingKey) {
  EXPECT_EQ(Generation(), 0u);
  EXPECT_EQ(Out(a_, kRegisterIgnore, 0, 0).status, Status::kGood);  // nothing to do
  EXPECT_EQ(Generation(), 0u);
  Register(a_, 0xa1);
  EXPECT_EQ(Keys(), std::vector<uint64_t>{0xa1});
  EXPECT_EQ(Generation(), 1u);
  EXPECT_EQ(Out(a_, kRegisterIgnore, 0x77, 0xa2).status, Status::kGood);  // key ignored
  EXPECT_EQ(Keys(), std::vector<uint64_t>{0xa2});
  EXPECT_EQ(Out(a_, kRegisterIgnore, 0, 0).status, Status::kGood);  // unregister
  EXPECT_TRUE(Keys().empty());
  EXPECT_EQ(Generation(), 3u);
}

// SPC-4 5.13.7 table 67.
TEST_F(PrTest, Register) {
  EXPECT_EQ(Out(a_, kRegister, 0x99, 0xa1).status, Status::kReservationConflict);
  EXPECT_EQ(Out(a_, kRegister, 0, 0).status, Status::kGood);
  EXPECT_EQ(Generation(), 0u);
  EXPECT_EQ(Out(a_, kRegister, 0, 0xa1).status, Status::kGood);
  EXPECT_EQ(Keys(), std::vector<uint64_t>{0xa1});
  // Registered: the RESERVATION KEY must be the registered one (libiscsi
  // prout_reregister_key_fails sends 0).
  EXPECT_EQ(Out(a_, kRegister, 0, 0xa2).status, Status::kReservationConflict);
  EXPECT_EQ(Out(a_, kRegister, 0xa9, 0xa2).status, Status::kReservationConflict);
  EXPECT_EQ(Out(a_, kRegister, 0xa1, 0xa2).status, Status::kGood);
  EXPECT_EQ(Keys(), std::vector<uint64_t>{0xa2});
  EXPECT_EQ(Out(a_, kRegister, 0xa2, 0).status, Status::kGood);
  EXPECT_TRUE(Keys().empty());
  EXPECT_EQ(Generation(), 3u);
  // Several nexuses may share a key; each is listed.
  Register(a_, 0x55);
  Register(b_, 0x55);
  EXPECT_EQ(Keys(), (std::vector<uint64_t>{0x55, 0x55}));
}

TEST_F(PrTest, SpecIPtFromARegisteredNexusIsRefused) {
  Register(a_, 0xa1);
  Bytes list = SpecIPt(0xa2, {Tid(b_)});
  StoreBe64(&list[0], 0xa1);
  ExpectCheck(OutList(a_, kRegister, 0, list), Asc::kInvalidFieldInParameterList, 20, 3);
  EXPECT_EQ(Keys(), std::vector<uint64_t>{0xa1});
}

TEST_F(PrTest, ReserveAndReleaseEveryType) {
  Register(a_, 0xa1);
  for (uint8_t type : kAllTypes) {
    Reserve(a_, 0xa1, type);
    const bool all_registrants = type == kWeAr || type == kEaAr;
    EXPECT_EQ(Reservation(), (Resv{true, all_registrants ? 0u : 0xa1u, type}));
    EXPECT_EQ(Out(a_, kRelease, 0xa1, 0, type).status, Status::kGood);
    EXPECT_FALSE(Reservation().present);
  }
  EXPECT_EQ(Generation(), 1u);  // RESERVE and RELEASE leave PRgeneration alone
}

// SPC-4 5.13.9.
TEST_F(PrTest, ReserveRules) {
  Register(a_, 0xa1);
  Register(b_, 0xb1);
  EXPECT_EQ(Out(c_, kReserve, 0, 0, kWe).status, Status::kReservationConflict);
  EXPECT_EQ(Out(a_, kReserve, 0xbad, 0, kWe).status, Status::kReservationConflict);
  Reserve(a_, 0xa1, kWe);
  EXPECT_EQ(Out(a_, kReserve, 0xa1, 0, kWe).status, Status::kGood);
  EXPECT_EQ(Out(a_, kReserve, 0xa1, 0, kEa).status, Status::kReservationConflict);
  EXPECT_EQ(Out(b_, kReserve, 0xb1, 0, kWe).status, Status::kReservationConflict);
  EXPECT_EQ(Reservation(), (Resv{true, 0xa1, kWe}));
}

TEST_F(PrTest, EveryRegistrantHoldsAnAllRegistrantsReservation) {
  Register(a_, 0xa1);
  Register(b_, 0xb1);
  Reserve(a_, 0xa1, kWeAr);
  EXPECT_EQ(Out(b_, kReserve, 0xb1, 0, kWeAr).status, Status::kGood);
  EXPECT_EQ(Out(b_, kReserve, 0xb1, 0, kEaAr).status, Status::kReservationConflict);
  EXPECT_EQ(Out(b_, kRelease, 0xb1, 0, kWeAr).status, Status::kGood);  // a holder releases
  EXPECT_FALSE(Reservation().present);
}

TEST_F(PrTest, BadTypeOrScopeIsAnInvalidCdbField) {
  Register(a_, 0xa1);
  ExpectCheck(Out(a_, kReserve, 0xa1, 0, 0x2), Asc::kInvalidFieldInCdb, 2, 3);
  ExpectCheck(Out(a_, kReserve, 0xa1, 0, 0x11), Asc::kInvalidFieldInCdb, 2, 7);
  ExpectCheck(Out(a_, 0x08, 0, 0), Asc::kInvalidFieldInCdb, 1, 4);  // REPLACE LOST RESERVATION
}

// SPC-4 5.13.11.2.2.
TEST_F(PrTest, ReleaseRules) {
  Register(a_, 0xa1);
  Register(b_, 0xb1);
  EXPECT_EQ(Out(a_, kRelease, 0xa1, 0, kWe).status, Status::kGood);  // nothing reserved
  Reserve(a_, 0xa1, kWe);
  EXPECT_EQ(Out(c_, kRelease, 0, 0, kWe).status, Status::kReservationConflict);
  EXPECT_EQ(Out(b_, kRelease, 0xb1, 0, kWe).status, Status::kGood);  // not the holder: no-op
  EXPECT_TRUE(Reservation().present);
  ExpectCheck(Out(a_, kRelease, 0xa1, 0, kEa), Asc::kInvalidReleaseOfPersistentReservation);
  EXPECT_TRUE(Reservation().present);
  const OutResult r = Out(a_, kRelease, 0xa1, 0, kWe);
  EXPECT_EQ(r.status, Status::kGood);
  EXPECT_TRUE(r.effects.unit_attentions.empty());  // Write Exclusive: no unit attention
  EXPECT_FALSE(Reservation().present);
}

TEST_F(PrTest, ReleaseOfRegistrantsTypesTellsTheOtherRegistrants) {
  for (uint8_t type : kAllTypes) {
    Reset();
    Register(a_, 0xa1);
    Register(b_, 0xb1);
    Register(c_, 0xc1);
    Reserve(a_, 0xa1, type);
    const OutResult r = Out(a_, kRelease, 0xa1, 0, type);
    ASSERT_EQ(r.status, Status::kGood);
    if (type == kWe || type == kEa) {
      EXPECT_TRUE(r.effects.unit_attentions.empty());
    } else {
      EXPECT_EQ(r.effects.unit_attentions.size(), 2u) << int{type};
      EXPECT_TRUE(HasUa(r, b_, Asc::kReservationsReleased));
      EXPECT_TRUE(HasUa(r, c_, Asc::kReservationsReleased));
    }
  }
}

// SPC-4 5.13.11.2.7 (and libiscsi test_prout_clear_simple).
TEST_F(PrTest, Clear) {
  Register(a_, 0xa1);
  Register(b_, 0xb1);
  Reserve(a_, 0xa1, kEa);
  EXPECT_EQ(Out(c_, kClear, 0, 0).status, Status::kReservationConflict);
  EXPECT_EQ(Out(b_, kClear, 0xbad, 0).status, Status::kReservationConflict);
  const OutResult r = Out(b_, kClear, 0xb1, 0);
  ASSERT_EQ(r.status, Status::kGood);
  EXPECT_EQ(r.effects.unit_attentions,
            (std::vector<std::pair<uint64_t, Asc>>{{a_.id, Asc::kReservationsPreempted}}));
  EXPECT_TRUE(Keys().empty());
  EXPECT_FALSE(Reservation().present);
  EXPECT_EQ(Generation(), 3u);
}

// libiscsi test_prout_preempt_rm_reg: PREEMPT without a reservation removes registrations.
TEST_F(PrTest, PreemptRemovesRegistrations) {
  Register(a_, 0xa1);
  Register(b_, 0xb1);
  const OutResult r = Out(b_, kPreempt, 0xb1, 0xa1, kEa);
  ASSERT_EQ(r.status, Status::kGood);
  EXPECT_EQ(Keys(), std::vector<uint64_t>{0xb1});
  EXPECT_EQ(Generation(), 3u);
  EXPECT_TRUE(HasUa(r, a_, Asc::kRegistrationsPreempted));
  EXPECT_EQ(r.effects.unit_attentions.size(), 1u);
  EXPECT_FALSE(Reservation().present);  // scope and type ignored
  EXPECT_TRUE(r.effects.abort_tasks_of.empty());
}

TEST_F(PrTest, PreemptErrors) {
  Register(a_, 0xa1);
  Register(b_, 0xb1);
  ExpectCheck(Out(a_, kPreempt, 0xa1, 0, kWe), Asc::kInvalidFieldInParameterList, 8);
  EXPECT_EQ(Out(a_, kPreempt, 0xa1, 0x999, kWe).status, Status::kReservationConflict);
  EXPECT_EQ(Out(c_, kPreempt, 0, 0xa1, kWe).status, Status::kReservationConflict);
  EXPECT_EQ(Out(a_, kPreempt, 0xbad, 0xb1, kWe).status, Status::kReservationConflict);
  Reserve(a_, 0xa1, kWe);
  ExpectCheck(Out(b_, kPreempt, 0xb1, 0, kWe), Asc::kInvalidFieldInParameterList, 8);
  // SCOPE and TYPE define the new reservation, so they must be valid when one is made.
  ExpectCheck(Out(b_, kPreempt, 0xb1, 0xa1, 0x00), Asc::kInvalidFieldInCdb, 2, 3);
  ExpectCheck(Out(b_, kPreempt, 0xb1, 0xa1, 0x11), Asc::kInvalidFieldInCdb, 2, 7);
  EXPECT_EQ(Reservation(), (Resv{true, 0xa1, kWe}));
  EXPECT_EQ(Generation(), 2u);
  // When only registrations go, they are ignored (sg_persist --preempt sends type 0).
  EXPECT_EQ(Out(a_, kPreempt, 0xa1, 0xb1, 0x00).status, Status::kGood);
  EXPECT_EQ(Keys(), std::vector<uint64_t>{0xa1});
}

// SPC-4 5.13.11.2.4.3.
TEST_F(PrTest, PreemptTakesTheReservation) {
  Register(a_, 0xa1);
  Register(b_, 0xb1);
  Register(c_, 0xc1);
  Reserve(a_, 0xa1, kWe);
  const OutResult r = Out(b_, kPreempt, 0xb1, 0xa1, kEa);
  ASSERT_EQ(r.status, Status::kGood);
  EXPECT_EQ(Reservation(), (Resv{true, 0xb1, kEa}));
  EXPECT_EQ(Keys(), (std::vector<uint64_t>{0xb1, 0xc1}));
  EXPECT_EQ(Generation(), 4u);
  EXPECT_TRUE(HasUa(r, a_, Asc::kRegistrationsPreempted));
  EXPECT_TRUE(HasUa(r, c_, Asc::kReservationsReleased));  // the type changed
  EXPECT_EQ(r.effects.unit_attentions.size(), 2u);
  EXPECT_FALSE(CanWrite(a_));
  EXPECT_TRUE(CanWrite(b_));
}

TEST_F(PrTest, PreemptKeepingTheTypeTellsOnlyThePreempted) {
  Register(a_, 0xa1);
  Register(b_, 0xb1);
  Register(c_, 0xc1);
  Reserve(a_, 0xa1, kWeRo);
  const OutResult r = Out(b_, kPreempt, 0xb1, 0xa1, kWeRo);
  ASSERT_EQ(r.status, Status::kGood);
  EXPECT_EQ(r.effects.unit_attentions,
            (std::vector<std::pair<uint64_t, Asc>>{{a_.id, Asc::kRegistrationsPreempted}}));
}

TEST_F(PrTest, PreemptAllRegistrantsWithKeyZero) {
  Register(a_, 0xa1);
  Register(b_, 0xb1);
  Register(c_, 0xc1);
  Reserve(a_, 0xa1, kWeAr);
  const OutResult r = Out(b_, kPreempt, 0xb1, 0, kWeRo);
  ASSERT_EQ(r.status, Status::kGood);
  EXPECT_EQ(Keys(), std::vector<uint64_t>{0xb1});
  EXPECT_EQ(Reservation(), (Resv{true, 0xb1, kWeRo}));
  EXPECT_TRUE(HasUa(r, a_, Asc::kRegistrationsPreempted));
  EXPECT_TRUE(HasUa(r, c_, Asc::kRegistrationsPreempted));
  EXPECT_EQ(r.effects.unit_attentions.size(), 2u);
}

TEST_F(PrTest, PreemptAllRegistrantsWithAKeyOnlyRemovesRegistrations) {
  Register(a_, 0xa1);
  Register(b_, 0xb1);
  Register(c_, 0xc1);
  Reserve(a_, 0xa1, kEaAr);
  const OutResult r = Out(b_, kPreempt, 0xb1, 0xc1, kWe);
  ASSERT_EQ(r.status, Status::kGood);
  EXPECT_EQ(Keys(), (std::vector<uint64_t>{0xa1, 0xb1}));
  EXPECT_EQ(Reservation(), (Resv{true, 0, kEaAr}));
  EXPECT_TRUE(HasUa(r, c_, Asc::kRegistrationsPreempted));
}

TEST_F(PrTest, HolderPreemptsItself) {
  Register(a_, 0xa1);
  Register(b_, 0xa1);  // same key as the holder
  Reserve(a_, 0xa1, kWe);
  const OutResult r = Out(a_, kPreempt, 0xa1, 0xa1, kEa);
  ASSERT_EQ(r.status, Status::kGood);
  EXPECT_EQ(Reservation(), (Resv{true, 0xa1, kEa}));
  EXPECT_EQ(Keys(), std::vector<uint64_t>{0xa1});  // a kept, b removed
  EXPECT_TRUE(CanWrite(a_));
  EXPECT_EQ(r.effects.unit_attentions,
            (std::vector<std::pair<uint64_t, Asc>>{{b_.id, Asc::kRegistrationsPreempted}}));
}

TEST_F(PrTest, PreemptingItsOwnKeyRemovesTheRegistration) {
  Register(a_, 0xa1);
  Register(b_, 0xb1);
  const OutResult r = Out(a_, kPreempt, 0xa1, 0xa1, kWe);
  ASSERT_EQ(r.status, Status::kGood);
  EXPECT_EQ(Keys(), std::vector<uint64_t>{0xb1});
  EXPECT_TRUE(r.effects.unit_attentions.empty());
}

TEST_F(PrTest, PreemptAndAbortAbortsThePreemptedNexuses) {
  Register(a_, 0xa1);
  Register(b_, 0xb1);
  Reserve(a_, 0xa1, kWeRo);
  const OutResult r = Out(b_, kPreemptAbort, 0xb1, 0xa1, kWeRo);
  ASSERT_EQ(r.status, Status::kGood);
  EXPECT_EQ(r.effects.abort_tasks_of, std::vector<uint64_t>{a_.id});
  EXPECT_TRUE(HasUa(r, a_, Asc::kRegistrationsPreempted));
  EXPECT_EQ(Reservation(), (Resv{true, 0xb1, kWeRo}));
  // A plain PREEMPT aborts nothing.
  Register(a_, 0xa1);
  EXPECT_TRUE(Out(b_, kPreempt, 0xb1, 0xa1, kWeRo).effects.abort_tasks_of.empty());
}

// SPC-4 5.13.11.2.3 and libiscsi test_prout_reserve_ownership_*.
TEST_F(PrTest, UnregisteringTheHolderReleases) {
  for (uint8_t type : kAllTypes) {
    Reset();
    Register(a_, 0xa1);
    Register(b_, 0xb1);
    Reserve(a_, 0xa1, type);
    const OutResult r = Out(a_, kRegister, 0xa1, 0);
    ASSERT_EQ(r.status, Status::kGood);
    if (type == kWeAr || type == kEaAr) {  // b still holds it
      EXPECT_EQ(Reservation(), (Resv{true, 0, type}));
      EXPECT_TRUE(r.effects.unit_attentions.empty());
      EXPECT_EQ(Out(b_, kRegister, 0xb1, 0).status, Status::kGood);  // the last one
      EXPECT_FALSE(Reservation().present);
    } else {
      EXPECT_FALSE(Reservation().present) << int{type};
      const bool ro = type == kWeRo || type == kEaRo;
      EXPECT_EQ(HasUa(r, b_, Asc::kReservationsReleased), ro);
      EXPECT_EQ(r.effects.unit_attentions.size(), ro ? 1u : 0u);
    }
  }
}

// libiscsi test_prout_reserve_access_*: what a registered and an unregistered second nexus
// may do under each type.
TEST_F(PrTest, AccessMatrix) {
  struct Row {
    uint8_t type;
    bool reg_read, reg_write, unreg_read, unreg_write;
  };
  const Row rows[] = {{kWe, true, false, true, false},  {kEa, false, false, false, false},
                      {kWeRo, true, true, true, false}, {kEaRo, true, true, false, false},
                      {kWeAr, true, true, true, false}, {kEaAr, true, true, false, false}};
  for (const Row& row : rows) {
    Reset();
    Register(a_, 0xa1);
    Register(b_, 0xb1);
    Reserve(a_, 0xa1, row.type);
    SCOPED_TRACE(int{row.type});
    EXPECT_TRUE(CanRead(a_));
    EXPECT_TRUE(CanWrite(a_));
    EXPECT_EQ(CanRead(b_), row.reg_read);
    EXPECT_EQ(CanWrite(b_), row.reg_write);
    EXPECT_EQ(CanRead(c_), row.unreg_read);
    EXPECT_EQ(CanWrite(c_), row.unreg_write);
  }
}

TEST_F(PrTest, CommandsOutsideTheMedium) {
  for (uint8_t type : kAllTypes) {
    Reset();
    Register(a_, 0xa1);
    Reserve(a_, 0xa1, type);
    SCOPED_TRACE(int{type});
    const bool we = type == kWe || type == kWeRo || type == kWeAr;
    EXPECT_TRUE(Allowed(c_, {0x00}));          // TEST UNIT READY
    EXPECT_TRUE(Allowed(c_, {0x12}));          // INQUIRY
    EXPECT_TRUE(Allowed(c_, {0x03}));          // REQUEST SENSE
    EXPECT_TRUE(Allowed(c_, {0xa0}));          // REPORT LUNS
    EXPECT_TRUE(Allowed(c_, {0x25}));          // READ CAPACITY(10)
    EXPECT_TRUE(Allowed(c_, {0x9e, 0x10}));    // READ CAPACITY(16)
    EXPECT_TRUE(Allowed(c_, {0x5e}));          // PERSISTENT RESERVE IN
    EXPECT_TRUE(Allowed(c_, {0x5f}));          // PERSISTENT RESERVE OUT: Out() decides
    EXPECT_TRUE(Allowed(c_, {0x84, 0x03}));    // RECEIVE COPY OPERATING PARAMETERS
    EXPECT_EQ(Allowed(c_, {0x1a}), we);        // MODE SENSE(6)
    EXPECT_EQ(Allowed(c_, {0xa3, 0x0c}), we);  // REPORT SUPPORTED OPERATION CODES
    EXPECT_FALSE(Allowed(c_, {0x15}));         // MODE SELECT(6)
    EXPECT_FALSE(Allowed(c_, {0x35}));         // SYNCHRONIZE CACHE(10)
    EXPECT_FALSE(Allowed(c_, {0x42}));         // UNMAP
    EXPECT_FALSE(Allowed(c_, {0x83, 0x00}));   // EXTENDED COPY
  }
}

TEST_F(PrTest, RegistrationsAloneRestrictOnlySpc2Reservations) {
  Register(a_, 0xa1);
  EXPECT_TRUE(CanWrite(c_));
  EXPECT_TRUE(CanRead(c_));
  EXPECT_FALSE(Allowed(a_, {0x16}));  // RESERVE(6)
  EXPECT_FALSE(Allowed(c_, {0x17}));  // RELEASE(6)
  EXPECT_FALSE(Allowed(c_, {0x56}));  // RESERVE(10)
  const uint8_t reserve6[6] = {0x16};
  const uint8_t release6[6] = {0x17};
  EXPECT_EQ(pr_->Reserve(c_, reserve6).status, Status::kReservationConflict);
  EXPECT_EQ(pr_->Release(a_, release6).status, Status::kReservationConflict);
}

TEST_F(PrTest, SpecIPtRegistersTheListedInitiatorPorts) {
  const OutResult r = OutList(a_, kRegister, 0, SpecIPt(0x77, {Tid(b_), Tid(c_)}));
  ASSERT_EQ(r.status, Status::kGood);
  EXPECT_EQ(Keys(), (std::vector<uint64_t>{0x77, 0x77, 0x77}));
  EXPECT_EQ(Generation(), 1u);
  Reserve(b_, 0x77, kWe);  // b is registered with that key
  // A TransportID in another case than the login name names the same port.
  Reset();
  PrNexus upper = b_;
  for (char& ch : upper.initiator_name) ch = static_cast<char>(std::toupper(ch));
  ASSERT_EQ(OutList(a_, kRegister, 0, SpecIPt(0x77, {Tid(upper)})).status, Status::kGood);
  Reserve(b_, 0x77, kWe);
}

TEST_F(PrTest, SpecIPtRegistersNothingOnAnyBadTransportId) {
  Register(b_, 0xb1);
  const uint16_t second = static_cast<uint16_t>(28 + Tid(c_).size());
  // A registered nexus, the sender itself, a port named twice, a device-format TransportID.
  ExpectCheck(OutList(a_, kRegister, 0, SpecIPt(0x77, {Tid(c_), Tid(b_)})),
              Asc::kInvalidFieldInParameterList, second);
  ExpectCheck(OutList(a_, kRegister, 0, SpecIPt(0x77, {Tid(a_)})),
              Asc::kInvalidFieldInParameterList, 28);
  ExpectCheck(OutList(a_, kRegister, 0, SpecIPt(0x77, {Tid(c_), Tid(c_)})),
              Asc::kInvalidFieldInParameterList, second);
  ExpectCheck(OutList(a_, kRegister, 0, SpecIPt(0x77, {DeviceTid(c_.initiator_name)})),
              Asc::kInvalidFieldInParameterList, 28, 7);
  EXPECT_EQ(Keys(), std::vector<uint64_t>{0xb1});
  EXPECT_EQ(Generation(), 1u);
}

TEST_F(PrTest, AllTargetPorts) {
  const PrNexus a1 = Nexus(a_.initiator_name, 1, 1);
  const PrNexus a2 = Nexus(a_.initiator_name, 1, 2);
  Register(a1, 0xa1);
  EXPECT_EQ(Out(a2, kReserve, 0xa1, 0, kWe).status, Status::kReservationConflict);
  // ALL_TG_PT while registered through another target port.
  EXPECT_EQ(Out(a2, kRegisterIgnore, 0, 0xa2, 0, kAllTgPt).status, Status::kReservationConflict);
  Reset();
  Register(a1, 0xa1, kAllTgPt);
  Reserve(a2, 0xa1, kWe);  // the same initiator port through target port 2
  EXPECT_TRUE(CanWrite(a1));
  EXPECT_TRUE(CanWrite(a2));
  EXPECT_FALSE(CanWrite(Nexus(a_.initiator_name, 2, 2)));  // another ISID: another port
  EXPECT_EQ(In(3)[8 + 12], 0x03);                          // ALL_TG_PT, R_HOLDER
}

// SPC-4 5.13.8.
TEST_F(PrTest, RegisterAndMove) {
  Register(a_, 0xa1);
  Reserve(a_, 0xa1, kWe);
  ASSERT_EQ(OutList(a_, kRegisterMove, 0, Move(0xa1, 0xb1, Tid(b_))).status, Status::kGood);
  EXPECT_EQ(Reservation(), (Resv{true, 0xb1, kWe}));
  EXPECT_EQ(Keys(), (std::vector<uint64_t>{0xa1, 0xb1}));
  EXPECT_EQ(Generation(), 2u);
  EXPECT_TRUE(CanWrite(b_));
  EXPECT_FALSE(CanWrite(a_));
  // Back to a, registered already: its key becomes the new one; UNREG drops b.
  ASSERT_EQ(OutList(b_, kRegisterMove, 0, Move(0xb1, 0xa2, Tid(a_), true)).status, Status::kGood);
  EXPECT_EQ(Reservation(), (Resv{true, 0xa2, kWe}));
  EXPECT_EQ(Keys(), std::vector<uint64_t>{0xa2});
}

TEST_F(PrTest, RegisterAndMoveErrors) {
  Register(a_, 0xa1);
  Register(b_, 0xb1);
  ExpectCheck(OutList(a_, kRegisterMove, 0, Move(0xa1, 0xc1, Tid(c_))), Asc::kInvalidFieldInCdb);
  Reserve(a_, 0xa1, kWeAr);
  EXPECT_EQ(OutList(a_, kRegisterMove, 0, Move(0xa1, 0xc1, Tid(c_))).status,
            Status::kReservationConflict);
  ASSERT_EQ(Out(a_, kRelease, 0xa1, 0, kWeAr).status, Status::kGood);
  Reserve(a_, 0xa1, kWe);
  for (const PrNexus* n : {&b_, &c_}) {  // not the holder; not registered
    EXPECT_EQ(OutList(*n, kRegisterMove, 0, Move(0xb1, 0xc1, Tid(c_))).status,
              Status::kReservationConflict);
  }
  EXPECT_EQ(OutList(a_, kRegisterMove, 0, Move(0xbad, 0xc1, Tid(c_))).status,
            Status::kReservationConflict);
  ExpectCheck(OutList(a_, kRegisterMove, 0, Move(0xa1, 0, Tid(c_))),
              Asc::kInvalidFieldInParameterList, 8);
  ExpectCheck(OutList(a_, kRegisterMove, 0, Move(0xa1, 0xc1, Tid(a_))),
              Asc::kInvalidFieldInParameterList, 24);
  ExpectCheck(OutList(a_, kRegisterMove, 0, Move(0xa1, 0xc1, Tid(c_), false, 0)),
              Asc::kInvalidFieldInParameterList, 18);
  ExpectCheck(OutList(a_, kRegisterMove, 0, Move(0xa1, 0xc1, DeviceTid(c_.initiator_name))),
              Asc::kInvalidFieldInParameterList, 24, 7);
  EXPECT_EQ(Reservation(), (Resv{true, 0xa1, kWe}));
  EXPECT_EQ(Generation(), 2u);
}

// SPC-4 6.15.5.
TEST_F(PrTest, ReadFullStatus) {
  const PrNexus b2 = Nexus(b_.initiator_name, 7, 2);
  Register(a_, 0xa1);
  Register(b2, 0xb1, kAllTgPt);
  Reserve(a_, 0xa1, kWeRo);
  const auto descriptor = [](uint64_t key, uint8_t flags, uint8_t type, uint16_t port,
                             const Bytes& tid) {
    Bytes d(24, 0);
    StoreBe64(&d[0], key);
    d[12] = flags;
    d[13] = type;
    StoreBe16(&d[18], port);
    StoreBe32(&d[20], static_cast<uint32_t>(tid.size()));
    d.insert(d.end(), tid.begin(), tid.end());
    return d;
  };
  Bytes want = {0, 0, 0, 2, 0, 0, 0, 0};
  const Bytes da = descriptor(0xa1, 0x01, kWeRo, 1, Tid(a_));
  const Bytes db = descriptor(0xb1, 0x02, 0, 2, Tid(b2));
  want.insert(want.end(), da.begin(), da.end());
  want.insert(want.end(), db.begin(), db.end());
  StoreBe32(&want[4], static_cast<uint32_t>(want.size() - 8));
  EXPECT_EQ(In(3), want);
  // Under an all registrants type every registrant is a holder.
  ASSERT_EQ(Out(a_, kRelease, 0xa1, 0, kWeRo).status, Status::kGood);
  Reserve(a_, 0xa1, kEaAr);
  const Bytes d = In(3);
  EXPECT_EQ(d[8 + 12], 0x01);
  EXPECT_EQ(d[8 + 13], kEaAr);
  EXPECT_EQ(d[8 + da.size() + 12], 0x03);
  EXPECT_EQ(d[8 + da.size() + 13], kEaAr);
}

TEST_F(PrTest, InHeadersAndUnknownServiceActions) {
  Register(a_, 0xa1);
  Register(b_, 0xb1);
  EXPECT_EQ(In(0),
            (Bytes{0, 0, 0, 2, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0xa1, 0, 0, 0, 0, 0, 0, 0, 0xb1}));
  EXPECT_EQ(In(1), (Bytes{0, 0, 0, 2, 0, 0, 0, 0}));
  for (uint8_t sa = 4; sa < 0x20; ++sa) {
    const uint8_t cdb[10] = {0x5e, sa, 0, 0, 0, 0, 0, 0x10, 0, 0};
    Bytes out;
    const std::optional<Sense> s = pr_->In(cdb, &out);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->asc, Asc::kInvalidFieldInCdb);
    EXPECT_EQ(s->field_byte, 1);
  }
}

TEST_F(PrTest, ReportCapabilitiesWithoutAptplFile) {
  // SIP_C, ATP_C, no PTPL_C; TMV, ALLOW COMMANDS 100b; the six types.
  EXPECT_EQ(In(2), (Bytes{0, 8, 0x0c, 0xc0, 0xea, 0x01, 0, 0}));
  ExpectCheck(Out(a_, kRegisterIgnore, 0, 0xa1, 0, kAptpl), Asc::kInvalidFieldInParameterList, 20,
              0);
  Register(a_, 0xa1);
  Reserve(a_, 0xa1, kWe);
  ExpectCheck(OutList(a_, kRegisterMove, 0,
                      [&] {
                        Bytes m = Move(0xa1, 0xb1, Tid(b_));
                        m[17] |= kAptpl;
                        return m;
                      }()),
              Asc::kInvalidFieldInParameterList, 17, 0);
}

TEST_F(PrTest, ParameterListLengths) {
  Register(a_, 0xa1);
  uint8_t cdb[10] = {0x5f, kReserve, kWe};
  const Bytes list = Basic(0xa1, 0);
  StoreBe32(&cdb[5], 25);  // more than the data out holds
  ExpectCheck(pr_->Out(a_, cdb, list), Asc::kParameterListLengthError);
  StoreBe32(&cdb[5], 0);
  ExpectCheck(pr_->Out(a_, cdb, list), Asc::kParameterListLengthError);
  StoreBe32(&cdb[5], 20);
  ExpectCheck(pr_->Out(a_, cdb, list), Asc::kParameterListLengthError);
  StoreBe32(&cdb[5], 24);
  EXPECT_EQ(pr_->Out(a_, cdb, list).status, Status::kGood);
}

// SPC-2 7.21, 7.22 and 5.5.1 (libiscsi test_reserve6_*).
TEST_F(PrTest, Spc2ReserveRelease) {
  const uint8_t reserve6[6] = {0x16}, release6[6] = {0x17};
  EXPECT_EQ(pr_->Reserve(a_, reserve6).status, Status::kGood);
  EXPECT_EQ(pr_->Reserve(a_, reserve6).status, Status::kGood);  // again: fine
  EXPECT_EQ(pr_->Reserve(b_, reserve6).status, Status::kReservationConflict);
  EXPECT_TRUE(CanWrite(a_));
  EXPECT_FALSE(CanRead(b_));
  EXPECT_FALSE(Allowed(b_, {0x1a}));  // MODE SENSE(6)
  EXPECT_FALSE(Allowed(b_, {0x00}));  // TEST UNIT READY
  EXPECT_FALSE(Allowed(b_, {0x16}));  // RESERVE(6)
  for (uint8_t op : {0x12, 0xa0, 0x03, 0x17, 0x57}) EXPECT_TRUE(Allowed(b_, {op}));
  // PERSISTENT RESERVE IN and OUT conflict from every nexus, the holder's too.
  EXPECT_FALSE(Allowed(a_, {0x5e}));
  EXPECT_FALSE(Allowed(b_, {0x5f}));
  EXPECT_EQ(Out(a_, kRegisterIgnore, 0, 0xa1).status, Status::kReservationConflict);
  EXPECT_EQ(pr_->Release(b_, release6).status, Status::kGood);  // not the holder: no-op
  EXPECT_FALSE(CanRead(b_));
  EXPECT_EQ(pr_->Release(a_, release6).status, Status::kGood);
  EXPECT_TRUE(CanRead(b_));
  EXPECT_EQ(pr_->Reserve(b_, reserve6).status, Status::kGood);
  EXPECT_FALSE(CanRead(a_));
  const uint8_t reserve10_3rdpty[10] = {0x56, 0x10};
  ExpectCheck(pr_->Reserve(a_, reserve10_3rdpty), Asc::kInvalidFieldInCdb, 1, 4);
}

TEST_F(PrTest, Spc2ReservationEndsWithResetOrNexusLoss) {
  const uint8_t reserve10[10] = {0x56};
  ASSERT_EQ(pr_->Reserve(a_, reserve10).status, Status::kGood);
  pr_->OnNexusLoss(b_.id);
  EXPECT_FALSE(CanRead(b_));
  pr_->OnNexusLoss(a_.id);
  EXPECT_TRUE(CanRead(b_));
  ASSERT_EQ(pr_->Reserve(a_, reserve10).status, Status::kGood);
  pr_->OnLuReset();
  EXPECT_TRUE(CanRead(b_));
  // Persistent reservations survive both.
  Register(a_, 0xa1);
  Reserve(a_, 0xa1, kEa);
  pr_->OnLuReset();
  pr_->OnNexusLoss(a_.id);
  EXPECT_EQ(Reservation(), (Resv{true, 0xa1, kEa}));
}

// A Windows failover cluster: both nodes register, the owner reserves Exclusive Access -
// Registrants Only; the owner goes silent and the challenger preempts it.
TEST_F(PrTest, FailoverClusterArbitration) {
  const PrNexus node_a = Nexus("iqn.1991-05.com.microsoft:node-a.cluster.local", 0x3d);
  const PrNexus node_b = Nexus("iqn.1991-05.com.microsoft:node-b.cluster.local", 0x3e);
  const uint64_t key_a = 0x0000'0001'4d53'4654, key_b = 0x0000'0002'4d53'4654;
  Register(node_a, key_a);
  Register(node_b, key_b);
  Reserve(node_a, key_a, kEaRo);
  EXPECT_TRUE(CanWrite(node_a));
  EXPECT_TRUE(CanWrite(node_b));  // registrants share the disk
  EXPECT_FALSE(CanRead(c_));
  // Node A is lost; B takes over and aborts what A left in flight.
  const OutResult r = Out(node_b, kPreemptAbort, key_b, key_a, kEaRo);
  ASSERT_EQ(r.status, Status::kGood);
  EXPECT_EQ(r.effects.abort_tasks_of, std::vector<uint64_t>{node_a.id});
  EXPECT_TRUE(HasUa(r, node_a, Asc::kRegistrationsPreempted));
  EXPECT_EQ(Reservation(), (Resv{true, key_b, kEaRo}));
  EXPECT_FALSE(CanWrite(node_a));
  EXPECT_FALSE(CanRead(node_a));
  // A's stale key no longer works; it re-registers and joins again as a registrant.
  EXPECT_EQ(Out(node_a, kReserve, key_a, 0, kEaRo).status, Status::kReservationConflict);
  Register(node_a, key_a);
  EXPECT_TRUE(CanWrite(node_a));
  EXPECT_EQ(Keys(), (std::vector<uint64_t>{key_b, key_a}));
}

TEST_F(PrTest, ConcurrentCommands) {
  std::vector<std::thread> threads;
  for (uint8_t t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      const PrNexus n = Nexus("iqn.2026-11.org.test:thread", t);
      for (uint64_t i = 1; i <= 100; ++i) {
        EXPECT_EQ(Out(n, kRegisterIgnore, 0, i).status, Status::kGood);
        CanWrite(n);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(Keys(), (std::vector<uint64_t>{100, 100, 100, 100}));
  EXPECT_EQ(Generation(), 400u);
}

class AptplTest : public PrTest {
 protected:
  AptplTest()
      : dir_(std::filesystem::temp_directory_path() /
             ("ferry_pr_test_" + std::to_string(getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name())),
        file_(dir_ / "lun0.pr.json") {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Reset(file_);
  }
  ~AptplTest() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& text) { std::ofstream(file_) << text; }

  const std::filesystem::path dir_;
  const std::filesystem::path file_;
};

TEST_F(AptplTest, StateSurvivesARestart) {
  EXPECT_EQ(In(2)[2], 0x0d);  // PTPL_C
  EXPECT_EQ(In(2)[3], 0xc0);  // PTPL_A 0
  Register(a_, 0xa1, kAptpl);
  Register(b_, 0xb1, kAptpl | kAllTgPt);
  Reserve(a_, 0xa1, kWeRo);  // written too: APTPL is active
  EXPECT_TRUE(std::filesystem::exists(file_));
  EXPECT_EQ(In(2)[3], 0xc1);
  const Bytes full_status = In(3);
  Reset(file_);
  EXPECT_EQ(pr_->load_error(), "");
  EXPECT_TRUE(pr_->aptpl_active());
  EXPECT_EQ(In(2)[3], 0xc1);
  EXPECT_EQ(Reservation(), (Resv{true, 0xa1, kWeRo}));
  EXPECT_EQ(Keys(), (std::vector<uint64_t>{0xa1, 0xb1}));
  EXPECT_EQ(Generation(), 0u);  // SPC-4 6.15.2: zero after a power on, APTPL or not
  Bytes want = full_status;
  StoreBe32(want.data(), 0);
  EXPECT_EQ(In(3), want);
  EXPECT_FALSE(CanWrite(c_));
  EXPECT_TRUE(CanWrite(b_));
  // The restored registrations work: b preempts a.
  ASSERT_EQ(Out(b_, kPreempt, 0xb1, 0xa1, kWeRo).status, Status::kGood);
  Reset(file_);
  EXPECT_EQ(Reservation(), (Resv{true, 0xb1, kWeRo}));
}

TEST_F(AptplTest, AptplZeroRemovesTheFile) {
  Register(a_, 0xa1, kAptpl);
  ASSERT_TRUE(std::filesystem::exists(file_));
  Register(b_, 0xb1);  // the last valid APTPL bit is now 0
  EXPECT_FALSE(std::filesystem::exists(file_));
  EXPECT_FALSE(pr_->aptpl_active());
  Reset(file_);
  EXPECT_TRUE(Keys().empty());
  EXPECT_EQ(pr_->load_error(), "");
}

TEST_F(AptplTest, CorruptFilesAreReportedAndIgnored) {
  const std::string valid_reg =
      R"({"initiator": "iqn.x:a", "isid": "23d000000001", "port": 1, "all_tg_pt": false,)"
      R"( "key": "00000000000000a1", "holder": false})";
  const std::string head = R"({"format": "ferry-pr-aptpl", "version": 1, "generation": 3, )";
  const std::string bad[] = {
      "",
      "not json",
      "[1, 2]",
      R"({"format": "other", "version": 1})",
      head + R"("reservation": null, "registrations": [{"initiator": 7}]})",
      head + R"("reservation": 2, "registrations": [])" + valid_reg + "]}",
      head + R"("reservation": 1, "registrations": [])" + valid_reg + "]}",  // no holder
      head + R"("reservation": null, "registrations": [)" + valid_reg + ", " + valid_reg + "]}",
      head + R"("reservation": null, "registrations": [{"initiator": "iqn.x:a", "isid": "z",)"
             R"( "port": 1, "all_tg_pt": false, "key": "1", "holder": false}]})",
  };
  for (const std::string& text : bad) {
    Write(text);
    Reset(file_);
    EXPECT_NE(pr_->load_error().find(file_.string()), std::string::npos) << text;
    EXPECT_TRUE(Keys().empty());
    EXPECT_FALSE(pr_->aptpl_active());
  }
  // The same registration alone is a valid file.
  Write(head + R"("reservation": null, "registrations": [)" + valid_reg + "]}");
  Reset(file_);
  EXPECT_EQ(pr_->load_error(), "");
  EXPECT_EQ(Keys(), std::vector<uint64_t>{0xa1});
}

TEST_F(AptplTest, AFailedWriteChangesNothing) {
  Write("a regular file where a directory should be");
  Reset(file_ / "lun0.pr.json");
  const OutResult r = Out(a_, kRegisterIgnore, 0, 0xa1, 0, kAptpl);
  ExpectCheck(r, Asc::kInsufficientRegistrationResources);
  EXPECT_TRUE(Keys().empty());
  EXPECT_EQ(Generation(), 0u);
  EXPECT_FALSE(pr_->aptpl_active());
  EXPECT_EQ(Out(a_, kRegisterIgnore, 0, 0xa1).status, Status::kGood);  // APTPL 0 needs no file
}

}  // namespace
}  // namespace ferry::scsi
