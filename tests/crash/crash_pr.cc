#include "crash_pr.h"

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include <cstdio>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

namespace ferry::crash_test {
namespace {

struct PrState {
  uint64_t key = 0;       // acknowledged registration (0: none)
  uint64_t inflight = 0;  // sent, outcome unknown
  bool reserved = false;  // RESERVE acknowledged
  bool reserve_inflight = false;
};

std::string Save(const PrState& s) {
  std::ostringstream out;
  out << "ferry-crash-pr 1 " << s.key << " " << s.inflight << " " << s.reserved << " "
      << s.reserve_inflight << "\n";
  return out.str();
}

bool Load(const std::string& text, PrState* s) {
  std::istringstream in(text);
  std::string magic;
  int version = 0;
  return static_cast<bool>(in >> magic >> version >> s->key >> s->inflight >> s->reserved >>
                           s->reserve_inflight) &&
         magic == "ferry-crash-pr" && version == 1;
}

// READ KEYS and READ RESERVATION: false when the transport failed.
bool ReadPr(iscsi_context* c, int lun, std::vector<uint64_t>* keys, bool* reserved,
            uint64_t* holder, int* type) {
  scsi_task* t = iscsi_persistent_reserve_in_sync(c, lun, SCSI_PERSISTENT_RESERVE_READ_KEYS, 4096);
  if (t == nullptr || t->status != SCSI_STATUS_GOOD) {
    if (t != nullptr) scsi_free_scsi_task(t);
    return false;
  }
  auto* rk = static_cast<scsi_persistent_reserve_in_read_keys*>(scsi_datain_unmarshall(t));
  for (int i = 0; rk != nullptr && i < rk->num_keys; ++i) keys->push_back(rk->keys[i]);
  scsi_free_scsi_task(t);
  t = iscsi_persistent_reserve_in_sync(c, lun, SCSI_PERSISTENT_RESERVE_READ_RESERVATION, 4096);
  if (t == nullptr || t->status != SCSI_STATUS_GOOD) {
    if (t != nullptr) scsi_free_scsi_task(t);
    return false;
  }
  auto* rr = static_cast<scsi_persistent_reserve_in_read_reservation*>(scsi_datain_unmarshall(t));
  *reserved = rr != nullptr && rr->reserved;
  *holder = *reserved ? rr->reservation_key : 0;
  *type = *reserved ? rr->pr_type : 0;
  scsi_free_scsi_task(t);
  return true;
}

// What the target shows against what was acknowledged: "" when it may be so.
std::string Check(const PrState& s, const std::vector<uint64_t>& keys, bool reserved,
                  uint64_t holder, int type) {
  const bool key_ok = (keys.empty() && s.key == 0) ||
                      (keys.size() == 1 && (keys[0] == s.key || keys[0] == s.inflight));
  std::ostringstream why;
  if (!key_ok) {
    why << keys.size() << " key(s) registered (first " << std::hex << (keys.empty() ? 0 : keys[0])
        << "), acknowledged key " << s.key << ", in flight " << s.inflight << std::dec;
    return why.str();
  }
  if (reserved &&
      (type != SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE || keys.empty() || holder != keys[0])) {
    why << "reservation type " << type << " held by key " << std::hex << holder;
    return why.str();
  }
  if (s.reserved && !reserved) return "the acknowledged reservation is gone";
  if (!s.reserved && !s.reserve_inflight && reserved) return "a reservation nobody made";
  return "";
}

// PERSISTENT RESERVE OUT: false when the outcome is unknown (the connection went).
bool Out(iscsi_context* c, int lun, int sa, uint64_t key, uint64_t new_key, bool* good) {
  scsi_persistent_reserve_out_basic b{};
  b.reservation_key = key;
  b.service_action_reservation_key = new_key;
  b.aptpl = 1;
  scsi_task* t =
      iscsi_persistent_reserve_out_sync(c, lun, sa, SCSI_PERSISTENT_RESERVE_SCOPE_LU,
                                        SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE, &b);
  if (t == nullptr) return false;
  // ERROR, CANCELLED and TIMEOUT are libiscsi's, not the target's: the command may have
  // been carried out, so its outcome is unknown, like one whose answer never came.
  const int st = t->status;
  scsi_free_scsi_task(t);
  if (st == SCSI_STATUS_ERROR || st == SCSI_STATUS_CANCELLED || st == SCSI_STATUS_TIMEOUT) {
    return false;
  }
  *good = st == SCSI_STATUS_GOOD;
  return true;
}

}  // namespace

int RunPr(const Options& o) {
  iscsi_context* c = Connect(o);
  if (c == nullptr) return 2;
  PrState s;
  const std::string saved = ReadFile(o.model);
  if (!saved.empty()) {
    if (!Load(saved, &s)) {
      std::fprintf(stderr, "crash_client: %s is not a PR model\n", o.model.c_str());
      return 2;
    }
    std::vector<uint64_t> keys;
    bool reserved = false;
    uint64_t holder = 0;
    int type = 0;
    if (!ReadPr(c, o.lun, &keys, &reserved, &holder, &type)) {
      std::fprintf(stderr, "crash_client: PERSISTENT RESERVE IN failed: %s\n", iscsi_get_error(c));
      return 2;
    }
    if (const std::string why = Check(s, keys, reserved, holder, type); !why.empty()) {
      std::fprintf(stderr, "crash_client: LUN %d: lost persistent reservation state: %s\n", o.lun,
                   why.c_str());
      return 1;
    }
    s = {.key = keys.empty() ? 0 : keys[0], .reserved = reserved};
    std::printf("crash_client: LUN %d: registration and reservation as acknowledged\n", o.lun);
  }
  std::mt19937_64 rng{std::random_device{}()};
  uint64_t registrations = 0;
  bool gone = false;
  const auto end = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.seconds * 1000));
  while (!o.verify_only && (o.seconds <= 0 || Clock::now() < end)) {
    bool good = false;
    s.inflight = rng() | 1;
    if (!Out(c, o.lun, SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY, 0, s.inflight,
             &good)) {
      gone = true;
      break;
    }
    if (good) {
      s.key = s.inflight;
      ++registrations;
    }
    s.inflight = 0;
    if (!s.reserved && s.key != 0) {
      s.reserve_inflight = true;
      if (!Out(c, o.lun, SCSI_PERSISTENT_RESERVE_RESERVE, s.key, 0, &good)) {
        gone = true;
        break;
      }
      s.reserved = good;
      s.reserve_inflight = false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // libiscsi 1.19 keeps a synchronous command cut off by a lost connection queued with its
  // completion data on the stack of the call that returned: destroying the context would
  // call into it. The process ends right after, so the context is left alone then.
  if (!gone) iscsi_destroy_context(c);
  if (!WriteFileAtomic(o.model, Save(s))) return 2;
  std::printf("crash_client: LUN %d: %llu registrations acknowledged\n", o.lun,
              static_cast<unsigned long long>(registrations));
  return 0;
}

}  // namespace ferry::crash_test
