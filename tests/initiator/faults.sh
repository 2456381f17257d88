#!/bin/bash
# The remote array dies (SIGKILL) and comes back on the same state and port:
#  a) in the middle of a long ferryctl copy between two of its LUNs (--no-offload, throttled
#     so it lasts several seconds): the copy either completes with identical bytes, or fails
#     (exit 1) naming the failed range ("at byte N");
#  b) in the middle of a write workload through a gateway ferryd (one qemu-io per write, a
#     distinct pattern at a distinct offset, each followed by a flush): every write that was
#     acknowledged reads back on the array afterwards, and the gateway serves writes again.
# Usage: faults.sh FERRYD FERRYCTL. Exit 77 (skipped, with the reason) when a tool is missing.
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
here=$(dirname "$(realpath "$0")")
# shellcheck source=SCRIPTDIR/../lib/ferryd.sh
. "$here/../lib/ferryd.sh"
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
require_tools qemu-io qemu-img python3
initiator_setup initiator-faults
SECONDS=0

size=$((128 << 20))
ap=$(free_port)
A=iqn.2026-12.org.ferry:array
cat >"$work/array.json" <<JSON
{
  "backstores": {
    "a0": {"type": "file", "path": "a0.img", "size": "128M", "create": true},
    "a1": {"type": "file", "path": "a1.img", "size": "128M", "create": true},
    "a2": {"type": "file", "path": "a2.img", "size": "128M", "create": true}
  },
  "targets": {"$A": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1:$ap"]}],
    "luns": [{"lun": 0, "backstore": "a0"}, {"lun": 1, "backstore": "a1"},
             {"lun": 2, "backstore": "a2"}]}}
}
JSON
arr="iscsi://127.0.0.1:$ap/$A"
restarts=0
crash_array() {  # SIGKILL, a pause, then the same config, state directory and port
  kill_named array
  mv "$work/array.ferryd.log" "$work/array-$restarts.log"
  restarts=$((restarts + 1))
  sleep "$1"
  start_named array "$work/array.json"
  [ "${dport[array]}" = "$ap" ] || fail "the array came back on port ${dport[array]}, not $ap"
}
start_named array "$work/array.json"
echo "array on 127.0.0.1:$ap"

echo "== a) SIGKILL during ferryctl copy --no-offload --throttle 16M (about 8 s)"
head -c $size /dev/urandom >"$work/rand"
qemu-img convert -n -f raw -O raw "$work/rand" "$arr/0" || fail "filling array LUN 0"
"$ferryctl" copy --no-offload --throttle 16M "$arr/0" "$arr/1" >"$work/copy.out" 2>"$work/copy.err" &
cpid=$!
sleep 3
kill -0 $cpid 2>/dev/null || { cat "$work/copy.err"; fail "the copy ended before the array was killed"; }
crash_array 1
rc=0
timeout 120 tail --pid=$cpid -f /dev/null || fail "ferryctl copy still running 120 s after the restart"
wait $cpid || rc=$?
cat "$work/copy.out" "$work/copy.err"
case $rc in
  0) same "$work/rand" "$arr/1" "ferryctl copy reported success but LUN 1 differs from LUN 0"
     echo "ok: the copy survived the restart; LUN 1 is identical" ;;
  1) grep -qE "at byte [0-9]+ \([0-9]+ bytes\)" "$work/copy.err" ||
       fail "ferryctl copy failed (exit 1) without naming the failed range"
     echo "ok: the copy failed, naming the range: $(grep -m1 "at byte" "$work/copy.err")" ;;
  *) fail "ferryctl copy across an array restart: exit $rc (expected 0, or 1 with the range)" ;;
esac

echo "== b) SIGKILL during writes through a gateway"
cat >"$work/gw.json" <<JSON
{
  "backstores": {"g2": {"type": "iscsi", "url": "$arr/2"}},
  "targets": {"iqn.2026-12.org.ferry:gw": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
    "luns": [{"lun": 0, "backstore": "g2"}]}}
}
JSON
start_named gw "$work/gw.json"
gw="iscsi://127.0.0.1:${dport[gw]}/iqn.2026-12.org.ferry:gw/0"
: >"$work/acked"
: >"$work/refused"
writer() {  # write I: 64 KiB of pattern I % 255 + 1 at I * 64 KiB, then a flush
  local i=0 pat
  while [ ! -e "$work/stop" ] && [ $i -lt 1800 ]; do
    pat=$((i % 255 + 1))
    if timeout 30 qemu-io -f raw -c "write -P $pat $((i << 16)) 64k" -c flush "$gw" \
      >"$work/w.out" 2>&1 && grep -q "^wrote 65536/65536" "$work/w.out" &&
      ! grep -qi "fail\|error" "$work/w.out"; then
      echo "$i $pat" >>"$work/acked"
    else
      echo "$i $(tr '\n' ' ' <"$work/w.out")" >>"$work/refused"
    fi
    i=$((i + 1))
  done
}
writer &
wpid=$!
wait_acks() {  # wait_acks N SECONDS: until N writes are acknowledged
  for _ in $(seq $(($2 * 10))); do
    [ "$(wc -l <"$work/acked")" -ge "$1" ] && return 0
    kill -0 $wpid 2>/dev/null || break
    sleep 0.1
  done
  touch "$work/stop"
  fail "only $(wc -l <"$work/acked") writes acknowledged, waited for $1 ($(tail -1 "$work/refused"))"
}
wait_acks 10 60
crash_array 2
before=$(wc -l <"$work/acked")
wait_acks $((before + 10)) 90
touch "$work/stop"
wait $wpid
kill -0 "${dpid[gw]}" 2>/dev/null || fail "the gateway died"
# The gateway's device logs a line when its session drops and when it is back.
grep -E "\] iscsi .*(dropped|lost|failed|gave up|is back)" "$work/gw.ferryd.log" ||
  fail "the gateway never noticed that its array went away: no reconnect was exercised"
echo "$(wc -l <"$work/acked") writes acknowledged, $(wc -l <"$work/refused") not (array down)"
reads=()
while read -r i pat; do reads+=("read -P $pat $((i << 16)) 64k"); done <"$work/acked"
qio "$arr/2" "${reads[@]}"
echo "ok: every acknowledged write reads back on the array"

stop_named gw
stop_named array
errors=$(grep -hE '\] \[critical\] |AddressSanitizer|runtime error' "$work"/*.log || true)
[ -z "$errors" ] || { echo "$errors" >&2; fail "crashes or critical errors in the ferryd logs"; }
echo "iscsi initiator faults: all checks passed in $SECONDS s"
