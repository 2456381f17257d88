#!/bin/bash
# tgt (tgtd, the Linux SCSI target framework in user space) as a third-party array without
# third-party copy:
#  - ferryctl copy between two tgt LUNs is emulated, with identical bytes, and -v says why
#    it was not offloaded;
#  - a gateway ferryd re-exports two tgt LUNs: qemu-io reads and writes through it land on
#    tgt and the other way, and qemu-img convert -C between them is emulated by the gateway.
# tgtd runs as root on its own control port and a free loopback port, and is stopped by its
# PID at exit (as in bench/iscsi_vs_tgt). Exit 77 (skipped, with the reason) without root or
# without tgt (scripts/install-deps installs it and keeps its service from starting).
# Usage: tgt.sh FERRYD FERRYCTL
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
here=$(dirname "$(realpath "$0")")
# shellcheck source=SCRIPTDIR/../lib/ferryd.sh
. "$here/../lib/ferryd.sh"
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
for t in tgtd tgtadm; do
  command -v $t >/dev/null || { echo "SKIPPED: $t is missing (scripts/install-deps installs tgt)" >&2; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIPPED: tgtd needs root" >&2; exit 77; }
require_tools qemu-io qemu-img iscsi-ls python3
initiator_setup initiator-tgt
pass() { echo "ok: $*"; }
SECONDS=0

tgtd_pid=""
ctl=""
stop_tgtd() {
  [ -n "$tgtd_pid" ] || return 0
  # tgtd ignores SIGTERM: delete its target, then the system; SIGKILL by PID if it lingers.
  tgtadm -C "$ctl" --lld iscsi --mode target --op delete --force --tid 1 >/dev/null 2>&1 || true
  tgtadm -C "$ctl" --mode system --op delete >/dev/null 2>&1 || true
  for _ in $(seq 50); do kill -0 "$tgtd_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$tgtd_pid" 2>/dev/null || true
  wait "$tgtd_pid" 2>/dev/null || true
  rm -f "/var/run/tgtd/socket.$ctl" "/var/run/tgtd/socket.$ctl.lock"
  tgtd_pid=""
}
trap 'stop_tgtd; _initiator_cleanup' EXIT

size=$((64 << 20))
T=iqn.2026-12.org.ferry:tgt
for l in 1 2 3 4; do truncate -s $size "$work/tgt$l.img"; done
for _ in $(seq 100); do
  c=$((20000 + RANDOM % 10000))
  [ -e "/var/run/tgtd/socket.$c" ] || [ -e "/var/run/tgtd/socket.$c.lock" ] || { ctl=$c; break; }
done
[ -n "$ctl" ] || fail "no free tgtd control port"
tport=$(free_port)
tgtd -f -C "$ctl" --iscsi "portal=127.0.0.1:$tport" >"$work/tgtd.ferryd.log" 2>&1 &
tgtd_pid=$!
for _ in $(seq 50); do
  tgtadm -C "$ctl" --lld iscsi --mode target --op show >/dev/null 2>&1 && break
  kill -0 "$tgtd_pid" 2>/dev/null || fail "tgtd exited at start"
  sleep 0.1
done
tgtadm -C "$ctl" --lld iscsi --mode target --op new --tid 1 -T "$T" || fail "tgtadm: new target"
for l in 1 2 3 4; do
  tgtadm -C "$ctl" --lld iscsi --mode logicalunit --op new --tid 1 --lun $l -b "$work/tgt$l.img" ||
    fail "tgtadm: new logical unit $l"
done
tgtadm -C "$ctl" --lld iscsi --mode target --op bind --tid 1 -I ALL || fail "tgtadm: bind"
iscsi-ls -s "iscsi://127.0.0.1:$tport" 2>/dev/null | grep -q "$T" ||
  fail "tgtd does not serve $T on 127.0.0.1:$tport"
tgt="iscsi://127.0.0.1:$tport/$T"
echo "tgtd on 127.0.0.1:$tport (control port $ctl)"

echo "== ferryctl copy between two tgt LUNs: emulated"
head -c $size /dev/urandom >"$work/rand"
qemu-img convert -n -f raw -O raw "$work/rand" "$tgt/1" || fail "filling tgt LUN 1"
"$ferryctl" copy -v "$tgt/1" "$tgt/2" >"$work/copy.out" 2>"$work/copy.err" ||
  { cat "$work/copy.err"; fail "ferryctl copy $tgt/1 $tgt/2"; }
cat "$work/copy.out" "$work/copy.err"
grep -q "emulated 100%" "$work/copy.out" || fail "the copy between tgt LUNs is not all emulated"
grep -q "^ *not offloaded: ." "$work/copy.err" || fail "-v does not say why it was not offloaded"
same "$work/rand" "$tgt/2" "tgt LUN 2 differs from the source after ferryctl copy"
"$ferryctl" copy --json "$tgt/1" "$tgt/2" >"$work/copy.json" || fail "ferryctl copy --json"
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "ok" and r["emulated_bytes"] == int(sys.argv[2]) == r["done_bytes"], r
assert r["offloaded_bytes"] == 0 and r["notes"], r' "$work/copy.json" $size ||
  fail "ferryctl copy --json between tgt LUNs: $(cat "$work/copy.json")"
pass "emulated, same bytes; $(grep -m1 "not offloaded" "$work/copy.err")"

echo "== a gateway ferryd re-exporting tgt LUNs"
cat >"$work/gw.json" <<JSON
{
  "backstores": {"t3": {"type": "iscsi", "url": "$tgt/3"}, "t4": {"type": "iscsi", "url": "$tgt/4"}},
  "targets": {"iqn.2026-12.org.ferry:gw": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
    "luns": [{"lun": 0, "backstore": "t3"}, {"lun": 1, "backstore": "t4"}]}}
}
JSON
start_named gw "$work/gw.json"
gw="iscsi://127.0.0.1:${dport[gw]}/iqn.2026-12.org.ferry:gw"
qio "$gw/0" "write -P 0x5a 0 4M" "read -P 0x5a 0 4M" "write -P 0x17 5M 300k" "read -P 0x17 5M 300k"
qio "$tgt/3" "read -P 0x5a 0 4M" "read -P 0x17 5M 300k" "write -P 0xa5 16M 4M"
qio "$gw/0" "read -P 0xa5 16M 4M" "read -P 0x5a 0 4M"
qemu-img convert -n -f raw -O raw "$work/rand" "$gw/0" || fail "qemu-img convert into gateway LUN 0"
same "$work/rand" "$tgt/3" "tgt LUN 3 differs from what was written through the gateway"
pass "qemu-io and qemu-img through the gateway land on tgt, and back"
emu=$(counter gw bytes_emulated)
qemu-img convert -C -n -f raw -O raw "$gw/0" "$gw/1" || fail "qemu-img convert -C gw LUN 0 -> 1"
same "$work/rand" "$tgt/4" "tgt LUN 4 differs after qemu-img convert -C through the gateway"
d=$(( $(counter gw bytes_emulated) - emu ))
[ $d = $size ] || fail "the gateway emulated $d bytes of a copy tgt cannot offload, not $size"
pass "qemu-img convert -C between two tgt LUNs through the gateway: emulated, same bytes"

stop_named gw
stop_tgtd
echo "iscsi initiator with tgt: all checks passed in $SECONDS s"
