// crash_client: the initiator of ferryd's SIGKILL test (tests/crash/run.sh; what it proves is
// in docs/reliability.md). One LUN per process:
//
//   crash_client --portal IP:PORT --target IQN --lun N --model FILE
//                [--blocks B] [--seconds S] [--queue-depth Q] [--xcopy] [--pr] [--verify-only]
//                [--initiator IQN] [--isid N]
//
// It checks the LUN against FILE (what the runs before it had acknowledged; a missing FILE
// means a LUN never written, all zeroes, which only --verify-only checks), then, unless
// --verify-only, runs the workload (crash_workload.h; --pr: crash_pr.h) until ferryd goes or
// S seconds pass, and saves FILE. Exit status: 0 done, 1 a lost or torn write or reservation
// (each printed), 2 usage or setup.
#include <iscsi/iscsi.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "crash_pr.h"
#include "crash_workload.h"

namespace ferry::crash_test {
namespace {

int Usage(const char* why) {
  std::fprintf(stderr,
               "crash_client: %s\nusage: crash_client --portal IP:PORT --target IQN --lun N "
               "--model FILE [--blocks B] [--seconds S] [--queue-depth Q] [--xcopy] [--pr] "
               "[--verify-only] [--initiator IQN] [--isid N]\n",
               why);
  return 2;
}

bool Parse(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    auto take = [&](auto set) {
      if (v == nullptr) return false;
      set(v);
      ++i;
      return true;
    };
    bool ok = true;
    if (a == "--portal")
      ok = take([&](const char* s) { o->portal = s; });
    else if (a == "--target")
      ok = take([&](const char* s) { o->target = s; });
    else if (a == "--initiator")
      ok = take([&](const char* s) { o->initiator = s; });
    else if (a == "--model")
      ok = take([&](const char* s) { o->model = s; });
    else if (a == "--lun")
      ok = take([&](const char* s) { o->lun = std::atoi(s); });
    else if (a == "--isid")
      ok = take([&](const char* s) { o->isid = static_cast<uint32_t>(std::atoi(s)); });
    else if (a == "--blocks")
      ok = take([&](const char* s) { o->blocks = std::strtoull(s, nullptr, 10); });
    else if (a == "--seconds")
      ok = take([&](const char* s) { o->seconds = std::atof(s); });
    else if (a == "--queue-depth")
      ok = take([&](const char* s) { o->queue_depth = static_cast<uint32_t>(std::atoi(s)); });
    else if (a == "--xcopy")
      o->xcopy = true;
    else if (a == "--pr")
      o->pr = true;
    else if (a == "--verify-only")
      o->verify_only = true;
    else
      return false;
    if (!ok) return false;
  }
  return !o->portal.empty() && !o->target.empty() && !o->model.empty() && o->blocks >= 16 &&
         o->queue_depth >= 1;
}

int RunBlocks(const Options& o) {
  iscsi_context* c = Connect(o);
  if (c == nullptr) return 2;
  uint64_t lu_blocks = 0;
  const uint32_t bs = BlockSize(c, o.lun, &lu_blocks);
  if (bs < 512 || lu_blocks < o.blocks) {
    std::fprintf(stderr, "crash_client: LUN %d: block size %u, %llu blocks: need %llu\n", o.lun, bs,
                 static_cast<unsigned long long>(lu_blocks),
                 static_cast<unsigned long long>(o.blocks));
    return 2;
  }
  tpc_test::Designator naa;
  if (o.xcopy && !Naa(c, o.lun, &naa)) {
    std::fprintf(stderr, "crash_client: LUN %d has no NAA designator for EXTENDED COPY\n", o.lun);
    return 2;
  }
  const std::string saved = ReadFile(o.model);
  std::optional<Model> m = saved.empty() ? Model(o.blocks) : Model::Load(saved);
  if (!m || m->blocks() != o.blocks) {
    std::fprintf(stderr, "crash_client: %s is not a model of %llu blocks\n", o.model.c_str(),
                 static_cast<unsigned long long>(o.blocks));
    return 2;
  }
  if (!saved.empty() || o.verify_only) {
    if (const int bad = VerifyAll(c, o, bs, &*m); bad != 0) {
      std::fprintf(stderr, "crash_client: LUN %d: %d of %llu blocks lost or torn\n", o.lun, bad,
                   static_cast<unsigned long long>(o.blocks));
      return 1;
    }
    std::printf("crash_client: LUN %d: %llu blocks verified (%llu completions so far)\n", o.lun,
                static_cast<unsigned long long>(o.blocks),
                static_cast<unsigned long long>(m->acked()));
    std::fflush(stdout);  // run.sh waits for this line before it kills ferryd
  }
  Stats s;
  if (o.verify_only) {
    iscsi_destroy_context(c);
  } else {
    const bool gone = RunWorkload(c, o, bs, naa, &*m, &s);
    std::printf(
        "crash_client: LUN %d: %llu writes (%llu FUA), %llu syncs, %llu copies acknowledged, "
        "%llu commands failed or cut off%s\n",
        o.lun, static_cast<unsigned long long>(s.writes), static_cast<unsigned long long>(s.fua),
        static_cast<unsigned long long>(s.syncs), static_cast<unsigned long long>(s.copies),
        static_cast<unsigned long long>(s.failed), gone ? " (the connection went)" : "");
  }
  return WriteFileAtomic(o.model, m->Save()) ? 0 : 2;
}

}  // namespace
}  // namespace ferry::crash_test

int main(int argc, char** argv) {
  using namespace ferry::crash_test;  // NOLINT
  Options o;
  if (!Parse(argc, argv, &o)) return Usage("missing or bad arguments");
  return o.pr ? RunPr(o) : RunBlocks(o);
}
