// The copy manager at the logical-unit level: the fixture (copy_manager_test.h) and what
// INQUIRY and REPORT SUPPORTED OPERATION CODES say about third-party copy. EXTENDED COPY is
// tested in xcopy_test.cc, RECEIVE COPY RESULTS and stopping copies in copy_results_test.cc,
// the ROD token commands in odx_test.cc.
#include "scsi/copy_manager_test.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "base/endian.h"
#include "scsi/opcodes.h"
#include "scsi/tpc_test_builders.h"

namespace ferry::scsi::tpc_test {

// --- Builders ---------------------------------------------------------------------------

Bytes Cscd(const LogicalUnit& lu, Designator type) {
  Bytes d(32, 0);
  d[0] = 0xe4;
  Bytes value;
  switch (type) {
    case Designator::kNaa:
      d[4] = 0x01;  // binary
      value.assign(lu.identity().naa.begin(), lu.identity().naa.end());
      break;
    case Designator::kEui64: {
      d[4] = 0x01;
      const auto eui = lu.Eui64();
      value.assign(eui.begin(), eui.end());
      break;
    }
    case Designator::kT10: {
      d[4] = 0x02;  // ASCII
      const std::string t10 = lu.T10VendorId();
      value.assign(t10.begin(), t10.end());
      break;
    }
  }
  d[5] = static_cast<uint8_t>(type);  // association 00b: the LU
  d[7] = static_cast<uint8_t>(value.size());
  std::copy(value.begin(), value.end(), d.begin() + 8);
  StoreBe24(&d[29], const_cast<LogicalUnit&>(lu).device().geometry().block_size);
  return d;
}

Bytes Seg02(uint16_t src, uint16_t dst, uint16_t blocks, uint64_t src_lba, uint64_t dst_lba,
            bool dc) {
  return tpc_testing::SegmentB2b(src, dst, blocks, src_lba, dst_lba, dc ? 0x02 : 0x00);
}

Bytes Seg0A(uint16_t src, uint16_t dst, uint32_t bytes, uint64_t src_lba, uint64_t dst_lba,
            uint16_t src_offset, uint16_t dst_offset) {
  return tpc_testing::SegmentB2bOffset(src, dst, bytes, src_lba, dst_lba, src_offset, dst_offset);
}

Bytes Seg07(uint16_t src) { return tpc_testing::SegmentVerify(src); }

uint16_t XcopyList::SegmentOffset(size_t i) const {
  size_t off = header() + 32 * cscds.size();
  for (size_t j = 0; j < i; ++j) off += segments[j].size();
  return static_cast<uint16_t>(off);
}

Bytes XcopyList::Encode() const {
  Bytes d(header(), 0);
  size_t cscd_len = 0, seg_len = 0;
  for (const Bytes& c : cscds) cscd_len += c.size();
  for (const Bytes& s : segments) seg_len += s.size();
  d[1] = static_cast<uint8_t>(static_cast<uint8_t>(usage) << 3);
  if (lid4) {
    d[0] = 0x01;  // LIST FORMAT
    d[15] = immed ? 0x01 : 0x00;
    StoreBe32(&d[20], list_id);
    StoreBe16(&d[42], static_cast<uint16_t>(cscd_len));
    StoreBe16(&d[44], static_cast<uint16_t>(seg_len));
  } else {
    d[0] = static_cast<uint8_t>(list_id);
    StoreBe16(&d[2], static_cast<uint16_t>(cscd_len));
    StoreBe32(&d[8], static_cast<uint32_t>(seg_len));
  }
  for (const Bytes& c : cscds) d.insert(d.end(), c.begin(), c.end());
  for (const Bytes& s : segments) d.insert(d.end(), s.begin(), s.end());
  return d;
}

namespace {
void PutRanges(Bytes* d, size_t at, const std::vector<Range>& ranges) {
  StoreBe16(&(*d)[at - 2], static_cast<uint16_t>(16 * ranges.size()));
  for (size_t i = 0; i < ranges.size(); ++i) {
    StoreBe64(&(*d)[at + 16 * i], ranges[i].lba);
    StoreBe32(&(*d)[at + 16 * i + 8], ranges[i].blocks);
  }
}
}  // namespace

Bytes PopulateTokenList(std::vector<Range> ranges, uint32_t timeout_s, bool rtv,
                        uint32_t rod_type) {
  Bytes d(16 + 16 * ranges.size(), 0);
  StoreBe16(&d[0], static_cast<uint16_t>(d.size() - 2));
  d[2] = rtv ? 0x02 : 0x00;
  StoreBe32(&d[4], timeout_s);
  StoreBe32(&d[8], rod_type);
  PutRanges(&d, 16, ranges);
  return d;
}

Bytes WriteUsingTokenList(std::span<const uint8_t> token, std::vector<Range> ranges,
                          uint64_t offset_into_rod, bool del_tkn, bool immed) {
  Bytes d(536 + 16 * ranges.size(), 0);
  StoreBe16(&d[0], static_cast<uint16_t>(d.size() - 2));
  d[2] = static_cast<uint8_t>((del_tkn ? 0x02 : 0) | (immed ? 0x01 : 0));
  StoreBe64(&d[8], offset_into_rod);
  std::copy_n(token.begin(), std::min<size_t>(token.size(), 512), d.begin() + 16);
  PutRanges(&d, 536, ranges);
  return d;
}

Bytes ZeroToken() {
  Bytes t(512, 0);
  StoreBe32(&t[0], 0xffff0001);
  StoreBe16(&t[6], 0x01f8);
  return t;
}

Cdb XcopyCdb(bool lid4, uint32_t param_len) {
  Cdb c{0x83, static_cast<uint8_t>(lid4 ? 0x01 : 0x00)};
  StoreBe32(&c[10], param_len);
  return c;
}

Cdb PopulateTokenCdb(uint32_t list_id, uint32_t param_len) {
  Cdb c{0x83, 0x10};
  StoreBe32(&c[6], list_id);
  StoreBe32(&c[10], param_len);
  return c;
}

Cdb WriteUsingTokenCdb(uint32_t list_id, uint32_t param_len) {
  Cdb c = PopulateTokenCdb(list_id, param_len);
  c[1] = 0x11;
  return c;
}

Cdb CopyOperationAbortCdb(uint32_t list_id) {
  Cdb c{0x83, 0x1c};
  StoreBe32(&c[2], list_id);
  return c;
}

Cdb CopyInCdb(uint8_t sa, uint32_t list_id, uint32_t alloc_len) {
  Cdb c{0x84, sa};
  if (sa == 0x00 || sa == 0x04) {
    c[2] = static_cast<uint8_t>(list_id);  // LID1: one byte
  } else {
    StoreBe32(&c[2], list_id);
  }
  StoreBe32(&c[10], alloc_len);
  return c;
}

Bytes Pattern(size_t bytes, uint32_t seed) {
  Bytes d(bytes);
  uint32_t x = seed * 2654435761u + 0x9e3779b9u;
  for (uint8_t& b : d) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x >> 7);
  }
  return d;
}

namespace {
std::string SenseText(const Task& t) {
  const auto asc = static_cast<uint16_t>(t.sense.asc);
  char buf[64];
  snprintf(buf, sizeof(buf), "status %02x sense %02x/%02x/%02x", static_cast<int>(t.status),
           static_cast<int>(t.sense.key), asc >> 8, asc & 0xff);
  return buf;
}
}  // namespace

::testing::AssertionResult HasSense(const Cmd& c, SenseKey key, Asc asc) {
  if (!c.done) return ::testing::AssertionFailure() << "the command did not complete";
  if (c.task.status == Status::kCheckCondition && c.task.has_sense && c.task.sense.key == key &&
      c.task.sense.asc == asc) {
    return ::testing::AssertionSuccess();
  }
  Task want;
  want.status = Status::kCheckCondition;
  want.sense = MakeSense(key, asc);
  return ::testing::AssertionFailure()
         << "got " << SenseText(c.task) << ", want " << SenseText(want);
}

::testing::AssertionResult IsGood(const Cmd& c) {
  if (!c.done) return ::testing::AssertionFailure() << "the command did not complete";
  if (c.task.status == Status::kGood) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << SenseText(c.task);
}

// --- Fixture ----------------------------------------------------------------------------

CopyManagerOptions CopyManagerTest::Options() const {
  CopyManagerOptions o;
  for (size_t i = 0; i < o.token_key.size(); ++i) o.token_key[i] = static_cast<uint8_t>(i + 1);
  return o;
}

CopyManagerOptions ThrottledCopyTest::Options() const {
  CopyManagerOptions o = CopyManagerTest::Options();
  o.engine.chunk_bytes = 64 << 10;
  o.engine.throttle_bytes_per_sec = 4 << 20;
  return o;
}

std::shared_ptr<LogicalUnit> CopyManagerTest::MakeLu(std::shared_ptr<block::BlockDevice> dev,
                                                     uint8_t tag, bool write_protected,
                                                     std::shared_ptr<CopyManager> manager) {
  LuIdentity id;
  id.serial = "lu-" + std::to_string(tag);
  id.naa = {0x60, 0x01, 0x40, 0x50, 0xfe, 0xed, 0x00, 0x01,
            0xa0, 0xb1, 0xc2, 0xd3, 0xe4, 0xf5, 0x06, tag};
  auto lu = std::make_shared<LogicalUnit>(std::move(dev), id, write_protected);
  lu->set_copy_manager(manager ? std::move(manager) : cm_);
  return lu;
}

void CopyManagerTest::SetUp() {
  reactor_ = io::Reactor::Create().value();
  cm_ = CopyManager::Create(reactor_.get(), Options()).value();
  arena_ = std::make_shared<backends::RamArena>();
  auto ram = [&](const char* name, uint64_t bytes, uint32_t bs,
                 std::shared_ptr<backends::RamArena> arena) {
    return backends::RamDevice::Create(
               {.name = name, .size_bytes = bytes, .block_size = bs, .arena = std::move(arena)})
        .value();
  };
  a_ = MakeLu(ram("a", 8 << 20, 512, arena_), 1);
  b_ = MakeLu(ram("b", 8 << 20, 512, arena_), 2);
  k4_ = MakeLu(ram("k4", 1 << 20, 4096, nullptr), 3);
  wp_ = MakeLu(ram("wp", 1 << 20, 512, arena_), 4, /*write_protected=*/true);
  hidden_ = MakeLu(ram("hidden", 1 << 20, 512, arena_), 5);
  faulty_ = std::make_shared<backends::FaultyDevice>(ram("f", 1 << 20, 512, arena_));
  f_ = MakeLu(faulty_, 6);
  auto view = std::make_shared<NexusView>();
  for (const auto& lu : {a_, b_, k4_, wp_, f_}) view->lus.push_back({.lu = lu});
  view_ = view;
}

void CopyManagerTest::TearDown() {
  // Nothing may outlive the test: stop what runs and drain the reactor.
  cm_->CancelAll();
  RunUntilIdle();
  while (reactor_->RunOnce(false) > 0) {
  }
}

std::unique_ptr<Cmd> CopyManagerTest::Start(LogicalUnit& lu, const Cdb& cdb, Bytes out,
                                            size_t in_bytes, uint64_t nexus,
                                            std::shared_ptr<const NexusView> view) {
  auto c = std::make_unique<Cmd>();
  c->task.cdb = cdb;
  c->task.nexus = nexus;
  c->task.view = view ? std::move(view) : view_;
  c->out = std::move(out);
  c->task.data_out = c->out;
  c->in.assign(in_bytes, 0xee);
  c->task.data_in = c->in;
  Cmd* p = c.get();
  lu.Execute(p->task, [p] { p->done = true; });
  EXPECT_FALSE(p->done) << "completed inside Execute";
  return c;
}

Cmd& CopyManagerTest::Wait(Cmd& c) {
  reactor_->RunUntil([&] { return c.done; });
  return c;
}

std::unique_ptr<Cmd> CopyManagerTest::Run(LogicalUnit& lu, const Cdb& cdb, Bytes out,
                                          size_t in_bytes, uint64_t nexus,
                                          std::shared_ptr<const NexusView> view) {
  auto c = Start(lu, cdb, std::move(out), in_bytes, nexus, std::move(view));
  Wait(*c);
  return c;
}

void CopyManagerTest::RunFor(std::chrono::milliseconds d) {
  bool fired = false;
  reactor_->RunAfter(d, [&fired] { fired = true; });
  reactor_->RunUntil([&] { return fired; });
}

void CopyManagerTest::RunUntilIdle() {
  reactor_->RunUntil([&] { return cm_->metrics().active == 0; });
}

std::unique_ptr<Cmd> CopyManagerTest::Xcopy(LogicalUnit& lu, const XcopyList& list, uint64_t nexus,
                                            std::shared_ptr<const NexusView> view) {
  Bytes p = list.Encode();
  const auto len = static_cast<uint32_t>(p.size());
  return Run(lu, XcopyCdb(list.lid4, len), std::move(p), 0, nexus, std::move(view));
}

Bytes CopyManagerTest::Populate(LogicalUnit& lu, uint32_t list_id, std::vector<Range> ranges,
                                uint32_t timeout_s, std::shared_ptr<const NexusView> view) {
  Bytes p = PopulateTokenList(std::move(ranges), timeout_s);
  const auto len = static_cast<uint32_t>(p.size());
  auto pt = Run(lu, PopulateTokenCdb(list_id, len), std::move(p), 0, kNexus, std::move(view));
  EXPECT_TRUE(IsGood(*pt)) << "POPULATE TOKEN";
  if (pt->task.status != Status::kGood) return {};
  auto rrti = Run(lu, CopyInCdb(0x07, list_id, 1024), {}, 1024);
  EXPECT_TRUE(IsGood(*rrti)) << "RECEIVE ROD TOKEN INFORMATION";
  const auto d = rrti->data();
  if (d.size() < 32 || d.size() < 32u + d[13] + 6 + 512) {
    ADD_FAILURE() << "RRTI returned " << d.size() << " bytes";
    return {};
  }
  const size_t at = 32 + d[13];
  EXPECT_EQ(LoadBe32(&d[at]), 2u + 512u);  // ROD TOKEN DESCRIPTORS LENGTH
  return Bytes(d.begin() + at + 6, d.begin() + at + 6 + 512);
}

std::unique_ptr<Cmd> CopyManagerTest::WriteUsingToken(LogicalUnit& lu, uint32_t list_id,
                                                      const Bytes& list, uint64_t nexus,
                                                      std::shared_ptr<const NexusView> view) {
  const auto len = static_cast<uint32_t>(list.size());
  return Run(lu, WriteUsingTokenCdb(list_id, len), list, 0, nexus, std::move(view));
}

void CopyManagerTest::Write(LogicalUnit& lu, uint64_t lba, const Bytes& data) {
  const uint32_t bs = lu.device().geometry().block_size;
  Cdb c{kWrite16};
  StoreBe64(&c[2], lba);
  StoreBe32(&c[10], static_cast<uint32_t>(data.size() / bs));
  auto w = Run(lu, c, data, 0);
  EXPECT_TRUE(IsGood(*w)) << "WRITE(16) at " << lba;
}

Bytes CopyManagerTest::Read(LogicalUnit& lu, uint64_t lba, uint32_t blocks) {
  const uint32_t bs = lu.device().geometry().block_size;
  Cdb c{kRead16};
  StoreBe64(&c[2], lba);
  StoreBe32(&c[10], blocks);
  auto r = Run(lu, c, {}, size_t{blocks} * bs);
  EXPECT_TRUE(IsGood(*r)) << "READ(16) at " << lba;
  return r->in;
}

Bytes CopyManagerTest::Fill(LogicalUnit& lu, uint64_t lba, uint32_t blocks, uint32_t seed) {
  Bytes d = Pattern(size_t{blocks} * lu.device().geometry().block_size, seed);
  Write(lu, lba, d);
  return d;
}

namespace {

// --- INQUIRY and REPORT SUPPORTED OPERATION CODES ---------------------------------------

TEST_F(CopyManagerTest, InquiryReports3pcOnlyWithACopyManager) {
  LogicalUnit bare(backends::RamDevice::Create({.name = "bare", .size_bytes = 1 << 20}).value(),
                   LuIdentity{}, false);
  auto with = Run(*a_, {kInquiry, 0, 0, 0, 96, 0});
  auto without = Run(bare, {kInquiry, 0, 0, 0, 96, 0});
  ASSERT_TRUE(IsGood(*with));
  ASSERT_TRUE(IsGood(*without));
  EXPECT_EQ(with->in[5] & 0x08, 0x08);
  EXPECT_EQ(without->in[5] & 0x08, 0);
  auto pages = [](const Cmd& c) { return Bytes(c.in.begin() + 4, c.in.begin() + 4 + c.in[3]); };
  auto with_pages = Run(*a_, {kInquiry, 1, 0x00, 0, 255, 0});
  auto without_pages = Run(bare, {kInquiry, 1, 0x00, 0, 255, 0});
  EXPECT_EQ(pages(*with_pages), (Bytes{0x00, 0x80, 0x83, 0x86, 0x8f, 0xb0, 0xb1, 0xb2}));
  EXPECT_EQ(pages(*without_pages), (Bytes{0x00, 0x80, 0x83, 0x86, 0xb0, 0xb1, 0xb2}));
  EXPECT_TRUE(HasSense(*Run(bare, {kInquiry, 1, 0x8f, 0, 255, 0}), SenseKey::kIllegalRequest,
                       Asc::kInvalidFieldInCdb));
  // Without a copy manager the third-party copy commands do not exist.
  EXPECT_TRUE(HasSense(*Run(bare, XcopyCdb(false, 0)), SenseKey::kIllegalRequest,
                       Asc::kInvalidCommandOperationCode));
  EXPECT_TRUE(HasSense(*Run(bare, CopyInCdb(0x03, 0)), SenseKey::kIllegalRequest,
                       Asc::kInvalidCommandOperationCode));
}

TEST_F(CopyManagerTest, ThirdPartyCopyVpdPage) {
  auto c = Run(*a_, {kInquiry, 1, 0x8f, 0x10, 0x00, 0});
  ASSERT_TRUE(IsGood(*c));
  const auto d = c->data();
  ASSERT_GE(d.size(), 4u);
  EXPECT_EQ(d[1], 0x8f);
  ASSERT_EQ(LoadBe16(&d[2]) + 4u, d.size());  // PAGE LENGTH covers every descriptor
  std::vector<uint16_t> types;
  for (size_t at = 4; at < d.size();) {
    ASSERT_LE(at + 4, d.size());
    const uint16_t type = LoadBe16(&d[at]);
    const uint16_t len = LoadBe16(&d[at + 2]);
    ASSERT_LE(at + 4 + len, d.size()) << std::hex << type;
    EXPECT_EQ((4 + len) % 4, 0) << std::hex << type;
    const uint8_t* p = &d[at];
    types.push_back(type);
    switch (type) {
      case 0x0000:  // SBC-3 block device ROD token limits
        EXPECT_EQ(len, 0x20);
        EXPECT_EQ(LoadBe16(p + 10), 64);    // MAXIMUM RANGE DESCRIPTORS
        EXPECT_EQ(LoadBe32(p + 12), 600u);  // MAXIMUM INACTIVITY TIMEOUT
        EXPECT_EQ(LoadBe32(p + 16), 60u);   // DEFAULT INACTIVITY TIMEOUT
        EXPECT_EQ(LoadBe64(p + 20), (1u << 30) / 512);
        break;
      case 0x0001: {  // supported commands: 83h and 84h with their service actions
        const Bytes want = {15,   0x83, 5,    0x00, 0x01, 0x10, 0x11, 0x1c,
                            0x84, 6,    0x00, 0x03, 0x04, 0x05, 0x07, 0x08};
        Bytes got(p + 4, p + 4 + 1 + p[4]);
        std::sort(got.begin() + 3, got.begin() + 8);
        std::sort(got.begin() + 10, got.end());
        EXPECT_EQ(got, want);
        break;
      }
      case 0x0004:  // parameter data
        EXPECT_EQ(len, 0x1c);
        EXPECT_EQ(LoadBe16(p + 8), 128);
        EXPECT_EQ(LoadBe16(p + 10), 256);
        EXPECT_EQ(LoadBe32(p + 12), 16384u);
        EXPECT_EQ(LoadBe32(p + 16), 0u);  // MAXIMUM INLINE DATA LENGTH
        break;
      case 0x0008:  // supported descriptors
        EXPECT_EQ(len, 8);
        EXPECT_EQ(Bytes(p + 4, p + 9), (Bytes{4, 0x02, 0x07, 0x0a, 0xe4}));
        break;
      case 0x000c:  // supported CSCD descriptor IDs
        EXPECT_EQ(len, 4);
        EXPECT_EQ(LoadBe16(p + 4), 2);
        EXPECT_EQ(LoadBe16(p + 6), 0xffff);
        break;
      case 0x0106:  // ROD token features, one 48-byte block ROD descriptor
        EXPECT_EQ(len, 44 + 48);
        EXPECT_EQ(LoadBe32(p + 24), 600u);  // MAXIMUM TOKEN INACTIVITY TIMEOUT
        EXPECT_EQ(LoadBe16(p + 46), 48);
        EXPECT_EQ(p[48], 0x00);
        EXPECT_EQ(LoadBe16(p + 50), 44);
        break;
      case 0x0108:  // ROD types: PIT change vulnerable in and out, block device zero in
        EXPECT_EQ(len, 4 + 2 * 64);
        EXPECT_EQ(LoadBe16(p + 6), 128);
        EXPECT_EQ(LoadBe32(p + 8), 0x00800001u);
        EXPECT_EQ(p[12] & 0x03, 0x03);
        EXPECT_EQ(LoadBe32(p + 8 + 64), 0xffff0001u);
        EXPECT_EQ(p[12 + 64] & 0x03, 0x02);
        break;
      case 0x8001:  // general copy operations
        EXPECT_EQ(len, 0x20);
        EXPECT_EQ(LoadBe32(p + 12), 1u << 30);  // MAXIMUM SEGMENT LENGTH
        EXPECT_EQ(p[16], 9);                    // DATA SEGMENT GRANULARITY
        break;
      default: ADD_FAILURE() << "unexpected descriptor " << std::hex << type;
    }
    at += 4 + len;
  }
  EXPECT_EQ(types, (std::vector<uint16_t>{0x0000, 0x0001, 0x0004, 0x0008, 0x000c, 0x0106, 0x0108,
                                          0x8001}));
}

TEST_F(CopyManagerTest, SupportedOperationCodesListCopyCommandsOnlyWithACopyManager) {
  LogicalUnit bare(backends::RamDevice::Create({.name = "bare", .size_bytes = 1 << 20}).value(),
                   LuIdentity{}, false);
  auto copy_sas = [&](LogicalUnit& lu) {
    auto c = Run(lu, {kMaintenanceIn, kSaReportSupportedOpcodes, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0},
                 {}, 4096);
    EXPECT_TRUE(IsGood(*c));
    std::vector<std::pair<uint8_t, uint8_t>> out;
    const auto d = c->data();
    for (size_t at = 4; at + 8 <= d.size(); at += 8) {
      if (d[at] == 0x83 || d[at] == 0x84) out.emplace_back(d[at], d[at + 3]);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(copy_sas(*a_), (std::vector<std::pair<uint8_t, uint8_t>>{{0x83, 0x00},
                                                                     {0x83, 0x01},
                                                                     {0x83, 0x10},
                                                                     {0x83, 0x11},
                                                                     {0x83, 0x1c},
                                                                     {0x84, 0x00},
                                                                     {0x84, 0x03},
                                                                     {0x84, 0x04},
                                                                     {0x84, 0x05},
                                                                     {0x84, 0x07},
                                                                     {0x84, 0x08}}));
  EXPECT_TRUE(copy_sas(bare).empty());
  const Cdb one = {kMaintenanceIn, kSaReportSupportedOpcodes, 2, 0x83, 0, 0x11, 0, 0, 1, 0, 0, 0};
  EXPECT_EQ(Run(*a_, one)->in[1] & 0x07, 3);   // supported
  EXPECT_EQ(Run(bare, one)->in[1] & 0x07, 1);  // not supported
}

}  // namespace
}  // namespace ferry::scsi::tpc_test
