#!/usr/bin/env bash
# ferryd serving RBD images as iSCSI LUNs, against the cluster whose config file is in
# FERRY_RBD_CEPH_CONF (tests/rbd/run.sh starts one and runs this after the unit tests; by
# hand: tests/lib/ceph_cluster.sh start DIR, then FERRY_RBD_CEPH_CONF=DIR/ceph.conf):
#  1. libiscsi's iscsi-test-cu --dataloss --allow-sanitize -t ALL on LUN 0, a 256 MiB image
#     (the conformance harness's LUN size: Sanitize.Reset needs the overwrite still running),
#     with the harness of tests/conformance/run.sh (tests/lib/iscsi_test_cu.sh): no test may
#     fail, every skip must have a reason on the shared allowed list.
#  2. qemu-img convert -C -n from LUN 1 (random data written first) to LUN 2, two more
#     images: qemu-img compare of the LUNs, and cmp of `rbd export` of the destination image
#     with the data written; ferryd's copy counters say how ferryd copied the bytes.
#     Then another client grows the destination image: LUN 2's capacity follows.
#  3. The cluster unreachable at start: a second ferryd with an rbd backstore whose config
#     names a monitor address nobody listens on, and a RAM LUN. It starts, logs the rbd
#     backstore by name as unavailable, and serves the RAM LUN (iscsi-inq, qemu-io).
# One ferryd runs at a time, on 127.0.0.1 with its state in a temporary folder; it is stopped
# by PID at exit, also on failure. The images are removed at exit.
# Usage: luns.sh FERRYD FERRYCTL. Exit 77 (skipped, with the reason) when a tool is missing.
# shellcheck disable=SC2154  # work, port: set by ferryd.sh (make_workdir, start_ferryd)
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
here=$(dirname "$(realpath "$0")")
# shellcheck source=SCRIPTDIR/../lib/ferryd.sh
. "$here/../lib/ferryd.sh"
# shellcheck source=SCRIPTDIR/../lib/iscsi_test_cu.sh
. "$here/../lib/iscsi_test_cu.sh"
require_tools iscsi-test-cu iscsi-inq iscsi-readcapacity16 qemu-io qemu-img rbd python3
conf=${FERRY_RBD_CEPH_CONF:?"set it to the test cluster's config file (run.sh does)"}
SECONDS=0

make_workdir rbd-luns
images=()
trap _rbd_luns_cleanup EXIT
trap 'exit 130' INT TERM
_rbd_luns_cleanup() {
  local image
  _ferry_cleanup_pid
  for image in "${images[@]}"; do rbd -c "$conf" rm --no-progress "rbd/$image" >/dev/null 2>&1; done
  rm -rf "$work"
}
# ferryd.sh's cleanup, without removing $work yet (the images go first).
_ferry_cleanup_pid() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  pid=""
}

stop_ferryd() {
  local rc=0
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  pid=""
  [ $rc = 0 ] || fail "ferryd did not exit cleanly on SIGTERM (exit status $rc)"
}

# new_image NAME SIZE: an image ferry-lun-PID-NAME, removed at exit; its name in $image.
new_image() {
  image=ferry-lun-$$-$1
  images+=("$image")
  rbd -c "$conf" create --size "$2" "rbd/$image" || fail "rbd create $image"
}

copy_counter() {
  "$ferryctl" --socket "$work/state/ferryd.sock" status --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["copy"][sys.argv[1]])' "$1"
}

new_image cu 256M && img0=$image
new_image src 64M && img1=$image
new_image dst 64M && img2=$image
IQN=iqn.2026-12.org.ferry:rbd
rbd_backstore() {
  printf '{"type": "rbd", "pool": "rbd", "image": "%s", "ceph_conf": "%s", "client": "admin"}' \
    "$1" "$conf"
}
# SANITIZE at 32 MiB/s, as in tests/conformance: Sanitize.Reset must find it still running.
cat >"$work/ferryd.json" <<JSON
{
  "sanitize": {"bandwidth": "32M"},
  "backstores": {"r0": $(rbd_backstore "$img0"), "r1": $(rbd_backstore "$img1"),
                 "r2": $(rbd_backstore "$img2")},
  "targets": {"$IQN": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
    "luns": [{"lun": 0, "backstore": "r0"}, {"lun": 1, "backstore": "r1"},
             {"lun": 2, "backstore": "r2"}]}}
}
JSON
start_ferryd "$ferryd" "$work/ferryd.log" --config "$work/ferryd.json" --state-dir "$work/state"
url="iscsi://127.0.0.1:$port/$IQN"
iscsi-inq "$url/0" >/dev/null || fail "the RBD LUN does not answer INQUIRY"
echo "ferryd on 127.0.0.1:$port: LUNs 0-2 on images $img0 (256 MiB), $img1, $img2 (64 MiB)"

echo "== libiscsi iscsi-test-cu --dataloss --allow-sanitize -t ALL on the RBD LUN"
t0=$SECONDS
cu_run_all "$url/0" "$work/cu.log"
kill -0 "$pid" 2>/dev/null || fail "ferryd died during iscsi-test-cu"
# Both checks report before the run fails (each in a subshell: fail there exits only it).
ok=0
(cu_check_summary "$work/cu.log" 200) || ok=1
(cu_check_skips "$work/cu.log") || ok=1
[ $ok = 0 ] || fail "iscsi-test-cu on the RBD LUN: failures or unexpected skips (above)"
echo "iscsi-test-cu on the RBD LUN: $((SECONDS - t0)) s"

echo "== qemu-img convert -C -n between two RBD LUNs"
t0=$SECONDS
head -c $((64 << 20)) /dev/urandom >"$work/random.raw"
qemu-img convert -n -f raw -O raw "$work/random.raw" "$url/1" || fail "qemu-img convert into LUN 1"
off0=$(copy_counter bytes_offloaded)
emu0=$(copy_counter bytes_emulated)
qemu-img convert -C -n -f raw -O raw "$url/1" "$url/2" || fail "qemu-img convert -C LUN 1 -> LUN 2"
off=$(($(copy_counter bytes_offloaded) - off0))
emu=$(($(copy_counter bytes_emulated) - emu0))
# Every byte copied by ferryd (EXTENDED COPY), none through qemu.
[ $((off + emu)) = $((64 << 20)) ] ||
  fail "ferryd copied $off + $emu bytes, not the 64 MiB qemu-img convert -C asked for"
qemu-img compare -f raw -F raw "$url/1" "$url/2" >"$work/compare.out" 2>&1 ||
  { cat "$work/compare.out" >&2; fail "LUN 2 differs from LUN 1 after qemu-img convert -C"; }
rbd -c "$conf" export --no-progress "rbd/$img2" "$work/export.raw" >/dev/null ||
  fail "rbd export $img2"
cmp "$work/random.raw" "$work/export.raw" || fail "image $img2 does not hold the data copied"
echo "qemu-img convert -C: 64 MiB copied inside ferryd ($off bytes offloaded, $emu emulated)," \
  "the destination image identical in the cluster: $((SECONDS - t0)) s"
rm -f "$work/random.raw" "$work/export.raw"

echo "== the destination image grown by another client while ferryd serves it"
# librbd has ferryd, the exclusive lock holder, carry the resize out; its update watch
# takes the new size, which a new session's READ CAPACITY shows.
rbd -c "$conf" resize --no-progress --size 96M "rbd/$img2" || fail "rbd resize $img2"
for _ in $(seq 100); do
  size=$(iscsi-readcapacity16 -s "$url/2" 2>/dev/null || true)
  [ "$size" = $((96 << 20)) ] && break
  sleep 0.1
done
[ "$size" = $((96 << 20)) ] || fail "LUN 2 shows $size bytes, not the 96 MiB of its image"
echo "LUN 2 shows the new size, $size bytes"
stop_ferryd

echo "== the cluster unreachable at ferryd's start"
t0=$SECONDS
dead=$(python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
keyring=$(sed -n 's/^keyring = \(.*\)$/\1/p' "$conf" | head -1)
printf '[global]\nmon host = v1:127.0.0.1:%s\nkeyring = %s\nms bind ipv6 = false\n' \
  "$dead" "$keyring" >"$work/dead.conf"
cat >"$work/down.json" <<JSON
{
  "backstores": {"rbd-down": {"type": "rbd", "pool": "rbd", "image": "gone",
                              "ceph_conf": "$work/dead.conf", "client": "admin", "timeout": 3},
                 "ram0": {"type": "ram", "size": "16M"}},
  "targets": {"$IQN": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
    "luns": [{"lun": 0, "backstore": "ram0"}, {"lun": 1, "backstore": "rbd-down"}]}}
}
JSON
start_ferryd "$ferryd" "$work/ferryd.log" --config "$work/down.json" --state-dir "$work/down"
grep -q "backstore rbd-down (rbd) is unavailable.*rbd:rbd/gone" "$work/ferryd.log" ||
  fail "ferryd did not report the unreachable rbd backstore by name"
grep "backstore rbd-down" "$work/ferryd.log" | sed 's/^.*\] //'
url="iscsi://127.0.0.1:$port/$IQN"
iscsi-inq "$url/0" >/dev/null || fail "the RAM LUN does not answer INQUIRY"
qemu-io -f raw -c "write -P 0x5c 0 1M" -c "read -P 0x5c 0 1M" "$url/0" >"$work/qio.out" 2>&1 ||
  { cat "$work/qio.out" >&2; fail "qemu-io on the RAM LUN"; }
! grep -q "Pattern verification failed" "$work/qio.out" || fail "qemu-io pattern mismatch"
echo "the RAM LUN serves beside the unreachable rbd backstore: $((SECONDS - t0)) s"
stop_ferryd

errors=$(grep -hE '\] \[critical\] |AddressSanitizer|runtime error' "$work"/*.log || true)
[ -z "$errors" ] || { echo "$errors" >&2; fail "crashes or critical errors in the ferryd logs"; }
echo "rbd LUNs through ferryd: all checks passed in $SECONDS s"
