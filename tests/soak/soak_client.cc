// soak_client: one initiator of ferryd's soak (tests/soak/run.sh, bench/soak; what it proves
// is in docs/reliability.md). It owns BLOCKS blocks of one LUN from FIRST_LBA and, for S
// seconds, logs in, reads back and checks every block it owns, runs the workload of
// tests/crash/crash_workload.h for 5 to 20 s (writes, FUA, SYNCHRONIZE CACHE, EXTENDED COPY
// and token copies within its blocks, ABORT TASK, LOGICAL UNIT RESET), lets what is in
// flight complete and logs out; then once more logs in and checks. Nothing is killed, so a
// block must hold the newest acknowledged write (or one whose outcome was unknown: aborted).
//
//   soak_client --portal IP:PORT --target IQN --lun N --first-lba L --blocks B --seconds S
//               --isid N [--xcopy] [--odx] [--abort-every N] [--reset-every S]
//               [--queue-depth Q]
//
// Exit status: 0 done, 1 a lost or torn write or a dropped session (printed), 2 usage or
// setup.
#include <iscsi/iscsi.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "crash/crash_workload.h"

namespace ferry::crash_test {
namespace {

int Usage(const char* why) {
  std::fprintf(stderr,
               "soak_client: %s\nusage: soak_client --portal IP:PORT --target IQN --lun N "
               "--first-lba L --blocks B --seconds S --isid N [--xcopy] [--odx] "
               "[--abort-every N] [--reset-every S] [--queue-depth Q]\n",
               why);
  return 2;
}

bool Parse(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--xcopy" || a == "--odx") {
      (a == "--xcopy" ? o->xcopy : o->odx) = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    if (a == "--portal") {
      o->portal = v;
    } else if (a == "--target") {
      o->target = v;
    } else if (a == "--lun") {
      o->lun = std::atoi(v);
    } else if (a == "--first-lba") {
      o->first_lba = std::strtoull(v, nullptr, 10);
    } else if (a == "--blocks") {
      o->blocks = std::strtoull(v, nullptr, 10);
    } else if (a == "--seconds") {
      o->seconds = std::atof(v);
    } else if (a == "--isid") {
      o->isid = static_cast<uint32_t>(std::atoi(v));
    } else if (a == "--abort-every") {
      o->abort_every = static_cast<uint32_t>(std::atoi(v));
    } else if (a == "--reset-every") {
      o->reset_every = std::atof(v);
    } else if (a == "--queue-depth") {
      o->queue_depth = static_cast<uint32_t>(std::atoi(v));
    } else {
      return false;
    }
  }
  return !o->portal.empty() && !o->target.empty() && o->blocks >= 16 && o->seconds > 0 &&
         o->queue_depth >= 1;
}

// Logs in and checks every block this client owns. Null (printed) on failure; *bad counts
// the blocks that did not match.
iscsi_context* LoginAndVerify(const Options& o, Model* m, uint32_t* bs, tpc_test::Designator* naa,
                              int* bad) {
  iscsi_context* c = Connect(o);
  if (c == nullptr) {
    std::fprintf(stderr, "soak_client: LUN %d: login failed\n", o.lun);
    return nullptr;
  }
  uint64_t lu_blocks = 0;
  *bs = BlockSize(c, o.lun, &lu_blocks);
  if (*bs < 512 || lu_blocks < o.first_lba + o.blocks ||
      ((o.xcopy || o.odx) && !Naa(c, o.lun, naa))) {
    std::fprintf(stderr, "soak_client: LUN %d: block size %u, %llu blocks, or no NAA designator\n",
                 o.lun, *bs, static_cast<unsigned long long>(lu_blocks));
    iscsi_destroy_context(c);
    return nullptr;
  }
  *bad = VerifyAll(c, o, *bs, m);
  return c;
}

int Run(Options o) {
  o.visible = true;
  o.drain = true;
  Model m(o.blocks);
  Stats s;
  std::mt19937_64 rng{std::random_device{}()};
  const auto end = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.seconds * 1000));
  uint64_t logins = 0;
  for (;;) {
    uint32_t bs = 0;
    tpc_test::Designator naa;
    int bad = 0;
    iscsi_context* c = LoginAndVerify(o, &m, &bs, &naa, &bad);
    if (c == nullptr) return 2;
    ++logins;
    if (bad != 0) {
      std::fprintf(stderr, "soak_client: LUN %d: %d of %llu blocks lost or torn (login %llu)\n",
                   o.lun, bad, static_cast<unsigned long long>(o.blocks),
                   static_cast<unsigned long long>(logins));
      iscsi_destroy_context(c);
      return 1;
    }
    const double left = std::chrono::duration<double>(end - Clock::now()).count();
    if (left <= 0) {
      iscsi_logout_sync(c);
      iscsi_destroy_context(c);
      break;
    }
    Options run = o;
    run.seconds = std::min(left, std::uniform_real_distribution<double>(5, 20)(rng));
    if (RunWorkload(c, run, bs, naa, &m, &s)) {
      std::fprintf(stderr, "soak_client: LUN %d: the session dropped (login %llu)\n", o.lun,
                   static_cast<unsigned long long>(logins));
      return 1;
    }
  }
  std::printf(
      "soak_client: LUN %d blocks %llu+%llu: %llu logins, %llu logouts, %llu writes (%llu FUA), "
      "%llu syncs, %llu copies, %llu token copies acknowledged; %llu aborts, %llu LU resets; "
      "%llu commands failed or aborted; every block verified at each login\n",
      o.lun, static_cast<unsigned long long>(o.first_lba),
      static_cast<unsigned long long>(o.blocks), static_cast<unsigned long long>(logins),
      static_cast<unsigned long long>(s.logouts), static_cast<unsigned long long>(s.writes),
      static_cast<unsigned long long>(s.fua), static_cast<unsigned long long>(s.syncs),
      static_cast<unsigned long long>(s.copies), static_cast<unsigned long long>(s.token_copies),
      static_cast<unsigned long long>(s.aborts), static_cast<unsigned long long>(s.resets),
      static_cast<unsigned long long>(s.failed));
  return 0;
}

}  // namespace
}  // namespace ferry::crash_test

int main(int argc, char** argv) {
  using namespace ferry::crash_test;  // NOLINT
  Options o;
  o.initiator = "iqn.2026-12.org.ferry:soak";
  if (!Parse(argc, argv, &o)) return Usage("missing or bad arguments");
  return Run(o);
}
