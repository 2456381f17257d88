// libferry's C API through the shared library: copies, concurrency, cancel, progress, fd.
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <numeric>

#include "lib/api_test_util.h"

namespace ferry::api::apitest {
namespace {

// `size` bytes cut into random pieces (multiples of `align`), each sent to a random place
// of a destination of the same size: a permutation, so every destination byte is written.
std::vector<ferry_range> RandomRanges(uint64_t size, uint64_t align, std::mt19937& rng) {
  std::vector<uint64_t> lens;
  for (uint64_t at = 0; at < size;) {
    uint64_t len = std::min<uint64_t>(size - at, align * (1 + rng() % 64));
    lens.push_back(len);
    at += len;
  }
  std::vector<size_t> order(lens.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<uint64_t> src_off(lens.size());
  for (size_t i = 1; i < lens.size(); ++i) src_off[i] = src_off[i - 1] + lens[i - 1];
  std::vector<ferry_range> ranges;
  uint64_t dst = 0;
  for (size_t k : order) {
    ranges.push_back({src_off[k], dst, lens[k]});
    dst += lens[k];
  }
  std::shuffle(ranges.begin(), ranges.end(), rng);  // submission order is free too
  return ranges;
}

std::vector<uint8_t> Apply(const std::vector<uint8_t>& src, std::vector<uint8_t> dst,
                           const std::vector<ferry_range>& ranges) {
  for (const ferry_range& r : ranges) {
    std::copy_n(src.begin() + r.src_off, r.len, dst.begin() + r.dst_off);
  }
  return dst;
}

TEST_F(ApiTest, RandomRangesFileToRamToFile) {
  constexpr uint64_t kSize = 1 << 20;
  std::mt19937 rng(7);
  for (int round = 0; round < 3; ++round) {
    auto src_bytes = WriteRandom(Path("src"), kSize, round);
    WriteFile(Path("dst"), std::vector<uint8_t>(kSize));
    ferry_dev* src = Open(Path("src"), FERRY_DEV_RDONLY);
    ferry_dev* ram = Open("ram:1M");
    ferry_dev* dst = Open("file:" + Path("dst"));
    ASSERT_EQ(ferry_dev_size(ram), static_cast<int64_t>(kSize));
    ASSERT_EQ(ferry_dev_block_size(ram), 512);
    ASSERT_EQ(ferry_dev_block_size(src), 1);  // buffered regular file: byte-addressed
    auto ranges = RandomRanges(kSize, 512, rng);
    ferry_completion c = CopySync(src, ram, ranges);
    EXPECT_EQ(c.bytes_done, kSize);
    EXPECT_STREQ(c.mechanism, "emulated");
    CopySync(ram, dst, {{0, 0, kSize}});
    EXPECT_EQ(ferry_dev_flush(dst), 0) << ferry_errmsg();
    EXPECT_EQ(ReadFile(Path("dst")), Apply(src_bytes, std::vector<uint8_t>(kSize), ranges));
    for (ferry_dev* d : {src, ram, dst}) EXPECT_EQ(ferry_dev_close(d), 0) << ferry_errmsg();
  }
}

TEST_F(ApiTest, RandomUnalignedRangesBetweenFiles) {
  constexpr uint64_t kSize = 300000;  // not a multiple of any block size
  std::mt19937 rng(11);
  auto src_bytes = WriteRandom(Path("a"), kSize, 3);
  auto old = WriteRandom(Path("b"), kSize, 4);
  ferry_dev* a = Open(Path("a"));
  ferry_dev* b = Open(Path("b"));
  auto ranges = RandomRanges(kSize, 1, rng);
  ranges.resize(ranges.size() / 2);  // half of them: the rest of b keeps its old bytes
  ferry_completion c = CopySync(a, b, ranges, FERRY_COPY_FUA);
  uint64_t total = 0;
  for (const ferry_range& r : ranges) total += r.len;
  EXPECT_EQ(c.bytes_total, total);
  EXPECT_EQ(c.bytes_done, total);
  EXPECT_EQ(ReadFile(Path("b")), Apply(src_bytes, old, ranges));
}

TEST_F(ApiTest, RamToRamIsNativeAndProgressAddsUp) {
  ferry_dev* a = Open("ram:4M");
  ferry_dev* b = Open("ram:4M");
  ferry_completion c =
      CopySync(a, b, {{0, 4096, 1 << 20}, {1 << 21, 0, 4096}}, FERRY_COPY_NO_FALLBACK);
  EXPECT_EQ(c.bytes_total, (1u << 20) + 4096);
  EXPECT_EQ(c.bytes_done, c.bytes_total);
  EXPECT_EQ(c.bytes_offloaded + c.bytes_emulated, c.bytes_done);
  EXPECT_EQ(c.bytes_offloaded, c.bytes_total);
  EXPECT_STREQ(c.mechanism, "ram");
}

// NO_FALLBACK through the destination wrapper (no_fallback_device.h): the native path
// still moves every byte (copy_file_range or reflink between files of one file system).
TEST_F(ApiTest, NoFallbackBetweenFilesIsOffloaded) {
  constexpr uint64_t kSize = 1 << 20;
  auto bytes = WriteRandom(Path("nf.src"), kSize, 9);
  WriteFile(Path("nf.dst"), std::vector<uint8_t>(kSize));
  ferry_dev* a = Open(Path("nf.src"));
  ferry_dev* b = Open(Path("nf.dst"));
  ferry_completion c = CopySync(a, b, {{0, 0, kSize}}, FERRY_COPY_NO_FALLBACK);
  EXPECT_EQ(c.bytes_offloaded, kSize);
  EXPECT_EQ(c.bytes_emulated, 0u);
  EXPECT_EQ(ReadFile(Path("nf.dst")), bytes);
}

TEST_F(ApiTest, TwoCopiesInFlightCompleteWithTheirUserData) {
  constexpr uint64_t kSize = 4 << 20;
  auto one = WriteRandom(Path("one"), kSize, 1);
  auto two = WriteRandom(Path("two"), kSize, 2);
  WriteFile(Path("one.out"), std::vector<uint8_t>(kSize));
  WriteFile(Path("two.out"), std::vector<uint8_t>(kSize));
  ferry_dev* s1 = Open(Path("one"));
  ferry_dev* s2 = Open(Path("two"));
  ferry_dev* r1 = Open("ram:4M");
  ferry_dev* r2 = Open("ram:4M");
  int tag1 = 1, tag2 = 2;
  uint64_t c1 = Submit(s1, r1, {{0, 0, kSize}}, 0, &tag1);
  uint64_t c2 = Submit(s2, r2, {{0, 0, kSize}}, 0, &tag2);
  EXPECT_NE(c1, c2);
  ferry_completion out[4];
  out[0].size = sizeof(ferry_completion);
  ASSERT_EQ(ferry_reap(ctx_, out, 2, 4, 60000), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(out[i].result, 0);
    EXPECT_EQ(out[i].user_data, out[i].cookie == c1 ? static_cast<void*>(&tag1) : &tag2);
  }
  // And back out through a second pair in flight at once.
  ferry_dev* o1 = Open(Path("one.out"));
  ferry_dev* o2 = Open(Path("two.out"));
  Submit(r1, o1, {{0, 0, kSize}});
  Submit(r2, o2, {{0, 0, kSize}});
  ASSERT_EQ(ferry_reap(ctx_, out, 2, 2, 60000), 2);
  EXPECT_EQ(out[0].result | out[1].result, 0);
  EXPECT_EQ(ReadFile(Path("one.out")), one);
  EXPECT_EQ(ReadFile(Path("two.out")), two);
}

TEST_F(ApiTest, CancelHalfWayCompletesWithEcanceledAndBytesDone) {
  ferry_ctx_free(ctx_);
  ferry_ctx_opts opts{};
  opts.size = sizeof(opts);
  opts.throttle_bytes_per_sec = 32 << 20;  // 64 MiB takes ~2 s: time to cancel half-way
  ASSERT_EQ(ferry_ctx_new(&opts, &ctx_), 0) << ferry_errmsg();
  constexpr uint64_t kSize = 64 << 20;
  WriteFile(Path("big"), {});
  std::filesystem::resize_file(Path("big"), kSize);  // sparse: reads cost nothing
  ferry_dev* src = Open(Path("big"));
  ferry_dev* dst = Open("ram:64M");
  uint64_t cookie = Submit(src, dst, {{0, 0, kSize}});
  ferry_progress p{};
  p.size = sizeof(p);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  ferry_completion c{};
  c.size = sizeof(c);
  do {  // wait for the first bytes, reaping with a short timeout (no sleeping)
    ASSERT_EQ(ferry_copy_progress(ctx_, cookie, &p), 0) << ferry_errmsg();
    ASSERT_EQ(p.bytes_offloaded + p.bytes_emulated, p.bytes_done);
    ASSERT_LE(p.bytes_done, p.bytes_total);
    ASSERT_EQ(ferry_reap(ctx_, &c, 0, 1, 5), 0) << "finished before it could be cancelled";
  } while (p.bytes_done == 0 && std::chrono::steady_clock::now() < deadline);
  ASSERT_GT(p.bytes_done, 0u);
  EXPECT_EQ(ferry_copy_cancel(ctx_, cookie), 0) << ferry_errmsg();
  c = ReapOne();
  EXPECT_EQ(c.cookie, cookie);
  EXPECT_EQ(c.result, -ECANCELED);
  EXPECT_GE(c.bytes_done, p.bytes_done);
  EXPECT_LT(c.bytes_done, kSize);
  EXPECT_EQ(c.bytes_total, kSize);
  EXPECT_EQ(ferry_copy_cancel(ctx_, cookie), -ENOENT);  // reaped: gone
  EXPECT_EQ(ferry_copy_progress(ctx_, cookie, &p), -ENOENT);
}

TEST_F(ApiTest, FdIsReadableExactlyWhileCompletionsWait) {
  ferry_dev* a = Open("ram:1M");
  ferry_dev* b = Open("ram:1M");
  const int fd = ferry_ctx_fd(ctx_);
  ASSERT_GE(fd, 0);
  pollfd pfd{fd, POLLIN, 0};
  EXPECT_EQ(poll(&pfd, 1, 0), 0);
  Submit(a, b, {{0, 0, 1 << 20}});
  Submit(b, a, {{0, 0, 4096}});
  ASSERT_EQ(poll(&pfd, 1, 60000), 1);
  ferry_completion c[2];
  c[0].size = sizeof(ferry_completion);
  int n = ferry_reap(ctx_, c, 1, 2, 60000);
  ASSERT_GE(n, 1);
  if (n == 1) {
    ASSERT_EQ(ferry_reap(ctx_, c, 1, 1, 60000), 1);
  }
  EXPECT_EQ(poll(&pfd, 1, 0), 0);              // everything reaped: no longer readable
  EXPECT_EQ(ferry_reap(ctx_, c, 1, 1, 0), 0);  // nothing in flight: returns at once
}

TEST_F(ApiTest, FreeWithCopiesInFlightCancelsThem) {
  ferry_dev* a = Open("ram:8M");
  ferry_dev* b = Open("ram:8M");
  Submit(a, b, {{0, 0, 8 << 20}});
  ferry_ctx_free(ctx_);  // devices closed, copy cancelled or finished: no leak, no hang
  ctx_ = nullptr;
}

}  // namespace
}  // namespace ferry::api::apitest
