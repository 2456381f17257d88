// The logical unit's reservations: commands from other nexuses meet RESERVATION CONFLICT,
// PR OUT effects become unit attentions, resets and nexus loss release SPC-2 reservations,
// and APTPL state comes back in a new logical unit over the same file. (The state machine
// itself: persistent_reservations_test.cc.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "base/endian.h"
#include "scsi/logical_unit_test.h"
#include "scsi/nexus.h"
#include "scsi/pr_params.h"
#include "scsi/pr_test_builders.h"

namespace ferry::scsi {
namespace {

class ReservationLuTest : public LuTest {
 protected:
  // Nexus `i` (1, 2, 3): initiator iqn.test:node-<i>, ISID 0x80 0 0 0 0 i.
  Task As(int i, std::array<uint8_t, 16> cdb, std::span<const uint8_t> out = {}) {
    Task t = Make(cdb, out);
    auto v = std::make_shared<NexusView>();
    v->initiator_name = "iqn.test:node-" + std::to_string(i);
    v->isid = {0x80, 0, 0, 0, 0, static_cast<uint8_t>(i)};
    t.nexus = NexusIdFor(v->initiator_name, v->isid);
    t.view = v;
    return t;
  }
  Task Exec(Task t, LogicalUnit* lu = nullptr) {
    Run(t, lu);
    return t;
  }
  static std::array<uint8_t, 16> ProutCdb(uint8_t sa, uint8_t type) {
    std::array<uint8_t, 16> c{kPersistentReserveOut, sa, type};
    StoreBe32(&c[5], 24);
    return c;
  }
  Task Prout(int i, uint8_t sa, uint8_t type, uint64_t key, uint64_t sark, bool aptpl = false,
             LogicalUnit* lu = nullptr) {
    std::vector<uint8_t> p = pr_testing::Basic(key, sark, aptpl ? 0x01 : 0x00);
    return Exec(As(i, ProutCdb(sa, type), p), lu);
  }
  std::vector<uint64_t> ReadKeys(int i, LogicalUnit* lu = nullptr) {
    std::array<uint8_t, 16> c{kPersistentReserveIn, 0x00};
    StoreBe16(&c[7], 256);
    Task t = Exec(As(i, c), lu);
    EXPECT_EQ(t.status, Status::kGood);
    std::vector<uint64_t> keys;
    for (uint32_t off = 8; off < 8 + LoadBe32(&in_[4]); off += 8)
      keys.push_back(LoadBe64(&in_[off]));
    return keys;
  }
  Task WriteAs(int i) {
    static const std::vector<uint8_t> data(kBs, 0x61);
    return Exec(As(i, Cdb16(kWrite16, 0, 5, 1), data));
  }
  Task ReadAs(int i) { return Exec(As(i, Cdb16(kRead16, 0, 5, 1))); }
};

TEST_F(ReservationLuTest, WriteExclusiveLetsOthersReadOnly) {
  ASSERT_EQ(Prout(1, 0x00, 0, 0, 0xa1).status, Status::kGood);     // REGISTER
  ASSERT_EQ(Prout(1, 0x01, 0x01, 0xa1, 0).status, Status::kGood);  // RESERVE, Write Exclusive
  EXPECT_EQ(WriteAs(1).status, Status::kGood);
  EXPECT_EQ(WriteAs(2).status, Status::kReservationConflict);
  EXPECT_EQ(ReadAs(2).status, Status::kGood);
  EXPECT_EQ(Exec(As(2, {kInquiry, 0, 0, 0, 96, 0})).status, Status::kGood);
  // SPC-2 RESERVE from anyone conflicts while a registration exists.
  EXPECT_EQ(Exec(As(2, {kReserve6})).status, Status::kReservationConflict);
}

TEST_F(ReservationLuTest, PreemptRaisesUnitAttentionForTheLoser) {
  ASSERT_EQ(Prout(1, 0x00, 0, 0, 0xa1).status, Status::kGood);
  ASSERT_EQ(Prout(2, 0x00, 0, 0, 0xb2).status, Status::kGood);
  ASSERT_EQ(Prout(1, 0x01, 0x05, 0xa1, 0).status, Status::kGood);  // WE registrants only
  EXPECT_EQ(WriteAs(2).status, Status::kGood);                     // a registrant writes
  EXPECT_EQ(WriteAs(3).status, Status::kReservationConflict);
  ASSERT_EQ(Prout(2, 0x04, 0x05, 0xb2, 0xa1).status, Status::kGood);  // B preempts A
  EXPECT_EQ(ReadKeys(2), (std::vector<uint64_t>{0xb2}));
  Task ua = WriteAs(1);
  ExpectSense(ua, SenseKey::kUnitAttention, Asc::kRegistrationsPreempted);
  EXPECT_EQ(WriteAs(1).status, Status::kReservationConflict);  // no longer registered
}

// PREEMPT AND ABORT names the nexuses whose tasks the transport aborts; others name none.
TEST_F(ReservationLuTest, PreemptAndAbortTellsTheTransportWhomToAbort) {
  ASSERT_EQ(Prout(1, 0x00, 0, 0, 0xa1).status, Status::kGood);
  ASSERT_EQ(Prout(2, 0x00, 0, 0, 0xb2).status, Status::kGood);
  ASSERT_EQ(Prout(1, 0x01, 0x01, 0xa1, 0).status, Status::kGood);
  EXPECT_TRUE(Prout(1, 0x01, 0x01, 0xa1, 0).abort_tasks_of.empty());  // (holder again)
  const Task abort = Prout(2, 0x05, 0x01, 0xb2, 0xa1);
  ASSERT_EQ(abort.status, Status::kGood);
  const uint64_t a = NexusIdFor("iqn.test:node-1", std::array<uint8_t, 6>{0x80, 0, 0, 0, 0, 1});
  EXPECT_EQ(abort.abort_tasks_of, std::vector<uint64_t>{a});
}

TEST_F(ReservationLuTest, Spc2ReservationEndsWithResetOrNexusLoss) {
  ASSERT_EQ(Exec(As(1, {kReserve6})).status, Status::kGood);
  EXPECT_EQ(ReadAs(2).status, Status::kReservationConflict);
  EXPECT_EQ(ReadAs(1).status, Status::kGood);
  lu_->Reset();
  Task ua = ReadAs(2);  // the reset's unit attention first, then no conflict
  ExpectSense(ua, SenseKey::kUnitAttention, Asc::kPowerOnResetOrBusDeviceReset);
  EXPECT_EQ(ReadAs(2).status, Status::kGood);
  ASSERT_EQ(Exec(As(2, {kReserve6})).status, Status::kGood);
  Task tur = Exec(As(1, {kTestUnitReady}));
  ExpectSense(tur, SenseKey::kUnitAttention, Asc::kPowerOnResetOrBusDeviceReset);
  EXPECT_EQ(ReadAs(1).status, Status::kReservationConflict);
  lu_->NexusLost(As(2, {}).nexus);
  EXPECT_EQ(ReadAs(1).status, Status::kGood);
}

TEST_F(ReservationLuTest, AptplComesBackInANewLogicalUnit) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("ferry-pr-lu-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::filesystem::path file = dir / "lu.json";
  ASSERT_EQ(lu_->PersistReservationsIn(file), "");
  ASSERT_EQ(Prout(1, 0x00, 0, 0, 0xa1, true).status, Status::kGood);
  ASSERT_EQ(Prout(1, 0x01, 0x01, 0xa1, 0).status, Status::kGood);
  ASSERT_TRUE(std::filesystem::exists(file));
  LogicalUnit again(faulty_, lu_->identity(), false);
  ASSERT_EQ(again.PersistReservationsIn(file), "");
  EXPECT_EQ(ReadKeys(2, &again), (std::vector<uint64_t>{0xa1}));
  EXPECT_EQ(Exec(As(2, Cdb16(kWrite16, 0, 5, 1), std::vector<uint8_t>(kBs)), &again).status,
            Status::kReservationConflict);
  std::ofstream(file, std::ios::trunc) << "{not json";
  LogicalUnit broken(faulty_, lu_->identity(), false);
  EXPECT_NE(broken.PersistReservationsIn(file), "");
  EXPECT_TRUE(ReadKeys(2, &broken).empty());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ferry::scsi
