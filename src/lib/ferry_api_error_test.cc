// libferry's errors: the right -errno and a message that names the cause.
#include <cerrno>
#include <cstring>

#include "lib/api_test_util.h"

namespace ferry::api::apitest {
namespace {

using ::testing::HasSubstr;

std::string Msg() { return ferry_errmsg(); }

TEST_F(ApiTest, MissingFileIsEnoentAndNamesThePath) {
  ferry_dev* dev = nullptr;
  const std::string path = Path("no-such-file");
  EXPECT_EQ(ferry_dev_open(ctx_, path.c_str(), 0, &dev), -ENOENT);
  EXPECT_EQ(dev, nullptr);
  EXPECT_THAT(Msg(), HasSubstr(path));
}

TEST_F(ApiTest, BadUriIsEinvalAndNamesTheUri) {
  ferry_dev* dev = nullptr;
  EXPECT_EQ(ferry_dev_open(ctx_, "nosuch://host/x", 0, &dev), -EINVAL);
  EXPECT_THAT(Msg(), HasSubstr("nosuch://host/x"));
  EXPECT_EQ(ferry_dev_open(ctx_, "ram:", 0, &dev), -EINVAL);
  EXPECT_THAT(Msg(), HasSubstr("size"));
  EXPECT_EQ(ferry_dev_open(ctx_, "ram:1M", FERRY_DEV_DIRECT, &dev), -EINVAL);
  EXPECT_THAT(Msg(), HasSubstr("files only"));
  EXPECT_EQ(ferry_dev_open(ctx_, "ram:1M", 0x80, &dev), -EINVAL);
  EXPECT_THAT(Msg(), HasSubstr("unknown flags"));
}

TEST_F(ApiTest, ShortDestinationIsEnospc) {
  ferry_dev* src = Open("ram:1M");
  ferry_dev* dst = Open("ram:64K");
  ferry_range r{0, 0, 1 << 20};
  uint64_t cookie = 0;
  EXPECT_EQ(ferry_copy_submit(ctx_, src, dst, &r, 1, 0, nullptr, &cookie), -ENOSPC);
  EXPECT_THAT(Msg(), HasSubstr("'ram:64K' is too short (65536 bytes)"));
  EXPECT_EQ(cookie, 0u);
}

TEST_F(ApiTest, RangesOutOfBoundsOrMisalignedAreEinval) {
  ferry_dev* src = Open("ram:1M");
  ferry_dev* dst = Open("ram:4M");
  uint64_t cookie = 0;
  ferry_range past{1 << 19, 0, 1 << 20};
  EXPECT_EQ(ferry_copy_submit(ctx_, src, dst, &past, 1, 0, nullptr, &cookie), -EINVAL);
  EXPECT_THAT(Msg(), HasSubstr("past the end of source 'ram:1M'"));
  ferry_range wrap{UINT64_MAX - 511, 0, 1024};
  EXPECT_EQ(ferry_copy_submit(ctx_, src, dst, &wrap, 1, 0, nullptr, &cookie), -EINVAL);
  ferry_range odd[2] = {{0, 0, 512}, {512, 100, 512}};
  EXPECT_EQ(ferry_copy_submit(ctx_, src, dst, odd, 2, 0, nullptr, &cookie), -EINVAL);
  EXPECT_THAT(Msg(), HasSubstr("range 1"));
  EXPECT_THAT(Msg(), HasSubstr("destination's block size (512 bytes)"));
  ferry_range empty{0, 0, 0};
  EXPECT_EQ(ferry_copy_submit(ctx_, src, dst, &empty, 1, 0, nullptr, &cookie), -EINVAL);
  EXPECT_THAT(Msg(), HasSubstr("length 0"));
  EXPECT_EQ(ferry_copy_submit(ctx_, src, dst, &empty, 0, 0, nullptr, &cookie), -EINVAL);
  EXPECT_EQ(ferry_copy_submit(ctx_, src, dst, &past, 1, 0x100, nullptr, &cookie), -EINVAL);
  EXPECT_THAT(Msg(), HasSubstr("unknown flags"));
}

TEST_F(ApiTest, ReadOnlyDestinationIsErofs) {
  WriteRandom(Path("ro"), 8192, 1);
  ferry_dev* src = Open("ram:1M");
  ferry_dev* dst = Open(Path("ro"), FERRY_DEV_RDONLY);
  ferry_range r{0, 0, 4096};
  uint64_t cookie = 0;
  EXPECT_EQ(ferry_copy_submit(ctx_, src, dst, &r, 1, 0, nullptr, &cookie), -EROFS);
  EXPECT_THAT(Msg(), HasSubstr("read-only"));
}

TEST_F(ApiTest, NoFallbackWithoutNativeCopyIsEopnotsupp) {
  WriteRandom(Path("f"), 1 << 20, 1);
  ferry_dev* src = Open(Path("f"));
  ferry_dev* dst = Open("ram:1M");
  ferry_range r{0, 0, 1 << 20};
  uint64_t cookie = 0;
  EXPECT_EQ(ferry_copy_submit(ctx_, src, dst, &r, 1, FERRY_COPY_NO_FALLBACK, nullptr, &cookie),
            -EOPNOTSUPP);
  EXPECT_THAT(Msg(), HasSubstr("cannot copy natively"));
}

TEST_F(ApiTest, CloseWhileCopyingIsEbusy) {
  ferry_dev* a = Open("ram:8M");
  ferry_dev* b = Open("ram:8M");
  Submit(a, b, {{0, 0, 8 << 20}});
  int rc = ferry_dev_close(b);
  if (rc != 0) {  // the copy may have finished already: then the close succeeds
    EXPECT_EQ(rc, -EBUSY);
    EXPECT_THAT(Msg(), HasSubstr("in flight"));
  }
  EXPECT_EQ(ReapOne().result, 0);
  if (rc != 0) {
    EXPECT_EQ(ferry_dev_close(b), 0);
  }
}

TEST_F(ApiTest, BadCookiesSizesAndArguments) {
  ferry_progress p{};
  p.size = sizeof(p);
  EXPECT_EQ(ferry_copy_progress(ctx_, 12345, &p), -ENOENT);
  EXPECT_THAT(Msg(), HasSubstr("12345"));
  EXPECT_EQ(ferry_copy_cancel(ctx_, 12345), -ENOENT);
  p.size = 8;
  EXPECT_EQ(ferry_copy_progress(ctx_, 1, &p), -EINVAL);
  ferry_completion c{};
  c.size = sizeof(c);
  EXPECT_EQ(ferry_reap(ctx_, &c, 2, 1, 0), -EINVAL);
  c.size = 4;
  EXPECT_EQ(ferry_reap(ctx_, &c, 0, 1, 0), -EINVAL);
  ferry_ctx_opts opts{};
  opts.size = sizeof(opts);
  opts.chunk_bytes = 100;
  ferry_ctx* other = nullptr;
  EXPECT_EQ(ferry_ctx_new(&opts, &other), -EINVAL);
  EXPECT_THAT(Msg(), HasSubstr("chunk_bytes"));
  EXPECT_EQ(other, nullptr);
  EXPECT_EQ(ferry_dev_size(nullptr), -EINVAL);
  EXPECT_STREQ(ferry_version(), "1.0.0");
}

TEST_F(ApiTest, DevicesOfAnotherContextAreRefused) {
  ferry_ctx* other = nullptr;
  ASSERT_EQ(ferry_ctx_new(nullptr, &other), 0);
  ferry_dev* mine = Open("ram:1M");
  ferry_dev* theirs = nullptr;
  ASSERT_EQ(ferry_dev_open(other, "ram:1M", 0, &theirs), 0);
  ferry_range r{0, 0, 4096};
  uint64_t cookie = 0;
  EXPECT_EQ(ferry_copy_submit(ctx_, mine, theirs, &r, 1, 0, nullptr, &cookie), -EINVAL);
  EXPECT_THAT(Msg(), HasSubstr("another context"));
  ferry_ctx_free(other);
}

}  // namespace
}  // namespace ferry::api::apitest
