#include "scsi/pr_params.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "base/endian.h"
#include "scsi/pr_test_builders.h"

namespace ferry::scsi {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr std::array<uint8_t, 6> kIsid = {0x23, 0xd0, 0x00, 0x01, 0xab, 0xcd};

// A TransportID written out by hand (not with EncodeIscsiTransportId): `body` after the
// 4-byte header, padded with nulls to `additional` bytes.
Bytes Tid(uint8_t byte0, const std::string& body, uint16_t additional) {
  Bytes t(4 + std::max<size_t>(additional, body.size()), 0);
  t[0] = byte0;
  StoreBe16(&t[2], additional);
  std::copy(body.begin(), body.end(), t.begin() + 4);
  t.resize(4 + additional);
  return t;
}
Bytes PortTid(const std::string& name, const std::string& isid_hex = "23d00001abcd") {
  const std::string body = name + ",i,0x" + isid_hex;
  return Tid(0x45, body, static_cast<uint16_t>((body.size() + 1 + 3) / 4 * 4));
}
Bytes DeviceTid(const std::string& name) {
  return Tid(0x05, name,
             static_cast<uint16_t>(std::max<size_t>(20, (name.size() + 1 + 3) / 4 * 4)));
}

using pr_testing::Basic;

// REGISTER with SPEC_I_PT and these TransportIDs.
Bytes WithTids(std::initializer_list<Bytes> tids, std::optional<uint32_t> tid_len = {}) {
  Bytes p = Basic(0, 0x1234, 0x08);
  Bytes all;
  for (const Bytes& t : tids) all.insert(all.end(), t.begin(), t.end());
  p.resize(28);
  StoreBe32(&p[24], tid_len.value_or(static_cast<uint32_t>(all.size())));
  p.insert(p.end(), all.begin(), all.end());
  return p;
}

Bytes Ram(uint64_t key, uint64_t sark, uint8_t flags, uint16_t port, const Bytes& tid) {
  Bytes p(24, 0);
  StoreBe64(&p[0], key);
  StoreBe64(&p[8], sark);
  p[17] = flags;
  StoreBe16(&p[18], port);
  StoreBe32(&p[20], static_cast<uint32_t>(tid.size()));
  p.insert(p.end(), tid.begin(), tid.end());
  return p;
}

void ExpectLengthError(const Sense& s) {
  EXPECT_EQ(s.key, SenseKey::kIllegalRequest);
  EXPECT_EQ(s.asc, Asc::kParameterListLengthError);
  EXPECT_FALSE(s.has_field_pointer);
}

void ExpectField(const Sense& s, Asc asc, bool in_cdb, uint16_t byte,
                 std::optional<uint8_t> bit = std::nullopt) {
  EXPECT_EQ(s.key, SenseKey::kIllegalRequest);
  EXPECT_EQ(s.asc, asc);
  EXPECT_TRUE(s.has_field_pointer);
  EXPECT_EQ(s.in_cdb, in_cdb);
  EXPECT_EQ(s.field_byte, byte);
  EXPECT_EQ(s.field_bit, bit);
}

template <typename T>
Sense SenseOf(const std::variant<T, Sense>& r) {
  EXPECT_TRUE(std::holds_alternative<Sense>(r));
  return std::holds_alternative<Sense>(r) ? std::get<Sense>(r) : Sense{};
}

template <typename T>
T ValueOf(const std::variant<T, Sense>& r) {
  EXPECT_TRUE(std::holds_alternative<T>(r));
  return std::holds_alternative<T>(r) ? std::get<T>(r) : T{};
}

TEST(NexusIdFor, HashesNameSeparatorAndRawIsid) {
  std::string id = "iqn.x:a,i,";
  for (uint8_t b : kIsid) id += static_cast<char>(b);
  EXPECT_EQ(NexusIdFor("iqn.x:a", kIsid), std::hash<std::string>{}(id));
  EXPECT_NE(NexusIdFor("iqn.x:a", kIsid), NexusIdFor("iqn.x:b", kIsid));
}

TEST(IscsiNames, CompareWithoutCase) {
  EXPECT_TRUE(IscsiNamesEqual("iqn.2026-11.org.X:Node", "IQN.2026-11.ORG.x:node"));
  EXPECT_FALSE(IscsiNamesEqual("iqn.a", "iqn.b"));
  EXPECT_FALSE(IscsiNamesEqual("iqn.a", "iqn.aa"));
  EXPECT_TRUE(IsValidIscsiName("iqn.2026-11.org.x:a"));
  EXPECT_FALSE(IsValidIscsiName(""));
  EXPECT_FALSE(IsValidIscsiName("iqn.a b"));
  EXPECT_FALSE(IsValidIscsiName("iqn.a,b"));
  EXPECT_TRUE(IsValidIscsiName(std::string(223, 'a')));
  EXPECT_FALSE(IsValidIscsiName(std::string(224, 'a')));
}

TEST(PrOutCdb, DecodesServiceActionTypeAndLength) {
  uint8_t cdb[10] = {0x5f, 0x01, 0x05, 0, 0, 0, 0, 0, 24, 0};
  const PrOutCdb c = ValueOf(DecodePrOutCdb(cdb));
  EXPECT_EQ(c.action, PrOutAction::kReserve);
  EXPECT_EQ(c.type(), PrType::kWriteExclusiveRegistrantsOnly);
  EXPECT_EQ(c.param_len, 24u);
  cdb[5] = 0x01;  // PARAMETER LIST LENGTH is bytes 5-8
  EXPECT_EQ(ValueOf(DecodePrOutCdb(cdb)).param_len, 0x01000018u);
}

TEST(PrOutCdb, RefusesUnknownServiceActions) {
  for (uint8_t sa : {0x08, 0x09, 0x1f}) {
    const uint8_t cdb[10] = {0x5f, sa, 0, 0, 0, 0, 0, 0, 24, 0};
    ExpectField(SenseOf(DecodePrOutCdb(cdb)), Asc::kInvalidFieldInCdb, true, 1, 4);
  }
}

TEST(PrOutCdb, ScopeAndTypeMatterOnlyWhereUsed) {
  for (uint8_t sa : {0x1, 0x2}) {                              // RESERVE, RELEASE
    uint8_t cdb[10] = {0x5f, sa, 0x13, 0, 0, 0, 0, 0, 24, 0};  // scope 1
    ExpectField(SenseOf(DecodePrOutCdb(cdb)), Asc::kInvalidFieldInCdb, true, 2, 7);
    for (uint8_t type : {0x0, 0x2, 0x4, 0x9, 0xf}) {
      cdb[2] = type;
      ExpectField(SenseOf(DecodePrOutCdb(cdb)), Asc::kInvalidFieldInCdb, true, 2, 3);
    }
    for (uint8_t type : {0x1, 0x3, 0x5, 0x6, 0x7, 0x8}) {
      cdb[2] = type;
      EXPECT_EQ(static_cast<uint8_t>(ValueOf(DecodePrOutCdb(cdb)).type()), type);
    }
  }
  // REGISTER*, CLEAR and REGISTER AND MOVE ignore them; PREEMPT* checks them only when it
  // preempts a reservation (the state machine does).
  for (uint8_t sa : {0x0, 0x3, 0x4, 0x5, 0x6, 0x7}) {
    const uint8_t cdb[10] = {0x5f, sa, 0xff, 0, 0, 0, 0, 0, 24, 0};
    EXPECT_EQ(ValueOf(DecodePrOutCdb(cdb)).scope_type, 0xff);
  }
  EXPECT_FALSE(CheckPrScopeAndType(0x08));
  ExpectField(*CheckPrScopeAndType(0x28), Asc::kInvalidFieldInCdb, true, 2, 7);
  ExpectField(*CheckPrScopeAndType(0x02), Asc::kInvalidFieldInCdb, true, 2, 3);
}

TEST(PrOutParams, DecodesTheBasicList) {
  const PrOutParams p = ValueOf(DecodePrOutParams(
      PrOutAction::kRegister, Basic(0x0102030405060708, 0x1112131415161718, 0x05)));
  EXPECT_EQ(p.reservation_key, 0x0102030405060708u);
  EXPECT_EQ(p.sa_reservation_key, 0x1112131415161718u);
  EXPECT_TRUE(p.all_tg_pt);
  EXPECT_TRUE(p.aptpl);
  EXPECT_FALSE(p.spec_i_pt);
  EXPECT_TRUE(p.transport_ids.empty());
}

TEST(PrOutParams, IsExactly24BytesWithoutSpecIPt) {
  for (size_t n : {0, 8, 23, 25, 28, 64}) {
    Bytes p = Basic(1, 2);
    p.resize(n, 0);
    ExpectLengthError(SenseOf(DecodePrOutParams(PrOutAction::kReserve, p)));
  }
  ExpectLengthError(
      SenseOf(DecodePrOutParams(PrOutAction::kRegister, Bytes(kMaxPrOutParamBytes + 1))));
}

TEST(PrOutParams, SpecIPtOnlyWithRegister) {
  for (PrOutAction a :
       {PrOutAction::kRegisterAndIgnoreExistingKey, PrOutAction::kReserve, PrOutAction::kRelease,
        PrOutAction::kClear, PrOutAction::kPreempt, PrOutAction::kPreemptAndAbort}) {
    ExpectField(SenseOf(DecodePrOutParams(a, Basic(1, 2, 0x08))), Asc::kInvalidFieldInParameterList,
                false, 20, 3);
  }
}

TEST(PrOutParams, DecodesTransportIds) {
  const Bytes list = WithTids({PortTid("iqn.2026-11.org.x:b"), DeviceTid("iqn.2026-11.org.x:c")});
  const PrOutParams p = ValueOf(DecodePrOutParams(PrOutAction::kRegister, list));
  EXPECT_TRUE(p.spec_i_pt);
  ASSERT_EQ(p.transport_ids.size(), 2u);
  EXPECT_EQ(p.transport_ids[0].name, "iqn.2026-11.org.x:b");
  EXPECT_EQ(p.transport_ids[0].isid, kIsid);
  EXPECT_EQ(p.transport_ids[0].offset, 28);
  EXPECT_EQ(p.transport_ids[1].name, "iqn.2026-11.org.x:c");
  EXPECT_FALSE(p.transport_ids[1].isid);
  EXPECT_EQ(p.transport_ids[1].offset, 28 + p.transport_ids[0].bytes);
  // An empty TransportID list is allowed.
  EXPECT_TRUE(
      ValueOf(DecodePrOutParams(PrOutAction::kRegister, WithTids({}))).transport_ids.empty());
}

TEST(PrOutParams, TransportIdLengthMustMatchTheList) {
  const Bytes tid = PortTid("iqn.2026-11.org.x:b");
  // SPEC_I_PT needs the TRANSPORTID PARAMETER DATA LENGTH field.
  ExpectLengthError(SenseOf(DecodePrOutParams(PrOutAction::kRegister, Basic(0, 1, 0x08))));
  // Announcing more than was sent, or less.
  const uint32_t n = static_cast<uint32_t>(tid.size());
  ExpectLengthError(SenseOf(DecodePrOutParams(PrOutAction::kRegister, WithTids({tid}, n + 4))));
  ExpectLengthError(SenseOf(DecodePrOutParams(PrOutAction::kRegister, WithTids({tid}, n - 4))));
  // A TransportID that runs past the announced length is cut short.
  Bytes cut = WithTids({tid});
  cut.resize(cut.size() - 4);
  StoreBe32(&cut[24], n - 4);
  ExpectField(SenseOf(DecodePrOutParams(PrOutAction::kRegister, cut)),
              Asc::kInvalidFieldInParameterList, false, 30);
  // Two stray bytes after a TransportID: a header cut short.
  Bytes stray = WithTids({tid, Bytes{0x45, 0}});
  ExpectField(SenseOf(DecodePrOutParams(PrOutAction::kRegister, stray)),
              Asc::kInvalidFieldInParameterList, false, static_cast<uint16_t>(28 + n));
}

TEST(TransportId, DecodesPortFormatAnyCase) {
  const Bytes t = Tid(0x45, "IQN.2026-11.org.x:B,I,0X23D00001ABcd", 40);
  const IscsiTransportId id = ValueOf(DecodeIscsiTransportId(t, 0, t.size()));
  EXPECT_EQ(id.name, "IQN.2026-11.org.x:B");
  EXPECT_EQ(id.isid, kIsid);
  EXPECT_EQ(id.bytes, 44);
}

TEST(TransportId, RefusesBadHeaders) {
  const Bytes good = PortTid("iqn.2026-11.org.x:b");
  Bytes t = good;
  t[0] = 0x44;  // protocol identifier 4h: not iSCSI
  ExpectField(SenseOf(DecodeIscsiTransportId(t, 0, t.size())), Asc::kInvalidFieldInParameterList,
              false, 0, 3);
  t = good;
  t[0] = 0x85;  // format 10b
  ExpectField(SenseOf(DecodeIscsiTransportId(t, 0, t.size())), Asc::kInvalidFieldInParameterList,
              false, 0, 7);
  for (uint16_t additional : {0, 16, 22, 26}) {  // under 20, or not a multiple of 4
    t = Tid(0x05, "iqn.2026-11.org.x:b", 28);
    StoreBe16(&t[2], additional);
    ExpectField(SenseOf(DecodeIscsiTransportId(t, 0, t.size())), Asc::kInvalidFieldInParameterList,
                false, 2);
  }
  t = good;  // longer than what is left
  ExpectField(SenseOf(DecodeIscsiTransportId(t, 0, t.size() - 4)),
              Asc::kInvalidFieldInParameterList, false, 2);
  ExpectField(SenseOf(DecodeIscsiTransportId(t, 0, 3)), Asc::kInvalidFieldInParameterList, false,
              0);
}

TEST(TransportId, RefusesBadNames) {
  const auto bad = [](const Bytes& t, uint16_t byte) {
    ExpectField(SenseOf(DecodeIscsiTransportId(t, 0, t.size())), Asc::kInvalidFieldInParameterList,
                false, byte);
  };
  bad(Tid(0x05, "", 20), 4);                            // empty name
  bad(Tid(0x05, std::string(20, 'a'), 20), 4);          // not null-terminated
  bad(Tid(0x05, "iqn.a b", 20), 4);                     // a space
  bad(Tid(0x05, std::string(224, 'a'), 228), 4);        // too long
  bad(Tid(0x45, ",i,0x23d00001abcd", 20), 4);           // 01b without a name
  bad(Tid(0x45, "iqn.2026-11.org.x:b", 24), 4);         // no separator: nulls in the name
  bad(Tid(0x45, "iqn.x:b,j,0x23d00001abcd", 32), 11);   // wrong separator
  bad(Tid(0x45, "iqn.x:b,i,0x23d00001abc", 32), 16);    // 11 digits
  bad(Tid(0x45, "iqn.x:b,i,0x23d00001abcde", 32), 16);  // 13 digits
  bad(Tid(0x45, "iqn.x:b,i,0x23d00001abcg", 32), 16);   // not hex
  EXPECT_TRUE(std::holds_alternative<IscsiTransportId>(
      DecodeIscsiTransportId(Tid(0x05, std::string(223, 'a'), 224), 0, 228)));
}

TEST(TransportId, EncodesPortFormat) {
  Bytes out = {0xee};  // appends
  EncodeIscsiTransportId("iqn.x:a", kIsid, &out);
  const std::string body = "iqn.x:a,i,0x23d00001abcd";
  Bytes want(1 + 32, 0);
  want[0] = 0xee;
  want[1] = 0x45;
  want[4] = 28;
  std::copy(body.begin(), body.end(), want.begin() + 5);
  EXPECT_EQ(out, want);
  // A short name still gets the 20-byte minimum; a long one round-trips.
  out.clear();
  EncodeIscsiTransportId("a", kIsid, &out);
  EXPECT_EQ(out.size(), 24u);
  EXPECT_EQ(LoadBe16(&out[2]), 20);
  const std::string name = "iqn.2026-11.org.example.storage:cluster-node-" + std::string(100, 'z');
  out.clear();
  EncodeIscsiTransportId(name, kIsid, &out);
  EXPECT_EQ(out.size() % 4, 0u);
  const IscsiTransportId id = ValueOf(DecodeIscsiTransportId(out, 0, out.size()));
  EXPECT_EQ(id.name, name);
  EXPECT_EQ(id.isid, kIsid);
  EXPECT_EQ(id.bytes, out.size());
}

TEST(RegisterAndMoveParams, DecodesTheList) {
  const Bytes tid = PortTid("iqn.2026-11.org.x:b");
  const RegisterAndMoveParams p =
      ValueOf(DecodeRegisterAndMoveParams(Ram(0xa, 0xb, 0x03, 0x0102, tid)));
  EXPECT_EQ(p.reservation_key, 0xau);
  EXPECT_EQ(p.sa_reservation_key, 0xbu);
  EXPECT_TRUE(p.unreg);
  EXPECT_TRUE(p.aptpl);
  EXPECT_EQ(p.relative_target_port, 0x0102);
  EXPECT_EQ(p.transport_id.name, "iqn.2026-11.org.x:b");
  EXPECT_EQ(p.transport_id.offset, 24);
}

TEST(RegisterAndMoveParams, RefusesBadLengths) {
  const Bytes tid = PortTid("iqn.2026-11.org.x:b");
  Bytes p = Ram(1, 2, 0, 1, tid);
  Bytes shorter(p.begin(), p.begin() + 23);
  ExpectLengthError(SenseOf(DecodeRegisterAndMoveParams(shorter)));
  Bytes longer = p;
  longer.push_back(0);
  ExpectLengthError(SenseOf(DecodeRegisterAndMoveParams(longer)));
  // No TransportID, or two.
  ExpectField(SenseOf(DecodeRegisterAndMoveParams(Ram(1, 2, 0, 1, {}))),
              Asc::kInvalidFieldInParameterList, false, 20);
  Bytes two = tid;
  two.insert(two.end(), tid.begin(), tid.end());
  ExpectField(SenseOf(DecodeRegisterAndMoveParams(Ram(1, 2, 0, 1, two))),
              Asc::kInvalidFieldInParameterList, false, 20);
  // A bad TransportID points into it.
  Bytes bad = tid;
  bad[0] = 0x41;
  ExpectField(SenseOf(DecodeRegisterAndMoveParams(Ram(1, 2, 0, 1, bad))),
              Asc::kInvalidFieldInParameterList, false, 24, 3);
}

TEST(ClassifyForReservations, FollowsTheSpcAndSbcTables) {
  const auto cls = [](std::initializer_list<uint8_t> bytes) {
    uint8_t cdb[16] = {};
    std::copy(bytes.begin(), bytes.end(), cdb);
    return ClassifyForReservations(cdb);
  };
  // Allowed in every column.
  for (uint8_t op : {0x00, 0x03, 0x12, 0x25, 0x4d, 0x5e, 0x84, 0xa0}) {
    EXPECT_EQ(cls({op}), PrAccess::kAllowed) << std::hex << int{op};
  }
  EXPECT_EQ(cls({0x9e, 0x10}), PrAccess::kAllowed);           // READ CAPACITY(16)
  EXPECT_EQ(cls({0xa3, 0x0a}), PrAccess::kAllowed);           // REPORT TARGET PORT GROUPS
  EXPECT_EQ(cls({0x1e, 0, 0, 0, 0}), PrAccess::kAllowed);     // PREVENT 0
  EXPECT_EQ(cls({0x1e, 0, 0, 0, 1}), PrAccess::kWrite);       // PREVENT 1
  EXPECT_EQ(cls({0x1b, 0, 0, 0, 0x01}), PrAccess::kAllowed);  // START 1
  EXPECT_EQ(cls({0x1b, 0, 0, 0, 0x00}), PrAccess::kWrite);    // STOP
  EXPECT_EQ(cls({0x1b, 0, 0, 0, 0x11}), PrAccess::kWrite);    // power condition
  // Reads pass Write Exclusive types only.
  for (uint8_t op :
       {0x08, 0x28, 0xa8, 0x88, 0x2f, 0xaf, 0x8f, 0x34, 0x90, 0x1a, 0x5a, 0x37, 0xb7, 0x3c, 0x1c}) {
    EXPECT_EQ(cls({op}), PrAccess::kRead) << std::hex << int{op};
  }
  EXPECT_EQ(cls({0x9e, 0x12}), PrAccess::kRead);  // GET LBA STATUS
  EXPECT_EQ(cls({0xa3, 0x0c}), PrAccess::kRead);  // REPORT SUPPORTED OPERATION CODES
  EXPECT_EQ(cls({0x83, 0x10}), PrAccess::kRead);  // POPULATE TOKEN
  EXPECT_EQ(cls({0x7f, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x09}), PrAccess::kRead);  // READ(32)
  // Everything that changes the medium or the LU conflicts, and so do unknown commands.
  for (uint8_t op : {0x0a, 0x2a, 0xaa, 0x8a, 0x2e, 0x8e, 0x41, 0x93, 0x42, 0x89, 0x8b,
                     0x9c, 0x48, 0x35, 0x91, 0x15, 0x55, 0x4c, 0x04, 0x3b, 0xc0}) {
    EXPECT_EQ(cls({op}), PrAccess::kWrite) << std::hex << int{op};
  }
  EXPECT_EQ(cls({0x83, 0x00}), PrAccess::kWrite);                             // EXTENDED COPY
  EXPECT_EQ(cls({0x83, 0x11}), PrAccess::kWrite);                             // WRITE USING TOKEN
  EXPECT_EQ(cls({0x7f, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x0b}), PrAccess::kWrite);  // WRITE(32)
}

}  // namespace
}  // namespace ferry::scsi
