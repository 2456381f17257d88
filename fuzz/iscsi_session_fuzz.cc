// Fuzz target: the iSCSI target as a whole (RFC 7143), driven by an initiator that runs a
// short program: login, SCSI commands with immediate and unsolicited data, Data-Out for R2Ts,
// task management, NOP-Out, Text (SendTargets), logout, a second connection, raw PDUs. The
// harness fills in what a correct initiator would (CmdSN, ExpStatSN, ITT, TTT, offsets,
// lengths, digests), so mutations reach deep states; a mess block breaks a field on purpose.
//
// One Server, its reactor and target live across inputs; each input gets fresh logical units
// (no reservation, mode page or ROD token outlives it) and connections: socketpairs given to
// Server::Adopt, run on this thread without sleeps or timers (no NOP-In pings, login deadlines
// an hour away). After every PDU the reactor runs until nothing more happens, and all the target
// sent is read and decoded. LUNs (NAA 6 designators 0x60 0...0 LUN; one copy manager for
// EXTENDED COPY and ODX): 0 a writable 4 MiB RAM LU; 1 and 2 one 256 KiB device holding a
// pattern, write-protected by the LUN map (1) and by the LU (2); 3 1 MiB in 4096-byte blocks.
//
// Input (big-endian; bytes past the end read as zero):
//   setup(1)  the automatic login's offer: bit 0 HeaderDigest=CRC32C, bit 1 DataDigest=CRC32C,
//             bit 2 InitialR2T=No, bit 3 ImmediateData=No, bit 4 FirstBurstLength 2048 and
//             MaxBurstLength 4096 (else 65536, 262144), bit 5 MaxOutstandingR2T=4 (else 1),
//             bits 6-7 MaxRecvDataSegmentLength 8192, 512, 65536 or 262144
//   then up to kMaxOps ops: op(1): bits 0-3 the kind (mod 9); bit 4 the I (immediate) bit;
//             bit 5 a mess block follows; bit 6 the target does not run after the PDU (PDUs
//             pile up and arrive together); bit 7 kind-specific
//   mess(1) value(4): bits 0-2 pick a header field the harness built (CmdSN, ExpStatSN, ITT,
//             TTT or EDTL, DataSN, BufferOffset, LUN, the flags byte): set to `value` (bit 3:
//             `value` added; the flags byte is XORed); bit 4 spoils the header digest, bit 5
//             the data digest; bit 6 DataSegmentLength claims `value & 0xffffff`
//   0 login   mode(1) klen(1) keys(klen: "k=v\0" text after the harness's keys). mode bits
//             0-1: one PDU from security to full feature phase, security then operational,
//             operational only, or raw: a flags(1) byte (T C CSG NSG) follows and only the
//             input's keys go; bit 2 the text is split over two PDUs with C=1; bit 3
//             SessionType=Discovery; bit 4 an unknown TargetName; bit 5 no InitiatorName;
//             bit 6 VersionMin 1; bit 7 TSIH 1
//   1 command flags(1) lun(1) cdb_len(1) cdb(cdb_len mod 17) edtl(3) given(2) data(given):
//             flags bit 0 R, bit 1 W, bit 2 no immediate data, bit 3 no unsolicited Data-Out,
//             bits 4-6 task attribute, bit 7 R2Ts wait for data-out ops (else are answered at
//             once). Write data: the given bytes, then a pattern
//   2 data-out flags(1) len(3): the next piece of the oldest R2T, else unsolicited data of the
//             newest write; bit 0 F=0 at its end, bit 1 `len` (<= 256 KiB) and not what is
//             asked, bit 2 unsolicited even when an R2T waits, bit 3 the R2T stays
//   3 task management function(1) lun(1) task(1): the function byte & 0x7f; the referenced
//             task is outstanding task number `task` (mod their count)
//   4 nop-out len(2): ping data (a pattern)
//   5 text    flags(1) len(1) text(len): bit 0 the input's text, not SendTargets=All; bit 1
//             C=1 (F=0); bit 2 the TTT of the last Text Response
//   6 logout  reason(1) & 0x7f
//   7 raw     len(2) bytes(len): header (48 bytes, zero-padded) and data; the harness sets
//             DataSegmentLength, pads and adds digests, except with op bit 7: sent as given
//   8 connection flags(1): later ops use the other connection, opened (not logged in) if need
//             be; bit 0 another ISID (another I_T nexus; the same ISID reinstates on login)
//
// Invariants, checked with abort(): no crash or sanitizer report; every target PDU decodes
// (a target opcode, no AHS, good digests, data within the initiator's MaxRecvDataSegmentLength,
// text that parses, task tags the initiator used); StatSN in sequence, ExpCmdSN and MaxCmdSN
// never back, MaxCmdSN >= ExpCmdSN - 1 (RFC 7143 4.2.2); Data-In in order inside a read's
// expected length, R2Ts inside a write's, sense inside its segment, Reject with a header,
// NOP-In echoing the ping; once the initiator closes, Server::connections() is 0 within
// kMaxTurns reactor turns; the write-protected device never changes. Triage:
// ISCSI_SESSION_FUZZ_VERBOSE=1 iscsi_session_replay FILE prints the PDUs both ways. Seeds:
// fuzz/iscsi_session_seeds.py writes fuzz/corpus/iscsi_session/.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "backends/ram/ram_device.h"
#include "base/endian.h"
#include "base/log.h"
#include "io/reactor.h"
#include "iscsi/pdu.h"
#include "iscsi/target.h"
#include "iscsi/text_keys.h"
#include "scsi/copy_manager.h"
#include "scsi/logical_unit.h"
#include "scsi/nexus.h"

namespace ferry::iscsi {
namespace {

constexpr char kTargetName[] = "iqn.2026-01.org.ferry:fuzz";
constexpr char kInitiatorName[] = "iqn.2026-01.org.ferry:fuzz-initiator";
constexpr char kPeer[] = "127.0.0.1:40000";
constexpr char kPortal[] = "127.0.0.1:3260";
constexpr uint64_t kRoBytes = 256u << 10;
constexpr int kMaxOps = 64;
constexpr uint64_t kMaxSentBytes = 8u << 20;  // data per input; beyond it R2Ts go unanswered
constexpr uint32_t kLoginMaxData = 8192;      // either side's data segment during login
constexpr int kMaxTurns = 100000;

bool Verbose() {
  static const bool verbose = std::getenv("ISCSI_SESSION_FUZZ_VERBOSE") != nullptr;
  return verbose;
}

void Expect(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "iscsi_session_fuzz: invariant broken: %s\n", what);
  std::abort();
}

uint8_t PatternByte(uint64_t i) { return static_cast<uint8_t>(i * 7 + (i >> 9) * 13 + 1); }

bool Before(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }  // serial

// The input, read front to back; bytes past its end read as zero.
struct Reader {
  const uint8_t* data;
  size_t size, pos = 0;
  bool empty() const { return pos >= size; }
  uint8_t U8() { return pos < size ? data[pos++] : 0; }
  uint32_t Be(int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) v = v << 8 | U8();
    return v;
  }
  std::span<const uint8_t> Bytes(size_t n) {
    std::span<const uint8_t> s(data + pos, std::min(n, size - pos));
    pos += s.size();
    return s;
  }
};

// One request straight to a device, run to completion on the current reactor.
IoStatus DeviceIo(block::BlockDevice& dev, block::IoOp op, uint64_t len_bytes, uint8_t* buf) {
  iovec iov{buf, len_bytes};
  std::optional<IoStatus> result;
  block::IoRequest req{.op = op,
                       .lba = Lba(0),
                       .blocks = BlockCount(len_bytes / dev.geometry().block_size),
                       .iov = &iov,
                       .iovcnt = 1};
  req.done = [&result](IoStatus st) { result = st; };
  dev.Submit(req);
  io::Reactor::Current()->RunUntil([&result] { return result.has_value(); });
  return *result;
}

struct Env {
  std::unique_ptr<io::Reactor> reactor;
  std::unique_ptr<Server> server;
  std::shared_ptr<Target> target;
  std::shared_ptr<backends::RamDevice> ro_dev;  // LUNs 1 and 2: must never change
  std::vector<uint8_t> ro_image, ro_check;
};

Env* MakeEnv() {
  auto* env = new Env;
  SetLogLevel(Verbose() ? "debug" : "off");
  auto r = io::Reactor::Create();
  Expect(r.ok(), "cannot create a reactor (io_uring)");
  env->reactor = std::move(r).value();
  env->server = std::make_unique<Server>(env->reactor.get());
  ServerOptions o;
  o.nop_interval = std::chrono::milliseconds(0);
  o.login_timeout = o.first_pdu_timeout = std::chrono::hours(1);
  env->server->set_options(o);
  TargetConfig tc;
  tc.name = kTargetName;
  env->target = std::make_shared<Target>(std::move(tc));
  env->server->AddTarget(env->target);
  auto ro = backends::RamDevice::Create({.name = "ro", .size_bytes = kRoBytes});
  Expect(ro.ok(), "cannot create the RAM device");
  env->ro_dev = std::move(ro).value();
  env->ro_image.resize(kRoBytes);
  for (size_t i = 0; i < kRoBytes; ++i) env->ro_image[i] = PatternByte(i * 3);
  env->ro_check.resize(kRoBytes);
  Expect(
      DeviceIo(*env->ro_dev, block::IoOp::kWrite, kRoBytes, env->ro_image.data()) == IoStatus::kOk,
      "cannot fill the write-protected device");
  return env;
}

Env& GetEnv() {
  static Env* env = MakeEnv();  // never destroyed: the reactor outlives every input
  return *env;
}

// Maps fresh logical units at LUNs 0-3 of the target, with a fresh copy manager (returned).
std::shared_ptr<scsi::CopyManager> MapLus(Env& env) {
  scsi::CopyManagerOptions o;
  o.engine.chunk_bytes = 64u << 10;
  o.engine.max_buffers = 16;
  auto cm = scsi::CopyManager::Create(env.reactor.get(), o);
  Expect(cm.ok(), "cannot create the copy manager");
  auto rw = backends::RamDevice::Create({.name = "rw", .size_bytes = 4u << 20});
  Expect(rw.ok(), "cannot create the RAM device");
  auto rw4k = backends::RamDevice::Create(
      {.name = "rw4k", .size_bytes = 1u << 20, .block_size = 4096, .arena = (*rw)->arena()});
  Expect(rw4k.ok(), "cannot create the RAM device");
  std::shared_ptr<block::BlockDevice> devs[4] = {*rw, env.ro_dev, env.ro_dev, *rw4k};
  for (uint8_t n = 0; n < 4; ++n) {
    scsi::LuIdentity id{.serial = "fuzz-" + std::to_string(n)};
    id.naa[0] = 0x60;
    id.naa[15] = n;
    auto lu = std::make_shared<scsi::LogicalUnit>(devs[n], id, n == 2);
    lu->set_copy_manager(*cm);
    Expect(env.target->MapLun(n, {lu, n == 1}).ok(), "MapLun");
  }
  return *cm;
}

// Header fields a mess block can break, by their BHS offset (1: the flags byte).
constexpr size_t kMessField[8] = {24, 28, 16, 20, 36, 40, 8, 1};

struct Mess {
  bool on = false;
  uint8_t how = 0;
  uint32_t value = 0;
  bool BreaksCmdSn() const { return on && (how & 7) == 0; }
};

void ApplyMess(const Mess& m, Bhs* b) {
  if (!m.on) return;
  const size_t at = kMessField[m.how & 7];
  if (at == 1) (*b)[1] ^= static_cast<uint8_t>(m.value);
  if (at != 1) StoreBe32(b->data() + at, (m.how & 8 ? LoadBe32(b->data() + at) : 0) + m.value);
  if (m.how & 0x40) StoreBe24(b->data() + 5, m.value & 0xffffff);
}

// What the initiator knows of one of its tasks.
struct Task {
  bool read = false, write = false;
  bool auto_r2t = true;  // answer its R2Ts at once
  uint32_t edtl = 0, cmdsn = 0;
  uint64_t lun = 0;
  std::vector<uint8_t> given;  // write data; the pattern follows
  uint32_t unsolicited_end = 0;
  uint32_t in_offset = 0, in_datasn = 0, r2tsn = 0;  // the next Data-In's, the next R2T's
  uint8_t Byte(uint64_t i) const { return i < given.size() ? given[i] : PatternByte(i); }
};

struct R2t {
  uint32_t itt = 0, ttt = 0, offset = 0, len = 0, sent = 0, datasn = 0;
};

// The initiator's side of one connection.
struct Conn {
  int fd = -1;
  bool eof = false;   // the target closed it
  bool wild = false;  // framing went out that may desync the target: tags go unchecked
  std::array<uint8_t, 6> isid{0x40, 0, 0, 0x37, 0, 0};
  std::vector<uint8_t> rx;
  bool ffp = false;  // the final Login Response arrived: digests apply from here
  bool hd = false, dd = false;
  bool have_statsn = false, have_window = false;
  uint32_t next_statsn = 0, expcmdsn = 0, maxcmdsn = 0;
  uint32_t cmdsn = 1, next_itt = 1;
  // Negotiated (RFC 7143 13 defaults until the Login Responses say otherwise).
  uint32_t my_mrdsl = 8192, their_mrdsl = 8192, first_burst = 65536, max_burst = 262144;
  bool immediate_data = true, initial_r2t = true;
  std::map<uint32_t, Task> tasks;  // by ITT
  std::deque<R2t> r2ts;
  std::set<uint32_t> itts;             // every ITT sent
  std::map<uint32_t, uint32_t> pings;  // NOP-Out ITT -> data bytes
  uint32_t text_ttt = kReservedTag;
  uint32_t TakeCmdSn(bool immediate, const Mess& m) {
    return immediate || m.BreaksCmdSn() ? cmdsn : cmdsn++;
  }
};

Bhs Header(Opcode op, bool immediate, uint8_t flags, uint32_t itt) {
  Bhs b{static_cast<uint8_t>(static_cast<uint8_t>(op) | (immediate ? 0x40 : 0)), flags};
  StoreBe32(&b[16], itt);
  return b;
}

// One input's run: the connections and the ops.
class Run {
 public:
  Run(Env& env, uint8_t setup) : env_(env), setup_(setup) { Open(0, 0); }

  void Op(Reader& in) {
    const uint8_t op = in.U8();
    Mess m;
    if (op & 0x20) m = Mess{.on = true, .how = in.U8(), .value = in.Be(4)};
    const uint8_t kind = (op & 0x0f) % 9;
    if (Verbose()) std::fprintf(stderr, "op %02x kind %u (conn %d)\n", op, kind, cur_);
    Conn& c = conns_[cur_];
    AnswerR2ts(c);  // those the last op's PDUs brought
    const bool immediate = op & 0x10, pump = !(op & 0x40);
    switch (kind) {
      case 0: Login(c, op, in, m); break;
      case 1: Command(c, op, in, m); break;
      case 2: DataOut(c, in, m, pump); break;
      case 3: {  // the referenced task: outstanding task number `task`
        const uint8_t function = in.U8() & 0x7f;
        const uint64_t lun = scsi::EncodeLun(in.U8());
        const uint8_t which = in.U8();
        auto t = c.tasks.begin();
        if (!c.tasks.empty()) std::advance(t, which % c.tasks.size());
        Bhs b = Header(Opcode::kTaskMgmtRequest, immediate, 0x80 | function, c.next_itt++);
        StoreBe64(&b[8], lun);
        StoreBe32(&b[20], t != c.tasks.end() ? t->first : c.next_itt - 2);
        StoreBe32(&b[32], t != c.tasks.end() ? t->second.cmdsn : c.cmdsn);  // RefCmdSN
        StoreBe32(&b[24], c.TakeCmdSn(immediate, m));
        return SendPdu(c, b, {}, m, pump);
      }
      case 4: {
        std::vector<uint8_t> data(in.Be(2));
        for (uint32_t i = 0; i < data.size(); ++i) data[i] = PatternByte(i);
        if (!m.on) c.pings[c.next_itt] = static_cast<uint32_t>(data.size());
        Bhs b = Header(Opcode::kNopOut, immediate, 0x80, c.next_itt++);
        StoreBe32(&b[20], kReservedTag);
        StoreBe32(&b[24], c.TakeCmdSn(immediate, m));
        return SendPdu(c, b, data, m, pump);
      }
      case 5: {
        const uint8_t flags = in.U8();
        const auto input = in.Bytes(in.U8());
        std::string text(reinterpret_cast<const char*>(input.data()), input.size());
        if (!(flags & 0x01)) text = std::string("SendTargets=All", 16);
        Bhs b = Header(Opcode::kTextRequest, immediate, flags & 0x02 ? 0x40 : 0x80, c.next_itt++);
        StoreBe32(&b[20], flags & 0x04 ? c.text_ttt : kReservedTag);
        StoreBe32(&b[24], c.TakeCmdSn(immediate, m));
        return SendPdu(c, b, AsBytes(text), m, pump);
      }
      case 6: {
        Bhs b = Header(Opcode::kLogoutRequest, immediate, 0x80 | (in.U8() & 0x7f), c.next_itt++);
        StoreBe32(&b[24], c.TakeCmdSn(immediate, m));
        return SendPdu(c, b, {}, m, pump);
      }
      case 7: {
        const auto bytes = in.Bytes(in.Be(2));
        Bhs b{};
        std::copy_n(bytes.begin(), std::min(bytes.size(), kBhsBytes), b.begin());
        // A login the harness did not build may declare any MaxRecvDataSegmentLength.
        if (!c.ffp && ((b[0] & 0x3f) == 3 || (op & 0x80))) c.my_mrdsl = kMaxDataSegmentBytes;
        c.wild |= (op & 0x80) != 0;
        if (op & 0x80) Write(c, bytes);  // as given: framing, padding and digests are the input's
        const auto data = bytes.subspan(std::min(bytes.size(), kBhsBytes));
        if (!(op & 0x80)) SendPdu(c, b, data, m, false, true);
        if (pump) Pump();
        break;
      }
      default:
        cur_ = 1 - cur_;
        if (conns_[cur_].fd < 0 || conns_[cur_].eof) Open(cur_, in.U8() & 0x01);
    }
  }

  // The initiator closes every connection: each must be gone within kMaxTurns turns.
  void Finish() {
    for (Conn& c : conns_) {
      AnswerR2ts(c);
      if (c.fd >= 0) close(c.fd);
      c.fd = -1;
    }
    for (int turns = 0; env_.server->connections() > 0; ++turns) {
      Expect(turns < kMaxTurns, "a connection outlived its socket (a leaked session)");
      env_.reactor->RunOnce(false);
    }
  }

 private:
  static std::span<const uint8_t> AsBytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
  }

  void Open(int i, uint8_t isid_last) {
    Conn& c = conns_[i];
    if (c.fd >= 0) close(c.fd);
    c = Conn{};
    c.isid[5] = isid_last;
    int sv[2];
    Expect(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    c.fd = sv[0];
    env_.server->Adopt(sv[1], kPeer, kPortal);
    Pump();
  }

  // Runs the reactor and reads what the target sends until neither has anything to do (our
  // syscalls post the completions they cause before returning: two quiet turns suffice).
  void Pump() {
    for (int turns = 0, quiet = 0; quiet < 2; ++turns) {
      Expect(turns < kMaxTurns, "the target never waits for the initiator");
      size_t n = env_.reactor->RunOnce(false);
      for (Conn& c : conns_) n += ReadFrom(c);
      quiet = n == 0 ? quiet + 1 : 0;
    }
  }

  size_t ReadFrom(Conn& c) {
    size_t total = 0;
    uint8_t buf[64 * 1024];
    while (c.fd >= 0 && !c.eof) {
      const ssize_t n = recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      c.eof = n <= 0;
      c.rx.insert(c.rx.end(), buf, buf + std::max<ssize_t>(n, 0));
      total += static_cast<size_t>(std::max<ssize_t>(n, 1));
    }
    if (total > 0) ParseRx(c);
    return total;
  }

  void ParseRx(Conn& c) {
    size_t pos = 0;
    while (c.rx.size() - pos >= kBhsBytes) {
      Bhs b;
      std::copy_n(c.rx.begin() + static_cast<ptrdiff_t>(pos), kBhsBytes, b.begin());
      const CommonHeader h = DecodeCommon(b);
      Expect(h.ahs_bytes == 0, "a target PDU with an AHS");
      Expect(h.data_bytes <= (c.ffp ? c.my_mrdsl : kLoginMaxData),
             "a data segment above the initiator's MaxRecvDataSegmentLength (RFC 7143 13.12)");
      const size_t hd = c.ffp && c.hd ? 4 : 0, dd = c.ffp && c.dd && h.data_bytes > 0 ? 4 : 0;
      const size_t need = kBhsBytes + hd + Padded(h.data_bytes) + dd;
      if (c.rx.size() - pos < need) break;
      const uint8_t* p = c.rx.data() + pos;
      uint32_t got = 0;  // digests are little-endian on the wire, as the CRC is (RFC 7143 13.1)
      if (hd) std::memcpy(&got, p + kBhsBytes, 4);
      Expect(!hd || got == Crc32c(b), "header digest of a target PDU");
      if (dd) std::memcpy(&got, p + kBhsBytes + hd + Padded(h.data_bytes), 4);
      Expect(!dd || got == Crc32c(std::span(p + kBhsBytes + hd, Padded(h.data_bytes))),
             "data digest of a target PDU");
      pos += need;
      OnPdu(c, b, std::span(p + kBhsBytes + hd, h.data_bytes));
    }
    c.rx.erase(c.rx.begin(), c.rx.begin() + static_cast<ptrdiff_t>(pos));
  }

  // RFC 7143 4.2.2.2 StatSN and 4.2.2.1 the command window, as every target PDU carries them.
  void CheckSeq(Conn& c, const Bhs& b, bool advances) {
    const uint32_t statsn = LoadBe32(&b[24]);
    const uint32_t expcmdsn = LoadBe32(&b[28]), maxcmdsn = LoadBe32(&b[32]);
    if (!c.have_statsn) c.next_statsn = statsn;
    c.have_statsn = true;
    Expect(statsn == c.next_statsn, "StatSN out of sequence");
    if (advances) ++c.next_statsn;
    if (!c.ffp) return;
    Expect(!Before(maxcmdsn, expcmdsn - 1), "MaxCmdSN below ExpCmdSN - 1");
    Expect(!c.have_window || !Before(expcmdsn, c.expcmdsn), "ExpCmdSN moved back");
    Expect(!c.have_window || !Before(maxcmdsn, c.maxcmdsn), "MaxCmdSN moved back");
    c.have_window = true;
    c.expcmdsn = expcmdsn;
    c.maxcmdsn = maxcmdsn;
  }

  void OnPdu(Conn& c, const Bhs& b, std::span<const uint8_t> data) {
    const uint32_t itt = LoadBe32(&b[16]);
    if (Verbose()) {
      std::fprintf(stderr, "  <- %s itt %08x flags %02x [2..3] %02x%02x statsn %u data %zu\n",
                   OpcodeName(b[0]).data(), itt, b[1], b[2], b[3], LoadBe32(&b[24]), data.size());
    }
    const bool known = c.wild || c.itts.contains(itt);
    switch (static_cast<Opcode>(b[0] & 0x3f)) {
      case Opcode::kLoginResponse: return OnLoginResponse(c, b, data);
      case Opcode::kTextResponse:
        CheckSeq(c, b, true);
        Expect(known && ParseTextKeys(data).ok(), "a Text Response to no request, or unparsable");
        c.text_ttt = LoadBe32(&b[20]);
        return;
      case Opcode::kScsiResponse:
        CheckSeq(c, b, true);
        Expect(known, "SCSI Response to no command");
        Expect(data.empty() || (data.size() >= 2 && 2u + LoadBe16(data.data()) <= data.size()),
               "sense data longer than its segment (RFC 7143 11.4.7)");
        return Done(c, itt);
      case Opcode::kDataIn: return OnDataIn(c, b, data);
      case Opcode::kR2t: return OnR2t(c, b);
      case Opcode::kNopIn:
        CheckSeq(c, b, itt != kReservedTag);
        if (itt == kReservedTag) return;
        Expect(known, "NOP-In answering no NOP-Out");
        if (auto it = c.pings.find(itt); !c.wild && it != c.pings.end()) {
          // RFC 7143 11.18.4: the echo is limited to MaxRecvDataSegmentLength.
          const uint32_t want = std::min(it->second, c.my_mrdsl);
          Expect(data.size() == want || (c.my_mrdsl == kMaxDataSegmentBytes && data.size() < want),
                 "NOP-In echoes the ping");
          for (size_t i = 0; i < data.size(); ++i) Expect(data[i] == PatternByte(i), "ping echo");
          c.pings.erase(it);
        }
        return;
      case Opcode::kTaskMgmtResponse:
      case Opcode::kLogoutResponse:
        CheckSeq(c, b, true);
        return Expect(known, "a response to no request");
      case Opcode::kReject:
        CheckSeq(c, b, true);
        return Expect(data.size() == kBhsBytes, "Reject carries the rejected header (11.17)");
      case Opcode::kAsyncMessage: return CheckSeq(c, b, true);
      default: Expect(false, "a target PDU with an initiator or unknown opcode");
    }
  }

  void OnLoginResponse(Conn& c, const Bhs& b, std::span<const uint8_t> data) {
    CheckSeq(c, b, true);
    Expect(c.wild || c.itts.contains(LoadBe32(&b[16])), "Login Response to no request");
    Expect(!c.ffp, "Login Response in the full feature phase");
    auto keys = ParseTextKeys(data);
    Expect(keys.ok(), "Login Response keys parse");
    if (b[36] != 0) return;  // refused: the target closes
    for (const KeyValue& kv : *keys) {
      auto n = ParseNumber(kv.value);
      const uint32_t v = n && *n > 0 && *n <= kMaxDataSegmentBytes ? static_cast<uint32_t>(*n) : 0;
      if (kv.key == "MaxRecvDataSegmentLength" && v) c.their_mrdsl = v;
      if (kv.key == "FirstBurstLength" && v) c.first_burst = v;
      if (kv.key == "MaxBurstLength" && v) c.max_burst = v;
      if (kv.key == "HeaderDigest") c.hd = kv.value == "CRC32C";
      if (kv.key == "DataDigest") c.dd = kv.value == "CRC32C";
      if (kv.key == "InitialR2T") c.initial_r2t = kv.value == "Yes";
      if (kv.key == "ImmediateData") c.immediate_data = kv.value == "Yes";
    }
    c.first_burst = std::min(c.first_burst, c.max_burst);
    c.ffp = (b[1] & 0x80) && (b[1] & 3) == 3;
    if (c.ffp) c.cmdsn = LoadBe32(&b[28]);  // the first command's CmdSN is ExpCmdSN
    Expect(!c.ffp || LoadBe16(&b[14]) != 0, "a session without a TSIH");
  }

  void OnDataIn(Conn& c, const Bhs& b, std::span<const uint8_t> data) {
    const uint32_t itt = LoadBe32(&b[16]), offset = LoadBe32(&b[40]);
    const bool status = b[1] & 0x01;
    if (status) CheckSeq(c, b, true);
    Expect(!status || (b[1] & 0x80), "Data-In with S and not F");
    Expect(c.wild || c.itts.contains(itt), "Data-In for no command");
    auto it = c.tasks.find(itt);
    if (!c.wild && it != c.tasks.end()) {
      Task& t = it->second;
      Expect(t.read, "Data-In for a command without R");
      Expect(LoadBe32(&b[36]) == t.in_datasn++, "Data-In DataSN out of sequence");
      Expect(offset == t.in_offset, "Data-In out of order (DataPDUInOrder=Yes)");
      Expect(uint64_t{offset} + data.size() <= t.edtl, "Data-In beyond the expected length");
      t.in_offset += static_cast<uint32_t>(data.size());
    }
    if (status) Done(c, itt);
  }

  void OnR2t(Conn& c, const Bhs& b) {
    CheckSeq(c, b, false);
    const uint32_t itt = LoadBe32(&b[16]);
    R2t r{.itt = itt, .ttt = LoadBe32(&b[20]), .offset = LoadBe32(&b[40]), .len = LoadBe32(&b[44])};
    Expect(r.ttt != kReservedTag, "R2T with the reserved TTT");
    Expect(c.wild || c.itts.contains(itt), "R2T for no command");
    auto it = c.tasks.find(itt);
    if (c.wild || it == c.tasks.end()) return;
    Expect(it->second.write, "R2T for a command without W");
    Expect(r.len > 0 && r.len <= c.max_burst, "R2T length not within MaxBurstLength");
    Expect(uint64_t{r.offset} + r.len <= it->second.edtl, "R2T beyond the expected length");
    Expect(LoadBe32(&b[36]) == it->second.r2tsn++, "R2TSN out of sequence");
    c.r2ts.push_back(r);
  }

  void Done(Conn& c, uint32_t itt) {
    c.tasks.erase(itt);
    std::erase_if(c.r2ts, [itt](const R2t& r) { return r.itt == itt; });
  }

  void Write(Conn& c, std::span<const uint8_t> bytes) {
    while (!bytes.empty() && c.fd >= 0 && !c.eof) {
      const ssize_t n = send(c.fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        bytes = bytes.subspan(static_cast<size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        Pump();  // the target reads (and we read its answers) until it waits again
      } else {
        c.eof = true;  // the target closed the connection
      }
    }
  }

  // Sets DataSegmentLength and (unless `raw`) ExpStatSN, applies `m`, remembers what went
  // out, adds padding and the digests in use; runs the target after it when `pump`.
  void SendPdu(Conn& c, Bhs b, std::span<const uint8_t> data, const Mess& m, bool pump,
               bool raw = false) {
    if (c.fd < 0 || c.eof) return;
    StoreBe24(&b[5], static_cast<uint32_t>(data.size()));
    if (!raw) StoreBe32(&b[28], c.next_statsn);  // ExpStatSN (Data-Out too)
    ApplyMess(m, &b);
    c.wild |= (m.on && (m.how & 0x40)) || b[4] != 0;
    const uint32_t itt = LoadBe32(&b[16]);
    c.itts.insert(itt);
    if (Decoded d = DecodeInitiatorBhs(b); d.ok && !c.tasks.contains(itt)) {
      if (const auto* p = std::get_if<ScsiCommandPdu>(&d.pdu)) {  // built raw or messed up
        c.tasks[itt] = {p->read, p->write, true, p->expected_data_length, p->cmdsn, p->lun};
      }
    }
    if (Verbose()) {
      std::fprintf(stderr, "  -> %s itt %08x flags %02x data %zu\n", OpcodeName(b[0]).data(), itt,
                   b[1], data.size());
    }
    std::vector<uint8_t> wire(b.begin(), b.end());
    auto digest = [&](uint32_t crc, bool spoil) {  // little-endian, as the CRC is
      crc ^= spoil ? 1 : 0;
      wire.insert(wire.end(), reinterpret_cast<uint8_t*>(&crc),
                  reinterpret_cast<uint8_t*>(&crc) + 4);
    };
    if (c.ffp && c.hd) digest(Crc32c(b), m.on && (m.how & 0x10));
    const size_t at = wire.size();
    wire.insert(wire.end(), data.begin(), data.end());
    wire.resize(at + Padded(static_cast<uint32_t>(data.size())), 0);
    const bool spoil_data = m.on && (m.how & 0x20);
    if (c.ffp && c.dd && !data.empty()) digest(Crc32c(std::span(wire).subspan(at)), spoil_data);
    sent_bytes_ += data.size();
    Write(c, wire);
    if (pump) Pump();
  }

  // Data-Out for `len` bytes of R2T (or unsolicited burst) `r` from where it got to, in PDUs
  // of at most the target's MaxRecvDataSegmentLength; `m` breaks the first.
  void SendData(Conn& c, const Task& t, R2t& r, uint32_t len, bool final, Mess m, bool pump) {
    std::vector<uint8_t> data;
    do {
      const uint32_t n = std::min(len, c.their_mrdsl), offset = r.offset + r.sent;
      data.resize(n);
      for (uint32_t i = 0; i < n; ++i) data[i] = t.Byte(uint64_t{offset} + i);
      len -= n;
      Bhs b = Header(Opcode::kDataOut, false, len == 0 && final ? 0x80 : 0, r.itt);
      StoreBe64(&b[8], t.lun);
      StoreBe32(&b[20], r.ttt);
      StoreBe32(&b[36], r.datasn++);
      StoreBe32(&b[40], offset);
      SendPdu(c, b, data, m, false);
      m = Mess{};
      r.sent += n;
    } while (len > 0 && !c.eof);
    if (pump) Pump();
  }

  // Answers at once the R2Ts of tasks that want it (the whole of each), within the budget.
  void AnswerR2ts(Conn& c) {
    for (size_t i = 0; i < c.r2ts.size() && sent_bytes_ < kMaxSentBytes && !c.eof;) {
      auto t = c.tasks.find(c.r2ts[i].itt);
      if (t == c.tasks.end() || !t->second.auto_r2t) {
        ++i;
        continue;
      }
      R2t r = c.r2ts[i];
      c.r2ts.erase(c.r2ts.begin() + static_cast<ptrdiff_t>(i));
      const Task task = t->second;  // the pump may end it
      SendData(c, task, r, r.len - std::min(r.sent, r.len), true, Mess{}, true);
      i = 0;  // the pump may have added R2Ts and ended tasks
    }
  }

  // One login request's text, in two PDUs with C=1 when mode bit 2 asks.
  void SendLogin(Conn& c, uint8_t flags, uint8_t mode, std::string_view text, const Mess& m,
                 bool pump) {
    const bool split = (mode & 0x04) && !(flags & 0x40) && text.size() > 1;
    for (int part = split ? 0 : 1; part < 2; ++part) {
      Bhs b = Header(Opcode::kLoginRequest, true, part == 0 ? (flags & 0x0f) | 0x40 : flags,
                     c.next_itt);
      b[3] = mode & 0x40 ? 1 : 0;  // VersionMin
      std::copy(c.isid.begin(), c.isid.end(), b.begin() + 8);
      StoreBe16(&b[14], mode & 0x80 ? 1 : 0);  // TSIH
      StoreBe32(&b[24], c.cmdsn);
      const size_t half = split ? text.size() / 2 : 0;
      const auto bytes = AsBytes(part == 0 ? text.substr(0, half) : text.substr(half));
      SendPdu(c, b, bytes.first(std::min<size_t>(bytes.size(), kLoginMaxData)), m, pump || !part);
    }
  }

  void Login(Conn& c, uint8_t op, Reader& in, const Mess& m) {
    const uint8_t mode = in.U8();
    const auto extra = in.Bytes(in.U8());
    const bool pump = !(op & 0x40);
    std::string names, oper;
    if (!(mode & 0x20)) AppendTextKey(&names, "InitiatorName", kInitiatorName);
    if (mode & 0x08) AppendTextKey(&names, "SessionType", "Discovery");
    const char* target = mode & 0x10 ? "iqn.x:none" : kTargetName;
    if (!(mode & 0x08)) AppendTextKey(&names, "TargetName", target);
    static constexpr uint32_t kMrdsl[4] = {8192, 512, 65536, 262144};
    AppendTextKey(&oper, "HeaderDigest", setup_ & 0x01 ? "CRC32C" : "None");
    AppendTextKey(&oper, "DataDigest", setup_ & 0x02 ? "CRC32C" : "None");
    AppendTextKey(&oper, "InitialR2T", setup_ & 0x04 ? "No" : "Yes");
    AppendTextKey(&oper, "ImmediateData", setup_ & 0x08 ? "No" : "Yes");
    AppendTextKey(&oper, "MaxRecvDataSegmentLength", std::to_string(kMrdsl[setup_ >> 6]));
    AppendTextKey(&oper, "FirstBurstLength", setup_ & 0x10 ? "2048" : "65536");
    AppendTextKey(&oper, "MaxBurstLength", setup_ & 0x10 ? "4096" : "262144");
    AppendTextKey(&oper, "MaxOutstandingR2T", setup_ & 0x20 ? "4" : "1");
    oper.append(reinterpret_cast<const char*>(extra.data()), extra.size());
    const std::string security = std::string("AuthMethod=None", 16);
    // What the target sends us is checked against this (keys offered twice fail the login);
    // once a login that the input wrote may have declared any value, anything goes.
    if (!c.ffp && c.my_mrdsl != kMaxDataSegmentBytes) c.my_mrdsl = kMrdsl[setup_ >> 6];
    switch (mode & 3) {
      case 0: SendLogin(c, 0x83, mode, names + security + oper, m, pump); break;
      case 1:
        SendLogin(c, 0x81, mode, names + security, m, true);
        SendLogin(c, 0x87, mode, oper, Mess{}, pump);
        break;
      case 2: SendLogin(c, 0x87, mode, names + oper, m, pump); break;
      default:
        if (!c.ffp) c.my_mrdsl = kMaxDataSegmentBytes;  // the input's keys may declare any
        SendLogin(c, in.U8(), mode, oper.substr(oper.size() - extra.size()), m, pump);
    }
    ++c.next_itt;
  }

  void Command(Conn& c, uint8_t op, Reader& in, const Mess& m) {
    const uint8_t flags = in.U8();
    const uint64_t lun = scsi::EncodeLun(in.U8());
    Bhs b{};
    const auto cdb = in.Bytes(in.U8() % 17);
    std::copy(cdb.begin(), cdb.end(), b.begin() + 32);
    const uint32_t edtl = in.Be(3);
    const auto given = in.Bytes(in.Be(2));
    const bool read = flags & 0x01, write = flags & 0x02, immediate = op & 0x10;
    Task t{.read = read, .write = write, .auto_r2t = !(flags & 0x80), .edtl = edtl, .lun = lun};
    t.given.assign(given.begin(), given.end());
    // RFC 7143 3.2.4.2: immediate data up to FirstBurstLength (and the PDU's limit), then
    // unsolicited Data-Out PDUs up to FirstBurstLength when InitialR2T=No.
    uint32_t imm = 0;
    const bool imm_ok = write && c.immediate_data && !(flags & 0x04);
    if (imm_ok) imm = std::min({edtl, c.first_burst, c.their_mrdsl});
    const bool unsolicited =
        write && !c.initial_r2t && !(flags & 0x08) && imm < edtl && imm < c.first_burst;
    const uint32_t itt = c.next_itt++;
    t.cmdsn = c.TakeCmdSn(immediate, m);
    t.unsolicited_end = unsolicited ? std::min(edtl, c.first_burst) : imm;
    b[0] = static_cast<uint8_t>(Opcode::kScsiCommand) | (immediate ? 0x40 : 0);
    b[1] = (unsolicited ? 0 : 0x80) | (read ? 0x40 : 0) | (write ? 0x20 : 0) | ((flags >> 4) & 7);
    StoreBe64(&b[8], lun);
    StoreBe32(&b[16], itt);
    StoreBe32(&b[20], edtl);
    StoreBe32(&b[24], t.cmdsn);
    std::vector<uint8_t> data(imm);
    for (uint32_t i = 0; i < imm; ++i) data[i] = t.Byte(i);
    if (!m.on) c.tasks.emplace(itt, t);  // else SendPdu learns it from the header sent
    SendPdu(c, b, data, m, false);
    R2t r{.itt = itt, .ttt = kReservedTag, .offset = imm};
    if (unsolicited) SendData(c, t, r, t.unsolicited_end - imm, true, Mess{}, false);
    if (!(op & 0x40)) Pump();
  }

  // The next piece of the oldest R2T, else unsolicited data of the newest write.
  void DataOut(Conn& c, Reader& in, const Mess& m, bool pump) {
    const uint8_t flags = in.U8();
    const uint32_t len = std::min<uint32_t>(in.Be(3), 256u << 10);
    if (sent_bytes_ >= kMaxSentBytes) return;
    if (!c.r2ts.empty() && !(flags & 0x04)) {
      R2t r = c.r2ts.front();
      c.r2ts.pop_front();
      auto t = c.tasks.find(r.itt);
      const uint32_t left = r.len - std::min(r.sent, r.len), n = flags & 0x02 ? len : left;
      SendData(c, t != c.tasks.end() ? t->second : Task{}, r, n, !(flags & 0x01), m, false);
      if ((flags & 0x08) || n < left) c.r2ts.push_front(r);  // the R2T stays, as far as it got
      if (pump) Pump();
      return;
    }
    auto it = std::find_if(c.tasks.rbegin(), c.tasks.rend(),
                           [](const auto& kv) { return kv.second.write; });
    if (it == c.tasks.rend()) return;
    R2t r{.itt = it->first, .ttt = kReservedTag, .offset = it->second.unsolicited_end};
    it->second.unsolicited_end += len;
    const Task t = it->second;  // the pump may end it
    SendData(c, t, r, len, !(flags & 0x01), m, pump);
  }

  Env& env_;
  uint8_t setup_;
  Conn conns_[2];
  int cur_ = 0;
  uint64_t sent_bytes_ = 0;
};

// One input: fresh logical units, the program, the checks after it.
void RunOne(const uint8_t* data, size_t size) {
  Env& env = GetEnv();
  Expect(env.server->connections() == 0, "a connection left from the last input");
  const std::shared_ptr<scsi::CopyManager> copy_manager = MapLus(env);
  Reader in{data, size};
  {
    Run run(env, in.U8());
    for (int i = 0; i < kMaxOps && !in.empty(); ++i) run.Op(in);
    run.Finish();
  }
  // Copies still running (LID4 with IMMED, WRITE USING TOKEN in the background) stop.
  copy_manager->CancelAll();
  for (int turns = 0; copy_manager->metrics().active > 0; ++turns) {
    Expect(turns < kMaxTurns, "a copy never ends");
    env.reactor->RunOnce(false);
  }
  while (env.reactor->RunOnce(false) > 0) {
  }
  for (uint64_t n = 0; n < 4; ++n) Expect(env.target->UnmapLun(n).ok(), "UnmapLun");
  const IoStatus st = DeviceIo(*env.ro_dev, block::IoOp::kRead, kRoBytes, env.ro_check.data());
  Expect(st == IoStatus::kOk && env.ro_check == env.ro_image, "the write-protected device changed");
}

}  // namespace
}  // namespace ferry::iscsi

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ferry::iscsi::RunOne(data, size);
  return 0;
}
