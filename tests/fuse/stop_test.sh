#!/bin/bash
# The FUSE mount's end: SIGTERM while dd reads through the mount leaves no mount behind (dd
# fails instead of hanging); a mount left by a ferryd killed with SIGKILL is stale, and the
# next ferryd detaches it and mounts again; a second ferryd refuses a live mount point.
# Needs root and /dev/fuse (else exit 77). Usage: stop_test.sh FERRYD FERRYCTL
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/ferryd.sh"
. "$here/lib.sh"
fuse_require
fuse_workdir fuse-stop
config() {  # config PORTAL_PORT ADMIN_SOCKET
  cat <<JSON
{
  "admin_socket": "$2",
  "backstores": {"big": {"type": "ram", "size": "4G"}},
  "targets": {
    "iqn.2026-11.org.ferry:fuse-stop": {
      "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:$1"]}],
      "luns": [{"lun": 0, "backstore": "big"}]
    }
  },
  "fuse": {"mount_point": "$mnt", "devices": ["big"]}
}
JSON
}
config 0 "$work/state/ferryd.sock" >"$work/c.json"

echo "== SIGTERM during dd"
start_ferryd "$ferryd" "$work/ferryd.log" --config "$work/c.json" --state-dir "$work/state"
dd if="$mnt/big" of=/dev/null bs=4k 2>"$work/dd.log" &
dd_pid=$!
extra_pids=$dd_pid
for _ in $(seq 50); do
  [ "$(fuse_stat stats.reads)" -gt 1000 ] && break
  sleep 0.1
done
[ "$(fuse_stat stats.reads)" -gt 1000 ] || fail "dd is not reading through the mount"
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "ferryd still runs 10 s after SIGTERM during dd"
wait "$pid" || fail "ferryd did not stop cleanly (exit $?)"
pid=""
is_mounted "$mnt" && fail "the mount is still there after SIGTERM"
for _ in $(seq 50); do kill -0 "$dd_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$dd_pid" 2>/dev/null && fail "dd still hangs on the gone mount"
if wait "$dd_pid"; then fail "dd read 4 GiB before ferryd stopped: the test proves nothing"; fi
extra_pids=""
echo "ok: ferryd stopped, no mount left, dd failed: $(tail -1 "$work/dd.log")"

echo "== a stale mount after SIGKILL is detached by the next ferryd"
start_ferryd "$ferryd" "$work/ferryd.log" --config "$work/c.json" --state-dir "$work/state"
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
pid=""
is_mounted "$mnt" || fail "no mount left behind by a killed ferryd"
stat "$mnt" >/dev/null 2>&1 && fail "the killed ferryd's mount still answers"
start_ferryd "$ferryd" "$work/ferryd.log" --config "$work/c.json" --state-dir "$work/state"
grep -q "stale FUSE mount" "$work/ferryd.log" || fail "ferryd did not say it found a stale mount"
[ -f "$mnt/big" ] || fail "no file after the stale mount was replaced"
echo "ok: stale mount detached, mounted again"

echo "== a live mount point is refused"
config 0 "$work/other.sock" >"$work/c2.json"
if "$ferryd" --config "$work/c2.json" --state-dir "$work/state2" >"$work/second.log" 2>&1; then
  fail "a second ferryd mounted over a live mount"
fi
grep -q "already a FUSE mount" "$work/second.log" || fail "second ferryd: $(tail -2 "$work/second.log")"
[ -f "$mnt/big" ] || fail "the first mount was disturbed"
echo "ok: refused ($(grep -o 'already a FUSE mount.*' "$work/second.log" | head -1))"
kill -TERM "$pid"
wait "$pid" || fail "ferryd did not stop cleanly"
pid=""
is_mounted "$mnt" && fail "mount left after the last SIGTERM"
echo "ok: unmounted"
