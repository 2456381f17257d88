// Asymmetric logical unit access: the REPORT / SET TARGET PORT GROUPS codecs, the commands
// each access state lets through, and a logical unit reached through two target port
// groups (REPORT TARGET PORT GROUPS, SET TARGET PORT GROUPS, the state gate, the unit
// attention, VPD 83h per path).
#include "scsi/alua.h"

#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

#include "base/endian.h"
#include "scsi/logical_unit_test.h"
#include "scsi/nexus.h"
#include "scsi/pr_params.h"

namespace ferry::scsi {
namespace {

std::vector<uint8_t> StpgList(std::initializer_list<std::pair<uint16_t, uint8_t>> d) {
  std::vector<uint8_t> p(4, 0);
  for (auto [group, state] : d) {
    const uint8_t desc[4] = {state, 0, static_cast<uint8_t>(group >> 8),
                             static_cast<uint8_t>(group)};
    p.insert(p.end(), desc, desc + 4);
  }
  return p;
}

TEST(AluaCodec, StateNames) {
  for (AluaState s : {AluaState::kActiveOptimized, AluaState::kActiveNonOptimized,
                      AluaState::kStandby, AluaState::kUnavailable}) {
    EXPECT_EQ(ParseAluaState(AluaStateName(s)), s);
  }
  EXPECT_EQ(ParseAluaState("ao"), AluaState::kActiveOptimized);
  EXPECT_EQ(ParseAluaState("ano"), AluaState::kActiveNonOptimized);
  EXPECT_FALSE(ParseAluaState("offline"));
  EXPECT_FALSE(ParseAluaState(""));
}

TEST(AluaCodec, ReportLengthOnlyFormat) {
  const std::vector<TargetPortGroup> g = {
      {.id = 1, .state = AluaState::kActiveOptimized, .preferred = true, .relative_ports = {1}},
      {.id = 2,
       .state = AluaState::kStandby,
       .status = AluaStatus::kSetTargetPortGroups,
       .relative_ports = {2, 7}}};
  const std::vector<uint8_t> d = EncodeTargetPortGroups(g, false);
  ASSERT_EQ(d.size(), 4u + 12 + 16);
  EXPECT_EQ(LoadBe32(d.data()), d.size() - 4);
  EXPECT_EQ(d[4], 0x80);  // PREF, active/optimized
  EXPECT_EQ(d[5], 0x0f);  // U_SUP S_SUP AN_SUP AO_SUP
  EXPECT_EQ(LoadBe16(&d[6]), 1);
  EXPECT_EQ(d[11], 1);  // port count
  EXPECT_EQ(LoadBe16(&d[14]), 1);
  EXPECT_EQ(d[16], 0x02);  // standby, not preferred
  EXPECT_EQ(LoadBe16(&d[18]), 2);
  EXPECT_EQ(d[21], 0x01);  // status: altered by SET TARGET PORT GROUPS
  EXPECT_EQ(d[23], 2);
  EXPECT_EQ(LoadBe16(&d[26]), 2);
  EXPECT_EQ(LoadBe16(&d[30]), 7);
}

TEST(AluaCodec, ReportExtendedFormat) {
  const std::vector<TargetPortGroup> g = {{.id = 3, .relative_ports = {3}}};
  const std::vector<uint8_t> d = EncodeTargetPortGroups(g, true);
  ASSERT_EQ(d.size(), 8u + 12);
  EXPECT_EQ(LoadBe32(d.data()), d.size() - 4);
  EXPECT_EQ(d[4], 0x10);  // FORMAT TYPE 001b
  EXPECT_EQ(d[5], 0);     // implicit transition time
  EXPECT_EQ(LoadBe16(&d[10]), 3);
}

TEST(AluaCodec, DecodeSet) {
  const uint16_t known[] = {1, 2};
  auto r = DecodeSetTargetPortGroups(StpgList({{2, 0x02}, {1, 0x01}}), known);
  ASSERT_TRUE(std::holds_alternative<std::vector<TpgChange>>(r));
  const auto& c = std::get<std::vector<TpgChange>>(r);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].group, 2);
  EXPECT_EQ(c[0].state, AluaState::kStandby);
  EXPECT_EQ(c[1].state, AluaState::kActiveNonOptimized);
  // Empty: nothing to change.
  auto empty = DecodeSetTargetPortGroups({}, known);
  EXPECT_TRUE(std::get<std::vector<TpgChange>>(empty).empty());
}

TEST(AluaCodec, DecodeSetErrors) {
  const uint16_t known[] = {1, 2};
  auto sense = [&](std::vector<uint8_t> p) {
    auto r = DecodeSetTargetPortGroups(p, known);
    EXPECT_TRUE(std::holds_alternative<Sense>(r));
    return std::holds_alternative<Sense>(r) ? std::get<Sense>(r) : Sense{};
  };
  // Not the header plus whole descriptors.
  EXPECT_EQ(sense({0, 0}).asc, Asc::kParameterListLengthError);
  std::vector<uint8_t> ragged = StpgList({{1, 0}});
  ragged.push_back(0);
  EXPECT_EQ(sense(ragged).asc, Asc::kParameterListLengthError);
  // States Ferry cannot enter: logical block dependent, offline, transitioning.
  for (uint8_t st : {0x4, 0xe, 0xf, 0x7}) {
    Sense s = sense(StpgList({{1, 0}, {2, st}}));
    EXPECT_EQ(s.asc, Asc::kInvalidFieldInParameterList);
    EXPECT_FALSE(s.in_cdb);
    EXPECT_EQ(s.field_byte, 8);
    EXPECT_EQ(s.field_bit, 3);
  }
  // Unknown group, a group twice.
  Sense unknown = sense(StpgList({{9, 0}}));
  EXPECT_EQ(unknown.asc, Asc::kInvalidFieldInParameterList);
  EXPECT_EQ(unknown.field_byte, 6);
  Sense twice = sense(StpgList({{1, 0}, {1, 1}}));
  EXPECT_EQ(twice.field_byte, 10);
}

TEST(AluaCodec, CommandsPerState) {
  const uint8_t read10[16] = {kRead10};
  const uint8_t tur[16] = {kTestUnitReady};
  const uint8_t inquiry[16] = {kInquiry};
  const uint8_t rtpg[16] = {kMaintenanceIn, kSaTargetPortGroups};
  const uint8_t stpg[16] = {kMaintenanceOut, kSaTargetPortGroups};
  const uint8_t rsoc[16] = {kMaintenanceIn, kSaReportSupportedOpcodes};
  const uint8_t prin[16] = {kPersistentReserveIn};
  const uint8_t modesense[16] = {kModeSense10};
  const uint8_t rsense[16] = {kRequestSense};
  for (AluaState active : {AluaState::kActiveOptimized, AluaState::kActiveNonOptimized}) {
    for (const uint8_t* c : {read10, tur, rsoc, stpg}) EXPECT_FALSE(AluaRefusal(active, c));
  }
  for (const uint8_t* c : {inquiry, rtpg, stpg, prin, modesense, rsense}) {
    EXPECT_FALSE(AluaRefusal(AluaState::kStandby, c));
  }
  for (const uint8_t* c : {read10, tur, rsoc}) {
    auto s = AluaRefusal(AluaState::kStandby, c);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->key, SenseKey::kNotReady);
    EXPECT_EQ(s->asc, Asc::kLogicalUnitNotAccessibleTargetPortInStandbyState);
  }
  for (const uint8_t* c : {inquiry, rtpg, stpg, rsense}) {
    EXPECT_FALSE(AluaRefusal(AluaState::kUnavailable, c));
  }
  for (const uint8_t* c : {read10, tur, prin, modesense}) {
    auto s = AluaRefusal(AluaState::kUnavailable, c);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->asc, Asc::kLogicalUnitNotAccessibleTargetPortInUnavailableState);
  }
}

TEST(AluaGroupsTest, PortsAndStates) {
  AluaGroups a;
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.StateOf(5), AluaState::kActiveOptimized);  // unconfigured path
  a.AddPort(2, 2, AluaState::kStandby, false);
  a.AddPort(1, 1, AluaState::kActiveOptimized, true);
  a.AddPort(2, 4, AluaState::kActiveOptimized, true);  // joins group 2, keeps its state
  const auto s = a.Snapshot();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].id, 1);
  EXPECT_EQ(s[1].relative_ports, (std::vector<uint16_t>{2, 4}));
  EXPECT_EQ(s[1].state, AluaState::kStandby);
  EXPECT_FALSE(s[1].preferred);
  const TpgChange changes[] = {{2, AluaState::kActiveNonOptimized},
                               {1, AluaState::kActiveOptimized}};
  EXPECT_EQ(a.Apply(changes), 1u);  // group 1 was already active/optimized
  EXPECT_EQ(a.StateOf(2), AluaState::kActiveNonOptimized);
  EXPECT_EQ(a.Snapshot()[1].status, AluaStatus::kSetTargetPortGroups);
}

// An LU behind two target port groups: 1 (active/optimized) and 2 (standby).
class AluaLuTest : public LuTest {
 protected:
  void SetUp() override {
    LuTest::SetUp();
    lu_->alua().AddPort(1, 1, AluaState::kActiveOptimized, true);
    lu_->alua().AddPort(2, 2, AluaState::kStandby, false);
  }
  // Nexus `i` through target port group `group`.
  Task Via(int i, uint16_t group, std::array<uint8_t, 16> cdb, std::span<const uint8_t> out = {}) {
    Task t = Make(cdb, out);
    auto v = std::make_shared<NexusView>();
    v->initiator_name = "iqn.test:host-" + std::to_string(i);
    v->isid = {0x80, 0, 0, 0, 0, static_cast<uint8_t>(i)};
    v->target_name = "iqn.test:target";
    v->relative_target_port = group;
    v->target_port_group = group;
    t.nexus = NexusIdFor(v->initiator_name, v->isid);
    t.view = v;
    Run(t);
    return t;
  }
  static std::array<uint8_t, 16> Rtpg(uint8_t format, uint32_t alloc) {
    std::array<uint8_t, 16> c{kMaintenanceIn, static_cast<uint8_t>(format << 5 | 0x0a)};
    StoreBe32(&c[6], alloc);
    return c;
  }
  static std::array<uint8_t, 16> Stpg(uint32_t len) {
    std::array<uint8_t, 16> c{kMaintenanceOut, 0x0a};
    StoreBe32(&c[6], len);
    return c;
  }
};

TEST_F(AluaLuTest, InquiryReportsExplicitAlua) {
  Task t = Via(1, 1, {kInquiry, 0, 0, 0, 96});
  ASSERT_EQ(t.status, Status::kGood);
  EXPECT_EQ((in_[5] >> 4) & 0x03, 0x02);  // TPGS 10b
}

TEST_F(AluaLuTest, ReportTargetPortGroups) {
  Task t = Via(1, 1, Rtpg(0, 4096));
  ASSERT_EQ(t.status, Status::kGood);
  ASSERT_EQ(t.data_in_bytes, 4u + 12 + 12);
  EXPECT_EQ(in_[4], 0x80);   // group 1: PREF, active/optimized
  EXPECT_EQ(in_[16], 0x02);  // group 2: standby
  // Allocation length cuts the data; the full size is still what it would be.
  Task cut = Via(1, 1, Rtpg(0, 4));
  EXPECT_EQ(cut.data_in_bytes, 4u);
  EXPECT_EQ(LoadBe32(in_.data()), 24u);
  Task ext = Via(1, 1, Rtpg(1, 4096));
  EXPECT_EQ(ext.data_in_bytes, 8u + 24);
  EXPECT_EQ(in_[4], 0x10);
  Task bad = Via(1, 1, Rtpg(2, 4096));
  ExpectSense(bad, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
  // Allowed through the standby group too.
  EXPECT_EQ(Via(2, 2, Rtpg(0, 4096)).status, Status::kGood);
}

TEST_F(AluaLuTest, StandbyAndUnavailableRefuseIo) {
  Task read = Via(2, 2, Cdb16(kRead16, 0, 0, 1));
  ExpectSense(read, SenseKey::kNotReady, Asc::kLogicalUnitNotAccessibleTargetPortInStandbyState);
  Task tur = Via(2, 2, {kTestUnitReady});
  ExpectSense(tur, SenseKey::kNotReady, Asc::kLogicalUnitNotAccessibleTargetPortInStandbyState);
  EXPECT_EQ(Via(1, 1, Cdb16(kRead16, 0, 0, 1)).status, Status::kGood);
  // Move group 2 to unavailable through the optimized path.
  const std::vector<uint8_t> p = StpgList({{2, 0x03}});
  Task set = Via(1, 1, Stpg(static_cast<uint32_t>(p.size())), p);
  ASSERT_EQ(set.status, Status::kGood);
  // The other nexus learns of it first, then meets the new state.
  Task ua = Via(2, 2, {kTestUnitReady});
  ExpectSense(ua, SenseKey::kUnitAttention, Asc::kAsymmetricAccessStateChanged);
  std::array<uint8_t, 16> prin{kPersistentReserveIn, 0};
  StoreBe16(&prin[7], 64);
  ExpectSense(Via(2, 2, prin), SenseKey::kNotReady,
              Asc::kLogicalUnitNotAccessibleTargetPortInUnavailableState);
  // The nexus that set the state gets no unit attention.
  EXPECT_EQ(Via(1, 1, {kTestUnitReady}).status, Status::kGood);
}

TEST_F(AluaLuTest, SetTargetPortGroupsFailover) {
  ASSERT_EQ(Via(1, 1, {kTestUnitReady}).status, Status::kGood);  // nexus 1 is known
  // Fail over: 1 becomes standby, 2 active/optimized, in one command through path 2.
  const std::vector<uint8_t> p = StpgList({{1, 0x02}, {2, 0x00}});
  Task set = Via(2, 2, Stpg(static_cast<uint32_t>(p.size())), p);
  ASSERT_EQ(set.status, Status::kGood);
  EXPECT_EQ(Via(2, 2, Cdb16(kRead16, 0, 0, 1)).status, Status::kGood);
  ExpectSense(Via(1, 1, {kTestUnitReady}), SenseKey::kUnitAttention,
              Asc::kAsymmetricAccessStateChanged);
  ExpectSense(Via(1, 1, Cdb16(kRead16, 0, 0, 1)), SenseKey::kNotReady,
              Asc::kLogicalUnitNotAccessibleTargetPortInStandbyState);
  Via(1, 1, Rtpg(0, 4096));
  EXPECT_EQ(in_[4], 0x82);  // group 1: PREF, standby
  EXPECT_EQ(in_[9], 0x01);  // altered by SET TARGET PORT GROUPS
}

TEST_F(AluaLuTest, SetTargetPortGroupsErrorsChangeNothing) {
  const std::vector<uint8_t> p = StpgList({{1, 0x02}, {7, 0x00}});
  Task set = Via(1, 1, Stpg(static_cast<uint32_t>(p.size())), p);
  ExpectSense(set, SenseKey::kIllegalRequest, Asc::kInvalidFieldInParameterList);
  EXPECT_EQ(set.sense.field_byte, 10);
  EXPECT_EQ(lu_->alua().StateOf(1), AluaState::kActiveOptimized);
  // A parameter list length longer than the data sent.
  Task short_data = Via(1, 1, Stpg(64), p);
  ExpectSense(short_data, SenseKey::kIllegalRequest, Asc::kParameterListLengthError);
  // Length 0: nothing to do.
  EXPECT_EQ(Via(1, 1, Stpg(0)).status, Status::kGood);
}

TEST_F(AluaLuTest, DeviceIdentificationNamesThePath) {
  auto port_of = [&](int i, uint16_t group) {
    Task t = Via(i, group, {kInquiry, 1, 0x83, 0x01, 0});
    EXPECT_EQ(t.status, Status::kGood);
    std::vector<uint8_t> naa;
    uint16_t rel = 0, tpg = 0;
    std::string name;
    for (size_t off = 4; off + 4 <= t.data_in_bytes; off += 4 + in_[off + 3]) {
      const uint8_t type = in_[off + 1] & 0x0f, assoc = (in_[off + 1] >> 4) & 3;
      const uint8_t* v = &in_[off + 4];
      if (type == 3 && assoc == 0) naa.assign(v, v + in_[off + 3]);
      if (type == 4 && assoc == 1) rel = LoadBe16(v + 2);
      if (type == 5 && assoc == 1) tpg = LoadBe16(v + 2);
      if (type == 8 && assoc == 1) {
        name.assign(reinterpret_cast<const char*>(v));
        EXPECT_EQ(in_[off + 3] % 4, 0);
      }
    }
    return std::make_tuple(naa, rel, tpg, name);
  };
  auto [naa1, rel1, tpg1, name1] = port_of(1, 1);
  auto [naa2, rel2, tpg2, name2] = port_of(2, 2);
  EXPECT_EQ(naa1, naa2);  // the same LU on every path
  EXPECT_FALSE(naa1.empty());
  EXPECT_EQ(rel1, 1);
  EXPECT_EQ(tpg1, 1);
  EXPECT_EQ(rel2, 2);
  EXPECT_EQ(tpg2, 2);
  EXPECT_EQ(name1, "iqn.test:target,t,0x0001");
  EXPECT_EQ(name2, "iqn.test:target,t,0x0002");
}

TEST_F(AluaLuTest, SetTargetPortGroupsConflictsWithAReservation) {
  // SPC-4 table 65: MAINTENANCE OUT conflicts with a Write Exclusive holder on another nexus.
  std::vector<uint8_t> reg(24, 0);
  StoreBe64(&reg[8], 0x1234);
  std::array<uint8_t, 16> c{kPersistentReserveOut, 0x00};
  StoreBe32(&c[5], 24);
  ASSERT_EQ(Via(1, 1, c, reg).status, Status::kGood);
  std::vector<uint8_t> res(24, 0);
  StoreBe64(&res[0], 0x1234);
  std::array<uint8_t, 16> r{kPersistentReserveOut, 0x01, 0x01};
  StoreBe32(&r[5], 24);
  ASSERT_EQ(Via(1, 1, r, res).status, Status::kGood);
  const std::vector<uint8_t> p = StpgList({{1, 0x01}});
  EXPECT_EQ(Via(3, 1, Stpg(static_cast<uint32_t>(p.size())), p).status,
            Status::kReservationConflict);
}

}  // namespace
}  // namespace ferry::scsi
