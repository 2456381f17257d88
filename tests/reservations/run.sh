#!/bin/bash
# SCSI-3 persistent reservations as a Windows failover cluster uses them (issue 5), through a
# real initiator (libiscsi) and across restarts of ferryd on one state directory:
#   phase 1  nodes A and B register with APTPL=1, A reserves Write Exclusive - Registrants
#            Only, an unregistered node C is fenced from writing;
#   restart  SIGTERM (ferryd must exit 0), start again with the same config and state dir;
#   phase 2  the registrations and the reservation are back; B preempts the lost node A;
#   restart
#   phase 3  the preemption was kept; B clears.
# The phases are the tests ClusterTest.Phase1*, Phase2*, Phase3* of the test binary. Any
# failed or skipped test, a ferryd that dies, stops uncleanly, does not restore the APTPL
# state or logs an error fails the run.
# Usage: run.sh FERRYD PR_CLUSTER_TEST
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 FERRYD PR_CLUSTER_TEST" >&2; exit 2; }
for bin in "$1" "$2"; do
  [ -x "$bin" ] || { echo "SKIPPED: $bin is missing or not executable (build it first)" >&2; exit 77; }
done
ferryd=$(realpath "$1")
tests=$(realpath "$2")
here=$(dirname "$(realpath "$0")")
# shellcheck source=SCRIPTDIR/../lib/ferryd.sh
. "$here/../lib/ferryd.sh"
require_tools realpath sed grep
make_workdir pr

start=0
start_main() {
  start=$((start + 1))
  start_ferryd "$ferryd" "$work/ferryd.log" --config "$here/ferryd-pr.json" \
    --state-dir "$work/state" --admin-socket "$work/ferryd.sock"
  export FERRY_PORTAL="127.0.0.1:$port"
  echo "ferryd (start $start) on $FERRY_PORTAL"
  # A state file that exists but was not loaded would silently start without reservations.
  if grep -q "persistent reservations not restored" "$work/ferryd.log"; then
    fail "ferryd did not restore the APTPL state: $(grep "not restored" "$work/ferryd.log")"
  fi
}

stop_main() {
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  pid=""
  [ $rc = 0 ] || fail "ferryd did not stop cleanly on SIGTERM (exit status $rc)"
  mv "$work/ferryd.log" "$work/ferryd-$start.log"
}

alive() {  # alive WHAT: fails with the exit status when ferryd is gone
  kill -0 "$pid" 2>/dev/null && return 0
  local rc=0
  wait "$pid" || rc=$?
  pid=""
  fail "ferryd died during $1 (exit status $rc$([ $rc -gt 128 ] && echo ", signal $((rc - 128))"))"
}

run_phase() {  # run_phase NAME GTEST_FILTER
  local rc=0
  echo "== $1"
  "$tests" --gtest_color=no --gtest_filter="$2" >"$work/$1.txt" 2>&1 || rc=$?
  cat "$work/$1.txt"
  alive "$1"
  grep -q "^\[  PASSED  \] [1-9]" "$work/$1.txt" || fail "$1: no test passed (exit $rc)"
  [ $rc = 0 ] || fail "$1 failed (exit $rc)"
  if grep -q "^\[  SKIPPED \]" "$work/$1.txt"; then fail "$1: tests were skipped"; fi
}

export FERRY_TARGET=iqn.2026-11.org.ferry:pr-cluster FERRY_STATE="$work/state" FERRY_WORK="$work"
SECONDS=0
start_main
run_phase phase1 'ClusterTest.Phase1*'
for f in pr-ram pr-file; do
  [ -s "$work/state/reservations/$f.json" ] || fail "no APTPL file for $f after phase 1"
done

echo "== restart ferryd on the same state directory: APTPL registrations must survive"
stop_main
start_main
run_phase phase2 'ClusterTest.Phase2*'

echo "== restart ferryd again: the preemption must survive"
stop_main
start_main
run_phase phase3 'ClusterTest.Phase3*'
stop_main

echo "== ferryd logs"
errors=$(grep -hE '\] \[(error|critical)\] ' "$work"/ferryd-*.log || true)
[ -z "$errors" ] || { echo "$errors" >&2; fail "ferryd logged errors"; }
echo "pr_cluster: all phases passed in $SECONDS s"
