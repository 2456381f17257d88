#include "block/splitter.h"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <vector>

#include "backends/ram/ram_device.h"
#include "io/reactor.h"

namespace ferry::block {
namespace {

using namespace std::chrono_literals;

// An in-memory device with tiny limits that checks every request it gets against them,
// records it, and completes it from a posted task (or holds it for the test to release).
class FakeDevice : public BlockDevice {
 public:
  struct Seen {
    IoOp op;
    uint8_t flags;
    uint64_t lba;
    uint64_t blocks;
    std::vector<iovec> iov;
  };

  FakeDevice(uint64_t blocks, QueueLimits limits, bool ro = false)
      : limits_(limits), ro_(ro), data_(blocks * 512, 0) {
    geo_.block_size = 512;
    geo_.num_blocks = BlockCount(blocks);
  }
  std::string_view name() const override { return "fake"; }
  std::string_view type() const override { return "fake"; }
  const Geometry& geometry() const override { return geo_; }
  const QueueLimits& limits() const override { return limits_; }
  bool read_only() const override { return ro_; }

  void Submit(IoRequest& req) override {
    seen.push_back({req.op, req.flags, req.lba.value(), req.blocks.value(),
                    std::vector<iovec>(req.iov, req.iov + req.iovcnt)});
    IoStatus st = ValidateRequest(*this, req);
    if (st != IoStatus::kOk) ++violations;
    if (st == IoStatus::kOk) st = Inject(req);
    if (st == IoStatus::kOk) Apply(req);
    max_in_flight = std::max(max_in_flight, ++in_flight);
    if (hold) {
      held.push_back({&req, st});
      return;
    }
    Finish(req, st);
  }

  // Completes the held request at `index` with its status, or with `st` when given.
  void Release(size_t index, std::optional<IoStatus> st = std::nullopt) {
    auto [req, status] = held[index];
    held.erase(held.begin() + index);
    Finish(*req, st.value_or(status));
  }

  std::vector<uint8_t>& data() { return data_; }

  std::vector<Seen> seen;
  int violations = 0;
  int in_flight = 0;
  int max_in_flight = 0;
  bool hold = false;
  std::deque<std::pair<IoRequest*, IoStatus>> held;
  std::map<uint64_t, int> no_resources;      // lba -> how many more times to say kNoResources
  std::map<uint64_t, IoStatus> fail_at_lba;  // children starting at lba fail with the status

 private:
  IoStatus Inject(const IoRequest& req) {
    auto nr = no_resources.find(req.lba.value());
    if (nr != no_resources.end() && nr->second != 0) {
      if (nr->second > 0) --nr->second;
      return IoStatus::kNoResources;
    }
    auto f = fail_at_lba.find(req.lba.value());
    return f == fail_at_lba.end() ? IoStatus::kOk : f->second;
  }

  void Apply(const IoRequest& req) {
    uint8_t* at = data_.data() + req.lba.value() * 512;
    if (req.op == IoOp::kDiscard || req.op == IoOp::kWriteZeroes) {
      std::memset(at, 0, req.blocks.value() * 512);
    }
    for (uint32_t i = 0; i < req.iovcnt; ++i) {
      if (req.op == IoOp::kRead) std::memcpy(req.iov[i].iov_base, at, req.iov[i].iov_len);
      if (req.op == IoOp::kWrite) std::memcpy(at, req.iov[i].iov_base, req.iov[i].iov_len);
      at += req.iov[i].iov_len;
    }
  }

  void Finish(IoRequest& req, IoStatus st) {
    io::Reactor::Current()->Post([this, &req, st] {
      --in_flight;
      req.done(st);
    });
  }

  Geometry geo_;
  QueueLimits limits_;
  bool ro_;
  std::vector<uint8_t> data_;
};

QueueLimits Tiny() {
  QueueLimits l;
  l.max_io_bytes = 4 * 512;
  l.max_iovecs = 3;
  l.max_discard_bytes = 3 * 512;
  l.max_write_zeroes_bytes = 0;
  return l;
}

class SplitterTest : public ::testing::Test {
 protected:
  void SetUp() override { reactor_ = std::move(io::Reactor::Create()).value(); }

  struct Result {
    int calls = 0;
    IoStatus status = IoStatus::kIoError;
  };

  // Submits through the splitter and waits; checks exactly once and never inline.
  IoStatus Split(BlockDevice& dev, IoRequest& req, const SplitOptions& opt = {}) {
    Result r;
    req.done = [&r](IoStatus s) {
      ++r.calls;
      r.status = s;
    };
    SubmitSplit(dev, req, opt);
    EXPECT_EQ(r.calls, 0) << "completed inside SubmitSplit";
    reactor_->RunUntil([&] { return r.calls > 0; });
    while (reactor_->RunOnce(false) > 0) {
    }
    EXPECT_EQ(r.calls, 1);
    return r.status;
  }

  IoStatus Simple(BlockDevice& dev, IoOp op, uint64_t lba, uint64_t blocks,
                  const SplitOptions& opt = {}) {
    IoRequest req;
    req.op = op;
    req.lba = Lba(lba);
    req.blocks = BlockCount(blocks);
    return Split(dev, req, opt);
  }

  // Cuts `buf` into iovecs of the given lengths (the last takes the rest).
  static std::vector<iovec> Cut(std::vector<uint8_t>& buf, std::vector<size_t> lens) {
    std::vector<iovec> iov;
    size_t at = 0;
    for (size_t len : lens) {
      iov.push_back({buf.data() + at, len});
      at += len;
    }
    if (at < buf.size()) iov.push_back({buf.data() + at, buf.size() - at});
    return iov;
  }

  IoStatus Payload(BlockDevice& dev, IoOp op, uint64_t lba, std::vector<iovec>& iov, uint64_t bytes,
                   const SplitOptions& opt = {}) {
    IoRequest req;
    req.op = op;
    req.lba = Lba(lba);
    req.blocks = BlockCount(bytes / dev.geometry().block_size);
    req.iov = iov.data();
    req.iovcnt = static_cast<uint32_t>(iov.size());
    return Split(dev, req, opt);
  }

  std::vector<uint8_t> Random(size_t n) {
    std::vector<uint8_t> v(n);
    for (auto& b : v) b = static_cast<uint8_t>(rng_());
    return v;
  }

  std::unique_ptr<io::Reactor> reactor_;
  std::mt19937 rng_{42};
};

TEST_F(SplitterTest, ReadsAndWritesAreCutAtBytesIovecsAndBlocks) {
  FakeDevice dev(200, Tiny());
  // Iovecs that straddle block boundaries, some tiny, one spanning several blocks.
  auto data = Random(37 * 512);
  auto iov = Cut(data, {100, 700, 1500, 3, 509, 4096, 1, 2000, 1});
  ASSERT_EQ(Payload(dev, IoOp::kWrite, 11, iov, data.size()), IoStatus::kOk);
  EXPECT_EQ(dev.violations, 0);
  uint64_t next = 11;
  for (const auto& s : dev.seen) {
    EXPECT_EQ(s.op, IoOp::kWrite);
    EXPECT_EQ(s.lba, next) << "children are issued in LBA order and leave no gaps";
    next += s.blocks;
  }
  EXPECT_EQ(next, 11u + 37u);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), dev.data().begin() + 11 * 512));
  EXPECT_LE(dev.max_in_flight, 8);

  std::vector<uint8_t> out(data.size());
  auto out_iov = Cut(out, {512 * 5, 7, 505, 1024});
  dev.seen.clear();
  ASSERT_EQ(Payload(dev, IoOp::kRead, 11, out_iov, out.size()), IoStatus::kOk);
  EXPECT_EQ(out, data);
  EXPECT_EQ(dev.violations, 0);
  EXPECT_GE(dev.seen.size(), 10u);  // 37 blocks, at most 4 per child
}

TEST_F(SplitterTest, IovecsTooSmallForMaxIovecsAreInvalid) {
  FakeDevice dev(100, Tiny());  // 3 iovecs per child, but one block needs 6 of them
  std::vector<uint8_t> buf(1024);
  std::vector<iovec> iov;
  for (size_t at = 0; at < buf.size(); at += 64) iov.push_back({buf.data() + at, 64});
  EXPECT_EQ(Payload(dev, IoOp::kWrite, 0, iov, buf.size()), IoStatus::kInvalid);
  EXPECT_TRUE(dev.seen.empty());
}

TEST_F(SplitterTest, IovecCapCutsBackToABlockBoundary) {
  FakeDevice dev(100, Tiny());  // 2048 bytes and 3 iovecs per child
  auto data = Random(12 * 600 + 2 * 512 - 12 * 600 % 512);
  std::vector<size_t> lens(12, 600);
  auto iov = Cut(data, lens);
  ASSERT_EQ(data.size() % 512, 0u);
  ASSERT_EQ(Payload(dev, IoOp::kWrite, 0, iov, data.size()), IoStatus::kOk);
  EXPECT_EQ(dev.violations, 0);
  // Three 600-byte iovecs hold 1800 bytes: the child is cut back to 3 blocks (600+600+336).
  ASSERT_GE(dev.seen.size(), 2u);
  EXPECT_EQ(dev.seen[0].blocks, 3u);
  ASSERT_EQ(dev.seen[0].iov.size(), 3u);
  EXPECT_EQ(dev.seen[0].iov[2].iov_len, 336u);
  EXPECT_EQ(dev.seen[1].iov[0].iov_base, data.data() + 1536);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), dev.data().begin()));
}

TEST_F(SplitterTest, CutsRespectBufferAlignmentLargerThanTheBlock) {
  QueueLimits l = Tiny();
  l.buffer_alignment = 1024;
  l.max_io_bytes = 3 * 1024;  // usable: 3 KiB, a multiple of the alignment
  l.max_iovecs = 2;
  FakeDevice dev(100, l);
  alignas(1024) static uint8_t raw[16 * 1024];
  std::vector<uint8_t> data = Random(sizeof(raw));
  std::memcpy(raw, data.data(), sizeof(raw));
  std::vector<iovec> iov = {{raw, 5 * 1024}, {raw + 5 * 1024, 1024}, {raw + 6 * 1024, 10 * 1024}};
  ASSERT_EQ(Payload(dev, IoOp::kWrite, 4, iov, sizeof(raw)), IoStatus::kOk);
  EXPECT_EQ(dev.violations, 0) << "a child broke the alignment";
  EXPECT_TRUE(std::equal(data.begin(), data.end(), dev.data().begin() + 4 * 512));
  // Misaligned payloads are refused before anything is submitted.
  dev.seen.clear();
  std::vector<iovec> bad = {{raw + 512, 1024}};
  EXPECT_EQ(Payload(dev, IoOp::kRead, 0, bad, 1024), IoStatus::kInvalid);
  EXPECT_TRUE(dev.seen.empty());
}

TEST_F(SplitterTest, DiscardAndWriteZeroesAreCutAtTheirLimits) {
  QueueLimits l = Tiny();
  l.max_write_zeroes_bytes = 4 * 512;
  FakeDevice dev(100, l);
  std::fill(dev.data().begin(), dev.data().end(), 0xee);
  ASSERT_EQ(Simple(dev, IoOp::kDiscard, 10, 10), IoStatus::kOk);
  std::vector<std::pair<uint64_t, uint64_t>> want = {{10, 3}, {13, 3}, {16, 3}, {19, 1}};
  ASSERT_EQ(dev.seen.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(dev.seen[i].op, IoOp::kDiscard);
    EXPECT_EQ(std::make_pair(dev.seen[i].lba, dev.seen[i].blocks), want[i]);
  }
  dev.seen.clear();
  ASSERT_EQ(Simple(dev, IoOp::kWriteZeroes, 50, 9), IoStatus::kOk);
  ASSERT_EQ(dev.seen.size(), 3u);
  for (const auto& s : dev.seen) EXPECT_EQ(s.op, IoOp::kWriteZeroes);
  EXPECT_EQ(dev.seen[2].blocks, 1u);
  EXPECT_EQ(dev.violations, 0);

  QueueLimits nodiscard = Tiny();
  nodiscard.max_discard_bytes = 0;
  FakeDevice plain(100, nodiscard);
  EXPECT_EQ(Simple(plain, IoOp::kDiscard, 0, 1), IoStatus::kNotSupported);
  EXPECT_TRUE(plain.seen.empty());
}

TEST_F(SplitterTest, WriteZeroesIsEmulatedFromTheSharedZeroBuffer) {
  QueueLimits l = Tiny();
  l.max_io_bytes = 3u << 20;  // 3 MiB, but only 3 iovecs of the 1 MiB zero buffer
  FakeDevice dev(20000, l);
  std::fill(dev.data().begin(), dev.data().end(), 0xee);
  const uint64_t lba = 7, blocks = 19000;
  ASSERT_EQ(Simple(dev, IoOp::kWriteZeroes, lba, blocks), IoStatus::kOk);
  EXPECT_EQ(dev.violations, 0);
  const void* zero = nullptr;
  for (const auto& s : dev.seen) {
    ASSERT_EQ(s.op, IoOp::kWrite);
    for (const iovec& v : s.iov) {
      if (zero == nullptr) zero = v.iov_base;
      EXPECT_EQ(v.iov_base, zero) << "every child writes from the one zero buffer";
      EXPECT_LE(v.iov_len, kZeroBufferBytes);
    }
  }
  EXPECT_EQ(reinterpret_cast<uintptr_t>(zero) % kZeroBufferAlignment, 0u);
  auto& d = dev.data();
  EXPECT_EQ(d[lba * 512 - 1], 0xee);
  EXPECT_EQ(d[(lba + blocks) * 512], 0xee);
  EXPECT_TRUE(std::all_of(d.begin() + lba * 512, d.begin() + (lba + blocks) * 512,
                          [](uint8_t b) { return b == 0; }));
  EXPECT_EQ(dev.seen.size(), 4u);  // 9.3 MiB in children of at most 3 MiB
}

TEST_F(SplitterTest, NoResourcesIsRetriedWithBackoff) {
  FakeDevice dev(100, Tiny());
  dev.no_resources[4] = 3;  // the second child is refused three times
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(Simple(dev, IoOp::kWriteZeroes, 0, 12), IoStatus::kOk);
  // 50 + 100 + 200 us of backoff at least.
  EXPECT_GE(std::chrono::steady_clock::now() - start, 350us);
  int at4 = 0;
  for (const auto& s : dev.seen) at4 += s.lba == 4;
  EXPECT_EQ(at4, 4);
  EXPECT_TRUE(std::all_of(dev.data().begin(), dev.data().begin() + 12 * 512,
                          [](uint8_t b) { return b == 0; }));
}

TEST_F(SplitterTest, NoResourcesGivesUpAfterTheBudget) {
  FakeDevice dev(100, Tiny());
  dev.no_resources[0] = -1;  // forever
  SplitOptions opt;
  opt.first_backoff = 100us;
  opt.max_backoff = 400us;
  opt.give_up_after = 2ms;
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Simple(dev, IoOp::kFlush, 0, 0, opt), IoStatus::kNoResources);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1900us);
  // 100 + 200 + 400 * 4 = 1.9 ms; one more 400 would pass 2 ms: 1 try + 6 retries.
  EXPECT_EQ(dev.seen.size(), 7u);
}

TEST_F(SplitterTest, FirstErrorByLbaWinsAndWaitsForChildrenInFlight) {
  FakeDevice dev(100, Tiny());
  dev.hold = true;
  SplitOptions opt;
  opt.max_in_flight = 3;
  IoRequest req;
  req.op = IoOp::kDiscard;
  req.lba = Lba(0);
  req.blocks = BlockCount(30);  // ten children of 3 blocks
  int calls = 0;
  IoStatus st = IoStatus::kOk;
  req.done = [&](IoStatus s) {
    ++calls;
    st = s;
  };
  SubmitSplit(dev, req, opt);
  ASSERT_EQ(dev.held.size(), 3u) << "at most max_in_flight children";
  dev.Release(2, IoStatus::kIoError);  // lba 6 fails first
  dev.Release(0, IoStatus::kOk);       // lba 0
  reactor_->RunUntil([&] { return dev.in_flight == 1; });
  EXPECT_EQ(dev.held.size(), 1u) << "no new children after a failure";
  EXPECT_EQ(calls, 0) << "completed with a child still in flight";
  dev.Release(0, IoStatus::kMiscompare);  // lba 3: lower than 6
  reactor_->RunUntil([&] { return calls > 0; });
  while (reactor_->RunOnce(false) > 0) {
  }
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(st, IoStatus::kMiscompare);
  EXPECT_EQ(dev.seen.size(), 3u);
}

TEST_F(SplitterTest, ChildrenInFlightAreBounded) {
  FakeDevice dev(1000, Tiny());
  SplitOptions opt;
  opt.max_in_flight = 4;
  ASSERT_EQ(Simple(dev, IoOp::kDiscard, 0, 999, opt), IoStatus::kOk);
  EXPECT_EQ(dev.seen.size(), 333u);
  EXPECT_EQ(dev.max_in_flight, 4);
}

TEST_F(SplitterTest, InvalidReadOnlyAndFlushCompleteOnceNotInline) {
  FakeDevice dev(100, Tiny());
  EXPECT_EQ(Simple(dev, IoOp::kWriteZeroes, 99, 2), IoStatus::kInvalid);
  EXPECT_EQ(Simple(dev, IoOp::kWriteZeroes, 0, 0), IoStatus::kInvalid);
  EXPECT_EQ(Simple(dev, IoOp::kWriteZeroes, UINT64_MAX, 2), IoStatus::kInvalid);
  std::vector<uint8_t> buf(1024);
  auto iov = Cut(buf, {});
  EXPECT_EQ(Payload(dev, IoOp::kRead, 0, iov, 512), IoStatus::kInvalid);  // payload too long
  EXPECT_TRUE(dev.seen.empty());
  EXPECT_EQ(Simple(dev, IoOp::kFlush, 0, 0), IoStatus::kOk);
  ASSERT_EQ(dev.seen.size(), 1u);
  EXPECT_EQ(dev.seen[0].op, IoOp::kFlush);

  FakeDevice ro(100, Tiny(), /*ro=*/true);
  EXPECT_EQ(Simple(ro, IoOp::kWriteZeroes, 0, 2), IoStatus::kReadOnly);
  EXPECT_EQ(Payload(ro, IoOp::kWrite, 0, iov, 1024), IoStatus::kReadOnly);
  EXPECT_EQ(Payload(ro, IoOp::kRead, 0, iov, 1024), IoStatus::kOk);
  EXPECT_EQ(Simple(ro, IoOp::kFlush, 0, 0), IoStatus::kOk);
}

TEST_F(SplitterTest, FuaFlagReachesEveryChild) {
  FakeDevice dev(100, Tiny());
  auto data = Random(20 * 512);
  auto iov = Cut(data, {});
  IoRequest req;
  req.op = IoOp::kWrite;
  req.flags = kIoFua;
  req.lba = Lba(1);
  req.blocks = BlockCount(20);
  req.iov = iov.data();
  req.iovcnt = 1;
  ASSERT_EQ(Split(dev, req), IoStatus::kOk);
  ASSERT_EQ(dev.seen.size(), 5u);
  for (const auto& s : dev.seen) EXPECT_EQ(s.flags, kIoFua);
}

TEST_F(SplitterTest, CompletionMayStartTheNextRequest) {
  // Each completion submits the next request: contexts are reused only after the callback.
  FakeDevice dev(100, Tiny());
  struct Chain {
    SplitterTest* t;
    FakeDevice* dev;
    IoRequest req;
    int left = 50;
    int ok = 0;
  } chain{this, &dev};
  chain.req.op = IoOp::kWriteZeroes;
  chain.req.lba = Lba(0);
  chain.req.blocks = BlockCount(10);
  Chain* c = &chain;
  chain.req.done = [c](IoStatus s) {
    c->ok += s == IoStatus::kOk;
    if (--c->left > 0) SubmitSplit(*c->dev, c->req);
  };
  SubmitSplit(dev, chain.req);
  reactor_->RunUntil([&] { return chain.left == 0; });
  EXPECT_EQ(chain.ok, 50);
  EXPECT_EQ(dev.seen.size(), 50u * 3);  // 10 blocks emulated: 4 + 4 + 2 blocks of writes
}

TEST_F(SplitterTest, LargeRequestsOnRam) {
  auto ram = *backends::RamDevice::Create({.name = "r", .size_bytes = 32u << 20});
  const uint64_t len = 20u << 20;  // RAM takes 8 MiB per request
  auto data = Random(len);
  auto iov = Cut(data, {3u << 20, 512 * 3 + 11, 1});
  ASSERT_EQ(Payload(*ram, IoOp::kWrite, 9, iov, len), IoStatus::kOk);
  std::vector<uint8_t> out(len);
  auto out_iov = Cut(out, {});
  ASSERT_EQ(Payload(*ram, IoOp::kRead, 9, out_iov, len), IoStatus::kOk);
  EXPECT_TRUE(out == data);
  ASSERT_EQ(Simple(*ram, IoOp::kWriteZeroes, 0, (32u << 20) / 512), IoStatus::kOk);
  ASSERT_EQ(Payload(*ram, IoOp::kRead, 9, out_iov, len), IoStatus::kOk);
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](uint8_t b) { return b == 0; }));
  EXPECT_EQ(ram->allocated_bytes(), 0u);
}

}  // namespace
}  // namespace ferry::block
