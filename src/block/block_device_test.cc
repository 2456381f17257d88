#include "ferry/block_device.h"

#include <gtest/gtest.h>

#include "block/registry.h"

namespace ferry::block {
namespace {

class NullDevice : public BlockDevice {
 public:
  explicit NullDevice(std::string name, bool ro = false) : name_(std::move(name)), ro_(ro) {
    geo_.block_size = 512;
    geo_.num_blocks = BlockCount(100);
    limits_.max_io_bytes = 8192;
    limits_.buffer_alignment = 512;
  }
  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "null"; }
  const Geometry& geometry() const override { return geo_; }
  const QueueLimits& limits() const override { return limits_; }
  bool read_only() const override { return ro_; }
  void Submit(IoRequest&) override {}

 private:
  std::string name_;
  bool ro_;
  Geometry geo_;
  QueueLimits limits_;
};

TEST(ValidateRequestTest, RangesPayloadAndReadOnly) {
  NullDevice dev("d");
  alignas(512) static char buf[8192];
  iovec iov{buf, 1024};
  IoRequest req;
  req.op = IoOp::kRead;
  req.lba = Lba(98);
  req.blocks = BlockCount(2);
  req.iov = &iov;
  req.iovcnt = 1;
  EXPECT_EQ(ValidateRequest(dev, req), IoStatus::kOk);
  req.lba = Lba(99);
  EXPECT_EQ(ValidateRequest(dev, req), IoStatus::kInvalid);  // past the end
  req.lba = Lba(0);
  iov.iov_len = 512;
  EXPECT_EQ(ValidateRequest(dev, req), IoStatus::kInvalid);  // short payload
  iov.iov_base = buf + 1;
  iov.iov_len = 1024;
  EXPECT_EQ(ValidateRequest(dev, req), IoStatus::kInvalid);  // misaligned
  req.blocks = BlockCount(0);
  EXPECT_EQ(ValidateRequest(dev, req), IoStatus::kInvalid);
  req.op = IoOp::kDiscard;
  req.blocks = BlockCount(1);
  EXPECT_EQ(ValidateRequest(dev, req), IoStatus::kNotSupported);
  NullDevice ro("ro", true);
  req.op = IoOp::kWriteZeroes;
  EXPECT_EQ(ValidateRequest(ro, req), IoStatus::kReadOnly);
  req.op = IoOp::kFlush;
  EXPECT_EQ(ValidateRequest(ro, req), IoStatus::kOk);
}

TEST(DeviceRegistryTest, AddFindRemove) {
  DeviceRegistry reg;
  EXPECT_TRUE(reg.Add(std::make_shared<NullDevice>("b")).ok());
  EXPECT_TRUE(reg.Add(std::make_shared<NullDevice>("a")).ok());
  EXPECT_EQ(reg.Add(std::make_shared<NullDevice>("a")).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(reg.Add(std::make_shared<NullDevice>("")).code(), StatusCode::kInvalidArgument);
  EXPECT_NE(reg.Find("a"), nullptr);
  EXPECT_EQ(reg.Find("c"), nullptr);
  EXPECT_EQ(reg.Names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(reg.Remove("a").ok());
  EXPECT_EQ(reg.Remove("a").code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace ferry::block
