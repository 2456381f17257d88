#!/usr/bin/env bash
# ferryd serving RBD images as iSCSI LUNs, against the cluster whose config file is in
# FERRY_RBD_CEPH_CONF (tests/rbd/run.sh starts one and runs this after the unit tests; by
# hand: tests/lib/ceph_cluster.sh start DIR, then FERRY_RBD_CEPH_CONF=DIR/ceph.conf):
#  1. libiscsi's iscsi-test-cu --dataloss --allow-sanitize -t ALL on LUN 0, a 256 MiB image
#     (the conformance harness's LUN size: Sanitize.Reset needs the overwrite still running),
#     with the harness of tests/conformance/run.sh (tests/lib/iscsi_test_cu.sh): no test may
#     fail, every skip must have a reason on the shared allowed list.
#  2. qemu-img convert -C -n from LUN 1 (random data written first, one object left a hole)
#     to LUN 2, images of 2 MiB objects (qemu-img copies in 2 MiB requests, so each is one
#     whole object), LUN 2's with the cluster's default features (object map, fast-diff):
#     ferryd's copy counters show every byte copied by the OSDs (rados_copy) and none read by
#     ferryd (rbd_gateway); qemu-img compare of the LUNs, and `rbd export` of the destination
#     image by another client (the pool holds the copy, and the object map shows it); a
#     snapshot of the destination taken before the copy still holds the old data. Then LUN 1
#     to LUN 3, an image of 4 MiB objects: the cluster must not copy, ferryd's offload notes
#     name the reason (object sizes), ferryd copies the bytes itself, and LUN 3 equals LUN 1.
#     Then another client grows LUN 2's image: its capacity follows.
#     The OSD restarted (tests/lib/ceph_cluster.sh restart-osd) while 64 writes of 1 MiB go
#     to LUN 1: every write acknowledged reads back; then while qemu-img convert -C copies
#     LUN 1 to LUN 2: the copy completes and LUN 2 holds it.
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
  for image in "${images[@]}"; do
    rbd -c "$conf" snap purge --no-progress "rbd/$image" >/dev/null 2>&1 || true
    rbd -c "$conf" rm --no-progress "rbd/$image" >/dev/null 2>&1 || true
  done
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

# new_image NAME SIZE [RBD CREATE OPTIONS]: an image ferry-lun-PID-NAME, removed at exit;
# its name in $image.
new_image() {
  image=ferry-lun-$$-$1
  images+=("$image")
  rbd -c "$conf" create --size "$2" "${@:3}" "rbd/$image" || fail "rbd create $image"
}

copy_counter() {
  "$ferryctl" --socket "$work/state/ferryd.sock" status --json | python3 -c '
import json, sys
c = json.load(sys.stdin)["copy"]
for k in sys.argv[1].split("."): c = c.get(k, 0) if isinstance(c, dict) else 0
print(c)' "$1"
}

new_image cu 256M && img0=$image
new_image src 64M --image-feature "layering,exclusive-lock" --object-size 2M && img1=$image
new_image dst 64M --object-size 2M && img2=$image
new_image big 64M --image-feature "layering,exclusive-lock" && img3=$image
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
                 "r2": $(rbd_backstore "$img2"), "r3": $(rbd_backstore "$img3")},
  "targets": {"$IQN": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
    "luns": [{"lun": 0, "backstore": "r0"}, {"lun": 1, "backstore": "r1"},
             {"lun": 2, "backstore": "r2"}, {"lun": 3, "backstore": "r3"}]}}
}
JSON
start_ferryd "$ferryd" "$work/ferryd.log" --config "$work/ferryd.json" --state-dir "$work/state"
url="iscsi://127.0.0.1:$port/$IQN"
iscsi-inq "$url/0" >/dev/null || fail "the RBD LUN does not answer INQUIRY"
echo "ferryd on 127.0.0.1:$port: LUNs 0-3 on images $img0 (256 MiB), $img1, $img2, $img3 (64 MiB)"

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
# Object 5 (2 MiB objects) a hole in the source.
dd if=/dev/zero of="$work/random.raw" bs=2M seek=5 count=1 conv=notrunc status=none
qemu-img convert -n -f raw -O raw "$work/random.raw" "$url/1" || fail "qemu-img convert into LUN 1"
head -c $((64 << 20)) /dev/urandom >"$work/old.raw"
qemu-img convert -n -f raw -O raw "$work/old.raw" "$url/2" || fail "qemu-img convert into LUN 2"
rbd -c "$conf" snap create --no-progress "rbd/$img2@before" >/dev/null || fail "rbd snap create $img2@before"
off0=$(copy_counter bytes_offloaded)
emu0=$(copy_counter bytes_emulated)
srv0=$(copy_counter mechanisms.rados_copy)
gw0=$(copy_counter mechanisms.rbd_gateway)
qemu-img convert -C -n -f raw -O raw "$url/1" "$url/2" || fail "qemu-img convert -C LUN 1 -> LUN 2"
off=$(($(copy_counter bytes_offloaded) - off0))
emu=$(($(copy_counter bytes_emulated) - emu0))
srv=$(($(copy_counter mechanisms.rados_copy) - srv0))
gw=$(($(copy_counter mechanisms.rbd_gateway) - gw0))
# Every byte copied by ferryd (EXTENDED COPY), none through qemu, and none through ferryd:
# the OSDs copied the objects. qemu-img sees the hole (GET LBA STATUS) and zeroes it
# itself (WRITE SAME), so 62 or 64 MiB come as EXTENDED COPY.
{ [ $((off + emu)) -ge $((62 << 20)) ] && [ $((off + emu)) -le $((64 << 20)) ]; } ||
  fail "ferryd copied $off + $emu bytes, not the 62-64 MiB qemu-img convert -C asked for"
{ [ "$srv" = "$off" ] && [ "$gw" = 0 ] && [ "$emu" = 0 ]; } ||
  fail "not every byte copied inside the cluster: rados_copy $srv, rbd_gateway $gw," \
    "emulated $emu bytes; notes: $(copy_counter offload_notes)"
qemu-img compare -f raw -F raw "$url/1" "$url/2" >"$work/compare.out" 2>&1 ||
  { cat "$work/compare.out" >&2; fail "LUN 2 differs from LUN 1 after qemu-img convert -C"; }
rbd -c "$conf" export --no-progress "rbd/$img2" "$work/export.raw" >/dev/null ||
  fail "rbd export $img2"
cmp "$work/random.raw" "$work/export.raw" || fail "image $img2 does not hold the data copied"
rm -f "$work/export.raw"
rbd -c "$conf" export --no-progress "rbd/$img2@before" "$work/export.raw" >/dev/null ||
  fail "rbd export $img2@before"
cmp "$work/old.raw" "$work/export.raw" || fail "the snapshot taken before the copy changed"
echo "qemu-img convert -C: $srv bytes copied by the OSDs (rados_copy), $gw by ferryd" \
  "(rbd_gateway), the destination image identical in the cluster, its snapshot unchanged:" \
  "$((SECONDS - t0)) s"

echo "== qemu-img convert -C -n to an image of another object size: ferryd copies, says why"
t0=$SECONDS
gw0=$(copy_counter mechanisms.rbd_gateway)
qemu-img convert -C -n -f raw -O raw "$url/1" "$url/3" || fail "qemu-img convert -C LUN 1 -> LUN 3"
gw=$(($(copy_counter mechanisms.rbd_gateway) - gw0))
[ "$gw" -ge $((62 << 20)) ] || fail "ferryd copied $gw bytes itself, not 62-64 MiB"
copy_counter offload_notes | grep -q "the object sizes differ" ||
  fail "ferryctl status does not name the reason: $(copy_counter offload_notes)"
qemu-img compare -f raw -F raw "$url/1" "$url/3" >"$work/compare.out" 2>&1 ||
  { cat "$work/compare.out" >&2; fail "LUN 3 differs from LUN 1 after qemu-img convert -C"; }
echo "$gw bytes copied by ferryd through librbd, reason in ferryctl status: $((SECONDS - t0)) s"
rm -f "$work/random.raw" "$work/export.raw" "$work/old.raw"

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

echo "== the OSD restarted during a write workload, then during a copy"
# The restart (SIGTERM: the memstore saves, then a new OSD loads it) overlaps the workload:
# librados keeps the requests and sends them again, so every acknowledged write is there
# afterwards and the copy completes.
t0=$SECONDS
cluster=$(dirname "$conf")
writes=() reads=()
for i in $(seq 0 63); do
  writes+=(-c "write -P $((i + 1)) ${i}M 1M")
  reads+=(-c "read -P $((i + 1)) ${i}M 1M")
done
# expect_patterns LUN WHY: LUN holds the 64 patterns written below, or the test fails with WHY.
expect_patterns() {
  qemu-io -f raw "${reads[@]}" "$url/$1" >"$work/qio.out" 2>&1 ||
    { tail -5 "$work/qio.out" >&2; fail "reading LUN $1 back"; }
  ! grep -q "Pattern verification failed" "$work/qio.out" || fail "$2"
}
"$here/../lib/ceph_cluster.sh" restart-osd "$cluster" >"$work/restart.out" 2>&1 &
restart=$!
qemu-io -f raw "${writes[@]}" "$url/1" >"$work/qio.out" 2>&1 ||
  { tail -5 "$work/qio.out" >&2; fail "writes to LUN 1 failed while the OSD restarted"; }
wait $restart || { cat "$work/restart.out" >&2; fail "the OSD did not come back"; }
expect_patterns 1 "an acknowledged write to LUN 1 was lost across the OSD restart"
echo "64 writes of 1 MiB across an OSD restart, all read back: $((SECONDS - t0)) s"
t0=$SECONDS
"$here/../lib/ceph_cluster.sh" restart-osd "$cluster" >"$work/restart.out" 2>&1 &
restart=$!
qemu-img convert -C -n -f raw -O raw "$url/1" "$url/2" ||
  fail "qemu-img convert -C LUN 1 -> LUN 2 failed while the OSD restarted"
wait $restart || { cat "$work/restart.out" >&2; fail "the OSD did not come back"; }
expect_patterns 2 "LUN 2 does not hold what was copied across the OSD restart"
echo "qemu-img convert -C across an OSD restart: LUN 2 holds the copy: $((SECONDS - t0)) s"
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
