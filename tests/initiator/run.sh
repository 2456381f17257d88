#!/bin/bash
# ferryd as an iSCSI initiator (the iscsi backend), end to end, with real initiators:
#  - an *array* ferryd: target iqn.2026-12.org.ferry:array with three file LUNs on a
#    loop-mounted XFS (copies on the array are reflinks) and LUN 3, which an ACL shows only
#    to the initiator iqn.2026-12.org.ferry:gw-special; a second target (array-b) with one
#    file LUN; a CHAP target (array-chap) with a RAM LUN;
#  - a *gateway* ferryd: target iqn.2026-12.org.ferry:gw whose LUNs are iscsi backstores on
#    the array (one through CHAP, one as gw-special) and a local RAM LUN;
#  - a second array (array2, a RAM LUN) for copies across arrays, and a gateway whose array
#    is down.
# Checks: data written on one side reads back on the other; qemu-img convert -C between two
# gateway LUNs is offloaded to the array (the gateway moves no byte); ferryctl copy between
# two array LUNs is offloaded (xcopy or odx); copies that cannot be offloaded (into the
# gateway's RAM, across an ACL, across arrays) are emulated with identical bytes and say why;
# ferryctl's one-line errors for bad URLs; a gateway whose array is down still serves its
# other LUNs; CHAP towards the array; a LUN the array grows is seen grown through the gateway.
# Needs root and loop devices (XFS image): otherwise exit 77, skipped with the reason.
# Usage: run.sh FERRYD FERRYCTL
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
here=$(dirname "$(realpath "$0")")
# shellcheck source=SCRIPTDIR/../lib/ferryd.sh
. "$here/../lib/ferryd.sh"
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
require_tools qemu-io qemu-img iscsi-inq iscsi-ls iscsi-readcapacity16 python3
initiator_setup initiator
# After the exit trap is set: loopfs.sh makes its state file when sourced.
# shellcheck source=SCRIPTDIR/../integration/loopfs.sh
. "$here/../integration/loopfs.sh"
loopfs_require
pass() { echo "ok: $*"; }
SECONDS=0

size=$((64 << 20))
xfs=$(loopfs_mount xfs 1G)
secret_file "$work/array-chap.secret" "gateway-secret-77"
secret_file "$work/gw-chap.secret" "gateway-secret-77"
secret_file "$work/wrong.secret" "not-the-secret-1"
A=iqn.2026-12.org.ferry:array

cat >"$work/array.json" <<JSON
{
  "auth_groups": {"gw": {"user": "gateway", "secret_file": "$work/array-chap.secret"}},
  "backstores": {
    "a0": {"type": "file", "path": "$xfs/a0.img", "size": "64M", "create": true},
    "a1": {"type": "file", "path": "$xfs/a1.img", "size": "64M", "create": true},
    "a2": {"type": "file", "path": "$xfs/a2.img", "size": "64M", "create": true},
    "a3": {"type": "file", "path": "$xfs/a3.img", "size": "64M", "create": true},
    "b0": {"type": "file", "path": "$xfs/b0.img", "size": "64M", "create": true},
    "c0": {"type": "ram", "size": "16M"}
  },
  "targets": {
    "$A": {
      "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
      "luns": [{"lun": 0, "backstore": "a0"}, {"lun": 1, "backstore": "a1"},
               {"lun": 2, "backstore": "a2"}, {"lun": 3, "backstore": "a3"}],
      "acls": [{"initiators": ["iqn.2026-12.org.ferry:gw-special"]},
               {"initiators": ["*"], "luns": [{"lun": 0, "as": 0}, {"lun": 1, "as": 1},
                                              {"lun": 2, "as": 2}]}]
    },
    "$A-b": {"portal_groups": [{"tag": 2, "portals": ["127.0.0.1:0"]}],
             "luns": [{"lun": 0, "backstore": "b0"}]},
    "$A-chap": {"portal_groups": [{"tag": 3, "portals": ["127.0.0.1:0"]}],
                "luns": [{"lun": 0, "backstore": "c0"}], "auth_group": "gw"}
  }
}
JSON
cat >"$work/array2.json" <<JSON
{
  "backstores": {"r0": {"type": "ram", "size": "64M"}, "r1": {"type": "ram", "size": "64M"}},
  "volumes": [{"name": "grows", "table": "0 65536 linear r1 0"}],
  "targets": {"iqn.2026-12.org.ferry:array2": {
    "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
    "luns": [{"lun": 0, "backstore": "r0"}, {"lun": 1, "backstore": "grows"}]}}
}
JSON
start_named array "$work/array.json"
start_named array2 "$work/array2.json"
ap=${dport[array]}
arr="iscsi://127.0.0.1:$ap/$A"
chap_arr="iscsi://gateway%gateway-secret-77@127.0.0.1:$ap/$A-chap/0"
arr2="iscsi://127.0.0.1:${dport[array2]}/iqn.2026-12.org.ferry:array2/0"

cat >"$work/gw.json" <<JSON
{
  "auth_groups": {"toarray": {"user": "gateway", "secret_file": "$work/gw-chap.secret"}},
  "backstores": {
    "g0": {"type": "iscsi", "url": "$arr/0"},
    "g1": {"type": "iscsi", "url": "$arr/1"},
    "local": {"type": "ram", "size": "64M"},
    "hidden": {"type": "iscsi", "url": "$arr/3", "initiator_name": "iqn.2026-12.org.ferry:gw-special"},
    "chap": {"type": "iscsi", "url": "iscsi://127.0.0.1:$ap/$A-chap/0", "auth_group": "toarray"},
    "grows": {"type": "iscsi", "url": "${arr2%/0}/1"}
  },
  "targets": {"iqn.2026-12.org.ferry:gw": {
    "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
    "luns": [{"lun": 0, "backstore": "g0"}, {"lun": 1, "backstore": "g1"},
             {"lun": 3, "backstore": "local"}, {"lun": 4, "backstore": "hidden"},
             {"lun": 5, "backstore": "chap"}, {"lun": 6, "backstore": "grows"}]}}
}
JSON
start_named gw "$work/gw.json"
gw="iscsi://127.0.0.1:${dport[gw]}/iqn.2026-12.org.ferry:gw"
echo "array on 127.0.0.1:$ap, array2 on 127.0.0.1:${dport[array2]}, gateway on 127.0.0.1:${dport[gw]}"

# The array moves a copy inside its file system: reflink, and copy_file_range for the parts
# of a segment not aligned to XFS blocks (LID1 segments hold at most 65535 blocks).
fs_bytes() { echo $(( $(counter array reflink) + $(counter array copy_file_range) )); }
array_before() {
  a_off=$(counter array bytes_offloaded) a_emu=$(counter array bytes_emulated)
  a_fs=$(fs_bytes) a_ref=$(counter array reflink)
}
array_moved() {  # array_moved WHAT: the array offloaded all of WHAT inside XFS
  local off=$(( $(counter array bytes_offloaded) - a_off )) emu=$(( $(counter array bytes_emulated) - a_emu ))
  local fs=$(( $(fs_bytes) - a_fs )) ref=$(( $(counter array reflink) - a_ref ))
  echo "array: $1: $off bytes offloaded ($ref by reflink, $((fs - ref)) by copy_file_range), $emu emulated"
  if [ $off != $size ] || [ $emu != 0 ]; then
    fail "the array offloaded $off and emulated $emu bytes of $1, not $size and 0"
  fi
  if [ $fs != $size ] || [ $ref = 0 ]; then
    fail "the array moved $fs bytes of $1 inside XFS ($ref by reflink), not $size"
  fi
}

echo "== data through the gateway reads back on the array, and the other way"
head -c $size /dev/urandom >"$work/rand0"
head -c $size /dev/urandom >"$work/rand3"
qemu-img convert -n -f raw -O raw "$work/rand0" "$arr/0" || fail "filling array LUN 0"
qio "$gw/0" "write -P 0xab 0 4M" "read -P 0xab 0 4M"
qio "$arr/0" "read -P 0xab 0 4M"
qio "$arr/0" "write -P 0xcd 8M 4M"
qio "$gw/0" "read -P 0xcd 8M 4M" "read -P 0xab 0 4M"
pass "gateway LUN 0 and array LUN 0 show each other's writes"

echo "== qemu-img convert -C between two gateway LUNs: offloaded to the array"
array_before
g_off=$(counter gw bytes_offloaded); g_emu=$(counter gw bytes_emulated)
g_tpc=$(( $(counter gw xcopy) + $(counter gw odx) ))
qemu-img convert -C -n -f raw -O raw "$gw/0" "$gw/1" || fail "qemu-img convert -C gw LUN 0 -> 1"
same "$gw/0" "$gw/1" "gateway LUN 1 differs from LUN 0 after convert -C"
same "$arr/0" "$arr/1" "array LUN 1 differs from LUN 0 after convert -C through the gateway"
array_moved "the gateway's copy"
d=$(( $(counter gw bytes_emulated) - g_emu ))
[ $d = 0 ] || fail "the gateway emulated $d bytes of a copy its array can do"
d=$(( $(counter gw bytes_offloaded) - g_off ))
[ $d = $size ] || fail "the gateway counts $d bytes offloaded, not $size"
d=$(( $(counter gw xcopy) + $(counter gw odx) - g_tpc ))
[ $d = $size ] || fail "the gateway sent $d bytes to the array as xcopy/odx, not $size"
pass "64 MiB copied inside the array, 0 bytes through the gateway"

echo "== ferryctl copy between two array LUNs: offloaded"
array_before
"$ferryctl" copy --json "$arr/0" "$arr/2" >"$work/copy.json" 2>"$work/copy.err" ||
  { cat "$work/copy.err"; fail "ferryctl copy $arr/0 $arr/2"; }
cat "$work/copy.json"
python3 - "$work/copy.json" "$size" <<'PY' || fail "ferryctl copy --json: not fully offloaded"
import json, sys
r, size = json.load(open(sys.argv[1])), int(sys.argv[2])
by = r["by_mechanism"]
assert r["status"] == "ok", r["status"]
assert r["done_bytes"] == size and r["offloaded_bytes"] == size, r
assert r["emulated_bytes"] == 0, "ferryctl emulated %d bytes" % r["emulated_bytes"]
assert set(by) <= {"xcopy", "odx"} and sum(by.values()) == size, by
PY
same "$arr/0" "$arr/2" "array LUN 2 differs from LUN 0 after ferryctl copy"
array_moved "ferryctl's copy"
"$ferryctl" copy "$arr/1" "$arr/2" >"$work/copy.out" 2>"$work/copy.err" ||
  { cat "$work/copy.err"; fail "ferryctl copy $arr/1 $arr/2"; }
cat "$work/copy.out"
grep -qE "offloaded 100% \((xcopy|odx) " "$work/copy.out" || fail "the summary does not name xcopy or odx"
pass "ferryctl copy offloaded to the array, 0 bytes through ferryctl"

echo "== qemu-img convert -C from a gateway remote LUN into its RAM LUN: emulated"
g_emu=$(counter gw bytes_emulated)
qemu-img convert -C -n -f raw -O raw "$gw/0" "$gw/3" || fail "qemu-img convert -C gw LUN 0 -> 3"
same "$gw/0" "$gw/3" "gateway RAM LUN 3 differs from LUN 0"
d=$(( $(counter gw bytes_emulated) - g_emu ))
[ $d = $size ] || fail "the gateway emulated $d bytes into its RAM LUN, not $size"
pass "remote -> local RAM: $size bytes emulated inside the gateway"

echo "== copies the array must refuse to offload: emulated, with the reason"
# a) The gateway's LUN 4 is array LUN 3, reached as gw-special; LUN 1's session (the
#    gateway's default initiator name) may not see LUN 3, so the array refuses the copy.
qemu-img convert -n -f raw -O raw "$work/rand3" "$gw/4" || fail "filling gateway LUN 4"
g_emu=$(counter gw bytes_emulated)
qemu-img convert -C -n -f raw -O raw "$gw/4" "$gw/1" || fail "qemu-img convert -C gw LUN 4 -> 1"
same "$gw/4" "$gw/1" "gateway LUN 1 differs from LUN 4 (across the ACL)"
same "$work/rand3" "$arr/1" "array LUN 1 does not hold the data of LUN 3"
d=$(( $(counter gw bytes_emulated) - g_emu ))
[ $d = $size ] || fail "across the ACL the gateway emulated $d bytes, not $size"
grep -E "\] iscsi g1: the array refused (xcopy|odx) from .*$A/3" "$work/gw.ferryd.log" ||
  fail "the gateway's log does not say why the copy from array LUN 3 was not offloaded"
pass "across the array's ACL: emulated by the gateway, same bytes"
# b) ferryctl: a source on target array-b into array LUN 1, whose session's view (ACL) does
#    not hold the source; c) a source on another array.
qemu-img convert -n -f raw -O raw "$work/rand3" "iscsi://127.0.0.1:$ap/$A-b/0" || fail "filling array-b"
for pair in "iscsi://127.0.0.1:$ap/$A-b/0 $arr/1 outside-the-view" "$arr/0 $arr2 another-array"; do
  read -r from to why <<<"$pair"
  "$ferryctl" copy -v "$from" "$to" >"$work/copy.out" 2>"$work/copy.err" ||
    { cat "$work/copy.err"; fail "ferryctl copy -v $from $to ($why)"; }
  cat "$work/copy.out" "$work/copy.err"
  grep -q "emulated 100%" "$work/copy.out" || fail "$why: not emulated in full"
  grep -q "^ *not offloaded: ." "$work/copy.err" || fail "$why: -v does not say why it was not offloaded"
  same "$from" "$to" "$why: the destination differs after ferryctl copy"
  pass "$why: emulated, same bytes; $(grep -m1 "not offloaded" "$work/copy.err")"
done

echo "== ferryctl copy: one line naming the URL and the cause, exit 2"
closed=$(free_port)
refused() {  # refused URL NEEDLE CAUSE-REGEX
  local rc=0
  "$ferryctl" copy "$1" "$work/sink.img" >"$work/err.out" 2>"$work/err.txt" || rc=$?
  echo "  $1 -> exit $rc: $(cat "$work/err.txt")"
  [ $rc = 2 ] || fail "ferryctl copy $1: exit $rc, not 2"
  [ "$(wc -l <"$work/err.txt")" = 1 ] || fail "ferryctl copy $1: not one line"
  grep -qF "$2" "$work/err.txt" || fail "ferryctl copy $1: the message does not name $2"
  sed "s|$2||g" "$work/err.txt" | grep -qiE "$3" || fail "ferryctl copy $1: the cause is not /$3/"
}
refused "$arr" "$arr" "LUN"
refused "iscsi://127.0.0.1:$ap/$A/x" "$A/x" "LUN"
refused "iscsi://127.0.0.1:$ap/iqn.2026-12.org.ferry:nosuch/0" "ferry:nosuch" \
  "not found|unknown|no such|does not exist"
refused "$arr/9" "$A/9" \
  "(LUN|logical unit).*(not|no such|missing|unsupported)|(not|no such|missing|unsupported).*(LUN|logical unit)"
refused "iscsi://127.0.0.1:$closed/$A/0" "127.0.0.1:$closed" "refused|unreachable|connect|reach"
refused "iscsi://gateway%$work/wrong.secret@127.0.0.1:$ap/$A-chap/0" "$A-chap/0" \
  "auth|chap"
refused "iscsi://gateway%$work/missing.secret@127.0.0.1:$ap/$A-chap/0" "$A-chap/0" \
  "missing\.secret.*(no such|missing|cannot|not found|not exist)"
"$ferryctl" copy -q "iscsi://gateway%$work/gw-chap.secret@127.0.0.1:$ap/$A-chap/0" \
  "$work/chap.img" 2>"$work/err.txt" || { cat "$work/err.txt"; fail "ferryctl copy with the right CHAP secret"; }
pass "malformed URL, unknown IQN, missing LUN, closed port, wrong secret, missing secret file"

echo "== CHAP: the gateway logs in to the array with its auth_group"
qio "$gw/5" "write -P 0x3c 0 1M" "read -P 0x3c 0 1M"
qio "$chap_arr" "read -P 0x3c 0 1M"
"$ferryctl" --socket "$work/array/ferryd.sock" sessions --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
s = s.get("sessions", s) if isinstance(s, dict) else s
assert any(x.get("target", "").endswith(":array-chap") and x.get("chap") for x in s), s' ||
  fail "the array shows no CHAP session of the gateway on array-chap"
pass "gateway LUN 5 is the CHAP LUN of the array"

echo "== a gateway whose array is down starts and serves its other LUNs"
cat >"$work/down.json" <<JSON
{
  "backstores": {
    "far": {"type": "iscsi", "url": "iscsi://127.0.0.1:$closed/$A/0"},
    "near": {"type": "ram", "size": "16M"}
  },
  "targets": {"iqn.2026-12.org.ferry:gw-down": {
    "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
    "luns": [{"lun": 0, "backstore": "far"}, {"lun": 1, "backstore": "near"}]}}
}
JSON
start_named down "$work/down.json"
down="iscsi://127.0.0.1:${dport[down]}/iqn.2026-12.org.ferry:gw-down"
grep "backstore far (iscsi) is unavailable" "$work/down.ferryd.log" | grep -q "127.0.0.1:$closed" ||
  fail "the log does not name the unavailable backstore far and its URL"
grep "is unavailable" "$work/down.ferryd.log"
iscsi-inq "$down/1" >/dev/null || fail "the RAM LUN 1 of the gateway with a dead array"
iscsi-ls -s "iscsi://127.0.0.1:${dport[down]}" >"$work/ls.txt" 2>&1 || true
grep -q "Lun:1" "$work/ls.txt" || { cat "$work/ls.txt"; fail "LUN 1 is not listed"; }
grep -q "Lun:0" "$work/ls.txt" && { cat "$work/ls.txt"; fail "the unavailable LUN 0 is listed"; }
iscsi-inq "$down/0" >/dev/null 2>&1 && fail "the unavailable LUN 0 answers"
stop_named down
pass "unavailable backstore logged with its URL; RAM LUN served, LUN 0 absent"

echo "== the array grows a LUN: the gateway takes the new size"
# Array2's LUN 1 is a 32 MiB linear volume; a table reload makes it 64 MiB. The array raises
# CAPACITY DATA HAS CHANGED for the gateway's session, which re-reads the capacity.
capacity() { iscsi-readcapacity16 "$1" 2>/dev/null | sed -n 's/^Total size:\([0-9]*\)$/\1/p'; }
[ "$(capacity "$gw/6")" = $((32 << 20)) ] || fail "gateway LUN 6 is not 32 MiB: $(capacity "$gw/6")"
qemu-io -f raw "$gw/6" -c "write -P 0x3c 0 1M" >/dev/null || fail "write gateway LUN 6"
actl() { "$ferryctl" --socket "$work/array2/ferryd.sock" "$@" >/dev/null; }
actl volume load grows --table "0 131072 linear r1 0" || fail "volume load grows"
actl volume suspend grows || fail "volume suspend grows"
actl volume resume grows || fail "volume resume grows"
qemu-io -f raw "$gw/6" -c "read -P 0x3c 0 1M" >"$work/grow.out" || fail "read gateway LUN 6"
grep -q "verification failed" "$work/grow.out" && fail "gateway LUN 6 lost its data"
for _ in $(seq 50); do
  [ "$(capacity "$gw/6")" = $((64 << 20)) ] && break
  sleep 0.1
done
[ "$(capacity "$gw/6")" = $((64 << 20)) ] || fail "gateway LUN 6 is still $(capacity "$gw/6") bytes"
qemu-io -f raw "$gw/6" -c "write -P 0x7e 48M 1M" -c "read -P 0x7e 48M 1M" >"$work/grow.out" ||
  fail "I/O past the old end of gateway LUN 6"
grep -q "verification failed" "$work/grow.out" && fail "gateway LUN 6 past the old end"
grep -q "capacity changed from 65536 to 131072 blocks" "$work/gw.ferryd.log" ||
  fail "the gateway did not log the capacity change"
pass "grown from 32 to 64 MiB on the array, seen through the gateway"

echo "== clean stop of the gateway and the arrays"
stop_named gw
stop_named array2
stop_named array
pass "the gateway and both arrays stopped cleanly"

errors=$(grep -hE '\] \[critical\] |AddressSanitizer|runtime error' "$work"/*.ferryd.log || true)
[ -z "$errors" ] || { echo "$errors" >&2; fail "crashes or critical errors in the ferryd logs"; }
echo "iscsi initiator: all checks passed in $SECONDS s"
