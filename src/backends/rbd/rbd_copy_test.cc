// Copies between rbd devices through the copy engine (rbd_copy.cc), against the cluster
// tests/rbd/run.sh starts: whole objects copied by the OSDs (the gateway reads none of
// their bytes), holes zeroed, the destination's snapshots kept, a clone's parent data read
// through librbd, an object map kept correct, and a named reason when the cluster must not
// copy.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "backends/builtin.h"
#include "backends/rbd/rbd_copy_plan.h"
#include "backends/rbd/testing/rbd_test_images.h"
#include "ferry/copy.h"
#include "io/reactor.h"

namespace ferry::backends::rbd {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using testing::TestImages;
using testing::TestOptions;

constexpr uint64_t kObj = 4u << 20;
constexpr uint64_t kSize = 4 * kObj;
constexpr uint64_t kPiece = 1u << 20;
// Without an object map, and the cluster's defaults (object map and fast-diff).
constexpr uint64_t kPlain = RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK;
constexpr uint64_t kDefault = kPlain | RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF;

std::vector<uint8_t> Pattern(size_t len, uint8_t seed) {
  std::vector<uint8_t> v(len);
  for (size_t i = 0; i < len; ++i) v[i] = static_cast<uint8_t>(i * 131 + seed + i / 4096);
  return v;
}

class RbdCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = io::Reactor::Create();
    ASSERT_TRUE(r.ok());
    reactor_ = std::move(*r);
    auto e = copy::CopyEngine::Create(reactor_.get(), {});
    ASSERT_TRUE(e.ok());
    engine_ = std::move(*e);
  }
  void TearDown() override {
    engine_.reset();
    TestImages::Cleanup();
  }

  // Reads or writes `data` at `off`, 1 MiB per request (within every device's limits).
  IoStatus Io(block::BlockDevice& dev, block::IoOp op, uint64_t off, std::vector<uint8_t>* data) {
    const uint32_t bs = dev.geometry().block_size;
    for (uint64_t at = 0; at < data->size(); at += kPiece) {
      const uint64_t n = std::min<uint64_t>(kPiece, data->size() - at);
      iovec iov{data->data() + at, n};
      IoStatus st = IoStatus::kIoError;
      bool done = false;
      block::IoRequest req{.op = op,
                           .lba = Lba((off + at) / bs),
                           .blocks = BlockCount(n / bs),
                           .iov = &iov,
                           .iovcnt = 1};
      req.done = [&](IoStatus s) { st = s, done = true; };
      dev.Submit(req);
      reactor_->RunUntil([&] { return done; });
      if (st != IoStatus::kOk) return st;
    }
    return IoStatus::kOk;
  }

  std::vector<uint8_t> ReadAll(block::BlockDevice& dev) {
    std::vector<uint8_t> all(dev.geometry().size_bytes());
    EXPECT_EQ(Io(dev, block::IoOp::kRead, 0, &all), IoStatus::kOk);
    return all;
  }

  // The whole of `src` onto the whole of `dst`.
  copy::CopyResult Copy(block::BlockDevice& src, block::BlockDevice& dst) {
    copy::CopyDescriptor d;
    d.src = &src;
    const BlockCount blocks = src.geometry().num_blocks;
    d.src_extents = {{Lba(0), blocks}};
    d.dsts = {{&dst, {{Lba(0), blocks}}}};
    copy::CopyResult out;
    bool done = false;
    auto job = engine_->Submit(std::move(d), [&](copy::CopyResult r) {
      out = std::move(r);
      done = true;
    });
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    if (job.ok()) reactor_->RunUntil([&] { return done; });
    return out;
  }

  static uint64_t By(const copy::CopyResult& r, block::CopyMechanism m) {
    return r.counters.by_mechanism[static_cast<size_t>(m)];
  }

  std::unique_ptr<io::Reactor> reactor_;
  std::unique_ptr<copy::CopyEngine> engine_;
};

std::shared_ptr<RbdDevice> Open(const std::string& image, const std::string& snap = "") {
  RbdOptions o = TestOptions(image);
  o.snap = snap;
  o.read_only = !snap.empty();
  auto dev = RbdDevice::Open(o);
  EXPECT_TRUE(dev.ok()) << dev.status().ToString();
  return dev.ok() ? *dev : nullptr;
}

// Objects 0, 1 and 3 hold data, object 2 is a hole; the destination held other data in every
// object and a snapshot of it. After the copy: the source's bytes (zeroes in object 2), none
// read by the gateway, the snapshot unchanged, and the pool holds the copy (a new handle
// reads it).
TEST_F(RbdCopyTest, WholeObjectsAreCopiedInsideTheCluster) {
  const std::string src_image = TestImages::Create(kSize, kPlain);
  const std::string dst_image = TestImages::Create(kSize, kPlain);
  auto src = Open(src_image);
  auto dst = Open(dst_image);
  ASSERT_TRUE(src && dst);
  std::vector<uint8_t> expect = Pattern(kSize, 7);
  std::fill(expect.begin() + 2 * kObj, expect.begin() + 3 * kObj, 0);
  for (uint64_t obj : {0, 1, 3}) {
    std::vector<uint8_t> part(expect.begin() + obj * kObj, expect.begin() + (obj + 1) * kObj);
    ASSERT_EQ(Io(*src, block::IoOp::kWrite, obj * kObj, &part), IoStatus::kOk);
  }
  std::vector<uint8_t> old = Pattern(kSize, 99);
  ASSERT_EQ(Io(*dst, block::IoOp::kWrite, 0, &old), IoStatus::kOk);
  ASSERT_TRUE(TestImages::Snapshot(dst_image, "before"));

  copy::CopyResult r = Copy(*src, *dst);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(By(r, block::CopyMechanism::kRadosCopy), kSize);
  EXPECT_EQ(By(r, block::CopyMechanism::kRbdGateway), 0u);
  EXPECT_EQ(r.counters.emulated_bytes, 0u);
  const RbdDevice::CopyStats s = dst->copy_stats();
  EXPECT_EQ(s.server_bytes, 3 * kObj);
  EXPECT_EQ(s.gateway_bytes, 0u);
  EXPECT_EQ(s.zeroed_bytes, kObj);
  EXPECT_EQ(s.fallback_legs, 0u);
  EXPECT_TRUE(ReadAll(*dst) == expect);

  dst.reset();
  auto fresh = Open(dst_image);
  ASSERT_TRUE(fresh);
  EXPECT_TRUE(ReadAll(*fresh) == expect) << "the pool does not hold the copy";
  auto before = Open(dst_image, "before");
  ASSERT_TRUE(before);
  EXPECT_TRUE(ReadAll(*before) == old) << "the snapshot taken before the copy changed";
}

// Different object sizes: the cluster must not copy; the gateway does, the result names why.
TEST_F(RbdCopyTest, DifferentObjectSizesFallBackNamingTheReason) {
  auto src = Open(TestImages::Create(kSize, kPlain, 21));
  auto dst = Open(TestImages::Create(kSize, kPlain, 22));
  ASSERT_TRUE(src && dst);
  std::vector<uint8_t> data = Pattern(kSize, 3);
  ASSERT_EQ(Io(*src, block::IoOp::kWrite, 0, &data), IoStatus::kOk);
  copy::CopyResult r = Copy(*src, *dst);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(By(r, block::CopyMechanism::kRbdGateway), kSize);
  EXPECT_EQ(By(r, block::CopyMechanism::kRadosCopy), 0u);
  EXPECT_THAT(r.offload_notes, Contains(HasSubstr("the object sizes differ")));
  EXPECT_EQ(dst->copy_stats().server_bytes, 0u);
  EXPECT_GE(dst->copy_stats().fallback_legs, 1u);
  EXPECT_TRUE(ReadAll(*dst) == data);
}

// A destination with an object map and fast-diff (the cluster's default features) is copied
// by the OSDs too, each object marked in the map through librbd first. Objects 0 and 2 of the
// destination held data, 1 and 3 did not exist; the source has data in 0, 1 and 3 and a hole
// in 2. Afterwards a new handle, which reads the map from the pool, reads the copy, the map is
// valid, fast-diff since the snapshot taken before the copy names every object, and the
// snapshot reads the old data.
TEST_F(RbdCopyTest, ObjectMapDestinationIsCopiedInsideTheCluster) {
  const std::string dst_image = TestImages::Create(kSize, kDefault);
  auto src = Open(TestImages::Create(kSize, kPlain));
  auto dst = Open(dst_image);
  ASSERT_TRUE(src && dst);
  std::vector<uint8_t> expect = Pattern(kSize, 5);
  std::fill(expect.begin() + 2 * kObj, expect.begin() + 3 * kObj, 0);
  for (uint64_t obj : {0, 1, 3}) {
    std::vector<uint8_t> part(expect.begin() + obj * kObj, expect.begin() + (obj + 1) * kObj);
    ASSERT_EQ(Io(*src, block::IoOp::kWrite, obj * kObj, &part), IoStatus::kOk);
  }
  std::vector<uint8_t> old(kSize, 0);
  for (uint64_t obj : {0, 2}) {
    std::vector<uint8_t> part = Pattern(kObj, static_cast<uint8_t>(60 + obj));
    std::copy(part.begin(), part.end(), old.begin() + obj * kObj);
    ASSERT_EQ(Io(*dst, block::IoOp::kWrite, obj * kObj, &part), IoStatus::kOk);
  }
  ASSERT_TRUE(TestImages::Snapshot(dst_image, "before"));

  copy::CopyResult r = Copy(*src, *dst);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(By(r, block::CopyMechanism::kRadosCopy), kSize);
  EXPECT_EQ(By(r, block::CopyMechanism::kRbdGateway), 0u);
  const RbdDevice::CopyStats s = dst->copy_stats();
  EXPECT_EQ(s.server_bytes, 3 * kObj);
  EXPECT_EQ(s.marked_objects, 3u);
  EXPECT_EQ(s.gateway_bytes, 0u);
  EXPECT_EQ(s.fallback_legs, 0u);
  EXPECT_TRUE(ReadAll(*dst) == expect);

  dst.reset();
  auto fresh = Open(dst_image);
  ASSERT_TRUE(fresh);
  EXPECT_TRUE(ReadAll(*fresh) == expect) << "the object map hides the copied objects";
  fresh.reset();
  uint64_t flags = 0;
  std::vector<ByteRange> changed;
  const int r2 = TestImages::WithImage(dst_image, [&](rbd_image_t img) {
    int e = rbd_get_flags(img, &flags);
    if (e == 0) {
      e = rbd_diff_iterate2(
          img, "before", 0, kSize, /*include_parent=*/0, /*whole_object=*/1,
          [](uint64_t off, size_t len, int, void* arg) {
            static_cast<std::vector<ByteRange>*>(arg)->push_back({off, len});
            return 0;
          },
          &changed);
    }
    return e;
  });
  ASSERT_EQ(r2, 0) << std::strerror(-r2);
  EXPECT_EQ(flags & (RBD_FLAG_OBJECT_MAP_INVALID | RBD_FLAG_FAST_DIFF_INVALID), 0u);
  NormalizeRanges(&changed);
  ASSERT_EQ(changed.size(), 1u) << "fast-diff since the snapshot misses objects";
  EXPECT_EQ(changed[0].off, 0u);
  EXPECT_EQ(changed[0].len, kSize);
  auto before = Open(dst_image, "before");
  ASSERT_TRUE(before);
  EXPECT_TRUE(ReadAll(*before) == old) << "the snapshot taken before the copy changed";
}

// A clone as the source: the object it wrote is copied by the cluster, its parent's data
// (objects the clone does not have) is read through librbd.
TEST_F(RbdCopyTest, CloneSourceCopiesItsParentsData) {
  const std::string parent = TestImages::Create(kSize, kPlain);
  std::vector<uint8_t> expect = Pattern(kSize, 11);
  {
    auto p = Open(parent);
    ASSERT_TRUE(p);
    ASSERT_EQ(Io(*p, block::IoOp::kWrite, 0, &expect), IoStatus::kOk);
  }
  ASSERT_TRUE(TestImages::Snapshot(parent, "base"));
  const std::string child = TestImages::Clone(parent, "base", kPlain);
  ASSERT_FALSE(child.empty());
  auto src = Open(child);
  auto dst = Open(TestImages::Create(kSize, kPlain));
  ASSERT_TRUE(src && dst);
  std::vector<uint8_t> mine = Pattern(kObj, 42);
  ASSERT_EQ(Io(*src, block::IoOp::kWrite, kObj, &mine), IoStatus::kOk);
  std::copy(mine.begin(), mine.end(), expect.begin() + kObj);

  copy::CopyResult r = Copy(*src, *dst);
  ASSERT_EQ(r.status, IoStatus::kOk);
  const RbdDevice::CopyStats s = dst->copy_stats();
  EXPECT_EQ(s.server_bytes, kObj);
  EXPECT_EQ(s.parent_objects, 3u);
  EXPECT_EQ(s.gateway_bytes, 3 * kObj);
  EXPECT_EQ(By(r, block::CopyMechanism::kRadosCopy) + By(r, block::CopyMechanism::kRbdGateway),
            kSize);
  EXPECT_TRUE(ReadAll(*dst) == expect);
}

// A source that is not an rbd image is refused with a reason (the engine emulates), and a
// read-only device offers no native copy.
TEST_F(RbdCopyTest, OnlyRbdSourcesOfTheSameCluster) {
  const std::string image = TestImages::Create(kSize, kPlain);
  auto dst = Open(image);
  auto src = Open(TestImages::Create(kSize, kPlain));
  ASSERT_TRUE(src && dst);
  std::string why;
  EXPECT_TRUE(dst->CanCopyFrom(*src, &why)) << why;
  auto ram = OpenDeviceUri("ram:16M", "", {}, {});
  ASSERT_TRUE(ram.ok()) << ram.status().ToString();
  EXPECT_FALSE(dst->CanCopyFrom(**ram, &why));
  EXPECT_THAT(why, HasSubstr("copies natively only between rbd images"));
  std::vector<uint8_t> data = Pattern(kSize, 9);
  ASSERT_EQ(Io(**ram, block::IoOp::kWrite, 0, &data), IoStatus::kOk);
  copy::CopyResult r = Copy(**ram, *dst);
  ASSERT_EQ(r.status, IoStatus::kOk);
  EXPECT_EQ(r.counters.emulated_bytes, kSize);
  EXPECT_TRUE(ReadAll(*dst) == data);
  RbdOptions o = TestOptions(image);
  o.read_only = true;
  auto reader = RbdDevice::Open(o);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->copy_offload(), nullptr);
}

}  // namespace
}  // namespace ferry::backends::rbd
