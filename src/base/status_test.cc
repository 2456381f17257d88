#include "base/status.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "base/io_status.h"

namespace ferry {
namespace {

TEST(StatusTest, OkIsFreeAndPrintsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_EQ(sizeof(Status), sizeof(void*));
}

TEST(StatusTest, ErrorCarriesCodeAndMessage) {
  Status s = InvalidArgument("bad length");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.ToString(), "INVALID_ARGUMENT: bad length");
  Status copy = s;
  EXPECT_EQ(copy.message(), "bad length");
  EXPECT_EQ(s.WithContext("config").message(), "config: bad length");
  EXPECT_TRUE(Status().WithContext("x").ok());
}

TEST(StatusTest, ErrnoMapsToCanonicalCodes) {
  EXPECT_EQ(ErrnoStatus(ENOENT, "open a").code(), StatusCode::kNotFound);
  EXPECT_EQ(ErrnoStatus(EACCES, "open a").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus(ENOSPC, "write").code(), StatusCode::kResourceExhausted);
  EXPECT_NE(ErrnoStatus(ENOENT, "open a").message().find("open a: "), std::string::npos);
}

Result<int> Half(int v) {
  if (v % 2) return InvalidArgument("odd");
  return v / 2;
}

Status UseHalf(int v, int* out) {
  FERRY_ASSIGN_OR_RETURN(*out, Half(v));
  return Status::Ok();
}

TEST(ResultTest, ValueOrError) {
  auto r = Half(4);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 2);
  EXPECT_FALSE(Half(3).ok());
  int out = 0;
  EXPECT_TRUE(UseHalf(8, &out).ok());
  EXPECT_EQ(out, 4);
  EXPECT_EQ(UseHalf(7, &out).code(), StatusCode::kInvalidArgument);
  Result<int> bad{Status()};
  EXPECT_EQ(bad.status().code(), StatusCode::kInternal);
}

TEST(IoStatusTest, FromErrno) {
  EXPECT_EQ(IoStatusFromErrno(0), IoStatus::kOk);
  EXPECT_EQ(IoStatusFromErrno(-EIO), IoStatus::kIoError);
  EXPECT_EQ(IoStatusFromErrno(-ENOSPC), IoStatus::kNoSpace);
  EXPECT_EQ(IoStatusFromErrno(EAGAIN), IoStatus::kNoResources);
  EXPECT_EQ(IoStatusFromErrno(-EXDEV), IoStatus::kNotSupported);
  EXPECT_EQ(IoStatusName(IoStatus::kMiscompare), "miscompare");
  EXPECT_EQ(sizeof(IoStatus), 1u);
}

}  // namespace
}  // namespace ferry
