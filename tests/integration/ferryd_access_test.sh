#!/bin/bash
# ferryd configuration, access control and administration, with real initiators:
#  - bad configurations are refused before anything listens, naming the JSON path;
#  - CHAP (libiscsi speaks MD5): one-way and mutual, wrong secrets refused, discovery CHAP;
#  - ACLs: SendTargets lists only the targets an initiator may log in to, other initiators
#    are refused (authorization failure), per-initiator LUN maps and write protection;
#  - NOP-In pings keep an idle session (qemu-io sleeping) alive;
#  - ferryctl status / sessions / luns over the admin socket.
# Usage: ferryd_access_test.sh FERRYD FERRYCTL. Exit 77 when libiscsi-bin/qemu-utils are
# missing.
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
# shellcheck source=SCRIPTDIR/../lib/ferryd.sh
. "$(dirname "$(realpath "$0")")/../lib/ferryd.sh"
require_tools iscsi-ls iscsi-inq iscsi-readcapacity16 iscsi-test-cu qemu-io python3
make_workdir access
pass() { echo "ok: $*"; }

# Secrets live in files, mode 0600.
printf 'initiator-secret-1\n' >"$work/esx"
printf 'target-secret-22\n' >"$work/esx-mutual"
printf 'discovery-secret\n' >"$work/disc"
chmod 600 "$work/esx" "$work/esx-mutual" "$work/disc"

config() {  # config FILE [EXTRA-TOP-LEVEL-JSON]
  cat >"$1" <<JSON
{
  ${2:-}
  "nop_interval_s": 1,
  "nop_timeout_s": 2,
  "discovery": {"auth_group": "disc"},
  "auth_groups": {
    "disc": {"user": "disc", "secret_file": "$work/disc"},
    "esx": {"user": "esx", "secret_file": "$work/esx",
            "mutual_user": "array", "mutual_secret_file": "$work/esx-mutual"}
  },
  "backstores": {
    "r0": {"type": "ram", "size": "64M"},
    "r1": {"type": "ram", "size": "32M", "block_size": 4096},
    "r2": {"type": "ram", "size": "16M"},
    "spare": {"type": "ram", "size": "8M"}
  },
  "targets": {
    "iqn.2026-11.org.ferry:chap": {
      "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
      "luns": [{"lun": 0, "backstore": "r0"}],
      "auth_group": "esx"
    },
    "iqn.2026-11.org.ferry:acl": {
      "portal_groups": [{"tag": 2, "portals": ["127.0.0.1:0"]}],
      "luns": [{"lun": 3, "backstore": "r1"}, {"lun": 4, "backstore": "r2"}],
      "acls": [{"initiators": ["iqn.2026-11.org.ferry:good"], "networks": ["127.0.0.0/8"],
                "luns": [{"lun": 3, "as": 0, "write_protect": true}, {"lun": 4, "as": 1}]}]
    }
  }
}
JSON
}

echo "== bad configurations are refused before anything starts"
config "$work/typo.json" '"stat_dir": "/tmp",'
rc=0; "$ferryd" --config "$work/typo.json" --state-dir "$work/state" >"$work/out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q '\$.stat_dir: unknown key' "$work/out" || { cat "$work/out"; fail "typo not refused"; }
[ ! -e "$work/state" ] || fail "a refused config created the state directory"
pass "unknown key refused: $(cat "$work/out")"
chmod 644 "$work/disc"
config "$work/c.json"
rc=0; "$ferryd" --config "$work/c.json" --state-dir "$work/state" >"$work/out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "chmod 600" "$work/out" || { cat "$work/out"; fail "readable secret accepted"; }
pass "world-readable secret refused: $(cat "$work/out")"
chmod 600 "$work/disc"
"$ferryd" --config "$work/c.json" --check | grep -q "is valid" || fail "--check"

echo "== start"
start_ferryd "$ferryd" "$work/ferryd.log" --config "$work/c.json" --state-dir "$work/state" \
  --log-level debug
p="127.0.0.1:$port"
chap="esx%initiator-secret-1@$p"
sock="$work/state/ferryd.sock"

echo "== discovery: CHAP, and only the targets an initiator may log in to"
iscsi-ls "iscsi://$p" >"$work/ls" 2>&1 && fail "discovery without CHAP was accepted"
iscsi-ls "iscsi://disc%discovery-secret@$p" >"$work/ls" || fail "discovery with CHAP"
grep -q "ferry:chap" "$work/ls" || fail "chap target not listed"
grep -q "ferry:acl" "$work/ls" && fail "acl target listed to an initiator outside its ACL"
iscsi-ls -i iqn.2026-11.org.ferry:good "iscsi://disc%discovery-secret@$p" >"$work/ls"
grep -q "Target:iqn.2026-11.org.ferry:acl Portal:$p,2" "$work/ls" ||
  { cat "$work/ls"; fail "acl target not listed to its initiator"; }
pass "SendTargets filtered by ACL"

echo "== CHAP logins"
iscsi-inq "iscsi://$chap/iqn.2026-11.org.ferry:chap/0" >/dev/null || fail "one-way CHAP"
iscsi-inq "iscsi://esx%wrong-secret-1@$p/iqn.2026-11.org.ferry:chap/0" >"$work/out" 2>&1 &&
  fail "wrong CHAP secret accepted"
grep -q "Authentication failure" "$work/out" || { cat "$work/out"; fail "wrong secret: status"; }
iscsi-inq "iscsi://$p/iqn.2026-11.org.ferry:chap/0" >/dev/null 2>&1 && fail "no CHAP accepted"
iscsi-inq "iscsi://$chap/iqn.2026-11.org.ferry:chap/0?target_user=array&target_password=target-secret-22" \
  >/dev/null || fail "mutual CHAP"
iscsi-inq "iscsi://$chap/iqn.2026-11.org.ferry:chap/0?target_user=array&target_password=not-the-secret" \
  >"$work/out" 2>&1 && fail "initiator accepted a wrong target secret"
grep -q "Invalid CHAP_R" "$work/out" || { cat "$work/out"; fail "mutual: target's proof"; }
pass "CHAP one-way, mutual, wrong secrets"

echo "== ACL: LUN map and write protection"
iscsi-inq "iscsi://$p/iqn.2026-11.org.ferry:acl/0" >"$work/out" 2>&1 &&
  fail "an initiator outside the ACL logged in"
grep -q "Authorization failure" "$work/out" || { cat "$work/out"; fail "ACL refusal status"; }
good=(-i iqn.2026-11.org.ferry:good)
iscsi-readcapacity16 "${good[@]}" "iscsi://$p/iqn.2026-11.org.ferry:acl/0" >"$work/cap"
grep -q "LOGICAL BLOCK LENGTH IN BYTES:4096" "$work/cap" || { cat "$work/cap"; fail "LUN 0 is not LUN 3"; }
iscsi-ls -s "${good[@]}" "iscsi://disc%discovery-secret@$p" >"$work/ls" 2>/dev/null || true
iscsi-test-cu --dataloss "${good[@]}" -t SCSI.Write16.WriteProtect \
  "iscsi://$p/iqn.2026-11.org.ferry:acl/0" >"$work/wp" 2>&1 || true
grep -q "WriteProtect ...passed" "$work/wp" || { cat "$work/wp"; fail "mapped LUN 0 not write-protected"; }
iscsi-test-cu --dataloss "${good[@]}" -t SCSI.Write16.Simple \
  "iscsi://$p/iqn.2026-11.org.ferry:acl/1" >"$work/w1" 2>&1 || true
grep -q "Simple ...passed" "$work/w1" || { cat "$work/w1"; fail "writes to mapped LUN 1"; }
pass "LUN 3 shown as write-protected LUN 0, LUN 4 as writable LUN 1"

echo "== NOP-In pings keep an idle session alive; ferryctl sees it"
qemu-io -f raw -c "sleep 4000" -c "read 0 4k" \
  "iscsi://$chap/iqn.2026-11.org.ferry:chap/0" >"$work/qio" 2>&1 &
qpid=$!
sleep 1.5
"$ferryctl" --socket "$sock" sessions >"$work/sessions" || fail "ferryctl sessions"
cat "$work/sessions"
grep -q "iqn.2008-11.org.linux-kvm *iqn.2026-11.org.ferry:chap *normal .* yes" "$work/sessions" ||
  fail "the qemu-io session is not listed with CHAP"
"$ferryctl" --socket "$sock" status | tee "$work/status"
grep -q "iqn.2026-11.org.ferry:acl *2 *1 entries" "$work/status" || fail "ferryctl status"
"$ferryctl" --socket "$sock" luns | tee "$work/luns"
grep -q "iqn.2026-11.org.ferry:acl *3 *r1 *ram *32 MiB *4096" "$work/luns" || fail "ferryctl luns"
"$ferryctl" --socket "$sock" luns --json | grep -q '"naa": "6' || fail "ferryctl luns --json"
wait $qpid || { cat "$work/qio"; fail "qemu-io after 4 s idle"; }
grep -q "read 4096/4096" "$work/qio" || { cat "$work/qio"; fail "read after idle"; }
pings=$(grep -c "NOP-In ping" "$work/ferryd.log" || true)
[ "$pings" -ge 2 ] || fail "expected NOP-In pings during 4 s idle, saw $pings"
grep -q "did not answer a NOP-In" "$work/ferryd.log" && fail "qemu's session timed out"
pass "$pings NOP-In pings answered; ferryctl status, sessions, luns"

echo "== LUNs changed at run time: ferryctl lun add / remove"
"$ferryctl" --socket "$sock" lun add iqn.2026-11.org.ferry:chap 5 spare --write-protect ||
  fail "ferryctl lun add"
iscsi-readcapacity16 "iscsi://$chap/iqn.2026-11.org.ferry:chap/5" | grep -q "Total size:8388608" ||
  fail "the new LUN 5 is not served"
"$ferryctl" --socket "$sock" luns | grep -q "iqn.2026-11.org.ferry:chap *5 *spare .* yes" ||
  fail "ferryctl luns does not show LUN 5"
"$ferryctl" --socket "$sock" lun add iqn.2026-11.org.ferry:chap 6 spare 2>"$work/err" &&
  fail "a backstore mapped twice"
grep -q "is LUN 5 of iqn.2026-11.org.ferry:chap" "$work/err" || { cat "$work/err"; fail "message for a mapped backstore"; }
"$ferryctl" --socket "$sock" lun add iqn.2026-11.org.ferry:nope 1 spare 2>"$work/err" &&
  fail "a LUN for a target that does not exist"
"$ferryctl" --socket "$sock" lun remove iqn.2026-11.org.ferry:chap 5 || fail "ferryctl lun remove"
"$ferryctl" --socket "$sock" lun remove iqn.2026-11.org.ferry:chap 5 2>"$work/err" &&
  fail "removing a LUN twice"
python3 "$(dirname "$0")/lun_change.py" "$port" "$ferryctl" "$sock" ||
  fail "unit attention for a changed LUN map"
pass "lun add/remove, errors, REPORTED LUNS DATA HAS CHANGED"

echo "== connection limits: pre-login budget, first-PDU deadline, bounded log"
config "$work/limits.json" \
  '"max_connections": 3, "login_timeout_s": 1, "max_prelogin_connections": 3, "max_prelogin_per_address": 3,'
"$ferryd" --config "$work/limits.json" --state-dir "$work/state2" >"$work/limits.log" 2>&1 &
lpid=$!
for _ in $(seq 50); do grep -q "^Stop with" "$work/limits.log" 2>/dev/null && break; sleep 0.1; done
lport=$(sed -n 's/^ferryd: serving .* on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/limits.log" | head -1)
python3 - "$lport" <<'PY' || { kill $lpid; fail "connection limits"; }
import socket, sys, time
port = int(sys.argv[1])
def closed_within(s, seconds):
    s.settimeout(seconds)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
time.sleep(0.3)
extra = socket.create_connection(("127.0.0.1", port))
assert closed_within(idle[0], 0.5), "a 4th pre-login connection did not evict the oldest"
assert not closed_within(extra, 0.2), "the newest pre-login connection was closed"
t = time.monotonic()
assert all(closed_within(s, 5) for s in idle[1:] + [extra]), "idle connections were not closed"
print("ok: the oldest of 3 pre-login connections evicted by a 4th; the rest closed after %.1f s"
      % (time.monotonic() - t))
PY
kill -TERM $lpid; wait $lpid || fail "ferryd (limits) did not stop cleanly"
grep -q "dropped 1 connections that had not logged in (1 evicted" "$work/limits.log" ||
  fail "no log line for the evicted connection"
[ "$(grep -c "connections that had not logged in" "$work/limits.log")" = 2 ] ||
  fail "dropped connections not summed up in one line (and one at stop)"

echo "== clean stop: sessions asked to log out, backstores flushed"
qemu-io -f raw -c "sleep 20000" "iscsi://$chap/iqn.2026-11.org.ferry:chap/0" >/dev/null 2>&1 &
qpid=$!
for _ in $(seq 50); do
  "$ferryctl" --socket "$sock" sessions | grep -q linux-kvm && break
  sleep 0.1
done
kill -TERM $pid
wait $pid || fail "ferryd did not exit cleanly"
pid=""
kill $qpid 2>/dev/null || true
grep -q "asking iqn.2008-11.org.linux-kvm .* to log out" "$work/ferryd.log" ||
  fail "the open session was not asked to log out"
grep -q "ferryd: stopped (.*, 4 backstores flushed)" "$work/ferryd.log" || fail "no clean stop"
[ ! -e "$sock" ] || fail "admin socket left behind"
echo "access: all checks passed"
