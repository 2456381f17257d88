// RemoteCopier against a real array: Ferry's own SCSI target (logical units over RAM with a
// copy manager) behind a loopback ScsiChannel that runs each CDB in process. Covers the
// capabilities a Ferry LU advertises, EXTENDED COPY and ODX copies (bytes identical, split
// over many commands by small limits, several in flight), refusals, retries and aborts.
#include "backends/iscsi/remote_copy.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "backends/ram/ram_device.h"
#include "base/endian.h"
#include "scsi/copy_manager.h"
#include "scsi/logical_unit.h"
#include "scsi/nexus.h"
#include "scsi/opcodes.h"
#include "scsi/tpc_params.h"

namespace ferry::backends::iscsi {
namespace {

using Bytes = std::vector<uint8_t>;
using block::CopyMechanism;
using block::CopySegment;

// A target of LUNs over scsi::LogicalUnit. `before` may answer or hold a command instead of
// the LU; `after` may change an answer before `done` runs.
class LoopbackChannel : public ScsiChannel {
 public:
  enum class Action { kRun, kAnswered, kHold };

  LoopbackChannel(io::Reactor* reactor, std::shared_ptr<const scsi::NexusView> view,
                  std::map<uint64_t, std::shared_ptr<scsi::LogicalUnit>> luns)
      : reactor_(reactor), view_(std::move(view)), luns_(std::move(luns)) {}

  std::function<Action(uint64_t lun, ScsiCommand&)> before;
  std::function<void(ScsiCommand&)> after;
  std::vector<std::pair<uint8_t, uint8_t>> log;  // opcode, byte 1 of every command
  std::vector<ScsiCommand*> held;
  int in_flight = 0;
  int max_in_flight = 0;

  size_t Count(uint8_t op, uint8_t sa) const {
    return static_cast<size_t>(
        std::count(log.begin(), log.end(), std::pair<uint8_t, uint8_t>{op, sa}));
  }

  void Execute(uint64_t lun, ScsiCommand& cmd) override {
    log.emplace_back(cmd.cdb[0], cmd.cdb[1]);
    max_in_flight = std::max(max_in_flight, ++in_flight);
    const Action a = before ? before(lun, cmd) : Action::kRun;
    if (a == Action::kHold) return held.push_back(&cmd);
    auto lu = luns_.find(lun);
    if (a == Action::kAnswered || lu == luns_.end()) {
      if (a == Action::kRun) {  // LOGICAL UNIT NOT SUPPORTED
        cmd.scsi_status = kScsiStatusCheckCondition;
        cmd.sense = {.key = 0x05, .asc = 0x25, .ascq = 0x00};
      }
      return reactor_->Post([this, c = &cmd] { Finish(*c); });
    }
    pending_.push_back(std::make_unique<Pending>());
    Pending* p = pending_.back().get();
    p->cmd = &cmd;
    std::copy(cmd.cdb, cmd.cdb + cmd.cdb_len, p->task.cdb.begin());
    p->task.nexus = 1;
    p->task.view = view_;
    p->task.data_out = cmd.data_out;
    p->task.data_out_expected = static_cast<uint32_t>(cmd.data_out.size());
    p->in.assign(cmd.data_in_len, 0);
    p->task.data_in = p->in;
    lu->second->Execute(p->task, [this, p] {
      p->done = true;
      ScsiCommand& c = *p->cmd;
      c.scsi_status = static_cast<uint8_t>(p->task.status);
      if (p->task.has_sense) {
        const auto asc = static_cast<uint16_t>(p->task.sense.asc);
        c.sense = {.key = static_cast<uint8_t>(p->task.sense.key),
                   .asc = static_cast<uint8_t>(asc >> 8),
                   .ascq = static_cast<uint8_t>(asc)};
      }
      c.data_in.assign(p->in.begin(), p->in.begin() + p->task.data_in_bytes);
      Finish(c);
    });
  }

  void Abort(ScsiCommand& cmd) override {
    ++aborts;
    for (auto& p : pending_) {
      if (p->cmd == &cmd && !p->done && p->task.cancel) p->task.cancel();
    }
    auto h = std::find(held.begin(), held.end(), &cmd);
    if (h != held.end()) ReleaseHeld(h, 0x40);  // TASK ABORTED
  }

  // Completes every held command with `status`.
  void ReleaseAll(uint8_t status) {
    while (!held.empty()) ReleaseHeld(held.begin(), status);
  }

  int aborts = 0;

 private:
  struct Pending {
    scsi::Task task;
    Bytes in;
    ScsiCommand* cmd = nullptr;
    bool done = false;
  };

  void ReleaseHeld(std::vector<ScsiCommand*>::iterator h, uint8_t status) {
    ScsiCommand* c = *h;
    held.erase(h);
    c->scsi_status = status;
    reactor_->Post([this, c] { Finish(*c); });
  }

  void Finish(ScsiCommand& c) {
    --in_flight;
    if (after) after(c);
    c.done();
  }

  io::Reactor* reactor_;
  std::shared_ptr<const scsi::NexusView> view_;
  std::map<uint64_t, std::shared_ptr<scsi::LogicalUnit>> luns_;
  std::deque<std::unique_ptr<Pending>> pending_;
};

constexpr uint32_t kBs = 512;

class RemoteCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reactor_ = io::Reactor::Create().value();
    scsi::CopyManagerOptions o;
    for (size_t i = 0; i < o.token_key.size(); ++i) o.token_key[i] = static_cast<uint8_t>(i + 3);
    cm_ = scsi::CopyManager::Create(reactor_.get(), o).value();
    auto arena = std::make_shared<RamArena>();
    src_lu_ = MakeLu("src", 8 << 20, kBs, 1, arena);
    dst_lu_ = MakeLu("dst", 8 << 20, kBs, 2, arena);
    k4_lu_ = MakeLu("k4", 4 << 20, 4096, 3, nullptr);
    auto view = std::make_shared<scsi::NexusView>();
    for (const auto& lu : {src_lu_, dst_lu_, k4_lu_}) view->lus.push_back({.lu = lu});
    // One target with all three LUs; a second target of the same array with the destination.
    target_ =
        std::make_unique<LoopbackChannel>(reactor_.get(), view,
                                          std::map<uint64_t, std::shared_ptr<scsi::LogicalUnit>>{
                                              {0, src_lu_}, {1, dst_lu_}, {2, k4_lu_}});
    other_ = std::make_unique<LoopbackChannel>(
        reactor_.get(), view, std::map<uint64_t, std::shared_ptr<scsi::LogicalUnit>>{{7, dst_lu_}});
    src_caps_ = FetchCapabilities(*target_, 0);
    dst_caps_ = FetchCapabilities(*target_, 1);
    k4_caps_ = FetchCapabilities(*target_, 2);
  }

  void TearDown() override {
    cm_->CancelAll();
    reactor_->RunUntil([&] { return cm_->metrics().active == 0; });
    while (reactor_->RunOnce(false) > 0) {
    }
  }

  std::shared_ptr<scsi::LogicalUnit> MakeLu(const char* name, uint64_t bytes, uint32_t bs,
                                            uint8_t tag, std::shared_ptr<RamArena> arena,
                                            bool with_copy_manager = true) {
    auto dev = RamDevice::Create(
                   {.name = name, .size_bytes = bytes, .block_size = bs, .arena = std::move(arena)})
                   .value();
    scsi::LuIdentity id;
    id.serial = std::string("lu-") + name;
    id.naa = {0x60, 0x01, 0x40, 0x50, 0xfe, 0xed, 0x00, 0x02,
              0xa0, 0xb1, 0xc2, 0xd3, 0xe4, 0xf5, 0x06, tag};
    auto lu = std::make_shared<scsi::LogicalUnit>(std::move(dev), id, false);
    if (with_copy_manager) lu->set_copy_manager(cm_);
    return lu;
  }

  // One command through `ch`, run to completion.
  std::unique_ptr<ScsiCommand> RunSync(ScsiChannel& ch, uint64_t lun, const Cdb& cdb,
                                       std::span<const uint8_t> out = {}, uint32_t in = 0) {
    auto c = std::make_unique<ScsiCommand>();
    SetCdb(*c, cdb);
    c->data_out = out;
    c->data_in_len = in;
    bool done = false;
    c->done = [&done] { done = true; };
    ch.Execute(lun, *c);
    reactor_->RunUntil([&] { return done; });
    c->done = nullptr;
    return c;
  }

  // What the device does at attach: VPD 83h, VPD 8Fh, RECEIVE COPY OPERATING PARAMETERS.
  CopyCapabilities FetchCapabilities(ScsiChannel& ch, uint64_t lun) {
    auto page = [&](const Cdb& cdb) {
      auto c = RunSync(ch, lun, cdb, {}, 4096);
      return c->scsi_status == kScsiStatusGood ? c->data_in : Bytes{};
    };
    const Bytes v83 = page(VpdInquiryCdb(kVpdDeviceIdentification, 4096));
    const Bytes v8f = page(VpdInquiryCdb(kVpdThirdPartyCopy, 4096));
    const Bytes op = page(OperatingParametersCdb(4096));
    return DecodeCopyCapabilities(v83, v8f, op);
  }

  static Cdb Cdb16(uint8_t op, uint64_t lba, uint32_t blocks) {
    Cdb c;
    c.len = 16;
    c.bytes[0] = op;
    StoreBe64(&c.bytes[2], lba);
    StoreBe32(&c.bytes[10], blocks);
    return c;
  }
  Bytes Fill(uint64_t lun, uint64_t lba, uint32_t blocks, uint32_t seed, uint32_t bs = kBs) {
    Bytes d(size_t{blocks} * bs);
    uint32_t x = seed * 2654435761u + 1;
    for (auto& b : d) {
      x = x * 1103515245u + 12345u;
      b = static_cast<uint8_t>(x >> 24);
    }
    EXPECT_EQ(RunSync(*target_, lun, Cdb16(scsi::kWrite16, lba, blocks), d)->scsi_status, 0);
    return d;
  }
  Bytes Read(uint64_t lun, uint64_t lba, uint32_t blocks, uint32_t bs = kBs) {
    auto c = RunSync(*target_, lun, Cdb16(scsi::kRead16, lba, blocks), {}, blocks * bs);
    EXPECT_EQ(c->scsi_status, 0);
    return c->data_in;
  }

  RemoteLu Src() { return {target_.get(), 0, kBs, &src_caps_}; }
  RemoteLu Dst() { return {target_.get(), 1, kBs, &dst_caps_}; }
  RemoteLu OtherDst() { return {other_.get(), 7, kBs, &dst_caps_}; }

  RemoteCopyResult Copy(const RemoteLu& src, const RemoteLu& dst, bool same_target,
                        std::vector<CopySegment> segs, RemoteCopyOptions o = Fast(),
                        const std::function<void(RemoteCopier&)>& while_running = nullptr) {
    RemoteCopier copier(reactor_.get(), src, dst, same_target, o);
    std::optional<RemoteCopyResult> result;
    bool in_start = true;
    copier.Start(segs, [&](const RemoteCopyResult& r) {
      EXPECT_FALSE(in_start) << "completed inside Start";
      EXPECT_FALSE(result) << "completed twice";
      result = r;
    });
    in_start = false;
    if (while_running) while_running(copier);
    reactor_->RunUntil([&] { return result.has_value(); });
    return *result;
  }
  static RemoteCopyOptions Fast() {
    RemoteCopyOptions o;
    o.retry_delay = std::chrono::milliseconds(1);
    return o;
  }

  std::unique_ptr<io::Reactor> reactor_;
  std::shared_ptr<scsi::CopyManager> cm_;
  std::shared_ptr<scsi::LogicalUnit> src_lu_, dst_lu_, k4_lu_;
  std::unique_ptr<LoopbackChannel> target_, other_;
  CopyCapabilities src_caps_, dst_caps_, k4_caps_;
};

TEST_F(RemoteCopyTest, FerryTargetAdvertisesLid1Lid4AndOdxWithItsLimits) {
  const CopyCapabilities& c = src_caps_;
  EXPECT_TRUE(c.lid1) << c.why_no_xcopy;
  EXPECT_TRUE(c.lid4);
  EXPECT_TRUE(c.odx) << c.why_no_odx;
  EXPECT_EQ(c.designator.type, 3);
  EXPECT_TRUE(std::ranges::equal(c.designator.value(), src_lu_->identity().naa));
  EXPECT_TRUE(c.snlid);
  EXPECT_EQ(c.max_cscd_descriptors, scsi::kMaxCscdDescriptors);
  EXPECT_EQ(c.max_segment_descriptors, scsi::kMaxSegmentDescriptors);
  EXPECT_EQ(c.max_descriptor_list_bytes, scsi::kMaxDescriptorListBytes);
  EXPECT_EQ(c.max_segment_bytes, scsi::kMaxSegmentBytes);
  EXPECT_EQ(c.max_range_descriptors, scsi::kMaxRangeDescriptors);
  EXPECT_EQ(c.max_token_transfer_blocks, (1u << 30) / kBs);
  EXPECT_EQ(c.max_inactivity_timeout_s, cm_->options().max_token_timeout_s);
  EXPECT_EQ(c.default_inactivity_timeout_s, cm_->options().default_token_timeout_s);
  EXPECT_EQ(k4_caps_.max_token_transfer_blocks, (1u << 30) / 4096);
}

TEST_F(RemoteCopyTest, LuWithoutCopyManagerOffersNothingAndSaysWhy) {
  auto plain = MakeLu("plain", 1 << 20, kBs, 9, nullptr, /*with_copy_manager=*/false);
  LoopbackChannel ch(reactor_.get(), nullptr, {{0, plain}});
  const CopyCapabilities c = FetchCapabilities(ch, 0);
  EXPECT_TRUE(c.designator.valid());
  EXPECT_FALSE(c.lid1);
  EXPECT_FALSE(c.odx);
  EXPECT_FALSE(c.why_no_xcopy.empty());
  EXPECT_NE(c.why_no_odx.find("8Fh"), std::string::npos) << c.why_no_odx;
  std::string why;
  EXPECT_EQ(ChooseRemoteCopy(Src(), {&ch, 0, kBs, &c}, true, &why), CopyMechanism::kNone);
  EXPECT_NE(why.find("EXTENDED COPY"), std::string::npos) << why;
}

TEST_F(RemoteCopyTest, ChoosesXcopyOnOneTargetAndOdxAcrossTargets) {
  std::string why;
  EXPECT_EQ(ChooseRemoteCopy(Src(), Dst(), true, &why), CopyMechanism::kXcopy);
  EXPECT_EQ(ChooseRemoteCopy(Src(), OtherDst(), false, &why), CopyMechanism::kOdx);
  CopyCapabilities no_odx = dst_caps_;
  no_odx.odx = false;
  no_odx.why_no_odx = "test";
  EXPECT_EQ(ChooseRemoteCopy(Src(), {other_.get(), 7, kBs, &no_odx}, false, &why),
            CopyMechanism::kNone);
  EXPECT_NE(why.find("different targets"), std::string::npos) << why;
}

TEST_F(RemoteCopyTest, XcopyCopiesBytes) {
  const Bytes a = Fill(0, 100, 64, 1);
  const Bytes b = Fill(0, 1000, 8, 2);
  const auto r =
      Copy(Src(), Dst(), true, {{100 * kBs, 300 * kBs, 64 * kBs}, {1000 * kBs, 5 * kBs, 8 * kBs}});
  ASSERT_EQ(r.status, IoStatus::kOk) << r.reason;
  EXPECT_EQ(r.mechanism, CopyMechanism::kXcopy);
  EXPECT_EQ(r.bytes_done, 72u * kBs);
  EXPECT_EQ(Read(1, 300, 64), a);
  EXPECT_EQ(Read(1, 5, 8), b);
  // Both segments in one command, EXTENDED COPY(LID4): Ferry's VPD 8Fh lists 83h/01h.
  EXPECT_EQ(target_->Count(0x83, 0x01), 1u);
  EXPECT_EQ(target_->Count(0x83, 0x00), 0u);
}

TEST_F(RemoteCopyTest, XcopyUsesLid1WhenLid4IsNotWanted) {
  const Bytes a = Fill(0, 100, 64, 1);
  RemoteCopyOptions o = Fast();
  o.use_lid4 = false;
  const auto r = Copy(Src(), Dst(), true, {{100 * kBs, 300 * kBs, 64 * kBs}}, o);
  ASSERT_EQ(r.status, IoStatus::kOk) << r.reason;
  EXPECT_EQ(Read(1, 300, 64), a);
  EXPECT_EQ(target_->Count(0x83, 0x00), 1u);
  EXPECT_EQ(target_->Count(0x83, 0x01), 0u);
}

TEST_F(RemoteCopyTest, XcopyUsesLid1WhereLid4IsNotAdvertised) {
  const Bytes a = Fill(0, 0, 16, 9);
  CopyCapabilities d = dst_caps_;
  d.lid4 = false;
  const auto r = Copy(Src(), {target_.get(), 1, kBs, &d}, true, {{0, 0, 16 * kBs}});
  ASSERT_EQ(r.status, IoStatus::kOk) << r.reason;
  EXPECT_EQ(Read(1, 0, 16), a);
  EXPECT_EQ(target_->Count(0x83, 0x00), 1u);
}

// LID4's SEGMENT DESCRIPTOR LIST LENGTH is 16 bits: at most 2340 segments per command, even
// when the array's own limits would allow more (answered GOOD here without running: Ferry's
// own limits are lower).
TEST_F(RemoteCopyTest, XcopyLid4KeepsTheSegmentListUnder64KiB) {
  CopyCapabilities d = dst_caps_;
  d.max_segment_descriptors = 4000;
  d.max_descriptor_list_bytes = 1u << 20;
  std::vector<CopySegment> segs;
  for (uint64_t i = 0; i < 3000; ++i) segs.push_back({i * 2 * kBs, i * 2 * kBs, kBs});
  std::vector<size_t> lists;
  target_->before = [&](uint64_t, ScsiCommand& c) {
    if (c.cdb[0] != 0x83 || c.cdb[1] != 0x01) return LoopbackChannel::Action::kRun;
    lists.push_back(LoadBe16(&c.data_out[44]));
    EXPECT_EQ(c.data_out.size(), 48 + 64 + lists.back());
    return LoopbackChannel::Action::kAnswered;
  };
  RemoteCopyOptions o = Fast();
  o.max_in_flight = 1;
  const auto r = Copy(Src(), {target_.get(), 1, kBs, &d}, true, segs, o);
  ASSERT_EQ(r.status, IoStatus::kOk) << r.reason;
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[0], kMaxLid4Segments * kB2BSegmentBytes);
  EXPECT_EQ(lists[1], (3000 - kMaxLid4Segments) * kB2BSegmentBytes);
}

TEST_F(RemoteCopyTest, XcopySplitsBySmallLimitsWithSeveralInFlight) {
  const Bytes a = Fill(0, 0, 200, 3);
  CopyCapabilities d = dst_caps_;
  d.max_segment_bytes = 8 * kBs + 100;  // 8 blocks per segment
  d.max_segment_descriptors = 3;
  // 3 segments per command by count; the list length allows 4.
  d.max_descriptor_list_bytes = 2 * kCscdDescriptorBytes + 4 * kB2BSegmentBytes;
  const auto r = Copy(Src(), {target_.get(), 1, kBs, &d}, true, {{0, 50 * kBs, 200 * kBs}});
  ASSERT_EQ(r.status, IoStatus::kOk) << r.reason;
  EXPECT_EQ(Read(1, 50, 200), a);
  EXPECT_EQ(target_->Count(0x83, 0x01), 9u);  // 25 segments of 8 blocks, 3 per command
  EXPECT_GT(target_->max_in_flight, 1);
  EXPECT_LE(target_->max_in_flight, 4);
}

// Segments are cut at a power of two below the array's MAXIMUM SEGMENT LENGTH (3 MiB + one
// block here: 2 MiB), so an aligned copy reaches the array in aligned, whole units.
TEST_F(RemoteCopyTest, XcopySegmentsArePowersOfTwo) {
  const Bytes a = Fill(0, 0, 12288, 8);  // 6 MiB
  CopyCapabilities d = dst_caps_;
  d.max_segment_bytes = (3u << 20) + kBs;
  std::vector<std::pair<uint64_t, uint64_t>> segs;  // (blocks, destination LBA)
  target_->before = [&](uint64_t, ScsiCommand& c) {
    if (c.cdb[0] != 0x83 || c.cdb[1] > 0x01) return LoopbackChannel::Action::kRun;
    const bool lid4 = c.cdb[1] == 0x01;  // header 48 bytes, list length 16 bits at 44
    const size_t header = lid4 ? kXcopyLid4HeaderBytes : kXcopyLid1HeaderBytes;
    const size_t list = lid4 ? LoadBe16(&c.data_out[44]) : LoadBe32(&c.data_out[8]);
    const size_t first = header + 2 * kCscdDescriptorBytes;
    for (size_t at = first; at < first + list; at += kB2BSegmentBytes) {
      segs.emplace_back(LoadBe16(&c.data_out[at + 10]), LoadBe64(&c.data_out[at + 20]));
    }
    return LoopbackChannel::Action::kRun;
  };
  const auto r = Copy(Src(), {target_.get(), 1, kBs, &d}, true, {{0, 0, 12288 * kBs}});
  ASSERT_EQ(r.status, IoStatus::kOk) << r.reason;
  EXPECT_EQ(Read(1, 0, 12288), a);
  ASSERT_EQ(segs.size(), 3u);
  for (const auto& [blocks, lba] : segs) {
    EXPECT_EQ(blocks, 4096u);
    EXPECT_EQ(lba % 4096, 0u);
  }
}

TEST_F(RemoteCopyTest, XcopyBetweenBlockSizes) {
  const Bytes a = Fill(0, 64, 64, 4);  // 32 KiB
  const auto r =
      Copy(Src(), {target_.get(), 2, 4096, &k4_caps_}, true, {{64 * kBs, 3 * 4096, 32768}});
  ASSERT_EQ(r.status, IoStatus::kOk) << r.reason;
  EXPECT_EQ(Read(2, 3, 8, 4096), a);
}

TEST_F(RemoteCopyTest, OdxCopiesBytesAcrossTargetsOfOneArray) {
  const Bytes a = Fill(0, 10, 100, 5);
  const auto r = Copy(Src(), OtherDst(), false, {{10 * kBs, 2000 * kBs, 100 * kBs}});
  ASSERT_EQ(r.status, IoStatus::kOk) << r.reason;
  EXPECT_EQ(r.mechanism, CopyMechanism::kOdx);
  EXPECT_EQ(r.bytes_done, 100u * kBs);
  EXPECT_EQ(Read(1, 2000, 100), a);
  // POPULATE TOKEN and RRTI at the source's target, WRITE USING TOKEN at the destination's.
  EXPECT_EQ(target_->Count(0x83, 0x10), 1u);
  EXPECT_EQ(target_->Count(0x84, 0x07), 1u);
  EXPECT_EQ(target_->Count(0x83, 0x11), 0u);
  EXPECT_EQ(other_->Count(0x83, 0x11), 1u);
}

TEST_F(RemoteCopyTest, OdxDrainsLongTokensByOffsetIntoRod) {
  const Bytes a = Fill(0, 0, 160, 6);
  CopyCapabilities s = src_caps_, d = dst_caps_;
  s.max_token_transfer_blocks = 64;
  s.max_range_descriptors = 3;
  d.max_token_transfer_blocks = 16;
  d.max_range_descriptors = 2;
  // Five source pieces of 32 blocks: tokens of 64 blocks (2 pieces each), WUTs of 16 blocks.
  std::vector<CopySegment> segs;
  for (uint64_t i = 0; i < 5; ++i) segs.push_back({i * 32 * kBs, (4000 - i * 100) * kBs, 32 * kBs});
  const auto r = Copy({target_.get(), 0, kBs, &s}, {other_.get(), 7, kBs, &d}, false, segs);
  ASSERT_EQ(r.status, IoStatus::kOk) << r.reason;
  for (uint64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(Read(1, 4000 - i * 100, 32),
              Bytes(a.begin() + i * 32 * kBs, a.begin() + (i + 1) * 32 * kBs))
        << "piece " << i;
  }
  EXPECT_EQ(target_->Count(0x83, 0x10), 3u);  // 64 + 64 + 32 blocks
  EXPECT_EQ(other_->Count(0x83, 0x11), 10u);  // 160 / 16
}

TEST_F(RemoteCopyTest, RefusalEndsTheOffloadWithItsReason) {
  Fill(0, 0, 64, 7);
  target_->before = [](uint64_t, ScsiCommand& c) {
    if (c.cdb[0] != 0x83) return LoopbackChannel::Action::kRun;
    c.scsi_status = kScsiStatusCheckCondition;
    c.sense = {.key = 0x05, .asc = 0x20, .ascq = 0x00};
    return LoopbackChannel::Action::kAnswered;
  };
  auto r = Copy(Src(), Dst(), true, {{0, 0, 64 * kBs}});
  EXPECT_EQ(r.status, IoStatus::kNotSupported);
  EXPECT_EQ(r.mechanism, CopyMechanism::kXcopy);
  EXPECT_EQ(r.bytes_done, 0u);
  EXPECT_NE(r.reason.find("ILLEGAL REQUEST 20/00"), std::string::npos) << r.reason;

  target_->before = [](uint64_t, ScsiCommand& c) {
    c.scsi_status = kScsiStatusCheckCondition;
    c.sense = {.key = 0x0a, .asc = 0x0d, .ascq = 0x02};
    return LoopbackChannel::Action::kAnswered;
  };
  r = Copy(Src(), OtherDst(), false, {{0, 0, 64 * kBs}});
  EXPECT_EQ(r.status, IoStatus::kNotSupported);
  EXPECT_EQ(r.mechanism, CopyMechanism::kOdx);
  EXPECT_NE(r.reason.find("copy target device not reachable"), std::string::npos) << r.reason;
}

TEST_F(RemoteCopyTest, RefusalAfterProgressReportsBytesDone) {
  const Bytes a = Fill(0, 0, 64, 8);
  CopyCapabilities d = dst_caps_;
  d.max_segment_bytes = 8 * kBs;
  d.max_segment_descriptors = 1;
  int n = 0;
  target_->before = [&n](uint64_t, ScsiCommand& c) {
    if (c.cdb[0] != 0x83 || ++n <= 3) return LoopbackChannel::Action::kRun;
    c.scsi_status = kScsiStatusCheckCondition;
    c.sense = {.key = 0x0a, .asc = 0x08, .ascq = 0x04};
    return LoopbackChannel::Action::kAnswered;
  };
  RemoteCopyOptions o = Fast();
  o.max_in_flight = 1;
  const auto r = Copy(Src(), {target_.get(), 1, kBs, &d}, true, {{0, 0, 64 * kBs}}, o);
  EXPECT_EQ(r.status, IoStatus::kNotSupported);
  EXPECT_EQ(r.bytes_done, 24u * kBs);
  EXPECT_NE(r.reason.find("08/04"), std::string::npos) << r.reason;
  EXPECT_EQ(Read(1, 0, 24), Bytes(a.begin(), a.begin() + 24 * kBs));
}

TEST_F(RemoteCopyTest, TransientStatusesAreRetried) {
  const Bytes a = Fill(0, 0, 32, 9);
  int n = 0;
  target_->before = [&n](uint64_t, ScsiCommand& c) {
    if (c.cdb[0] != 0x83) return LoopbackChannel::Action::kRun;
    switch (n++) {
      case 0: c.scsi_status = kScsiStatusBusy; break;
      case 1: c.scsi_status = kScsiStatusTaskSetFull; break;
      case 2:
        c.scsi_status = kScsiStatusCheckCondition;
        c.sense = {.key = 0x06, .asc = 0x29, .ascq = 0x00};
        break;
      default: return LoopbackChannel::Action::kRun;
    }
    return LoopbackChannel::Action::kAnswered;
  };
  const auto r = Copy(Src(), Dst(), true, {{0, 0, 32 * kBs}});
  ASSERT_EQ(r.status, IoStatus::kOk) << r.reason;
  EXPECT_EQ(n, 4);
  EXPECT_EQ(Read(1, 0, 32), a);
}

TEST_F(RemoteCopyTest, PersistentBusyGivesUpToEmulation) {
  target_->before = [](uint64_t, ScsiCommand& c) {
    c.scsi_status = kScsiStatusBusy;
    return LoopbackChannel::Action::kAnswered;
  };
  RemoteCopyOptions o = Fast();
  o.max_retries = 3;
  const auto r = Copy(Src(), Dst(), true, {{0, 0, 8 * kBs}}, o);
  EXPECT_EQ(r.status, IoStatus::kNotSupported);
  EXPECT_NE(r.reason.find("BUSY, still after 3 retries"), std::string::npos) << r.reason;
  EXPECT_EQ(target_->Count(0x83, 0x01), 4u);
}

TEST_F(RemoteCopyTest, MediumErrorAndLostConnectionFail) {
  target_->before = [](uint64_t, ScsiCommand& c) {
    c.scsi_status = kScsiStatusCheckCondition;
    c.sense = {.key = 0x03, .asc = 0x11, .ascq = 0x00};
    return LoopbackChannel::Action::kAnswered;
  };
  auto r = Copy(Src(), Dst(), true, {{0, 0, 8 * kBs}});
  EXPECT_EQ(r.status, IoStatus::kIoError);
  EXPECT_NE(r.reason.find("MEDIUM ERROR"), std::string::npos) << r.reason;
  target_->before = [](uint64_t, ScsiCommand& c) {
    c.transport = IoStatus::kTimeout;
    return LoopbackChannel::Action::kAnswered;
  };
  r = Copy(Src(), OtherDst(), false, {{0, 0, 8 * kBs}});
  EXPECT_EQ(r.status, IoStatus::kTimeout);
}

TEST_F(RemoteCopyTest, ShortTokenWritesWhatItCoversThenRefuses) {
  const Bytes a = Fill(0, 0, 64, 10);
  target_->after = [](ScsiCommand& c) {  // the token represents only the first 16 blocks
    if (c.cdb[0] == 0x84 && c.cdb[1] == 0x07 && c.data_in.size() >= 32) {
      c.data_in[15] = 0xf1;
      StoreBe64(&c.data_in[16], 16);
    }
  };
  const auto r = Copy(Src(), OtherDst(), false, {{0, 0, 64 * kBs}});
  EXPECT_EQ(r.status, IoStatus::kNotSupported);
  EXPECT_EQ(r.bytes_done, 16u * kBs);
  EXPECT_NE(r.reason.find("short transfer count"), std::string::npos) << r.reason;
  EXPECT_EQ(Read(1, 0, 16), Bytes(a.begin(), a.begin() + 16 * kBs));
}

TEST_F(RemoteCopyTest, NoMechanismOrMisalignedSegmentsRefuseWithoutCommands) {
  CopyCapabilities none = dst_caps_;
  none.lid1 = none.odx = false;
  none.why_no_xcopy = "x";
  none.why_no_odx = "y";
  auto r = Copy(Src(), {target_.get(), 1, kBs, &none}, true, {{0, 0, 8 * kBs}});
  EXPECT_EQ(r.status, IoStatus::kNotSupported);
  EXPECT_EQ(r.mechanism, CopyMechanism::kNone);
  r = Copy(Src(), {target_.get(), 2, 4096, &k4_caps_}, true, {{0, 0, 4 * kBs}});
  EXPECT_EQ(r.status, IoStatus::kNotSupported);
  EXPECT_NE(r.reason.find("aligned"), std::string::npos) << r.reason;
  EXPECT_TRUE(target_->log.size() == 9u) << target_->log.size();  // SetUp's 9 page reads
  r = Copy(Src(), Dst(), true, {});
  EXPECT_EQ(r.status, IoStatus::kOk);
}

TEST_F(RemoteCopyTest, AbortStopsXcopyLid1WithAbortTask) {
  target_->before = [](uint64_t, ScsiCommand& c) {
    return c.cdb[0] == 0x83 ? LoopbackChannel::Action::kHold : LoopbackChannel::Action::kRun;
  };
  RemoteCopyOptions o = Fast();
  o.use_lid4 = false;
  const auto r = Copy(Src(), Dst(), true, {{0, 0, 64 * kBs}}, o, [&](RemoteCopier& c) {
    reactor_->RunUntil([&] { return !target_->held.empty(); });
    c.Abort();
  });
  EXPECT_EQ(r.status, IoStatus::kAborted);
  EXPECT_EQ(target_->aborts, 1);
  EXPECT_EQ(target_->Count(0x83, 0x1c), 0u);
}

// SPC-4 6.3: an EXTENDED COPY(LID4) is stopped by COPY OPERATION ABORT naming its list id.
TEST_F(RemoteCopyTest, AbortStopsXcopyLid4WithCopyOperationAbort) {
  uint32_t xcopy_list_id = 0;
  uint32_t abort_list_id = 1;
  target_->before = [&](uint64_t, ScsiCommand& c) {
    if (c.cdb[0] != 0x83) return LoopbackChannel::Action::kRun;
    if (c.cdb[1] == 0x01) {
      xcopy_list_id = LoadBe32(&c.data_out[20]);
      return LoopbackChannel::Action::kHold;
    }
    if (c.cdb[1] == 0x1c) abort_list_id = LoadBe32(&c.cdb[2]);
    return LoopbackChannel::Action::kRun;
  };
  const auto r = Copy(Src(), Dst(), true, {{0, 0, 64 * kBs}}, Fast(), [&](RemoteCopier& c) {
    reactor_->RunUntil([&] { return !target_->held.empty(); });
    c.Abort();
    reactor_->RunUntil([&] { return target_->Count(0x83, 0x1c) == 1; });
    target_->ReleaseAll(0x40);
  });
  EXPECT_EQ(r.status, IoStatus::kAborted);
  EXPECT_EQ(target_->aborts, 0);
  EXPECT_EQ(abort_list_id, xcopy_list_id);
}

TEST_F(RemoteCopyTest, AbortStopsOdxWithCopyOperationAbort) {
  Fill(0, 0, 64, 11);
  other_->before = [](uint64_t, ScsiCommand& c) {
    return c.cdb[0] == 0x83 && c.cdb[1] == 0x11 ? LoopbackChannel::Action::kHold
                                                : LoopbackChannel::Action::kRun;
  };
  const auto r = Copy(Src(), OtherDst(), false, {{0, 0, 64 * kBs}}, Fast(), [&](RemoteCopier& c) {
    reactor_->RunUntil([&] { return !other_->held.empty(); });
    c.Abort();
    reactor_->RunUntil([&] { return other_->Count(0x83, 0x1c) == 1; });
    other_->ReleaseAll(0x40);
  });
  EXPECT_EQ(r.status, IoStatus::kAborted);
  EXPECT_EQ(other_->Count(0x83, 0x1c), 1u);
}

}  // namespace
}  // namespace ferry::backends::iscsi
