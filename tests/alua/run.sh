#!/bin/bash
# Asymmetric logical unit access and multipath (issue 5) through a real initiator (libiscsi,
# the tests/tpc client): one target with two portal groups, that is two target ports and
# two target port groups (1 active/optimized and preferred, 2 active/non-optimized), two
# LUNs. The test binary logs in through both portals and checks the same LU identity on
# both paths, REPORT TARGET PORT GROUPS, an explicit failover with SET TARGET PORT GROUPS
# (unit attentions, the commands standby and unavailable ports refuse) and the way back.
# Any failed or skipped test, a ferryd that dies or logs an error fails the run.
# Usage: run.sh FERRYD ALUA_TEST
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 FERRYD ALUA_TEST" >&2; exit 2; }
for bin in "$1" "$2"; do
  [ -x "$bin" ] || { echo "SKIPPED: $bin is missing or not executable (build it first)" >&2; exit 77; }
done
ferryd=$(realpath "$1")
tests=$(realpath "$2")
here=$(dirname "$(realpath "$0")")
# shellcheck source=SCRIPTDIR/../lib/ferryd.sh
. "$here/../lib/ferryd.sh"
require_tools realpath sed grep
make_workdir alua

start_ferryd "$ferryd" "$work/ferryd.log" --config "$here/ferryd-alua.json" \
  --state-dir "$work/state" --admin-socket "$work/ferryd.sock"
port2=$(sed -n 's/.*iscsi: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/ferryd.log" |
  grep -vx "$port" | head -1)
[ -n "$port2" ] || fail "ferryd did not report the second portal group's port"
export FERRY_PORTAL="127.0.0.1:$port" FERRY_PORTAL2="127.0.0.1:$port2"
export FERRY_TARGET=iqn.2026-11.org.ferry:alua
echo "ferryd: portal group 1 on $FERRY_PORTAL, portal group 2 on $FERRY_PORTAL2"

rc=0
"$tests" --gtest_color=no >"$work/tests.txt" 2>&1 || rc=$?
cat "$work/tests.txt"
kill -0 "$pid" 2>/dev/null || fail "ferryd died during the tests"
grep -q "^\[  PASSED  \] [1-9]" "$work/tests.txt" || fail "no test passed (exit $rc)"
[ $rc = 0 ] || fail "tests failed (exit $rc)"
if grep -q "^\[  SKIPPED \]" "$work/tests.txt"; then fail "tests were skipped"; fi
kill -TERM "$pid"
stop_rc=0
wait "$pid" || stop_rc=$?
pid=""
[ $stop_rc = 0 ] || fail "ferryd did not stop cleanly on SIGTERM (exit status $stop_rc)"
grep -q "target port group 1 is now standby" "$work/ferryd.log" ||
  fail "ferryd did not log the SET TARGET PORT GROUPS transition"
errors=$(grep -hE '\] \[(error|critical)\] ' "$work/ferryd.log" || true)
[ -z "$errors" ] || { echo "$errors" >&2; fail "ferryd logged errors"; }
echo "alua: all tests passed"
