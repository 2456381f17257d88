// Issue 5: asymmetric logical unit access over two paths, through a real initiator
// (libiscsi, the tests/tpc client). run.sh starts ferryd with ferryd-alua.json: target
// iqn.2026-11.org.ferry:alua behind portal group 1 (FERRY_PORTAL, active/optimized,
// preferred) and portal group 2 (FERRY_PORTAL2, active/non-optimized), LUN 0 on RAM and
// LUN 1 on a file. One host logs in through both portals (two I_T nexuses: same initiator
// name, two ISIDs), as dm-multipath or VMware's NMP would.
//
// REPORT / SET TARGET PORT GROUPS and VPD 83h are encoded and parsed here from SPC-4 6.37,
// 6.45 and 7.8.6, not with Ferry's codecs (see tpc_client.h).
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../tpc/tpc_client.h"

namespace ferry::alua_test {
namespace {

using tpc_test::Bytes;
using tpc_test::Describe;
using tpc_test::Env;
using tpc_test::Get16;
using tpc_test::Get32;
using tpc_test::IsCheck;
using tpc_test::IsGood;
using tpc_test::Put32;
using tpc_test::Reply;
using tpc_test::SameBytes;
using tpc_test::Session;

constexpr char kHost[] = "iqn.1994-05.com.example:multipath-host";
constexpr uint16_t kIsidPath1 = 0x0101;
constexpr uint16_t kIsidPath2 = 0x0102;
constexpr int kLuns[] = {0, 1};

constexpr uint8_t kNotReady = 0x02;
constexpr uint16_t kStandbyCode = 0x040b;      // LU NOT ACCESSIBLE, TARGET PORT IN STANDBY
constexpr uint16_t kUnavailableCode = 0x040c;  // ... IN UNAVAILABLE STATE
constexpr uint16_t kStateChanged = 0x2a06;     // ASYMMETRIC ACCESS STATE CHANGED
constexpr uint8_t kAo = 0x0, kAno = 0x1, kStandby = 0x2, kUnavailable = 0x3;

struct Paths {
  std::unique_ptr<Session> p1, p2;
};

// Both paths, logged in once for the binary.
Paths& Both() {
  static Paths paths;
  for (auto [s, portal, isid] : {std::tuple{&paths.p1, "FERRY_PORTAL", kIsidPath1},
                                 std::tuple{&paths.p2, "FERRY_PORTAL2", kIsidPath2}}) {
    if (*s != nullptr && !(*s)->broken()) continue;
    std::string err;
    *s = Session::ConnectWithIsid(Env(portal), Env("FERRY_TARGET"), kHost, isid, {0, 1}, &err);
    if (*s == nullptr) ADD_FAILURE() << "login through " << Env(portal) << ": " << err;
  }
  return paths;
}

// SPC-4 6.37 REPORT TARGET PORT GROUPS: A3h, SA 0Ah, PARAMETER DATA FORMAT in byte 1 bits
// 7-5, ALLOCATION LENGTH at byte 6.
Reply Rtpg(Session& s, int lun, uint32_t alloc, bool extended = false) {
  std::array<uint8_t, 12> c{0xa3, static_cast<uint8_t>((extended ? 0x20 : 0) | 0x0a)};
  Put32(&c[6], alloc);
  return s.In(lun, c, alloc);
}

struct Group {
  uint16_t id = 0;
  uint8_t state = 0xff;
  bool preferred = false;
  uint8_t status = 0;
  std::vector<uint16_t> ports;
};

// Parses the length-only format: RETURN DATA LENGTH, then 8-byte group descriptors each
// followed by TARGET PORT COUNT 4-byte port descriptors.
std::vector<Group> Groups(Session& s, int lun) {
  const Reply r = Rtpg(s, lun, 1024);
  EXPECT_TRUE(IsGood(r)) << "REPORT TARGET PORT GROUPS on LUN " << lun;
  std::vector<Group> out;
  if (!r.good() || r.data.size() < 4) return out;
  const size_t end = 4 + size_t{Get32(&r.data[0])};
  EXPECT_EQ(end, r.data.size()) << "RETURN DATA LENGTH disagrees with the data returned";
  for (size_t off = 4; off + 8 <= std::min(end, r.data.size());) {
    Group g{.id = Get16(&r.data[off + 2]),
            .state = static_cast<uint8_t>(r.data[off] & 0x0f),
            .preferred = (r.data[off] & 0x80) != 0,
            .status = r.data[off + 5]};
    EXPECT_EQ(r.data[off + 1] & 0x0f, 0x0f) << "AO, AN, S and U supported";
    const size_t count = r.data[off + 7];
    off += 8;
    for (size_t i = 0; i < count && off + 4 <= r.data.size(); ++i, off += 4) {
      g.ports.push_back(Get16(&r.data[off + 2]));
    }
    out.push_back(g);
  }
  return out;
}

const Group* FindGroup(const std::vector<Group>& gs, uint16_t id) {
  for (const Group& g : gs) {
    if (g.id == id) return &g;
  }
  ADD_FAILURE() << "no target port group " << id << " reported";
  return nullptr;
}

// SPC-4 6.45 SET TARGET PORT GROUPS: A4h, SA 0Ah, PARAMETER LIST LENGTH at byte 6; the list
// is 4 reserved bytes, then per group: state (byte 0 bits 3-0), reserved, group number.
Reply Stpg(Session& s, int lun, std::initializer_list<std::pair<uint16_t, uint8_t>> changes) {
  Bytes p(4, 0);
  for (auto [group, state] : changes) {
    p.insert(p.end(), {state, 0, static_cast<uint8_t>(group >> 8), static_cast<uint8_t>(group)});
  }
  std::array<uint8_t, 12> c{0xa4, 0x0a};
  Put32(&c[6], static_cast<uint32_t>(p.size()));
  return s.Out(lun, c, p);
}

struct PortIds {
  Bytes naa;
  uint16_t relative_port = 0;
  uint16_t group = 0;
  std::string port_name;
};

// VPD 83h: the NAA of the LU, and the relative target port, target port group and SCSI
// name of the target port (association 01b).
PortIds Identify(Session& s, int lun) {
  const std::array<uint8_t, 6> c{0x12, 0x01, 0x83, 0x01, 0x00, 0};
  const Reply r = s.In(lun, c, 256);
  EXPECT_TRUE(IsGood(r)) << "INQUIRY VPD 83h";
  PortIds ids;
  for (size_t off = 4; off + 4 <= r.data.size(); off += 4 + r.data[off + 3]) {
    const uint8_t type = r.data[off + 1] & 0x0f, assoc = (r.data[off + 1] >> 4) & 0x03;
    const size_t len = std::min<size_t>(r.data[off + 3], r.data.size() - off - 4);
    const uint8_t* v = &r.data[off + 4];
    if (assoc == 0 && type == 3) ids.naa.assign(v, v + len);
    if (assoc == 1 && type == 4 && len >= 4) ids.relative_port = Get16(v + 2);
    if (assoc == 1 && type == 5 && len >= 4) ids.group = Get16(v + 2);
    if (assoc == 1 && type == 8)
      ids.port_name.assign(reinterpret_cast<const char*>(v),
                           strnlen(reinterpret_cast<const char*>(v), len));
  }
  return ids;
}

Reply Tur(Session& s, int lun) {
  const std::array<uint8_t, 6> c{};
  return s.Run(lun, c, SCSI_XFER_NONE, 0);
}

Reply ReadOne(Session& s, int lun) {
  std::array<uint8_t, 10> c{0x28};
  c[8] = 1;
  return s.In(lun, c, 4096);
}

Reply PrInReadKeys(Session& s, int lun) {
  std::array<uint8_t, 10> c{0x5e, 0x00};
  c[8] = 64;
  return s.In(lun, c, 64);
}

// Puts both groups back to the configured states (through path 1, which any state allows
// to carry SET TARGET PORT GROUPS) and drains the unit attentions that leaves.
void Restore(Paths& p) {
  for (int lun : kLuns) EXPECT_TRUE(IsGood(Stpg(*p.p1, lun, {{1, kAo}, {2, kAno}})));
  for (int lun : kLuns) {
    p.p1->ClearUnitAttentions(lun);
    p.p2->ClearUnitAttentions(lun);
  }
}

TEST(Alua, SameLuOnBothPathsThroughTwoTargetPorts) {
  Paths& p = Both();
  ASSERT_NE(p.p1, nullptr);
  ASSERT_NE(p.p2, nullptr);
  for (int lun : kLuns) {
    const std::array<uint8_t, 6> inq{0x12, 0, 0, 0, 96, 0};
    for (Session* s : {p.p1.get(), p.p2.get()}) {
      const Reply r = s->In(lun, inq, 96);
      ASSERT_TRUE(IsGood(r));
      ASSERT_GE(r.data.size(), 6u);
      EXPECT_EQ((r.data[5] >> 4) & 0x03, 0x02) << "TPGS: explicit ALUA";
    }
    const PortIds a = Identify(*p.p1, lun), b = Identify(*p.p2, lun);
    EXPECT_FALSE(a.naa.empty());
    EXPECT_TRUE(SameBytes(a.naa, b.naa)) << "LUN " << lun << ": one LU, one identity";
    EXPECT_EQ(a.relative_port, 1);
    EXPECT_EQ(a.group, 1);
    EXPECT_EQ(b.relative_port, 2);
    EXPECT_EQ(b.group, 2);
    EXPECT_EQ(a.port_name, Env("FERRY_TARGET") + ",t,0x0001");
    EXPECT_EQ(b.port_name, Env("FERRY_TARGET") + ",t,0x0002");
  }
  // The two LUs are different LUs.
  EXPECT_FALSE(SameBytes(Identify(*p.p1, 0).naa, Identify(*p.p1, 1).naa));
}

TEST(Alua, ReportTargetPortGroupsAsConfigured) {
  Paths& p = Both();
  ASSERT_NE(p.p1, nullptr);
  ASSERT_NE(p.p2, nullptr);
  for (int lun : kLuns) {
    for (Session* s : {p.p1.get(), p.p2.get()}) {
      const std::vector<Group> gs = Groups(*s, lun);
      ASSERT_EQ(gs.size(), 2u);
      const Group* g1 = FindGroup(gs, 1);
      const Group* g2 = FindGroup(gs, 2);
      ASSERT_TRUE(g1 && g2);
      EXPECT_EQ(g1->state, kAo);
      EXPECT_TRUE(g1->preferred);
      EXPECT_EQ(g1->ports, std::vector<uint16_t>{1});
      EXPECT_EQ(g2->state, kAno);
      EXPECT_FALSE(g2->preferred);
      EXPECT_EQ(g2->ports, std::vector<uint16_t>{2});
    }
  }
  // Allocation lengths that cut the data: the header still gives the full length.
  const Reply cut = Rtpg(*p.p1, 0, 10);
  ASSERT_TRUE(IsGood(cut));
  EXPECT_EQ(cut.data.size(), 10u);
  EXPECT_EQ(Get32(&cut.data[0]), 24u);
  const Reply ext = Rtpg(*p.p1, 0, 1024, true);
  ASSERT_TRUE(IsGood(ext));
  ASSERT_GE(ext.data.size(), 8u);
  EXPECT_EQ(ext.data[4] & 0x70, 0x10) << "extended header FORMAT TYPE";
  EXPECT_EQ(Get32(&ext.data[0]) + 4, ext.data.size());
}

TEST(Alua, ExplicitFailoverAndBack) {
  Paths& p = Both();
  ASSERT_NE(p.p1, nullptr);
  ASSERT_NE(p.p2, nullptr);
  for (int lun : kLuns) {
    ASSERT_TRUE(p.p1->ClearUnitAttentions(lun));
    ASSERT_TRUE(p.p2->ClearUnitAttentions(lun));
  }
  const uint64_t seed = tpc_test::NewSeed();
  p.p1->Fill(1, 0, 8, seed);
  // The host fails over through path 2: group 1 standby, group 2 active/optimized.
  ASSERT_TRUE(IsGood(Stpg(*p.p2, 1, {{1, kStandby}, {2, kAo}})));
  EXPECT_TRUE(IsCheck(Tur(*p.p1, 1), tpc_test::kUnitAttention, {kStateChanged}));
  EXPECT_TRUE(IsCheck(Tur(*p.p1, 1), kNotReady, {kStandbyCode}));
  EXPECT_TRUE(IsCheck(ReadOne(*p.p1, 1), kNotReady, {kStandbyCode}));
  EXPECT_TRUE(IsGood(PrInReadKeys(*p.p1, 1))) << "standby allows PERSISTENT RESERVE IN";
  EXPECT_TRUE(IsGood(Rtpg(*p.p1, 1, 1024)));
  // The sender saw no unit attention; its path now carries the I/O and sees path 1's data.
  EXPECT_TRUE(IsGood(Tur(*p.p2, 1)));
  EXPECT_TRUE(SameBytes(p.p2->Read(1, 0, 8), Session::Expected(seed, 0, 8, 512)));
  // LUN 0 keeps its own states: SET TARGET PORT GROUPS on LUN 1 left it alone.
  EXPECT_TRUE(IsGood(Tur(*p.p1, 0)));
  {
    const std::vector<Group> gs = Groups(*p.p2, 1);
    const Group* g1 = FindGroup(gs, 1);
    ASSERT_NE(g1, nullptr);
    EXPECT_EQ(g1->state, kStandby);
    EXPECT_EQ(g1->status, 0x01) << "STATUS CODE: altered by SET TARGET PORT GROUPS";
  }
  // Unavailable refuses even the reservation commands.
  ASSERT_TRUE(IsGood(Stpg(*p.p2, 1, {{1, kUnavailable}})));
  EXPECT_TRUE(IsCheck(Tur(*p.p1, 1), tpc_test::kUnitAttention, {kStateChanged}));
  EXPECT_TRUE(IsCheck(PrInReadKeys(*p.p1, 1), kNotReady, {kUnavailableCode}));
  // Back, through the unavailable path itself.
  Restore(p);
  EXPECT_TRUE(IsGood(ReadOne(*p.p1, 1)));
  EXPECT_TRUE(SameBytes(p.p1->Read(1, 0, 8), Session::Expected(seed, 0, 8, 512)));
  const std::vector<Group> gs = Groups(*p.p1, 1);
  const Group* g2 = FindGroup(gs, 2);
  ASSERT_NE(g2, nullptr);
  EXPECT_EQ(g2->state, kAno);
}

TEST(Alua, SetTargetPortGroupsRejectsWhatItCannotDo) {
  Paths& p = Both();
  ASSERT_NE(p.p1, nullptr);
  constexpr uint8_t kIllegal = tpc_test::kIllegalRequest;
  // Offline and transitioning are not states an initiator may ask for; group 9 does not
  // exist; nothing changes when one descriptor is bad.
  EXPECT_TRUE(IsCheck(Stpg(*p.p1, 0, {{2, kStandby}, {1, 0x0e}}), kIllegal, {0x2600}));
  EXPECT_TRUE(IsCheck(Stpg(*p.p1, 0, {{1, 0x0f}}), kIllegal, {0x2600}));
  EXPECT_TRUE(IsCheck(Stpg(*p.p1, 0, {{9, kAo}}), kIllegal, {0x2600}));
  const std::vector<Group> gs = Groups(*p.p1, 0);
  const Group* g2 = FindGroup(gs, 2);
  ASSERT_NE(g2, nullptr);
  EXPECT_EQ(g2->state, kAno);
  EXPECT_TRUE(IsGood(Tur(*p.p2, 0)));
}

}  // namespace
}  // namespace ferry::alua_test
