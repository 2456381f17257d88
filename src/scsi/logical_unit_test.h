// The logical-unit test fixture: an LU over a faulty device over 8 MiB of RAM, one
// reactor, commands run to completion one at a time.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <span>
#include <vector>

#include "backends/faulty/faulty_device.h"
#include "backends/ram/ram_device.h"
#include "base/endian.h"
#include "io/reactor.h"
#include "scsi/logical_unit.h"
#include "scsi/opcodes.h"

namespace ferry::scsi {

class LuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reactor_ = io::Reactor::Create().value();
    ram_ = *backends::RamDevice::Create({.name = "r", .size_bytes = 8 << 20});
    faulty_ = std::make_shared<backends::FaultyDevice>(ram_);
    LuIdentity id;
    id.serial = "abc123";
    id.naa[0] = 0x60;
    id.naa[15] = 0x42;
    lu_ = std::make_unique<LogicalUnit>(faulty_, id, false);
    // A new nexus sees no unit attention.
    Task t = Cdb({kTestUnitReady});
    Run(t);
    EXPECT_EQ(t.status, Status::kGood);
  }
  Task Cdb(std::initializer_list<uint8_t> bytes, size_t in = 4096) {
    Task t;
    std::copy(bytes.begin(), bytes.end(), t.cdb.begin());
    in_.assign(in, 0xee);
    t.data_in = in_;
    t.nexus = 1;
    return t;
  }
  void Run(Task& t, LogicalUnit* lu = nullptr) {
    bool done = false;
    bool in_call = true;
    (lu ? lu : lu_.get())->Execute(t, [&] {
      EXPECT_FALSE(in_call);
      done = true;
    });
    in_call = false;
    reactor_->RunUntil([&] { return done; });
  }
  void ExpectSense(const Task& t, SenseKey k, Asc a) {
    EXPECT_EQ(t.status, Status::kCheckCondition);
    EXPECT_EQ(t.sense.key, k);
    EXPECT_EQ(t.sense.asc, a);
  }
  std::vector<uint8_t> Out() const { return {in_.begin(), in_.begin() + 0}; }

  static constexpr uint32_t kBs = 512;

  // Runs whatever is ready (posted tasks, RAM completions) without waiting.
  void Drain() {
    while (reactor_->RunOnce(false) > 0) {
    }
  }

  // A 16-byte CDB: opcode, byte 1, 8-byte LBA at 2, 4-byte length at 10.
  static std::array<uint8_t, 16> Cdb16(uint8_t op, uint8_t b1, uint64_t lba, uint32_t len) {
    std::array<uint8_t, 16> c{};
    c[0] = op;
    c[1] = b1;
    StoreBe64(&c[2], lba);
    StoreBe32(&c[10], len);
    return c;
  }
  Task Make(const std::array<uint8_t, 16>& cdb, std::span<const uint8_t> out = {}) {
    Task t = Cdb({});
    t.cdb = cdb;
    t.data_out = out;
    t.data_out_expected = static_cast<uint32_t>(out.size());
    return t;
  }
  void Write(uint64_t lba, const std::vector<uint8_t>& data) {
    Task t = Make(Cdb16(kWrite16, 0, lba, static_cast<uint32_t>(data.size() / kBs)), data);
    Run(t);
    ASSERT_EQ(t.status, Status::kGood);
  }
  std::vector<uint8_t> Read(uint64_t lba, uint32_t blocks) {
    std::vector<uint8_t> buf(blocks * kBs);
    Task t = Make(Cdb16(kRead16, 0, lba, blocks));
    t.data_in = buf;
    Run(t);
    EXPECT_EQ(t.status, Status::kGood);
    return buf;
  }

  std::unique_ptr<io::Reactor> reactor_;
  std::shared_ptr<backends::RamDevice> ram_;
  std::shared_ptr<backends::FaultyDevice> faulty_;
  std::unique_ptr<LogicalUnit> lu_;
  std::vector<uint8_t> in_;
};

}  // namespace ferry::scsi
