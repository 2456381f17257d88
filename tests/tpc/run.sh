#!/bin/bash
# Third-party copy through a real initiator (libiscsi): EXTENDED COPY LID1/LID4, RECEIVE COPY
# RESULTS, COPY OPERATION ABORT, ODX tokens, VPD 8Fh, copy counters, task management.
#  - ferryd-tpc.json: the main instance (six LUNs, per-initiator ACLs);
#  - ferryd-tpc-slow.json: a second instance whose copies are throttled to 32 MiB/s, so a
#    copy lasts long enough to watch, abort and reset;
#  - the test binary runs twice: everything, then (ferryd restarted on the same state
#    directory) the tests named *AfterRestart*, which use a token saved by the first run.
# Any failed or skipped test, a ferryd that dies or stops uncleanly, or an error in a
# ferryd log fails the run.
# Usage: run.sh FERRYD FERRYCTL TPC_TEST
# FERRY_TPC_SKIP=PATTERN[:PATTERN...] leaves tests out (gtest filter syntax), with a warning;
# FERRY_TPC_VERBOSE=1 prints the sense data of every refusal.
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
tests=$(realpath "$3")
here=$(dirname "$(realpath "$0")")
# shellcheck source=SCRIPTDIR/../lib/ferryd.sh
. "$here/../lib/ferryd.sh"
make_workdir tpc

slow_pid=""
cleanup() {
  [ -n "$slow_pid" ] && kill "$slow_pid" 2>/dev/null && wait "$slow_pid" 2>/dev/null
  _ferry_cleanup
}
trap cleanup EXIT

start_main() {
  start_ferryd "$ferryd" "$work/ferryd.log" --config "$here/ferryd-tpc.json" \
    --state-dir "$work/state" --admin-socket "$work/ferryd.sock"
  export FERRY_PORTAL="127.0.0.1:$port"
}

start_ferryd "$ferryd" "$work/ferryd.log" --config "$here/ferryd-tpc-slow.json" \
  --state-dir "$work/slow-state" --admin-socket "$work/slow.sock"
mv "$work/ferryd.log" "$work/ferryd-slow.log"
slow_pid=$pid
pid=""
export FERRY_SLOW_PORTAL="127.0.0.1:$port"
start_main
export FERRY_TARGET=iqn.2026-11.org.ferry:tpc FERRY_SLOW_TARGET=iqn.2026-11.org.ferry:tpc-slow
export FERRY_STATE="$work/state" FERRY_SOCKET="$work/ferryd.sock" FERRYCTL="$ferryctl"
export FERRY_SLOW_SOCKET="$work/slow.sock" FERRY_TOKEN_FILE="$work/token.bin"
echo "ferryd on $FERRY_PORTAL, throttled ferryd on $FERRY_SLOW_PORTAL"

alive() {  # alive PID LOG WHAT: fails with the exit status when PID is gone
  kill -0 "$1" 2>/dev/null && return 0
  local rc=0
  wait "$1" || rc=$?
  [ "$2" = "$work/ferryd.log" ] || tail -20 "$2" >&2  # fail shows ferryd.log
  fail "$3 died (exit status $rc$([ $rc -gt 128 ] && echo ", signal $((rc - 128))"))"
}

run_tests() {  # run_tests NAME GTEST_FILTER
  local rc=0 filter=$2
  if [ -n "${FERRY_TPC_SKIP:-}" ]; then
    echo "WARNING: FERRY_TPC_SKIP leaves out $FERRY_TPC_SKIP"
    case $filter in *-*) filter+=":$FERRY_TPC_SKIP" ;; *) filter+="-$FERRY_TPC_SKIP" ;; esac
  fi
  "$tests" --gtest_color=no --gtest_filter="$filter" >"$work/$1.txt" 2>&1 || rc=$?
  cat "$work/$1.txt"
  alive "$pid" "$work/ferryd.log" "ferryd (during $1)"
  alive "$slow_pid" "$work/ferryd-slow.log" "the throttled ferryd (during $1)"
  grep -q "^\[  PASSED  \]" "$work/$1.txt" || fail "$1: no test passed (exit $rc)"
  [ $rc = 0 ] || fail "$1: $(sed -n 's/^ *\([0-9]*\) FAILED TESTS\?$/\1/p' "$work/$1.txt") failed"
  if grep -q "^\[  SKIPPED \]" "$work/$1.txt"; then fail "$1: tests were skipped"; fi
}

SECONDS=0
run_tests tpc '*-*AfterRestart*'

echo "== restart ferryd on the same state directory: tokens do not survive"
[ -s "$work/token.bin" ] || fail "the first run saved no token"
kill -TERM "$pid"
wait "$pid" || fail "ferryd did not stop cleanly"
pid=""
mv "$work/ferryd.log" "$work/ferryd-first.log"
start_main
run_tests restart '*AfterRestart*'

echo "== ferryd logs"
errors=$(grep -hE '\] \[(error|critical)\] ' "$work"/ferryd*.log || true)
[ -z "$errors" ] || { echo "$errors" >&2; fail "ferryd logged errors"; }
echo "tpc: all tests passed in $SECONDS s"
