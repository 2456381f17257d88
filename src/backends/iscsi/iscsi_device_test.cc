// IscsiDevice against an in-process Ferry target: Open errors, CHAP, the raw-CDB channel and
// the pages the copy initiator reads, and a session dropped with writes in flight.
#include "backends/iscsi/iscsi_device.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>

#include "backends/faulty/faulty_device.h"
#include "backends/iscsi/testing/iscsi_test_target.h"
#include "io/reactor.h"

namespace ferry::backends::iscsi {
namespace {

using testing::TestTarget;
using Clock = std::chrono::steady_clock;

class IscsiDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = io::Reactor::Create(io::Reactor::Options{.name = "test"});
    ASSERT_TRUE(r.ok());
    reactor_ = std::move(r).value();
  }

  // Runs the reactor until `done` or `limit` passes; false on timeout.
  template <typename Pred>
  bool RunFor(Pred done, std::chrono::seconds limit) {
    auto deadline = Clock::now() + limit;
    bool timed_out = false;
    io::Reactor::TimerId t = reactor_->RunAfter(limit, [&] { timed_out = true; });
    reactor_->RunUntil([&] { return done() || timed_out || Clock::now() > deadline; });
    reactor_->CancelTimer(t);
    return done();
  }

  IoStatus Io(block::BlockDevice& dev, block::IoOp op, uint64_t lba, std::vector<uint8_t>* buf,
              uint8_t flags = 0) {
    block::IoRequest req;
    iovec iov{buf->data(), buf->size()};
    req.op = op;
    req.flags = flags;
    req.lba = Lba(lba);
    req.blocks = BlockCount(buf->size() / dev.geometry().block_size);
    req.iov = &iov;
    req.iovcnt = 1;
    bool done = false;
    IoStatus st = IoStatus::kIoError;
    req.done = [&](IoStatus s) {
      st = s;
      done = true;
    };
    dev.Submit(req);
    EXPECT_TRUE(RunFor([&] { return done; }, std::chrono::seconds(60)));
    return st;
  }

  static IscsiOptions Options(const std::string& url) {
    return IscsiOptions{.name = "remote", .url = url, .timeout_s = 10};
  }

  std::unique_ptr<io::Reactor> reactor_;
};

std::string Message(const Result<std::shared_ptr<IscsiDevice>>& r) {
  return r.ok() ? "(opened)" : std::string(r.status().message());
}

TEST_F(IscsiDeviceTest, OpensAndReportsWhatItProbed) {
  TestTarget target;
  uint64_t lun = target.AddRamLun(8u << 20, 4096);
  auto dev = IscsiDevice::Open(Options(target.Url(lun)));
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  EXPECT_EQ((*dev)->type(), "iscsi");
  EXPECT_EQ((*dev)->name(), "remote");
  EXPECT_EQ((*dev)->geometry().block_size, 4096u);
  EXPECT_EQ((*dev)->geometry().size_bytes(), 8u << 20);
  EXPECT_EQ((*dev)->target_iqn(), testing::kTestIqn);
  EXPECT_EQ((*dev)->portal(), "127.0.0.1:" + std::to_string(target.port()));
  EXPECT_EQ((*dev)->lun(), lun);
  // The test LUs have no copy manager: no native copy, and the reason says so.
  std::string why;
  ASSERT_NE((*dev)->copy_offload(), nullptr);
  EXPECT_FALSE((*dev)->copy_offload()->CanCopyFrom(**dev, &why));
  EXPECT_FALSE(why.empty());
  const RemoteLuPages& p = (*dev)->pages();
  ASSERT_GE(p.vpd83.size(), 4u);
  EXPECT_EQ(p.vpd83[1], 0x83);
  if (!p.vpd8f.empty()) {
    EXPECT_EQ(p.vpd8f[1], 0x8f);
  }
  // rcop stays empty here: the test LUs have no copy manager, so RECEIVE COPY RESULTS fails.
  EXPECT_GT((*dev)->limits().max_discard_bytes, 0u);
  EXPECT_GT((*dev)->limits().max_write_zeroes_bytes, 0u);
}

TEST_F(IscsiDeviceTest, ChannelSendsRawCdbs) {
  TestTarget target;
  uint64_t lun = target.AddRamLun(1u << 20, 512);
  auto dev = IscsiDevice::Open(Options(target.Url(lun)));
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  ScsiCommand inq;
  inq.cdb[0] = 0x12;  // INQUIRY, VPD 83h
  inq.cdb[1] = 0x01;
  inq.cdb[2] = 0x83;
  inq.cdb[4] = 255;
  inq.cdb_len = 6;
  inq.data_in_len = 255;
  bool done = false;
  inq.done = [&] { done = true; };
  (*dev)->channel().Execute(lun, inq);
  EXPECT_FALSE(done) << "completed inside Execute";
  ASSERT_TRUE(RunFor([&] { return done; }, std::chrono::seconds(30)));
  EXPECT_EQ(inq.transport, IoStatus::kOk);
  EXPECT_EQ(inq.scsi_status, kScsiStatusGood);
  EXPECT_EQ(inq.data_in, (*dev)->pages().vpd83);
  (*dev)->channel().Abort(inq);  // completed: no effect

  ScsiCommand bad;  // READ(16) past the end: ILLEGAL REQUEST, LBA OUT OF RANGE
  bad.cdb[0] = 0x88;
  bad.cdb[2] = 0x7f;
  bad.cdb[13] = 1;
  bad.cdb_len = 16;
  bad.data_in_len = 512;
  done = false;
  bad.done = [&] { done = true; };
  (*dev)->channel().Execute(lun, bad);
  ASSERT_TRUE(RunFor([&] { return done; }, std::chrono::seconds(30)));
  EXPECT_EQ(bad.transport, IoStatus::kOk);
  EXPECT_EQ(bad.scsi_status, kScsiStatusCheckCondition);
  EXPECT_EQ(bad.sense.key, 0x5);
  EXPECT_EQ(bad.sense.asc, 0x21);
}

TEST_F(IscsiDeviceTest, ChapRightSecretOpensWrongSecretIsNamed) {
  auto creds = std::make_shared<ferry::iscsi::ChapCredentials>(
      ferry::iscsi::ChapCredentials{.user = "alice", .secret = "correct-horse-12"});
  TestTarget target(creds);
  uint64_t lun = target.AddRamLun(1u << 20, 512);
  IscsiOptions o = Options(target.Url(lun));
  o.chap_user = "alice";
  o.chap_secret = "correct-horse-12";
  auto good = IscsiDevice::Open(o);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  std::vector<uint8_t> buf(512, 0xab);
  EXPECT_EQ(Io(**good, block::IoOp::kWrite, 3, &buf), IoStatus::kOk);

  o.chap_secret = "wrong-secret-123";
  auto bad = IscsiDevice::Open(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(Message(bad).find(o.url), std::string::npos) << Message(bad);
  EXPECT_NE(Message(bad).find("CHAP"), std::string::npos) << Message(bad);
  EXPECT_EQ(Message(bad).find("wrong-secret-123"), std::string::npos) << "secret in the error";

  o.chap_user.clear();
  o.chap_secret.clear();
  auto none = IscsiDevice::Open(o);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(Message(none).find(o.url), std::string::npos) << Message(none);
  EXPECT_NE(Message(none).find("CHAP"), std::string::npos) << Message(none);
}

TEST_F(IscsiDeviceTest, MutualChap) {
  auto creds = std::make_shared<ferry::iscsi::ChapCredentials>(
      ferry::iscsi::ChapCredentials{.user = "alice",
                                    .secret = "correct-horse-12",
                                    .mutual_user = "array",
                                    .mutual_secret = "battery-staple-34"});
  TestTarget target(creds);
  uint64_t lun = target.AddRamLun(1u << 20, 512);
  IscsiOptions o = Options(target.Url(lun));
  o.chap_user = "alice";
  o.chap_secret = "correct-horse-12";
  o.mutual_user = "array";
  o.mutual_secret = "battery-staple-34";
  auto good = IscsiDevice::Open(o);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  std::vector<uint8_t> buf(512, 0xcd);
  EXPECT_EQ(Io(**good, block::IoOp::kWrite, 1, &buf), IoStatus::kOk);

  o.mutual_secret = "not-the-arrays-1";  // the target cannot prove itself
  auto none = IscsiDevice::Open(o);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(Message(none).find(o.url), std::string::npos) << Message(none);
  EXPECT_NE(Message(none).find("CHAP"), std::string::npos) << Message(none);
}

TEST_F(IscsiDeviceTest, OpenErrorsNameTheUrlAndTheCause) {
  TestTarget target;
  uint64_t lun = target.AddRamLun(1u << 20, 512);

  std::string unknown = "iscsi://127.0.0.1:" + std::to_string(target.port()) +
                        "/iqn.2026-11.org.ferry:nobody/" + std::to_string(lun);
  auto r = IscsiDevice::Open(Options(unknown));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Message(r).find(unknown), std::string::npos) << Message(r);
  EXPECT_NE(Message(r).find("unknown target IQN"), std::string::npos) << Message(r);

  std::string missing = target.Url(lun + 100);
  r = IscsiDevice::Open(Options(missing));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Message(r).find(missing), std::string::npos) << Message(r);
  EXPECT_NE(Message(r).find("LUN " + std::to_string(lun + 100) + " not present"), std::string::npos)
      << Message(r);

  // A port bound but not listening refuses connections.
  int s = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(s, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  ASSERT_EQ(getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
  std::string refused =
      "iscsi://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/" + testing::kTestIqn + "/0";
  r = IscsiDevice::Open(Options(refused));
  close(s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(Message(r).find(refused), std::string::npos) << Message(r);
  EXPECT_NE(Message(r).find("cannot reach 127.0.0.1:"), std::string::npos) << Message(r);

  r = IscsiDevice::Open(Options("iscsi://127.0.0.1/iqn.x:y/z"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(Message(r).find("iscsi://127.0.0.1/iqn.x:y/z"), std::string::npos) << Message(r);
}

// The target goes away and comes back on the same port while writes are in flight: every
// write acknowledged kOk reads back.
TEST_F(IscsiDeviceTest, WritesSurviveAReconnect) {
  TestTarget target;
  uint64_t lun = target.AddRamLun(4u << 20, 512);
  auto opened = IscsiDevice::Open(Options(target.Url(lun)));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  IscsiDevice& dev = **opened;
  constexpr int kWrites = 64;
  constexpr uint64_t kBlocks = 8;
  struct W {
    block::IoRequest req;
    iovec iov{};
    std::vector<uint8_t> data;
    bool done = false;
    IoStatus st = IoStatus::kIoError;
  };
  std::vector<W> w(kWrites);
  std::mt19937 rng(7);
  auto submit = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      w[i].data.resize(kBlocks * 512);
      for (auto& b : w[i].data) b = static_cast<uint8_t>(rng());
      w[i].iov = {w[i].data.data(), w[i].data.size()};
      w[i].req.op = block::IoOp::kWrite;
      w[i].req.lba = Lba(i * kBlocks);
      w[i].req.blocks = BlockCount(kBlocks);
      w[i].req.iov = &w[i].iov;
      w[i].req.iovcnt = 1;
      W* p = &w[i];
      w[i].req.done = [p](IoStatus s) {
        p->st = s;
        p->done = true;
      };
      dev.Submit(w[i].req);
    }
  };
  auto all_done = [&](int to) {
    for (int i = 0; i < to; ++i) {
      if (!w[i].done) return false;
    }
    return true;
  };
  submit(0, kWrites / 2);
  ASSERT_TRUE(RunFor([&] { return all_done(kWrites / 2); }, std::chrono::seconds(30)));
  submit(kWrites / 2, kWrites);
  reactor_->RunOnce(false);  // some of them onto the wire
  target.Stop();
  target.Restart();
  ASSERT_TRUE(RunFor([&] { return all_done(kWrites); }, std::chrono::seconds(90)))
      << "writes did not complete after the target came back";
  int ok = 0;
  for (auto& x : w) ok += x.st == IoStatus::kOk;
  EXPECT_GE(ok, kWrites / 2);
  for (int i = 0; i < kWrites; ++i) {
    if (w[i].st != IoStatus::kOk) continue;
    std::vector<uint8_t> back(kBlocks * 512);
    ASSERT_EQ(Io(dev, block::IoOp::kRead, i * kBlocks, &back), IoStatus::kOk) << i;
    EXPECT_EQ(back, w[i].data) << "acknowledged write " << i << " did not read back";
  }
}

// The array's LU grows, then shrinks, while the device is open: the target's CAPACITY DATA
// HAS CHANGED makes the device re-read the size and take it; requests are checked against
// the new size, and the bytes already there stay.
TEST_F(IscsiDeviceTest, FollowsTheArraysCapacityChanges) {
  TestTarget target;
  auto ram = RamDevice::Create({.name = "grows", .size_bytes = 8u << 20, .block_size = 512});
  ASSERT_TRUE(ram.ok());
  auto remote = std::make_shared<FaultyDevice>(*ram);
  remote->SetCapacity(BlockCount(4096));  // 2 MiB of 8
  const uint64_t lun = target.AddLun(remote);
  auto opened = IscsiDevice::Open(Options(target.Url(lun)));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  IscsiDevice& dev = **opened;
  ASSERT_EQ(dev.geometry().num_blocks.value(), 4096u);
  std::vector<uint8_t> data(4096, 0x5a);
  ASSERT_EQ(Io(dev, block::IoOp::kWrite, 0, &data), IoStatus::kOk);
  std::vector<uint8_t> past(4096, 0x77);
  EXPECT_EQ(Io(dev, block::IoOp::kWrite, 8192, &past), IoStatus::kInvalid);

  target.RunOnTarget([&remote] { remote->SetCapacity(BlockCount(16384)); });  // grown to 8 MiB
  std::vector<uint8_t> back(4096);
  ASSERT_EQ(Io(dev, block::IoOp::kRead, 0, &back), IoStatus::kOk);  // retried after the UA
  EXPECT_EQ(back, data);
  ASSERT_TRUE(
      RunFor([&] { return dev.geometry().num_blocks.value() == 16384; }, std::chrono::seconds(10)))
      << "still " << dev.geometry().num_blocks.value() << " blocks";
  ASSERT_EQ(Io(dev, block::IoOp::kWrite, 8192, &past), IoStatus::kOk);
  ASSERT_EQ(Io(dev, block::IoOp::kRead, 8192, &back), IoStatus::kOk);
  EXPECT_EQ(back, past);

  target.RunOnTarget([&remote] { remote->SetCapacity(BlockCount(1024)); });  // shrunk to 512 KiB
  ASSERT_EQ(Io(dev, block::IoOp::kRead, 0, &back), IoStatus::kOk);
  EXPECT_EQ(back, data);
  ASSERT_TRUE(
      RunFor([&] { return dev.geometry().num_blocks.value() == 1024; }, std::chrono::seconds(10)));
  EXPECT_EQ(Io(dev, block::IoOp::kRead, 8192, &back), IoStatus::kInvalid);
}

// The target goes away for good: requests fail with kIoError once libiscsi gives up.
TEST_F(IscsiDeviceTest, GivesUpWhenTheTargetStaysAway) {
  auto target = std::make_unique<TestTarget>();
  uint64_t lun = target->AddRamLun(1u << 20, 512);
  auto opened = IscsiDevice::Open(Options(target->Url(lun)));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::vector<uint8_t> buf(4096, 1);
  ASSERT_EQ(Io(**opened, block::IoOp::kWrite, 0, &buf), IoStatus::kOk);
  target.reset();
  EXPECT_EQ(Io(**opened, block::IoOp::kWrite, 8, &buf), IoStatus::kIoError);
}

}  // namespace
}  // namespace ferry::backends::iscsi
