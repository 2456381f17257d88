#!/bin/bash
# Save, restart, compare: LUNs and volumes made at run time (a linear volume, a thin device
# of a thin pool on file backstores) are written by `ferryctl config save` to ferryd's own
# file; ferryd restarted on that file and the same state directory serves the same LUNs with
# the same identities (VPD 83h NAA, VPD 80h serial) and the same data. Ten backups are kept:
# the eleventh save drops the oldest.
# Usage: save_restart.sh FERRYD FERRYCTL. Exit 77 when libiscsi-bin/qemu-utils are missing.
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
# shellcheck source=SCRIPTDIR/../lib/ferryd.sh
. "$(dirname "$(realpath "$0")")/../lib/ferryd.sh"
require_tools iscsi-inq qemu-io python3
make_workdir save
iqn=iqn.2026-11.org.ferry:save
cfg="$work/ferryd.json"
cat >"$cfg" <<JSON
{
  "backstores": {
    "f0": {"type": "file", "path": "f0.img", "size": "16M", "create": true},
    "f1": {"type": "file", "path": "f1.img", "size": "16M", "create": true},
    "meta": {"type": "file", "path": "meta.img", "size": "4M", "create": true},
    "data": {"type": "file", "path": "data.img", "size": "64M", "create": true}
  },
  "targets": {
    "$iqn": {"portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
             "luns": [{"lun": 0, "backstore": "f0"}]}
  }
}
JSON
start_ferryd "$ferryd" "$work/ferryd.log" --config "$cfg" --state-dir "$work/state"
sock="$work/state/ferryd.sock"
ctl() { "$ferryctl" --socket "$sock" "$@"; }

echo "== run-time volumes and LUNs"
ctl volume create pool --table "0 131072 thin-pool meta data 128 0" >/dev/null
ctl volume message pool 0 create_thin 7 >/dev/null
ctl volume create thin7 --table "0 65536 thin pool 7" >/dev/null
ctl volume create lin --table "0 8192 linear f1 2048" >/dev/null
ctl lun add "$iqn" 1 thin7 >/dev/null
ctl lun add "$iqn" 2 lin >/dev/null
put() {  # put LUN PATTERN OFFSET
  qemu-io -f raw -c "write -P $2 $3 512k" "iscsi://127.0.0.1:$port/$iqn/$1" | grep -q "^wrote" ||
    fail "write LUN $1"
}
put 0 0x41 1M
put 1 0x42 1M
put 1 0x43 1M
put 2 0x44 0
ctl lun remove "$iqn" 2 >/dev/null
ctl lun add "$iqn" 2 lin --write-protect >/dev/null

identities() {  # every LUN: backstore, size, NAA, serial, and VPD 83h / 80h as initiators see
  ctl luns --json | python3 -c "
import json, sys
for l in sorted(json.load(sys.stdin), key=lambda l: l['lun']):
    print(l['lun'], l['backstore'], l['size_bytes'], l['write_protect'], l['naa'], l['serial'])"
  for l in 0 1 2; do
    iscsi-inq -e 1 -c 131 "iscsi://127.0.0.1:$port/$iqn/$l" | cat -v  # VPD 83h (binary NAA)
    iscsi-inq -e 1 -c 128 "iscsi://127.0.0.1:$port/$iqn/$l" | cat -v  # VPD 80h
  done
}
identities >"$work/before"
grep -q "^1 thin7 33554432" "$work/before" || { cat "$work/before"; fail "LUN 1 is not thin7"; }
[ "$(grep -c "Designator Type:(3) NAA" "$work/before")" = 3 ] || fail "no NAA designators"

echo "== config save: atomic, ten backups"
cp "$cfg" "$work/original.json"
ctl config save | grep -q "saved the running configuration to $cfg" || fail "config save"
cmp -s "$cfg.1" "$work/original.json" || fail "the first save did not keep the original as .1"
python3 -c "import json; c = json.load(open('$cfg')); assert c['volumes'][0]['name'] == 'lin'" ||
  fail "the saved file has no run-time volumes"
for i in $(seq 2 10); do ctl config save >/dev/null; done
cmp -s "$cfg.10" "$work/original.json" || fail "after ten saves the original is not .10"
ctl config save >/dev/null
[ ! -e "$cfg.11" ] || fail "an eleventh backup"
for i in $(seq 1 10); do
  cmp -s "$cfg.$i" "$work/original.json" && fail "the oldest copy survived the eleventh save"
  [ -e "$cfg.$i" ] || fail "backup $i is missing"
done
[ "$(stat -c %a "$cfg")" = 600 ] || fail "the saved file is not mode 0600"
[ -z "$(find "$work" -maxdepth 1 -name '.ferryd.json.tmp*')" ] || fail "a temporary file was left"
echo "ok: saved to $cfg, copies .1 .. .10, the oldest dropped by the eleventh save"
ctl config diff "$cfg" | grep -qx "no changes" || fail "the saved file differs from what runs"
ctl config save "$work/other.json" >/dev/null
cmp -s "$cfg" "$work/other.json" || fail "config save FILE wrote something else"

echo "== restart on the saved file"
kill "$pid"
wait "$pid" || fail "ferryd did not stop cleanly"
pid=""
start_ferryd "$ferryd" "$work/ferryd2.log" --config "$cfg" --state-dir "$work/state"
identities >"$work/after"
diff "$work/before" "$work/after" || fail "identities changed across the restart"
check() {  # check LUN PATTERN OFFSET
  qemu-io -f raw -r -c "read -P $2 $3 512k" "iscsi://127.0.0.1:$port/$iqn/$1" |
    grep -q "^read 524288/524288" || fail "LUN $1 lost its data (pattern $2 at $3)"
}
check 0 0x41 1M
check 1 0x43 1M
check 2 0x44 0
qemu-io -f raw -r -c "read -P 0x44 1M 512k" "$work/state/f1.img" | grep -q "^read 524288" ||
  fail "LUN 2's data is not at 1 MiB of f1 (the linear volume's offset)"
echo "ok: after the restart: the same LUNs, NAA and serials ($(grep -c "Designator Type:(3) NAA" "$work/after") NAA designators), the same data"

echo "== reload: a volume's table grows, a backstore and its LUN are added"
python3 - "$cfg" "$iqn" <<'PY'
import json, sys
path, iqn = sys.argv[1], sys.argv[2]
c = json.load(open(path))
for v in c["volumes"]:
    if v["name"] == "lin":
        v["table"] = ["0 16384 linear f1 2048"]
c["backstores"]["f2"] = {"type": "file", "path": "f2.img", "size": "4M", "create": True}
c["targets"][iqn]["luns"].append({"lun": 3, "backstore": "f2"})
json.dump(c, open(path, "w"), indent=2)
PY
ctl config diff "$cfg" >"$work/diff"
grep -q "^~ volume lin" "$work/diff" && grep -q "^+ backstore f2" "$work/diff" &&
  grep -q "LUN 3 added (f2)" "$work/diff" || { cat "$work/diff"; fail "config diff"; }
ctl config reload >/dev/null || fail "reload"
ctl luns --json | python3 -c "
import json, sys
luns = {l['lun']: l for l in json.load(sys.stdin)}
assert luns[2]['size_bytes'] == 16384 * 512, luns[2]
assert luns[3]['backstore'] == 'f2', luns
" || fail "the reload did not grow lin or add LUN 3"
check 2 0x44 0
ctl config diff "$cfg" | grep -qx "no changes" || fail "after the reload the file still differs"
echo "ok: reload grew volume lin under its LUN (data kept) and added backstore f2 as LUN 3"
