// Fuzz target: the SCSI core. Every input is a short session of commands that a fresh
// LogicalUnit executes over a 4 MiB RAM device, on one reactor that lives across inputs.
//
// Input (big-endian; bytes past the end read as zero):
//   setup(1)   bit 0: 4096-byte blocks (else 512); bit 1: the logical unit is write-protected;
//              bit 2: the device fails one range, described by the next 5 bytes:
//   fault(1)   bit 0: reads, bit 1: writes; bits 4-7: which IoStatus (kFaults)
//   lba(2) blocks(2)
//   then up to kMaxCommands records:
//   flags(1)   bits 0-1: I_T nexus; bit 2: the nexus's ACL maps the LUN write-protected;
//              bit 3: raise a unit attention (CAPACITY DATA HAS CHANGED) before the command
//   cdb_len(1) modulo 17, then that many CDB bytes (the rest of the 16 stay zero)
//   in_len(3)  data-in buffer bytes         out_len(3)  data-out bytes
//   given(2)   data-out bytes taken from the input; the rest follow a fixed pattern, so
//              large writes need no large inputs
//
// The two devices (512- and 4096-byte blocks) hold a pattern in their first and last 64 KiB
// and holes elsewhere; an input that wrote restores them, so inputs do not depend on each
// other. Invariants, checked with abort(): `done` runs exactly once and never inside
// Execute; status is GOOD, CHECK CONDITION or RESERVATION CONFLICT (no fault is transient);
// only CHECK CONDITION carries sense, and a sense key; unsupported commands fail; sense field
// pointers point into the CDB or the parameter list; data_in_bytes fits data_in and the ALLOCATION
// LENGTH, and nothing is written past it; parameter data agrees with its header and READ CAPACITY
// with the device; MODE SELECT takes back what MODE SENSE returned; only a command that
// writes (WRITE, WRITE SAME, UNMAP, COMPARE AND WRITE, ORWRITE, SANITIZE, a copy) and ends
// GOOD (or meets a fault) changes the device, and what a WRITE wrote reads back; READ
// returns what the device holds. Triage: SCSI_CDB_FUZZ_VERBOSE=1 scsi_cdb_replay FILE prints each
// command and its outcome.
#include <sanitizer/asan_interface.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "backends/faulty/faulty_device.h"
#include "backends/ram/ram_device.h"
#include "base/endian.h"
#include "io/reactor.h"
#include "scsi/logical_unit.h"
#include "scsi/opcodes.h"

namespace ferry::scsi {
namespace {

constexpr uint64_t kDeviceBytes = 4u << 20;
constexpr uint64_t kPatternBytes = backends::RamDevice::kChunkBytes;  // at each end
constexpr size_t kMaxBufferBytes = kDeviceBytes + (64u << 10);
constexpr int kMaxCommands = 16;
constexpr uint8_t kCanary = 0xee;
// What a faulty range completes with: every error but the transient kNoResources.
constexpr IoStatus kFaults[] = {IoStatus::kIoError,      IoStatus::kNoSpace,   IoStatus::kInvalid,
                                IoStatus::kNotSupported, IoStatus::kAborted,   IoStatus::kReadOnly,
                                IoStatus::kTimeout,      IoStatus::kMiscompare};

// SCSI_CDB_FUZZ_VERBOSE=1 prints every command and its outcome (for triage).
bool Verbose() {
  static const bool verbose = std::getenv("SCSI_CDB_FUZZ_VERBOSE") != nullptr;
  return verbose;
}

void Print(const Task& t) {
  std::fprintf(stderr, "  cdb");
  for (uint8_t b : t.cdb) std::fprintf(stderr, " %02x", b);
  std::fprintf(stderr, " | nexus %lu out %zu in %zu -> status %02x key %x asc %04x in %u/%u\n",
               static_cast<unsigned long>(t.nexus), t.data_out.size(), t.data_in.size(),
               static_cast<unsigned>(t.status), static_cast<unsigned>(t.sense.key),
               static_cast<unsigned>(t.sense.asc), t.data_in_bytes, t.data_in_wanted);
  if (t.data_in_bytes == 0) return;
  std::fprintf(stderr, "    data-in");
  for (uint32_t i = 0; i < std::min(t.data_in_bytes, 32u); ++i) {
    std::fprintf(stderr, " %02x", t.data_in[i]);
  }
  std::fprintf(stderr, "%s\n", t.data_in_bytes > 32 ? " ..." : "");
}

void Expect(bool ok, const char* what, const Task* t = nullptr) {
  if (ok) return;
  std::fprintf(stderr, "scsi_cdb_fuzz: invariant broken: %s\n", what);
  if (t != nullptr) Print(*t);
  std::abort();
}

// A buffer that lives across inputs, so big transfers cost no fresh pages per command. Only
// the span Take() returns is addressable under ASan (the rest is poisoned), so overruns are
// caught as with a heap buffer of exactly that size.
class Scratch {
 public:
  explicit Scratch(size_t capacity) : buf_(capacity) { Take(0); }
  std::span<uint8_t> Take(size_t n) {
    ASAN_UNPOISON_MEMORY_REGION(buf_.data(), buf_.size());
    ASAN_POISON_MEMORY_REGION(buf_.data() + n, buf_.size() - n);
    return {buf_.data(), n};
  }

 private:
  std::vector<uint8_t> buf_;
};

// Byte strings built once: the device's pattern regions (the first kPatternBytes, then the
// last), the data-out filler and the data-in canary.
const std::vector<uint8_t>& Pattern() {
  static const std::vector<uint8_t>* p = [] {
    auto* v = new std::vector<uint8_t>(2 * kPatternBytes);
    for (uint64_t i = 0; i < v->size(); ++i) {
      const uint64_t off = i < kPatternBytes ? i : kDeviceBytes - 2 * kPatternBytes + i;
      (*v)[i] = static_cast<uint8_t>(off * 7 + (off >> 9) * 13 + 1);
    }
    return v;
  }();
  return *p;
}
const std::vector<uint8_t>& Filler() {
  static const std::vector<uint8_t>* f = [] {
    auto* v = new std::vector<uint8_t>(kMaxBufferBytes);
    for (size_t i = 0; i < v->size(); ++i) (*v)[i] = static_cast<uint8_t>(i * 29 + 3);
    return v;
  }();
  return *f;
}
const std::vector<uint8_t>& Canary() {
  static const auto* c = new std::vector<uint8_t>(kMaxBufferBytes, kCanary);
  return *c;
}

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t U8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint32_t Be(int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) v = v << 8 | U8();
    return v;
  }
  std::span<const uint8_t> Bytes(size_t n) {
    n = std::min(n, size_ - pos_);
    std::span<const uint8_t> s(data_ + pos_, n);
    pos_ += n;
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// One request straight to the device, run to completion on the current reactor.
IoStatus DeviceIo(block::BlockDevice& dev, block::IoOp op, uint64_t offset_bytes,
                  uint64_t len_bytes, uint8_t* buf) {
  const uint32_t bs = dev.geometry().block_size;
  iovec iov{buf, len_bytes};
  bool done = false;
  IoStatus result = IoStatus::kOk;
  block::IoRequest req{.op = op,
                       .lba = Lba(offset_bytes / bs),
                       .blocks = BlockCount(len_bytes / bs),
                       .iov = buf != nullptr ? &iov : nullptr,
                       .iovcnt = buf != nullptr ? 1u : 0u};
  req.done = [&done, &result](IoStatus st) {
    result = st;
    done = true;
  };
  dev.Submit(req);
  io::Reactor::Current()->RunUntil([&done] { return done; });
  return result;
}

void ReadRange(block::BlockDevice& dev, uint64_t offset_bytes, std::span<uint8_t> out) {
  if (out.empty()) return;
  Expect(DeviceIo(dev, block::IoOp::kRead, offset_bytes, out.size(), out.data()) == IoStatus::kOk,
         "device read");
}

struct Device {
  std::shared_ptr<backends::RamDevice> ram;
  std::vector<uint8_t> regions;      // the first and last kPatternBytes as they are now
  std::vector<uint8_t> regions_now;  // read after a command, to compare with `regions`
  bool dirty = false;                // written by this input
  bool faults = false;               // this input's commands go through a FaultyDevice

  void ReadRegions(std::vector<uint8_t>* v) {
    v->resize(2 * kPatternBytes);
    ReadRange(*ram, 0, {v->data(), kPatternBytes});
    ReadRange(*ram, kDeviceBytes - kPatternBytes, {v->data() + kPatternBytes, kPatternBytes});
  }

  // Holes everywhere (write-zeroes frees whole chunks), then the pattern at both ends.
  void Restore() {
    Expect(DeviceIo(*ram, block::IoOp::kWriteZeroes, 0, kDeviceBytes, nullptr) == IoStatus::kOk,
           "restore: write zeroes");
    regions = Pattern();
    Expect(DeviceIo(*ram, block::IoOp::kWrite, 0, kPatternBytes, regions.data()) == IoStatus::kOk &&
               DeviceIo(*ram, block::IoOp::kWrite, kDeviceBytes - kPatternBytes, kPatternBytes,
                        regions.data() + kPatternBytes) == IoStatus::kOk,
           "restore: write pattern");
    Expect(ram->allocated_bytes() == 2 * kPatternBytes, "restore: device has holes again");
    dirty = false;
  }
};

struct Env {
  std::unique_ptr<io::Reactor> reactor;
  Device dev[2];  // 512- and 4096-byte blocks
  Scratch in{kMaxBufferBytes};
  Scratch out{kMaxBufferBytes};
  Scratch check{kDeviceBytes};  // device contents to compare with
};

// The command table itself: lengths match the opcode groups, usage maps start with the
// opcode, end with the control byte and mark nothing past the CDB.
void CheckCommandTable() {
  for (const CommandInfo& ci : SupportedCommands()) {
    Expect(ci.cdb_len == CdbLength(ci.opcode) && ci.cdb_len <= 16, "table: cdb_len");
    Expect(ci.usage[0] == ci.opcode && ci.usage[ci.cdb_len - 1] == 0x04, "table: usage ends");
    for (size_t i = ci.cdb_len; i < 16; ++i) Expect(ci.usage[i] == 0, "table: usage past CDB");
    Expect(FindCommand(ci.opcode, ci.sa) == &ci, "table: FindCommand");
  }
}

Env* MakeEnv() {
  CheckCommandTable();
  auto* env = new Env;
  auto r = io::Reactor::Create();
  Expect(r.ok(), "cannot create a reactor (io_uring)");
  env->reactor = std::move(r).value();
  for (uint32_t i = 0; i < 2; ++i) {
    auto ram = backends::RamDevice::Create(
        {.name = "fuzz", .size_bytes = kDeviceBytes, .block_size = i == 0 ? 512u : 4096u});
    Expect(ram.ok(), "cannot create the RAM device");
    env->dev[i].ram = std::move(ram).value();
    env->dev[i].Restore();
  }
  return env;
}

Env& GetEnv() {
  static Env* env = MakeEnv();  // never destroyed: the reactor outlives every input
  return *env;
}

bool IsWrite(uint8_t op) {
  return op == kWrite6 || op == kWrite10 || op == kWrite12 || op == kWrite16 ||
         op == kWriteAndVerify10 || op == kWriteAndVerify12 || op == kWriteAndVerify16;
}
// Commands other than WRITE that may change the device when they end GOOD: WRITE SAME (and
// its UNMAP bit), UNMAP, COMPARE AND WRITE, ORWRITE, SANITIZE, and the third-party copies
// within the LU (EXTENDED COPY, WRITE USING TOKEN).
bool MayChangeData(uint8_t op) {
  return op == kWriteSame10 || op == kWriteSame16 || op == kUnmap || op == kCompareAndWrite ||
         op == kOrWrite16 || op == kSanitize || op == kThirdPartyCopyOut;
}
bool IsRead(uint8_t op) { return op == kRead6 || op == kRead10 || op == kRead12 || op == kRead16; }

uint64_t CdbLba(const uint8_t* c) {
  switch (CdbLength(c[0])) {
    case 6: return LoadBe24(c + 1) & 0x1fffff;
    case 16: return LoadBe64(c + 2);
    default: return LoadBe32(c + 2);
  }
}

// Status, sense and data-in bookkeeping, whatever the command.
void CheckResult(const Task& t, std::span<const uint8_t> in) {
  const uint8_t* c = t.cdb.data();
  const bool good = t.status == Status::kGood;
  // RESERVATION CONFLICT: another nexus of this input holds a reservation (SPC-4 5.14, or
  // RESERVE(6)); it carries no sense.
  const bool conflict = t.status == Status::kReservationConflict;
  Expect(good || conflict || t.status == Status::kCheckCondition,
         "status is GOOD, CHECK CONDITION or RESERVATION CONFLICT", &t);
  Expect((t.status == Status::kCheckCondition) == t.has_sense, "sense exactly when CHECK CONDITION",
         &t);
  Expect(!t.has_sense || t.sense.key != SenseKey::kNoSense, "CHECK CONDITION has a sense key", &t);
  if (FindCommand(c[0], c[1] & 0x1f) == nullptr) Expect(!good, "unsupported command fails", &t);
  Expect(t.data_in_bytes <= in.size(), "data_in_bytes <= data_in.size()", &t);
  if (t.data_in_bytes < in.size()) {
    Expect(std::equal(in.begin() + t.data_in_bytes, in.end(), Canary().begin()),
           "data_in written past data_in_bytes", &t);
  }
  const uint32_t alloc = AllocationLength(c);
  if (good && alloc != UINT32_MAX) {
    Expect(t.data_in_bytes <= alloc && t.data_in_wanted <= alloc, "ALLOCATION LENGTH", &t);
  }
  if (!t.has_sense) return;
  uint8_t buf[kMaxSenseBytes];
  Expect(EncodeSense(t.sense, false, buf) == 18, "fixed sense is 18 bytes", &t);
  const size_t n = EncodeSense(t.sense, true, buf);
  Expect(n >= 8 && n <= kMaxSenseBytes && buf[7] == n - 8, "descriptor sense length", &t);
  if (t.sense.has_field_pointer) {
    const size_t limit = t.sense.in_cdb ? CdbLength(c[0]) : t.data_out.size();
    Expect(t.sense.field_byte < (limit == 0 ? 16 : limit), "field pointer inside", &t);
    Expect(!t.sense.field_bit || *t.sense.field_bit < 8, "field pointer bit", &t);
  }
}

// What the command did to the device: reads return its contents, GOOD writes land, and
// nothing else changes it.
void CheckDevice(const Task& t, Device& d, uint64_t allocated_before, Scratch& check) {
  const uint8_t* c = t.cdb.data();
  const uint32_t bs = d.ram->geometry().block_size;
  const auto bt = DecodeBlockTransfer(c);
  const bool good = t.status == Status::kGood;
  if (good && IsRead(c[0])) {
    const uint64_t bytes = uint64_t{bt->blocks} * bs;
    Expect(t.data_in_wanted == bytes, "READ: data_in_wanted", &t);
    Expect(t.data_in_bytes == std::min<uint64_t>(bytes, t.data_in.size()), "READ: bytes", &t);
    const uint64_t covered = (uint64_t{t.data_in_bytes} + bs - 1) / bs * bs;
    std::span<uint8_t> want = check.Take(covered);
    ReadRange(*d.ram, CdbLba(c) * bs, want);
    Expect(std::equal(want.begin(), want.begin() + t.data_in_bytes, t.data_in.begin()),
           "READ: data", &t);
  }
  // A write that failed on the device (WRITE AND VERIFY: perhaps in its verify) may have
  // written some of its data.
  if (IsWrite(c[0]) && (good || d.faults)) {
    if (good) {
      std::span<uint8_t> got = check.Take(uint64_t{bt->blocks} * bs);
      ReadRange(*d.ram, CdbLba(c) * bs, got);
      Expect(std::equal(got.begin(), got.end(), t.data_out.begin()), "WRITE: data reads back", &t);
    }
    d.dirty = true;
    d.ReadRegions(&d.regions);
    return;
  }
  if (MayChangeData(c[0]) && (good || d.faults)) {
    d.dirty = true;
    d.ReadRegions(&d.regions);
    return;
  }
  Expect(d.ram->allocated_bytes() == allocated_before, "only GOOD writes allocate", &t);
  d.ReadRegions(&d.regions_now);
  Expect(d.regions_now == d.regions, "only GOOD writes change data", &t);
}

// The total length that parameter data declares in its own header (ADDITIONAL LENGTH, MODE
// DATA LENGTH and the like), when the initiator received enough of it to tell.
std::optional<size_t> DeclaredLength(const uint8_t* c, std::span<const uint8_t> d) {
  const auto need = [&d](size_t n) { return d.size() >= n; };
  switch (c[0]) {
    case kInquiry:
      if (!(c[1] & 0x01)) return need(5) ? std::optional<size_t>(d[4] + 5) : std::nullopt;
      return need(4) ? std::optional<size_t>(LoadBe16(&d[2]) + 4) : std::nullopt;
    case kModeSense6: return need(1) ? std::optional<size_t>(d[0] + 1) : std::nullopt;
    case kModeSense10: return need(2) ? std::optional<size_t>(LoadBe16(&d[0]) + 2) : std::nullopt;
    case kRequestSense: return need(8) ? std::optional<size_t>(d[7] + 8) : std::nullopt;
    case kReadCapacity10: return 8;
    case kServiceActionIn16:
      if ((c[1] & 0x1f) == 0x12) {  // GET LBA STATUS: PARAMETER DATA LENGTH, then that many
        return need(4) ? std::optional<size_t>(LoadBe32(&d[0]) + 4) : std::nullopt;
      }
      return 32;  // READ CAPACITY(16)
    case kMaintenanceIn:
      if ((c[1] & 0x1f) == kSaReportSupportedTmfs) {
        if (!(c[2] & 0x80)) return 4;
        return need(4) ? std::optional<size_t>(d[3] + 4) : std::nullopt;
      }
      if ((c[2] & 0x07) == 0) {  // all commands
        return need(4) ? std::optional<size_t>(LoadBe32(&d[0]) + 4) : std::nullopt;
      }
      if (!need(4)) return std::nullopt;  // one command: CDB usage data, then timeouts
      return LoadBe16(&d[2]) + 4 + ((d[1] & 0x80) ? 12 : 0);
    default: return std::nullopt;
  }
}

// Parameter data agrees with its own header and the allocation length, and READ CAPACITY
// with the device.
void CheckParameterData(const Task& t, const block::Geometry& g) {
  if (t.status != Status::kGood) return;
  const uint8_t* c = t.cdb.data();
  std::span<const uint8_t> d = t.data_in.first(t.data_in_bytes);
  if (auto len = DeclaredLength(c, d)) {
    Expect(t.data_in_wanted == std::min<size_t>(*len, AllocationLength(c)),
           "parameter data length matches its header", &t);
  }
  if (c[0] == kReadCapacity10 && d.size() == 8) {
    const uint64_t last = std::min<uint64_t>(g.num_blocks.value() - 1, UINT32_MAX);
    Expect(LoadBe32(&d[0]) == last && LoadBe32(&d[4]) == g.block_size, "READ CAPACITY(10)", &t);
  }
  if (c[0] == kServiceActionIn16 && (c[1] & 0x1f) == 0x10 && d.size() >= 12) {
    Expect(LoadBe64(&d[0]) == g.num_blocks.value() - 1 && LoadBe32(&d[8]) == g.block_size,
           "READ CAPACITY(16)", &t);
  }
}

// Runs one command to completion: `done` runs once, later, and never again.
void Execute(LogicalUnit& lu, Task& t) {
  int calls = 0;
  bool in_execute = true;
  bool inline_done = false;
  lu.Execute(t, [&calls, &in_execute, &inline_done] {
    ++calls;
    inline_done = inline_done || in_execute;
  });
  in_execute = false;
  io::Reactor* reactor = io::Reactor::Current();
  reactor->RunUntil([&calls] { return calls > 0; });
  while (reactor->RunOnce(false) > 0) {
  }
  if (Verbose()) Print(t);
  Expect(!inline_done, "done ran inside Execute", &t);
  Expect(calls == 1, "done ran exactly once", &t);
}

// What MODE SENSE returns as current values, MODE SELECT takes back unchanged (SPC-4 6.13:
// initiators such as Linux sd read a page, flip a bit and send it back).
void CheckModeRoundTrip(LogicalUnit& lu, const Task& sense) {
  const uint8_t* c = sense.cdb.data();
  const bool ten = c[0] == kModeSense10;
  if (sense.status != Status::kGood || (c[0] != kModeSense6 && !ten) || (c[2] >> 6) != 0) return;
  std::span<const uint8_t> d = sense.data_in.first(sense.data_in_bytes);
  const auto len = DeclaredLength(c, d);
  if (!len || *len != d.size()) return;  // truncated: nothing whole to send back
  std::vector<uint8_t> list(d.begin(), d.end());
  list[0] = 0;  // MODE DATA LENGTH is reserved in MODE SELECT
  if (ten) list[1] = 0;
  Task sel;
  const uint8_t n = static_cast<uint8_t>(list.size());
  sel.cdb = ten ? std::array<uint8_t, 16>{kModeSelect10,
                                          0x10,
                                          0,
                                          0,
                                          0,
                                          0,
                                          0,
                                          static_cast<uint8_t>(list.size() >> 8),
                                          n}
                : std::array<uint8_t, 16>{kModeSelect6, 0x10, 0, 0, n};
  sel.nexus = sense.nexus;
  sel.write_protected = sense.write_protected;
  sel.data_out = list;
  const LogicalUnit::ModeState before = lu.mode();
  Execute(lu, sel);
  const LogicalUnit::ModeState after = lu.mode();
  Expect(sel.status == Status::kGood, "MODE SELECT takes back what MODE SENSE returned", &sel);
  Expect(after.write_cache_enabled == before.write_cache_enabled &&
             after.descriptor_sense == before.descriptor_sense,
         "MODE SELECT of the current values changes nothing", &sel);
}

void RunCommand(Env& env, LogicalUnit& lu, Device& d, Reader& r) {
  const uint8_t flags = r.U8();
  Task t;
  std::span<const uint8_t> cdb = r.Bytes(r.U8() % 17);
  std::copy(cdb.begin(), cdb.end(), t.cdb.begin());
  std::span<uint8_t> in = env.in.Take(std::min<size_t>(r.Be(3), kMaxBufferBytes));
  std::fill(in.begin(), in.end(), kCanary);
  std::span<uint8_t> out = env.out.Take(std::min<size_t>(r.Be(3), kMaxBufferBytes));
  std::span<const uint8_t> given = r.Bytes(std::min<size_t>(r.Be(2), out.size()));
  std::copy(given.begin(), given.end(), out.begin());
  std::copy(Filler().begin() + given.size(), Filler().begin() + out.size(),
            out.begin() + given.size());
  t.nexus = flags & 3;
  t.write_protected = flags & 4;
  t.data_in = in;
  t.data_out = out;
  if (flags & 8) lu.RaiseUnitAttention(Asc::kCapacityDataHasChanged);

  const uint64_t allocated_before = d.ram->allocated_bytes();
  Execute(lu, t);
  CheckResult(t, in);
  CheckParameterData(t, d.ram->geometry());
  CheckDevice(t, d, allocated_before, env.check);
  CheckModeRoundTrip(lu, t);
}

// One input: the setup, then the commands, then the device as it was.
void RunSession(Reader& r) {
  Env& env = GetEnv();
  const uint8_t setup = r.U8();
  Device& d = env.dev[setup & 1];
  std::shared_ptr<block::BlockDevice> dev = d.ram;
  d.faults = setup & 4;
  if (d.faults) {
    auto faulty = std::make_shared<backends::FaultyDevice>(d.ram);
    const uint8_t f = r.U8();
    const uint32_t lba = r.Be(2);
    faulty->AddErrorRange({.lba = Lba(lba),
                           .blocks = BlockCount(r.Be(2)),
                           .on_read = (f & 1) != 0,
                           .on_write = (f & 2) != 0,
                           .status = kFaults[(f >> 4) % std::size(kFaults)]});
    dev = std::move(faulty);
  }
  LuIdentity id;
  id.serial = "fuzz0001";
  id.naa[0] = 0x60;
  id.naa[15] = 0x01;
  LogicalUnit lu(std::move(dev), id, setup & 2);
  for (int i = 0; i < kMaxCommands && !r.empty(); ++i) RunCommand(env, lu, d, r);
  if (d.dirty) d.Restore();
}

}  // namespace
}  // namespace ferry::scsi

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ferry::scsi::Reader r(data, size);
  ferry::scsi::RunSession(r);
  return 0;
}
