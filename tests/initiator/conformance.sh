#!/bin/bash
# libiscsi's conformance suite against gateway LUNs: ferryd re-exports LUNs of a second
# ferryd (the array) through its iscsi backend, and iscsi-test-cu --dataloss
# --allow-sanitize -t ALL runs on the gateway's LUN 0 (the array's RAM LUN) with the harness
# of tests/conformance/run.sh (tests/lib/iscsi_test_cu.sh): no test may fail, and every
# skipped test must have a reason on the allowed list. As there, the tests that need more
# than one logical block per physical block ("LBPPB < 2" skips) run again on gateway LUN 1,
# the array's file LUN (LBPPB 8), where they must pass. (GetLBAStatus.UnmapSingle asks for
# the status at LBA i+1 and wants a first descriptor at i+LBPPB, which SBC-3 5.6 rules out
# on any LUN with LBPPB > 1, direct or through a gateway: it runs where LBPPB is 1.)
# Prints the Run Summary and the skips.
# Usage: conformance.sh FERRYD FERRYCTL. Exit 77 (skipped, with the reason) when a tool is
# missing.
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
here=$(dirname "$(realpath "$0")")
# shellcheck source=SCRIPTDIR/../lib/ferryd.sh
. "$here/../lib/ferryd.sh"
# shellcheck source=SCRIPTDIR/../lib/iscsi_test_cu.sh
. "$here/../lib/iscsi_test_cu.sh"
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
require_tools iscsi-test-cu iscsi-inq python3
initiator_setup initiator-conformance
SECONDS=0

A=iqn.2026-12.org.ferry:array
cat >"$work/array.json" <<JSON
{
  "backstores": {"a0": {"type": "ram", "size": "256M"},
                 "a1": {"type": "file", "path": "a1.img", "size": "256M", "create": true}},
  "targets": {"$A": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
    "luns": [{"lun": 0, "backstore": "a0"}, {"lun": 1, "backstore": "a1"}]}}
}
JSON
start_named array "$work/array.json"
# SANITIZE at 32 MiB/s, as in tests/conformance: Sanitize.Reset must find it still running.
cat >"$work/gw.json" <<JSON
{
  "sanitize": {"bandwidth": "32M"},
  "backstores": {"g0": {"type": "iscsi", "url": "iscsi://127.0.0.1:${dport[array]}/$A/0"},
                 "g1": {"type": "iscsi", "url": "iscsi://127.0.0.1:${dport[array]}/$A/1"}},
  "targets": {"iqn.2026-12.org.ferry:gw": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
    "luns": [{"lun": 0, "backstore": "g0"}, {"lun": 1, "backstore": "g1"}]}}
}
JSON
start_named gw "$work/gw.json"
gwt="iscsi://127.0.0.1:${dport[gw]}/iqn.2026-12.org.ferry:gw"
gw="$gwt/0"
iscsi-inq "$gw" >/dev/null || fail "the gateway LUN does not answer INQUIRY"
echo "array on 127.0.0.1:${dport[array]}, gateway on 127.0.0.1:${dport[gw]}"

echo "== libiscsi iscsi-test-cu --dataloss --allow-sanitize -t ALL on the gateway LUN"
cu_run_all "$gw" "$work/cu.log"
for d in array gw; do
  kill -0 "${dpid[$d]}" 2>/dev/null || fail "ferryd $d died during iscsi-test-cu"
done
# Both checks report before the run fails (each in a subshell: fail there exits only it).
ok=0
(cu_check_summary "$work/cu.log" 200) || ok=1
(cu_check_skips "$work/cu.log") || ok=1
[ $ok = 0 ] || fail "iscsi-test-cu through the gateway: failures or unexpected skips (above)"

echo "== the tests that need LBPPB > 1, on gateway LUN 1 (the array's file LUN, LBPPB 8)"
cu_run_lbppb "$gwt/1" "$work/lbppb.log" "gateway LUN 1"

echo "== clean stop"
stop_named gw
stop_named array
errors=$(grep -hE '\] \[critical\] |AddressSanitizer|runtime error' "$work"/*.ferryd.log || true)
[ -z "$errors" ] || { echo "$errors" >&2; fail "crashes or critical errors in the ferryd logs"; }
echo "iscsi initiator conformance: all checks passed in $SECONDS s"
