// Sessions of the third-party copy tests: libiscsi's asynchronous interface driven by one
// poll loop with deadlines, so a command ferryd never answers fails its test instead of
// hanging the run (libiscsi's own *_sync calls wait forever).
#include "tpc_client.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

namespace ferry::tpc_test {

namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kCommandTimeout{60000};
constexpr uint32_t kIoChunkBytes = 4u << 20;  // well below ferryd's 32 MiB transfer limit

void OnCommand(iscsi_context*, int status, void*, void* private_data) {
  auto* cmd = static_cast<AsyncCommand*>(private_data);
  cmd->done = true;
  if (status == SCSI_STATUS_CANCELLED) cmd->cancelled = true;
  cmd->reply.status = status;
}

struct TmfState {
  bool done = false;
  int status = -1;
  uint32_t response = 0xff;
};

void OnTmf(iscsi_context*, int status, void* command_data, void* private_data) {
  auto* s = static_cast<TmfState*>(private_data);
  s->done = true;
  s->status = status;
  if (status == SCSI_STATUS_GOOD && command_data != nullptr) {
    s->response = *static_cast<uint32_t*>(command_data);
  }
}

// Moves status, sense and data-in out of a finished task.
void Harvest(AsyncCommand* cmd) {
  Reply& r = cmd->reply;
  if (cmd->cancelled) {
    r.status = -1;
    r.transport_error = "cancelled";
    return;
  }
  if (r.status < 0 || r.status == SCSI_STATUS_ERROR) {
    r.status = -1;
    return;
  }
  const scsi_data& in = cmd->task->datain;
  if (r.status == SCSI_STATUS_CHECK_CONDITION) {
    // libiscsi keeps the sense segment as received: 2-byte SENSE LENGTH, then the sense.
    if (in.size >= 2 && in.data != nullptr) {
      const size_t n = std::min<size_t>(Get16(in.data), in.size - 2);
      r.sense = DecodeSense({in.data + 2, n});
    }
    return;
  }
  if (in.size > 0 && in.data != nullptr) r.data.assign(in.data, in.data + in.size);
}

}  // namespace

AsyncCommand::~AsyncCommand() {
  if (task != nullptr) scsi_free_scsi_task(task);
}

std::unique_ptr<Session> Session::Connect(const std::string& portal, const std::string& target,
                                          const std::string& initiator,
                                          const std::vector<int>& luns, std::string* error) {
  return Login(portal, target, initiator, std::nullopt, luns, error);
}

std::unique_ptr<Session> Session::ConnectWithIsid(
    const std::string& portal, const std::string& target, const std::string& initiator,
    uint16_t isid_qualifier, const std::vector<int>& luns, std::string* error) {
  return Login(portal, target, initiator, isid_qualifier, luns, error);
}

std::unique_ptr<Session> Session::Login(const std::string& portal, const std::string& target,
                                        const std::string& initiator,
                                        std::optional<uint16_t> isid_qualifier,
                                        const std::vector<int>& luns, std::string* error) {
  if (portal.empty() || target.empty()) {
    *error = "portal or target not set (run the tests through tests/tpc/run.sh)";
    return nullptr;
  }
  iscsi_context* c = iscsi_create_context(initiator.c_str());
  if (c == nullptr) {
    *error = "iscsi_create_context failed";
    return nullptr;
  }
  iscsi_set_targetname(c, target.c_str());
  iscsi_set_session_type(c, ISCSI_SESSION_NORMAL);
  iscsi_set_noautoreconnect(c, 1);
  // An arbitrary enterprise number: only the qualifier tells these sessions apart.
  if (isid_qualifier) iscsi_set_isid_en(c, 0xfe77, *isid_qualifier);
  if (iscsi_full_connect_sync(c, portal.c_str(), luns.empty() ? 0 : luns[0]) != 0) {
    *error =
        "login to " + target + " at " + portal + " as " + initiator + ": " + iscsi_get_error(c);
    iscsi_destroy_context(c);
    return nullptr;
  }
  std::unique_ptr<Session> s(new Session(c));
  for (int lun : luns) {
    if (!s->ClearUnitAttentions(lun)) {
      *error = "LUN " + std::to_string(lun) + " of " + target + " is not ready for " + initiator;
      return nullptr;
    }
  }
  return s;
}

Session::~Session() {
  if (iscsi_ == nullptr) return;
  if (!broken_) iscsi_logout_sync(iscsi_);
  iscsi_destroy_context(iscsi_);
}

void Session::Start(int lun, std::span<const uint8_t> cdb, int dir, uint32_t xfer_len,
                    std::span<const uint8_t> out, AsyncCommand* cmd) {
  Bytes copy(cdb.begin(), cdb.end());
  cmd->task =
      scsi_create_task(static_cast<int>(copy.size()), copy.data(), dir, static_cast<int>(xfer_len));
  cmd->out_bytes.assign(out.begin(), out.end());
  cmd->out.size = cmd->out_bytes.size();
  cmd->out.data = cmd->out_bytes.data();
  if (broken_) {
    cmd->done = true;
    cmd->reply.transport_error = "session broken earlier: " + broken_reason_;
    return;
  }
  if (iscsi_scsi_command_async(iscsi_, lun, cmd->task, OnCommand, out.empty() ? nullptr : &cmd->out,
                               cmd) != 0) {
    cmd->done = true;
    cmd->reply.transport_error = std::string("not sent: ") + iscsi_get_error(iscsi_);
  }
}

bool Session::PumpUntil(const std::function<bool()>& done, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (broken_) return false;
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{iscsi_get_fd(iscsi_), static_cast<short>(iscsi_which_events(iscsi_)), 0};
    const int rc = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 100)));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0 || iscsi_service(iscsi_, rc > 0 ? p.revents : 0) < 0) {
      broken_ = true;
      broken_reason_ = iscsi_get_error(iscsi_);
      return false;
    }
  }
  return true;
}

bool Session::Service(short revents) {
  if (broken_) return false;
  if (iscsi_service(iscsi_, revents) < 0) {
    broken_ = true;
    broken_reason_ = iscsi_get_error(iscsi_);
    return false;
  }
  return true;
}

bool Session::PumpAll(std::span<Session* const> sessions, const std::function<bool()>& done,
                      milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<pollfd> fds(sessions.size());
  auto give_up = [&](const std::string& why) {
    for (Session* s : sessions) s->Abandon(why);
    return false;
  };
  while (!done()) {
    for (size_t i = 0; i < sessions.size(); ++i) {
      Session* s = sessions[i];
      if (s->broken_) return give_up("another session broke: " + s->broken_reason_);
      fds[i] = {iscsi_get_fd(s->iscsi_), static_cast<short>(iscsi_which_events(s->iscsi_)), 0};
    }
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return give_up("no response within " + std::to_string(timeout.count()) + " ms");
    }
    const int rc =
        poll(fds.data(), fds.size(), static_cast<int>(std::min<int64_t>(left.count(), 100)));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return give_up(std::string("poll: ") + std::strerror(errno));
    for (size_t i = 0; i < sessions.size(); ++i) {
      // As PumpUntil: a quiet poll still lets libiscsi look at its timeouts.
      if (rc == 0 || fds[i].revents != 0) sessions[i]->Service(fds[i].revents);
    }
  }
  return true;
}

void Session::Abandon(const std::string& why) {
  if (!broken_) {
    broken_ = true;
    broken_reason_ = why;
  }
  if (iscsi_ != nullptr) iscsi_destroy_context(iscsi_);
  iscsi_ = nullptr;
}

Reply Session::Finished(AsyncCommand* cmd) {
  if (!cmd->done) {
    Reply r;
    r.transport_error = "still outstanding";
    return r;
  }
  if (cmd->task != nullptr && cmd->reply.transport_error.empty() && !cmd->harvested) {
    Harvest(cmd);
    cmd->harvested = true;
  }
  Reply r = cmd->reply;
  if (!r.transport_error.empty()) r.status = -1;
  if (r.status < 0 && r.transport_error.empty()) {
    r.transport_error = iscsi_ != nullptr ? iscsi_get_error(iscsi_) : broken_reason_;
  }
  return r;
}

Reply Session::Run(int lun, std::span<const uint8_t> cdb, int dir, uint32_t xfer_len,
                   std::span<const uint8_t> out) {
  AsyncCommand cmd;
  Start(lun, cdb, dir, xfer_len, out, &cmd);
  if (!cmd.done && !PumpUntil([&] { return cmd.done; }, kCommandTimeout)) {
    if (!broken_) {
      broken_ = true;
      broken_reason_ = "a command got no response within 60 s";
    }
    cmd.reply.status = -1;
    cmd.reply.transport_error = broken_reason_;
    // libiscsi may still reference the task: the session goes before the task is freed.
    iscsi_destroy_context(iscsi_);
    iscsi_ = nullptr;
    return cmd.reply;
  }
  if (cmd.task != nullptr && cmd.reply.transport_error.empty()) Harvest(&cmd);
  if (!cmd.reply.transport_error.empty()) cmd.reply.status = -1;  // e.g. cancelled when sent
  if (cmd.reply.status < 0 && cmd.reply.transport_error.empty()) {
    cmd.reply.transport_error = iscsi_get_error(iscsi_);
  }
  return std::move(cmd.reply);
}

int Session::WaitTmf(int rc, const bool* done, const uint32_t* response) {
  if (rc != 0) return -1;
  if (!PumpUntil([&] { return *done; }, kCommandTimeout)) return -1;
  return static_cast<int>(*response);
}

int Session::AbortTask(AsyncCommand* cmd) {
  if (broken_) return -1;
  TmfState s;
  const int rc = iscsi_task_mgmt_abort_task_async(iscsi_, cmd->task, OnTmf, &s);
  const int response = WaitTmf(rc, &s.done, &s.response);
  // libiscsi 1.19 keeps the aborted command waiting for an answer the target never sends
  // (SAM-5: an aborted task gets none): cancel it here, so that its task is not on
  // libiscsi's lists when the caller frees it (a later LUN RESET would write into it).
  if (response == ISCSI_TMR_FUNC_COMPLETE && !cmd->done) iscsi_scsi_cancel_task(iscsi_, cmd->task);
  return s.status == SCSI_STATUS_GOOD ? response : -1;
}

int Session::LunReset(int lun) {
  if (broken_) return -1;
  TmfState s;
  const int rc = iscsi_task_mgmt_lun_reset_async(iscsi_, lun, OnTmf, &s);
  const int response = WaitTmf(rc, &s.done, &s.response);
  return s.status == SCSI_STATUS_GOOD ? response : -1;
}

bool Session::ClearUnitAttentions(int lun) {
  const uint8_t tur[6] = {0x00, 0, 0, 0, 0, 0};
  for (int i = 0; i < 8; ++i) {
    const Reply r = Run(lun, tur, SCSI_XFER_NONE, 0);
    if (r.good()) return true;
    if (r.status != SCSI_STATUS_CHECK_CONDITION || r.sense.key != kUnitAttention) return false;
  }
  return false;
}

// --- block I/O -----------------------------------------------------------------------------

void Session::Write(int lun, uint64_t lba, std::span<const uint8_t> data) {
  const uint32_t bs = Info(lun).block_size;
  ASSERT_NE(bs, 0u);
  ASSERT_EQ(data.size() % bs, 0u);
  for (size_t done = 0; done < data.size();) {
    const size_t n = std::min<size_t>(kIoChunkBytes, data.size() - done);
    Cdb c{};
    c[0] = 0x8a;  // WRITE(16)
    Put64(&c[2], lba + done / bs);
    Put32(&c[10], static_cast<uint32_t>(n / bs));
    const Reply r = Out(lun, c, data.subspan(done, n));
    ASSERT_TRUE(IsGood(r)) << "WRITE(16) LUN " << lun << " LBA " << lba + done / bs;
    done += n;
  }
}

Bytes Session::Read(int lun, uint64_t lba, uint64_t blocks) {
  const uint32_t bs = Info(lun).block_size;
  Bytes out;
  if (bs == 0) return out;
  out.reserve(blocks * bs);
  const uint64_t per = kIoChunkBytes / bs;
  for (uint64_t done = 0; done < blocks;) {
    const uint64_t n = std::min(per, blocks - done);
    Cdb c{};
    c[0] = 0x88;  // READ(16)
    Put64(&c[2], lba + done);
    Put32(&c[10], static_cast<uint32_t>(n));
    const Reply r = In(lun, c, static_cast<uint32_t>(n * bs));
    if (!r.good() || r.data.size() != n * bs) {
      ADD_FAILURE() << "READ(16) LUN " << lun << " LBA " << lba + done << ": " << Describe(r)
                    << ", " << r.data.size() << " bytes";
      out.resize(blocks * bs);
      return out;
    }
    out.insert(out.end(), r.data.begin(), r.data.end());
    done += n;
  }
  return out;
}

void Session::Fill(int lun, uint64_t lba, uint64_t blocks, uint64_t seed) {
  const uint32_t bs = Info(lun).block_size;
  Write(lun, lba, Expected(seed, lba, blocks, bs));
}

Bytes Session::Expected(uint64_t seed, uint64_t lba, uint64_t blocks, uint32_t block_size) {
  return Pattern(seed, lba * block_size, blocks * block_size);
}

const LunInfo& Session::Info(int lun) {
  auto it = info_.find(lun);
  if (it != info_.end()) return it->second;
  LunInfo info;
  Cdb rc{};
  rc[0] = 0x9e;  // SERVICE ACTION IN(16) / READ CAPACITY(16)
  rc[1] = 0x10;
  Put32(&rc[10], 32);
  const Reply cap = In(lun, rc, 32);
  if (cap.good() && cap.data.size() >= 12) {
    info.blocks = Get64(&cap.data[0]) + 1;
    info.block_size = Get32(&cap.data[8]);
  } else {
    ADD_FAILURE() << "READ CAPACITY(16) LUN " << lun << ": " << Describe(cap);
  }
  const uint8_t inq[6] = {0x12, 0x01, 0x83, 0x10, 0x00, 0x00};  // VPD 83h, 4096 bytes
  const Reply vpd = In(lun, inq, 4096);
  if (vpd.good() && vpd.data.size() >= 4) {
    const size_t end = std::min<size_t>(vpd.data.size(), 4 + Get16(&vpd.data[2]));
    for (size_t i = 4; i + 4 <= end;) {
      const uint8_t* d = &vpd.data[i];
      const size_t len = d[3];
      if (i + 4 + len > end) break;
      if (((d[1] >> 4) & 3) == 0) {  // association: the LU
        info.lu_designators.push_back({static_cast<uint8_t>(d[0] & 0x0f),
                                       static_cast<uint8_t>(d[1] & 0x0f),
                                       Bytes(d + 4, d + 4 + len)});
      }
      i += 4 + len;
    }
  } else {
    ADD_FAILURE() << "INQUIRY VPD 83h LUN " << lun << ": " << Describe(vpd);
  }
  return info_.emplace(lun, std::move(info)).first->second;
}

Cscd Session::CscdOf(int lun, uint8_t type) {
  const LunInfo& info = Info(lun);
  const Designator* d = info.Find(type);
  if (d == nullptr) {
    ADD_FAILURE() << "VPD 83h of LUN " << lun << " has no LU designator of type " << int{type};
    return CscdE4(Designator{}, info.block_size);
  }
  return CscdE4(*d, info.block_size);
}

Bytes RodBytes(uint64_t seed, std::span<const Range> ranges, uint32_t block_size) {
  Bytes out;
  for (const Range& r : ranges) {
    const Bytes part = Session::Expected(seed, r.lba, r.blocks, block_size);
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

const Designator* LunInfo::Find(uint8_t type) const {
  for (const Designator& d : lu_designators) {
    if (d.type == type) return &d;
  }
  return nullptr;
}

const Designator& LunInfo::Naa() const {
  static const Designator kNone;
  const Designator* d = Find(3);
  if (d == nullptr) ADD_FAILURE() << "VPD 83h has no NAA designator for the LU";
  return d != nullptr ? *d : kNone;
}

// --- third-party copy commands -------------------------------------------------------------

Reply Session::Xcopy1(int lun, const CopyList& l) {
  const Bytes p = EncodeLid1(l);
  return Out(lun, ThirdPartyCopyOut(kSaXcopyLid1, static_cast<uint32_t>(p.size())), p);
}

Reply Session::Xcopy4(int lun, const CopyList& l) {
  const Bytes p = EncodeLid4(l);
  return Out(lun, ThirdPartyCopyOut(kSaXcopyLid4, static_cast<uint32_t>(p.size())), p);
}

Reply Session::Populate(int lun, uint32_t list_id, std::span<const Range> ranges,
                        uint32_t timeout_s, bool immed) {
  const Bytes p = PopulateTokenParams(ranges, timeout_s, immed);
  return Out(lun, PopulateToken(list_id, static_cast<uint32_t>(p.size())), p);
}

std::optional<Token> Session::ReceiveToken(int lun, uint32_t list_id) {
  const Reply r = In(lun, ThirdPartyCopyIn(kSaRrti, list_id, 4096), 4096);
  if (!r.good()) {
    ADD_FAILURE() << "RECEIVE ROD TOKEN INFORMATION list " << list_id << ": " << Describe(r);
    return std::nullopt;
  }
  const auto s = ParseCopyStatus4(r.data);
  if (!s) return std::nullopt;
  EXPECT_EQ(s->response_to_sa, kSaPopulateToken);
  EXPECT_EQ(s->status, 0x01) << "COPY OPERATION STATUS of POPULATE TOKEN";
  EXPECT_EQ(s->token_descriptors_len, 0x0202u) << "ROD TOKEN DESCRIPTORS LENGTH";
  if (!s->token) ADD_FAILURE() << "RRTI returned no ROD token";
  return s->token;
}

std::optional<Token> Session::MakeToken(int lun, uint32_t list_id, std::span<const Range> ranges,
                                        uint32_t timeout_s) {
  const Reply r = Populate(lun, list_id, ranges, timeout_s);
  if (!r.good()) {
    ADD_FAILURE() << "POPULATE TOKEN LUN " << lun << ": " << Describe(r);
    return std::nullopt;
  }
  return ReceiveToken(lun, list_id);
}

Reply Session::WriteUsing(int lun, uint32_t list_id, const Token& t, std::span<const Range> ranges,
                          uint64_t offset_into_rod, bool del_tkn) {
  const Bytes p = WriteUsingTokenParams(t, ranges, offset_into_rod, del_tkn);
  return Out(lun, WriteUsingToken(list_id, static_cast<uint32_t>(p.size())), p);
}

Reply Session::CopyStatusLid4(int lun, uint32_t list_id) {
  return In(lun, ThirdPartyCopyIn(kSaCopyStatusLid4, list_id, 1024), 1024);
}

std::optional<CopyStatus4> Session::WaitCopyDone(int lun, uint32_t list_id, milliseconds timeout) {
  std::optional<CopyStatus4> st;
  bool failed = false;
  const bool done = PollUntil(
      [&] {
        const Reply r = CopyStatusLid4(lun, list_id);
        if (!r.good()) {
          ADD_FAILURE() << "RECEIVE COPY STATUS(LID4) " << list_id << ": " << Describe(r);
          return failed = true;
        }
        st = ParseCopyStatus4(r.data);
        if (!st) return failed = true;
        return st->status < 0x10 || st->status > 0x12;
      },
      timeout);
  if (failed) return std::nullopt;
  if (!done) {
    ADD_FAILURE() << "list " << list_id << " still in progress after " << timeout.count() << " ms";
    return std::nullopt;
  }
  return st;
}

bool PollUntil(const std::function<bool()>& ready, milliseconds timeout, milliseconds interval) {
  const auto deadline = Clock::now() + timeout;
  while (!ready()) {
    if (Clock::now() + interval > deadline) return false;
    std::this_thread::sleep_for(interval);
  }
  return true;
}

void WaitOut(milliseconds d) { std::this_thread::sleep_for(d); }

// --- shared sessions -----------------------------------------------------------------------

namespace {

std::string connect_error;

Session* Shared(std::unique_ptr<Session>* slot, const char* portal_env, const char* target_env,
                const char* initiator, const std::vector<int>& luns) {
  if (*slot && !(*slot)->broken()) return slot->get();
  slot->reset();
  *slot = Session::Connect(Env(portal_env), Env(target_env), initiator, luns, &connect_error);
  return slot->get();
}

}  // namespace

Session* Client() {
  static std::unique_ptr<Session> s;
  return Shared(&s, "FERRY_PORTAL", "FERRY_TARGET", kClientName, {0, 1, 2, 3, 4});
}

Session* Other() {
  static std::unique_ptr<Session> s;
  return Shared(&s, "FERRY_PORTAL", "FERRY_TARGET", kOtherName, {0});
}

Session* Slow() {
  static std::unique_ptr<Session> s;
  return Shared(&s, "FERRY_SLOW_PORTAL", "FERRY_SLOW_TARGET", kClientName, {0, 1});
}

const std::string& ConnectError() { return connect_error; }

std::optional<CopyCounters> ReadCopyCounters() {
  const std::string cmd = Env("FERRYCTL") + " --socket " + Env("FERRY_SOCKET") + " status --json";
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) {
    ADD_FAILURE() << "cannot run " << cmd;
    return std::nullopt;
  }
  std::string text;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), f)) > 0;) text.append(buf, n);
  const int rc = pclose(f);
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (rc != 0 || j.is_discarded() || !j.is_object()) {
    ADD_FAILURE() << cmd << " exited " << rc << ": " << text;
    return std::nullopt;
  }
  const nlohmann::json* copy = j.contains("copy") ? &j["copy"] : nullptr;
  if (copy == nullptr && j.contains("stats") && j["stats"].contains("copy")) {
    copy = &j["stats"]["copy"];
  }
  if (copy == nullptr || !copy->is_object()) {
    ADD_FAILURE() << "no \"copy\" object in ferryctl status --json: " << text;
    return std::nullopt;
  }
  CopyCounters c;
  for (const char* key : {"commands", "bytes_offloaded", "bytes_emulated", "mechanisms"}) {
    if (!copy->contains(key)) {
      ADD_FAILURE() << "\"copy\" has no \"" << key << "\": " << copy->dump();
      return std::nullopt;
    }
  }
  const nlohmann::json& commands = (*copy)["commands"];
  if (commands.is_object()) {
    for (const auto& [name, n] : commands.items()) c.commands_by_name[name] = n.get<uint64_t>();
  } else {
    c.commands = commands.get<uint64_t>();
  }
  c.bytes_offloaded = (*copy)["bytes_offloaded"].get<uint64_t>();
  c.bytes_emulated = (*copy)["bytes_emulated"].get<uint64_t>();
  for (const auto& [name, bytes] : (*copy)["mechanisms"].items()) {
    c.mechanisms[name] = bytes.get<uint64_t>();
  }
  if (copy->contains("active")) c.active = (*copy)["active"].get<uint64_t>();
  if (copy->contains("tokens") && (*copy)["tokens"].is_object()) {
    for (const auto& [name, n] : (*copy)["tokens"].items()) c.tokens[name] = n.get<uint64_t>();
  }
  return c;
}

}  // namespace ferry::tpc_test
