// COMPARE AND WRITE, ORWRITE, WRITE SAME, UNMAP, GET LBA STATUS, WRITE ATOMIC, PRE-FETCH,
// READ DEFECT DATA, the provisioning VPD pages, and the range lock that makes the
// read-modify-write commands atomic.
#include <gtest/gtest.h>

#include <vector>

#include "base/endian.h"
#include "scsi/logical_unit_test.h"

namespace ferry::scsi {
namespace {

class VaaiTest : public LuTest {
 protected:
  std::array<uint8_t, 16> Caw(uint64_t lba, uint8_t blocks) {
    auto c = Cdb16(kCompareAndWrite, 0, lba, 0);
    c[13] = blocks;
    return c;
  }
  std::array<uint8_t, 16> WriteSame10(uint8_t b1, uint32_t lba, uint16_t blocks) {
    std::array<uint8_t, 16> c{kWriteSame10, b1};
    StoreBe32(&c[2], lba);
    StoreBe16(&c[7], blocks);
    return c;
  }
  std::vector<uint8_t> UnmapList(std::initializer_list<std::pair<uint64_t, uint32_t>> ranges) {
    std::vector<uint8_t> p(8 + 16 * ranges.size(), 0);
    StoreBe16(&p[0], static_cast<uint16_t>(p.size() - 2));
    StoreBe16(&p[2], static_cast<uint16_t>(16 * ranges.size()));
    size_t i = 0;
    for (auto [lba, n] : ranges) {
      StoreBe64(&p[8 + 16 * i], lba);
      StoreBe32(&p[8 + 16 * i + 8], n);
      ++i;
    }
    return p;
  }
  Task Unmap(const std::vector<uint8_t>& list) {
    std::array<uint8_t, 16> c{kUnmap};
    StoreBe16(&c[7], static_cast<uint16_t>(list.size()));
    Task t = Make(c, list);
    Run(t);
    return t;
  }
  // GET LBA STATUS: the descriptors as (lba, blocks, status).
  std::vector<std::tuple<uint64_t, uint32_t, uint8_t>> LbaStatus(uint64_t lba) {
    auto c = Cdb16(kServiceActionIn16, kSaGetLbaStatus, lba, 4096);
    Task t = Make(c);
    Run(t);
    EXPECT_EQ(t.status, Status::kGood);
    std::vector<std::tuple<uint64_t, uint32_t, uint8_t>> r;
    const uint32_t len = LoadBe32(in_.data());
    for (uint32_t off = 8; off + 16 <= len + 4; off += 16) {
      r.emplace_back(LoadBe64(&in_[off]), LoadBe32(&in_[off + 8]), in_[off + 12] & 0x0f);
    }
    return r;
  }
};

TEST_F(VaaiTest, CompareAndWriteWritesOnlyOnMatch) {
  Write(7, std::vector<uint8_t>(2 * kBs, 'A'));
  std::vector<uint8_t> buf(4 * kBs, 'A');
  std::fill(buf.begin() + 2 * kBs, buf.end(), 'B');
  Task ok = Make(Caw(7, 2), buf);
  Run(ok);
  EXPECT_EQ(ok.status, Status::kGood);
  EXPECT_EQ(Read(7, 2), std::vector<uint8_t>(2 * kBs, 'B'));
  // The compare half no longer matches at byte 700: MISCOMPARE, offset 700, unchanged.
  buf.assign(4 * kBs, 'B');
  buf[700] = 'Z';
  std::fill(buf.begin() + 2 * kBs, buf.end(), 'C');
  Task bad = Make(Caw(7, 2), buf);
  Run(bad);
  ExpectSense(bad, SenseKey::kMiscompare, Asc::kMiscompareDuringVerify);
  EXPECT_EQ(bad.sense.information, 700u);
  EXPECT_EQ(Read(7, 2), std::vector<uint8_t>(2 * kBs, 'B'));
}

TEST_F(VaaiTest, CompareAndWriteRefusesBadSizesAndRanges) {
  std::vector<uint8_t> buf(4 * kBs, 0);
  Task wrong = Make(Caw(0, 1), buf);  // 4 blocks of data-out for 1 block: refused
  Run(wrong);
  ExpectSense(wrong, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
  EXPECT_EQ(wrong.sense.field_byte, 13);
  Task beyond = Make(Caw(16383, 2), buf);
  Run(beyond);
  ExpectSense(beyond, SenseKey::kIllegalRequest, Asc::kLbaOutOfRange);
  Task zero = Make(Caw(0, 0));
  Run(zero);
  EXPECT_EQ(zero.status, Status::kGood);
  auto wrprotect = Caw(0, 2);
  wrprotect[1] = 0x20;
  Task p = Make(wrprotect, buf);
  Run(p);
  ExpectSense(p, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
}

TEST_F(VaaiTest, OrWriteMergesWithTheMedium) {
  Write(3, std::vector<uint8_t>(kBs, 0xa0));
  std::vector<uint8_t> bits(kBs, 0x05);
  Task t = Make(Cdb16(kOrWrite16, 0, 3, 1), bits);
  Run(t);
  EXPECT_EQ(t.status, Status::kGood);
  EXPECT_EQ(Read(3, 1), std::vector<uint8_t>(kBs, 0xa5));
}

TEST_F(VaaiTest, WritesWaitForAHeldRangeInOrder) {
  // Somebody holds blocks 10..19 (as a COMPARE AND WRITE does between read and write).
  bool held = false;
  RangeLock::Holder* h = lu_->range_lock().Acquire(10, 10, [&] { held = true; });
  ASSERT_TRUE(held);
  std::vector<uint8_t> data(kBs, 0x11);
  Task w = Make(Cdb16(kWrite16, 0, 15, 1), data);
  bool done = false;
  lu_->Execute(w, [&] { done = true; });
  Drain();
  EXPECT_FALSE(done) << "a write into a held range went ahead";
  EXPECT_EQ(lu_->range_lock().waiting_for_testing(), 1u);
  // A write elsewhere is not held up.
  Task other = Make(Cdb16(kWrite16, 0, 40, 1), data);
  Run(other);
  EXPECT_EQ(other.status, Status::kGood);
  lu_->range_lock().Release(h);
  reactor_->RunUntil([&] { return done; });
  EXPECT_EQ(w.status, Status::kGood);
  EXPECT_EQ(Read(15, 1), data);
  EXPECT_EQ(lu_->range_lock().held_for_testing(), 0u);
}

TEST_F(VaaiTest, RangeLockIsFifoAmongOverlaps) {
  std::vector<int> order;
  RangeLock& l = lu_->range_lock();
  RangeLock::Holder* a = l.Acquire(0, 10, [&] { order.push_back(1); });
  RangeLock::Holder* b = l.Acquire(5, 10, [&] { order.push_back(2); });   // waits for a
  RangeLock::Holder* c = l.Acquire(12, 1, [&] { order.push_back(3); });   // waits behind b
  RangeLock::Holder* d = l.Acquire(100, 1, [&] { order.push_back(4); });  // free
  EXPECT_EQ(order, (std::vector<int>{1, 4}));
  l.Release(a);
  Drain();
  EXPECT_EQ(order, (std::vector<int>{1, 4, 2}));
  l.Release(b);
  Drain();
  EXPECT_EQ(order, (std::vector<int>{1, 4, 2, 3}));
  l.Release(c);
  l.Release(d);
}

TEST_F(VaaiTest, WriteSamePatternZeroesAndUnmap) {
  std::vector<uint8_t> block(kBs);
  for (uint32_t i = 0; i < kBs; ++i) block[i] = static_cast<uint8_t>(i);
  Task t = Make(WriteSame10(0, 100, 300), block);
  Run(t);
  EXPECT_EQ(t.status, Status::kGood);
  std::vector<uint8_t> got = Read(100, 300);
  for (uint32_t b = 0; b < 300; ++b) {
    ASSERT_TRUE(std::equal(block.begin(), block.end(), got.begin() + b * kBs)) << b;
  }
  // Zeroes with UNMAP over whole 64 KiB chunks: the memory is given back.
  Write(256, std::vector<uint8_t>(256 * kBs, 0xff));
  const uint64_t before = ram_->allocated_bytes();
  std::vector<uint8_t> zero(kBs, 0);
  Task u = Make(WriteSame10(0x08, 256, 256), zero);
  Run(u);
  EXPECT_EQ(u.status, Status::kGood);
  EXPECT_EQ(ram_->allocated_bytes(), before - 2 * backends::RamDevice::kChunkBytes);
  EXPECT_EQ(Read(256, 256), std::vector<uint8_t>(256 * kBs, 0));
  // NDOB (16 only): zeroes without data-out.
  Write(600, std::vector<uint8_t>(kBs, 0x77));
  Task n = Make(Cdb16(kWriteSame16, 0x09, 600, 1));
  Run(n);
  EXPECT_EQ(n.status, Status::kGood);
  EXPECT_EQ(Read(600, 1), zero);
}

TEST_F(VaaiTest, WriteSameToTheEndAndItsErrors) {
  std::vector<uint8_t> block(kBs, 0x3c);
  Task end = Make(WriteSame10(0, 16380, 0), block);  // 0 blocks: to the end (WSNZ 0)
  Run(end);
  EXPECT_EQ(end.status, Status::kGood);
  EXPECT_EQ(Read(16380, 4), std::vector<uint8_t>(4 * kBs, 0x3c));
  Task beyond = Make(WriteSame10(0, 16383, 2), block);
  Run(beyond);
  ExpectSense(beyond, SenseKey::kIllegalRequest, Asc::kLbaOutOfRange);
  Task anchor = Make(WriteSame10(0x18, 0, 1), block);
  Run(anchor);
  ExpectSense(anchor, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
  std::vector<uint8_t> two(2 * kBs, 0);
  Task big = Make(WriteSame10(0x08, 0, 1), two);  // two blocks of data for one
  Run(big);
  ExpectSense(big, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
  std::vector<uint8_t> half(kBs / 2, 0);
  Task small = Make(WriteSame10(0, 0, 1), half);
  Run(small);
  ExpectSense(small, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
}

TEST_F(VaaiTest, UnmapDeallocatesAndGetLbaStatusSaysSo) {
  Write(0, std::vector<uint8_t>(1024 * kBs, 0x5a));  // 512 KiB: chunks 0..7 mapped
  Task t = Unmap(UnmapList({{128, 256}, {0, 1}}));   // chunks 1 and 2, one block of 0
  EXPECT_EQ(t.status, Status::kGood);
  EXPECT_EQ(Read(0, 1), std::vector<uint8_t>(kBs, 0));
  EXPECT_EQ(Read(1, 1), std::vector<uint8_t>(kBs, 0x5a));
  EXPECT_EQ(Read(128, 256), std::vector<uint8_t>(256 * kBs, 0));
  auto s = LbaStatus(0);
  ASSERT_GE(s.size(), 3u);
  EXPECT_EQ(s[0], std::make_tuple(uint64_t{0}, uint32_t{128}, uint8_t{0}));  // partly: mapped
  EXPECT_EQ(s[1], std::make_tuple(uint64_t{128}, uint32_t{256}, uint8_t{1}));
  EXPECT_EQ(s[2], std::make_tuple(uint64_t{384}, uint32_t{640}, uint8_t{0}));
  auto mid = LbaStatus(200);
  ASSERT_FALSE(mid.empty());
  EXPECT_EQ(mid[0], std::make_tuple(uint64_t{200}, uint32_t{184}, uint8_t{1}));
  auto tail = LbaStatus(16383);
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0], std::make_tuple(uint64_t{16383}, uint32_t{1}, uint8_t{1}));
}

TEST_F(VaaiTest, UnmapChecksEveryDescriptorFirst) {
  Write(0, std::vector<uint8_t>(128 * kBs, 0x5a));
  Task oob = Unmap(UnmapList({{0, 128}, {16383, 2}}));
  ExpectSense(oob, SenseKey::kIllegalRequest, Asc::kLbaOutOfRange);
  EXPECT_EQ(Read(0, 128), std::vector<uint8_t>(128 * kBs, 0x5a)) << "unmapped before refusing";
  std::vector<uint8_t> list = UnmapList({{0, 1}});
  list.resize(6);
  Task short_list = Unmap(list);
  ExpectSense(short_list, SenseKey::kIllegalRequest, Asc::kParameterListLengthError);
  std::vector<std::pair<uint64_t, uint32_t>> many(257, {0, 0});
  std::vector<uint8_t> big(8 + 16 * many.size(), 0);
  StoreBe16(&big[0], static_cast<uint16_t>(big.size() - 2));
  StoreBe16(&big[2], static_cast<uint16_t>(16 * many.size()));
  Task too_many = Unmap(big);
  ExpectSense(too_many, SenseKey::kIllegalRequest, Asc::kInvalidFieldInParameterList);
  Task none = Unmap({});
  EXPECT_EQ(none.status, Status::kGood);
  Task zero_blocks = Unmap(UnmapList({{16384, 0}}));
  EXPECT_EQ(zero_blocks.status, Status::kGood);
}

TEST_F(VaaiTest, ProvisioningIsReported) {
  Task rc = Make(Cdb16(kServiceActionIn16, kSaReadCapacity16, 0, 32));
  Run(rc);
  EXPECT_EQ(in_[14] & 0xc0, 0xc0);  // LBPME, LBPRZ
  Task lbp = Cdb({kInquiry, 1, 0xb2, 0, 64, 0});
  Run(lbp);
  EXPECT_EQ(in_[5], 0xe4);         // LBPU, LBPWS, LBPWS10, LBPRZ
  EXPECT_EQ(in_[6] & 0x07, 0x02);  // thin
  Task bl = Cdb({kInquiry, 1, 0xb0, 0, 64, 0});
  Run(bl);
  EXPECT_EQ(in_[4] & 0x01, 0);          // WSNZ 0
  EXPECT_EQ(in_[5], 255);               // COMPARE AND WRITE blocks
  EXPECT_EQ(LoadBe32(&in_[24]), 256u);  // UNMAP descriptors
  EXPECT_EQ(LoadBe32(&in_[28]), 128u);  // 64 KiB chunks
  EXPECT_EQ(LoadBe64(&in_[36]), (1u << 30) / kBs);
  EXPECT_GT(LoadBe32(&in_[44]), 0u);  // WRITE ATOMIC
}

TEST_F(VaaiTest, WriteAtomicPrefetchAndDefectData) {
  std::vector<uint8_t> data(2 * kBs, 0x42);
  auto c = Cdb16(kWriteAtomic16, 0, 9, 0);
  StoreBe16(&c[12], 2);
  Task ok = Make(c, data);
  Run(ok);
  EXPECT_EQ(ok.status, Status::kGood);
  EXPECT_EQ(Read(9, 2), data);
  StoreBe16(&c[10], 8);  // an atomic boundary: none is offered
  Task boundary = Make(c, data);
  Run(boundary);
  ExpectSense(boundary, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
  EXPECT_EQ(boundary.sense.field_byte, 10);
  Task pf = Make(Cdb16(kPreFetch16, 0x02, 16380, 4));
  Run(pf);
  EXPECT_EQ(pf.status, Status::kGood);
  Task pf_beyond = Make(Cdb16(kPreFetch16, 0, 16380, 5));
  Run(pf_beyond);
  ExpectSense(pf_beyond, SenseKey::kIllegalRequest, Asc::kLbaOutOfRange);
  Task dd = Cdb({kReadDefectData10, 0, 0x18, 0, 0, 0, 0, 0, 32, 0});
  Run(dd);
  EXPECT_EQ(dd.status, Status::kGood);
  EXPECT_EQ(dd.data_in_bytes, 4u);
  EXPECT_EQ(in_[1], 0x18);
  Task dd12 = Cdb({kReadDefectData12, 0x05, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0});
  Run(dd12);
  EXPECT_EQ(dd12.data_in_bytes, 8u);
  Task bad = Cdb({kReadDefectData10, 0, 0x01, 0, 0, 0, 0, 0, 32, 0});
  Run(bad);
  ExpectSense(bad, SenseKey::kIllegalRequest, Asc::kInvalidFieldInCdb);
}

}  // namespace
}  // namespace ferry::scsi
