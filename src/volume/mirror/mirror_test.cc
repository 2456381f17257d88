// mirror: table syntax, mapping, the data path and leg failure (resync and the disk log are
// in mirror_resync_test.cc).
#include <gtest/gtest.h>

#include <random>

#include "backends/faulty/faulty_device.h"
#include "volume/mirror/testing/mirror_fixture.h"

namespace ferry::volume::mirror {
namespace {

using block::IoOp;
using Bytes = std::vector<uint8_t>;

constexpr uint64_t kDevBytes = 1 << 20;
constexpr uint64_t kRegionBytes = 64 * 1024;  // region size 128 sectors

class MirrorTest : public testing::MirrorFixture {
 protected:
  void SetUp() override {
    MirrorFixture::SetUp();
    a_ = AddRam("a", kDevBytes);
    b_ = AddRam("b", kDevBytes);
    c_ = AddRam("c", kDevBytes);
    AddRam("log", 64 * 1024);
    AddRam("tiny", 8 * 1024);
  }
  // Leg b behind a fault injector, registered as "fb".
  std::shared_ptr<backends::FaultyDevice> FaultyB() {
    auto f = std::make_shared<backends::FaultyDevice>(b_, "fb");
    EXPECT_TRUE(registry_.Add(f).ok());
    return f;
  }
  Bytes Pattern(size_t len, uint32_t seed) {
    Bytes out(len);
    std::mt19937 rng(seed);
    for (auto& x : out) x = static_cast<uint8_t>(rng());
    return out;
  }
  IoStatus Write(block::BlockDevice& d, uint64_t lba, const Bytes& data) {
    auto p = Start(d, IoOp::kWrite, lba, data.size() / 512, 0, 0, &data);
    return Wait(*p);
  }
  std::shared_ptr<backends::RamDevice> a_, b_, c_;
};

TEST_F(MirrorTest, TablesRoundTrip) {
  for (const std::string line : {
           "0 2048 mirror core 1 128 2 a 0 b 0",
           "0 2048 mirror core 2 128 nosync 3 a 0 b 0 c 0",
           "0 1024 mirror core 2 64 sync 2 a 1024 b 0 1 handle_errors",
           "0 2048 mirror disk 2 log 128 2 a 0 b 0 3 handle_errors resync_rate 1048576",
           "0 2048 mirror disk 3 log 256 nosync 2 a 0 b 0 2 resync_rate 0",
       }) {
    auto t = Table::Parse(line, MirrorOptions());
    ASSERT_TRUE(t.ok()) << t.status().ToString() << "\n" << line;
    EXPECT_EQ((*t)->ToText(), line + "\n");
    auto again = Table::Parse((*t)->ToText(), MirrorOptions());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ((*again)->ToText(), (*t)->ToText());
  }
}

TEST_F(MirrorTest, ConstructorErrorsSayWhatToFix) {
  auto opts_without = [&](bool reactor, bool mover) {
    TableOptions o = MirrorOptions();
    if (!reactor) o.env.reactor = nullptr;
    if (!mover) o.env.mover = nullptr;
    return Table::Parse("0 2048 mirror core 1 128 2 a 0 b 0", o);
  };
  EXPECT_NE(opts_without(false, true).status().message().find("needs a reactor"),
            std::string::npos);
  EXPECT_NE(opts_without(true, false).status().message().find("needs a data mover"),
            std::string::npos);
  const std::pair<std::string, std::string> cases[] = {
      {"mirror core", "got too few arguments"},
      {"mirror ram 1 128 2 a 0 b 0", "log type 'ram' is neither core nor disk"},
      {"mirror core x 128 2 a 0 b 0", "number of log arguments 'x' is not a decimal number"},
      {"mirror core 4 128 2 a 0 b 0", "number of log arguments 4 is larger than 3"},
      {"mirror core 3 128", "the line ends before <#legs>"},
      {"mirror core 0 2 a 0 b 0", "core log takes <region_size> [sync|nosync], got 0"},
      {"mirror disk 1 log 2 a 0 b 0", "disk log takes <log_dev> <region_size>"},
      {"mirror core 1 100 2 a 0 b 0", "region size 100 is not a power of two >= 8 sectors"},
      {"mirror core 1 4 2 a 0 b 0", "region size 4 is not a power of two"},
      {"mirror core 2 128 often 2 a 0 b 0", "log argument 'often' is neither sync nor nosync"},
      {"mirror core 1 128 1 a 0", "number of legs 1 is less than 2"},
      {"mirror core 1 128 33 a 0", "number of legs 33 is larger than 32"},
      {"mirror core 1 128 3 a 0 b 0", "3 legs need 6 words (<dev> <offset> each), only 4"},
      {"mirror core 1 128 2 a 0 zz 0", "leg 1: device 'zz' does not exist"},
      {"mirror core 1 128 2 a 0 b 2000", "leg 1: device 'b' has 2048 sectors"},
      {"mirror core 1 128 2 a 0 b x", "leg offset 'x' is not a decimal number"},
      {"mirror core 1 128 2 a 0 b 0 2 handle_errors",
       "number of feature arguments 2 does not "
       "match the 1 words that follow it"},
      {"mirror core 1 128 2 a 0 b 0 1 fast",
       "unknown feature 'fast' (known: handle_errors, "
       "resync_rate <bytes_per_s>)"},
      {"mirror core 1 128 2 a 0 b 0 2 handle_errors handle_errors",
       "feature handle_errors is given twice"},
      {"mirror core 1 128 2 a 0 b 0 1 resync_rate", "resync_rate needs <bytes_per_s>"},
      {"mirror core 1 128 2 a 0 b 0 4 resync_rate 1 resync_rate 2",
       "feature resync_rate is given twice"},
      {"mirror core 1 128 2 a 0 b 0 2 resync_rate -1",
       "resync_rate (bytes/s) '-1' is not a decimal number"},
      {"mirror disk 2 nolog 128 2 a 0 b 0", "device 'nolog' does not exist"},
      {"mirror disk 2 tiny 128 2 a 0 b 0", "device 'tiny' has 16 sectors; offset 0 + length 24"},
      {"mirror disk 2 a 128 2 a 0 b 0", "device 'a' is both a leg and the log device"},
  };
  for (const auto& [args, want] : cases) {
    const std::string err = BuildError("0 2048 " + args);
    EXPECT_NE(err.find(want), std::string::npos) << args << "\n  got: " << err;
    EXPECT_EQ(err.rfind("line 1: mirror: ", 0), 0u) << err;
  }
}

TEST_F(MirrorTest, DiskLogErrorsSayWhatToFix) {
  auto log = registry_.Find("log");
  Bytes junk(4096, 0x5a);
  ASSERT_EQ(Write(*log, 0, junk), IoStatus::kOk);
  EXPECT_NE(BuildError("0 2048 mirror disk 2 log 128 2 a 0 b 0").find("zero its first 4096 bytes"),
            std::string::npos);
  ASSERT_EQ(Write(*log, 0, Bytes(4096, 0)), IoStatus::kOk);
  auto v = Mirror("0 2048 mirror disk 3 log 128 nosync 2 a 0 b 0");  // formats the blank log
  v.reset();
  const std::string err = BuildError("0 2048 mirror disk 2 log 64 2 a 0 b 0");
  EXPECT_NE(err.find("holds a log of 16 regions of 128 sectors over 2 legs; the table has 32 "
                     "of 64 over 2 (zero the log device"),
            std::string::npos)
      << err;
}

TEST_F(MirrorTest, MapCutsAtRegionBoundariesAndFlushesEveryLeg) {
  auto t = Table::Parse("0 1024 mirror core 1 128 3 a 0 b 8 c 16", MirrorOptions());
  ASSERT_TRUE(t.ok());
  std::vector<MappedPiece> pieces;
  ASSERT_TRUE((*t)->Map(IoOp::kRead, kRegionBytes - 512, 2 * kRegionBytes, &pieces).ok());
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0].len_bytes, 512u);
  EXPECT_EQ(pieces[1].volume_offset_bytes, kRegionBytes);
  EXPECT_EQ(pieces[1].len_bytes, kRegionBytes);
  EXPECT_EQ(pieces[2].len_bytes, kRegionBytes - 512);
  EXPECT_EQ(pieces[0].dev, a_.get());
  EXPECT_EQ(pieces[0].dev_offset_bytes, kRegionBytes - 512);
  pieces.clear();  // the last sector of the target
  ASSERT_TRUE((*t)->Map(IoOp::kWrite, 1024 * 512 - 512, 512, &pieces).ok());
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0].dev_offset_bytes, 1024u * 512 - 512);
  EXPECT_FALSE((*t)->Map(IoOp::kWrite, 1024 * 512 - 512, 1024, &pieces).ok());
  pieces.clear();
  ASSERT_TRUE((*t)->Map(IoOp::kFlush, 0, 0, &pieces).ok());
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[1].dev, b_.get());
  EXPECT_EQ(pieces[1].dev_offset_bytes, 8u * 512);
  EXPECT_EQ(pieces[2].dev, c_.get());
}

TEST_F(MirrorTest, WritesReachEveryLegAtItsOffset) {
  auto v = Mirror("0 1024 mirror core 2 128 nosync 3 a 0 b 1024 c 512");
  EXPECT_EQ(v->StatusText(), "0 1024 mirror 3 a b c 8/8 1 AAA 1 core\n");
  const Bytes data = Pattern(3 * kRegionBytes, 1);
  ASSERT_EQ(Write(*v, 100, data), IoStatus::kOk);
  const size_t n = data.size() / 512;
  EXPECT_EQ(Read(*a_, 100, n), data);
  EXPECT_EQ(Read(*b_, 1024 + 100, n), data);
  EXPECT_EQ(Read(*c_, 512 + 100, n), data);
  EXPECT_EQ(Read(*v, 100, n), data);
  EXPECT_EQ(Io(*v, IoOp::kWriteZeroes, 100, 8), IoStatus::kOk);
  EXPECT_EQ(Read(*c_, 512 + 100, 8), Bytes(8 * 512, 0));
}

TEST_F(MirrorTest, ReadsAreBalancedAcrossInSyncLegs) {
  auto v = Mirror("0 2048 mirror core 2 128 nosync 3 a 0 b 0 c 0");
  for (int i = 0; i < 90; ++i) Read(*v, (i * 8) % 2048, 8);
  EXPECT_EQ(Stats(*v)["reads"], "30,30,30");
}

TEST_F(MirrorTest, FlushAndFuaReachEveryLeg) {
  auto fb = FaultyB();
  auto v = Mirror("0 2048 mirror core 2 128 nosync 2 a 0 fb 0");
  EXPECT_EQ(Io(*v, IoOp::kFlush, 0, 0), IoStatus::kOk);
  EXPECT_EQ(fb->requests(IoOp::kFlush), 1u);
  EXPECT_EQ(Io(*v, IoOp::kWrite, 0, 8, 0x11, nullptr, block::kIoFua), IoStatus::kOk);
  EXPECT_EQ(fb->requests(IoOp::kWrite), 1u);
  EXPECT_EQ(Stats(*v)["writes"], "1,1");
}

TEST_F(MirrorTest, FailedLegIsDroppedAndTheVolumeKeepsServing) {
  auto fb = FaultyB();
  auto v = Mirror("0 2048 mirror core 2 128 nosync 2 a 0 fb 0 1 handle_errors");
  const Bytes d1 = Pattern(16 * 512, 2);
  ASSERT_EQ(Write(*v, 0, d1), IoStatus::kOk);
  fb->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(2048)});
  const Bytes d2 = Pattern(16 * 512, 3);
  EXPECT_EQ(Write(*v, 256, d2), IoStatus::kOk);  // a took it
  EXPECT_EQ(v->StatusText(), "0 2048 mirror 2 a fb 15/16 1 AD 1 core\n");
  EXPECT_EQ(Read(*a_, 256, 16), d2);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Read(*v, 256, 16), d2);  // only from a now
  EXPECT_EQ(Read(*v, 0, 16), d1);
  EXPECT_EQ(Stats(*v)["reads"], "5,0");
}

TEST_F(MirrorTest, ReadErrorRetriesOnAnotherLeg) {
  auto fb = FaultyB();
  auto v = Mirror("0 2048 mirror core 2 128 nosync 2 a 0 fb 0 1 handle_errors");
  const Bytes d = Pattern(8 * 512, 4);
  ASSERT_EQ(Write(*v, 8, d), IoStatus::kOk);
  fb->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(2048), .on_write = false});
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Read(*v, 8, 8), d);
  EXPECT_EQ(v->StatusText(), "0 2048 mirror 2 a fb 16/16 1 AR 1 core\n");
  EXPECT_EQ(Stats(*v)["reads"], "4,1");
}

TEST_F(MirrorTest, WriteFailsOnlyWhenNoLegTookIt) {
  auto fa = std::make_shared<backends::FaultyDevice>(a_, "fa");
  ASSERT_TRUE(registry_.Add(fa).ok());
  auto fb = FaultyB();
  auto v = Mirror("0 2048 mirror core 2 128 nosync 2 fa 0 fb 0 1 handle_errors");
  fa->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(2048)});
  fb->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(2048)});
  EXPECT_EQ(Io(*v, IoOp::kWrite, 0, 8, 0x11), IoStatus::kIoError);
  EXPECT_EQ(Io(*v, IoOp::kWrite, 0, 8, 0x11), IoStatus::kIoError);  // no leg left
  EXPECT_EQ(Io(*v, IoOp::kRead, 0, 8), IoStatus::kIoError);
  EXPECT_EQ(Io(*v, IoOp::kFlush, 0, 0), IoStatus::kIoError);
  EXPECT_NE(v->StatusText().find(" 1 DD "), std::string::npos) << v->StatusText();
}

TEST_F(MirrorTest, WithoutHandleErrorsALegErrorFailsTheRequest) {
  auto fb = FaultyB();
  auto v = Mirror("0 2048 mirror core 2 128 nosync 2 a 0 fb 0");
  fb->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(2048)});
  EXPECT_EQ(Io(*v, IoOp::kWrite, 0, 8, 0x11), IoStatus::kIoError);
  EXPECT_EQ(Read(*a_, 0, 1)[0], 0x11);
  EXPECT_EQ(v->StatusText(), "0 2048 mirror 2 a fb 16/16 1 AA 1 core\n");
}

TEST_F(MirrorTest, MessagesAreCheckedAndDocumentedInTheirErrors) {
  auto v = Mirror("0 2048 mirror core 2 128 nosync 2 a 0 b 0");
  EXPECT_NE(Msg(*v, {"readd", "zz"}).message().find("no leg 'zz'"), std::string::npos);
  EXPECT_NE(Msg(*v, {"readd", "b"}).message().find("leg b is not failed"), std::string::npos);
  EXPECT_NE(Msg(*v, {"resync_rate", "x"}).message().find("is not a decimal number"),
            std::string::npos);
  EXPECT_NE(Msg(*v, {"bogus"}).message().find("mirror messages are 'readd <leg>'"),
            std::string::npos);
  EXPECT_TRUE(Msg(*v, {"resync_rate", "4096"}).ok());
  EXPECT_EQ(Stats(*v)["resync_rate"], "4096");
}

TEST_F(MirrorTest, ReaddResyncsOnlyWhatTheLegMissed) {
  auto fb = FaultyB();
  auto v = Mirror("0 2048 mirror core 2 128 nosync 2 a 0 fb 0 1 handle_errors");
  fb->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(2048)});
  ASSERT_EQ(Write(*v, 128, Pattern(512, 5)), IoStatus::kOk);       // region 1: fails fb
  ASSERT_EQ(Write(*v, 3 * 128, Pattern(1024, 6)), IoStatus::kOk);  // region 3, fb skipped
  EXPECT_EQ(SyncField(*v), "14/16");
  fb->ClearFaults();
  ASSERT_TRUE(Msg(*v, {"readd", "fb"}).ok());
  WaitInSync(*v);
  EXPECT_EQ(v->StatusText(), "0 2048 mirror 2 a fb 16/16 1 AA 1 core\n");
  EXPECT_EQ(Stat(*v, "resync_regions"), 2u);
  EXPECT_EQ(Read(*a_, 0, 2048), Read(*b_, 0, 2048));
}

TEST_F(MirrorTest, ALegReaddedDuringARegionCopyStillGetsThatRegion) {
  auto fb = FaultyB();
  auto fc = std::make_shared<backends::FaultyDevice>(c_, "fc");
  ASSERT_TRUE(registry_.Add(fc).ok());
  auto v = Mirror("0 2048 mirror core 2 128 nosync 3 a 0 fb 0 fc 0 1 handle_errors");
  fc->AddErrorRange({.lba = Lba(0), .blocks = BlockCount(2048)});
  const Bytes d2 = Pattern(4096, 8);
  ASSERT_EQ(Write(*v, 2 * 128, d2), IoStatus::kOk);  // fc fails and misses region 2
  fc->ClearFaults();
  fb->SetDelay(std::chrono::milliseconds(20));  // region copies into fb are slow
  ASSERT_TRUE(Msg(*v, {"resync"}).ok());
  reactor_->RunUntil([&] { return Stat(*v, "resync_regions") == 2; });  // region 2 copying
  ASSERT_TRUE(Msg(*v, {"readd", "fc"}).ok());
  fb->SetDelay(std::chrono::microseconds(0));
  WaitInSync(*v);
  EXPECT_EQ(Read(*c_, 2 * 128, 8), d2);
  EXPECT_EQ(Read(*a_, 0, 2048), Read(*c_, 0, 2048));
  EXPECT_EQ(Read(*b_, 0, 2048), Read(*c_, 0, 2048));
}

// A model check: random writes and reads against an in-memory model while leg b fails and
// is readded; every read matches the model and the legs end identical.
TEST_F(MirrorTest, RandomIoWithLegFailuresMatchesTheModel) {
  auto fb = FaultyB();
  auto v = Mirror("0 2048 mirror core 2 128 nosync 3 a 0 fb 0 c 0 1 handle_errors");
  Bytes model(kDevBytes, 0);
  std::mt19937 rng(7);
  for (int step = 0; step < 300; ++step) {
    const uint64_t lba = rng() % 2000;
    const uint64_t n = 1 + rng() % std::min<uint64_t>(48, 2048 - lba);
    switch (rng() % 10) {
      case 0: fb->AddErrorRange({.lba = Lba(rng() % 2048), .blocks = BlockCount(64)}); break;
      case 1:
        fb->ClearFaults();
        (void)Msg(*v, {"readd", "fb"});
        break;
      case 2:
      case 3:
      case 4: {
        EXPECT_EQ(Read(*v, lba, n),
                  Bytes(model.begin() + lba * 512, model.begin() + (lba + n) * 512))
            << "step " << step;
        break;
      }
      default: {
        const Bytes d = Pattern(n * 512, static_cast<uint32_t>(step));
        ASSERT_EQ(Write(*v, lba, d), IoStatus::kOk);
        std::copy(d.begin(), d.end(), model.begin() + lba * 512);
      }
    }
  }
  fb->ClearFaults();
  (void)Msg(*v, {"readd", "fb"});
  WaitInSync(*v);
  EXPECT_EQ(Read(*a_, 0, 2048), model);
  EXPECT_EQ(Read(*b_, 0, 2048), model);
  EXPECT_EQ(Read(*c_, 0, 2048), model);
}

}  // namespace
}  // namespace ferry::volume::mirror
