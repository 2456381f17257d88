#!/bin/bash
# Reload under load: one qemu-io session writes and verifies blocks on target A for the
# whole test while `ferryctl config reload` adds, changes and removes target B
# (reload_sessions.py: LUN added, write protection, ACL, CHAP, secret, a file with errors,
# B removed, each checked from B's sessions). Target A must see zero I/O errors and keep
# its session: the same TSIH before and after, one login in all.
# Usage: reload_under_load.sh FERRYD FERRYCTL. Exit 77 when qemu-utils are missing.
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
here=$(dirname "$(realpath "$0")")
# shellcheck source=SCRIPTDIR/../lib/ferryd.sh
. "$here/../lib/ferryd.sh"
require_tools qemu-io python3
make_workdir reload
qpid=""
trap '[ -n "$qpid" ] && kill "$qpid" 2>/dev/null; _ferry_cleanup' EXIT
printf 'b-chap-secret-16\n' >"$work/secret"
chmod 600 "$work/secret"
PYTHONPATH="$here" python3 -c "
import json, reload_sessions as r
json.dump(r.make_config('$work'), open('$work/ferryd.json', 'w'), indent=2)"
start_ferryd "$ferryd" "$work/ferryd.log" --config "$work/ferryd.json" \
  --state-dir "$work/state" --reactors 2
sock="$work/state/ferryd.sock"
ctl() { "$ferryctl" --socket "$sock" "$@"; }
a_sessions() {  # TSIH of each session on target A
  ctl sessions --json | python3 -c "
import json, sys
print(' '.join(str(s['tsih']) for s in json.load(sys.stdin)
               if s['target'] == 'iqn.2026-11.org.ferry:a'))"
}

# 64 KiB written and read back (verified) every ~10 ms, in one session: ~60 s at most, ended
# once the reloads are done.
args=()
for i in $(seq 0 2999); do
  off=$(((i % 512) * 65536))
  pat=$((i % 250 + 1))
  args+=(-c "write -P $pat $off 64k" -c "read -P $pat $off 64k" -c "sleep 10")
done
qemu-io -f raw "${args[@]}" "iscsi://127.0.0.1:$port/iqn.2026-11.org.ferry:a/0" \
  >"$work/qemu.log" 2>&1 &
qpid=$!
for _ in $(seq 50); do
  [ -n "$(a_sessions)" ] && break
  sleep 0.1
done
tsih_before=$(a_sessions)
[ -n "$tsih_before" ] || fail "qemu-io did not log in to target A: $(cat "$work/qemu.log")"
logins_before=$(ctl status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['stats']['logins'])")

python3 "$here/reload_sessions.py" "$port" "$ferryctl" "$sock" "$work/ferryd.json" "$work" ||
  fail "target B's sessions"

tsih_after=$(a_sessions)
kill -0 "$qpid" 2>/dev/null || fail "qemu-io ended early: $(tail -5 "$work/qemu.log")"
kill "$qpid"
wait "$qpid" 2>/dev/null || true
qpid=""
if grep -Eiq "fail|error|mismatch" "$work/qemu.log"; then
  grep -Ei "fail|error|mismatch" "$work/qemu.log" | head -5
  fail "I/O errors on target A during the reloads"
fi
ios=$(grep -c "^read 65536/65536" "$work/qemu.log" || true)
[ "$ios" -ge 20 ] || fail "only $ios verified reads on target A"
[ "$tsih_before" = "$tsih_after" ] ||
  fail "target A's session changed (TSIH $tsih_before -> $tsih_after): a reconnect"
echo "ok: target A: $ios verified 64 KiB reads, zero errors, one session throughout (TSIH $tsih_after; logins before B's: $logins_before)"
grep -q "reload: applied" "$work/ferryd.log" || fail "ferryd did not log the reloads"
