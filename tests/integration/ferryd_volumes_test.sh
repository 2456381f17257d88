#!/bin/bash
# ferryd's volumes with real initiators (qemu-io, qemu-img over iscsi://):
#  - a configuration whose volumes name backstores and each other in any order; a linear
#    and a striped volume over RAM backstores are LUNs 0 and 1;
#  - qemu-io writes and reads back patterns on both LUNs while ferryctl volume load +
#    suspend + resume swaps each volume between two tables that keep the data, again and
#    again; no pattern may fail and the data reads back after;
#  - EXTENDED COPY between the two volume LUNs (qemu-img convert -C), bytes compared and
#    the copy counted as offloaded;
#  - ferryctl volume remove refused while a LUN or another volume uses the volume, naming
#    the user; create/status/table/message/list, table errors with their line numbers;
#  - bad volume configurations refused before anything listens, naming volume and line;
#  - ferryd stops cleanly while a volume is suspended with I/O queued on it.
# Usage: ferryd_volumes_test.sh FERRYD FERRYCTL. Exit 77 when qemu-utils are missing.
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
# shellcheck source=SCRIPTDIR/../lib/ferryd.sh
. "$(dirname "$(realpath "$0")")/../lib/ferryd.sh"
require_tools qemu-io qemu-img
make_workdir volumes
pass() { echo "ok: $*"; }
iqn=iqn.2026-11.org.ferry:volumes

config() {  # config FILE VOLUMES-JSON
  cat >"$1" <<JSON
{
  "backstores": {
    "r0": {"type": "ram", "size": "16M"},
    "r1": {"type": "ram", "size": "8M"},
    "r2": {"type": "ram", "size": "8M"},
    "r3": {"type": "ram", "size": "16M"}
  },
  "volumes": $2,
  "targets": {
    "$iqn": {
      "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
      "luns": [{"lun": 0, "backstore": "lin"}, {"lun": 1, "backstore": "str"}]
    }
  }
}
JSON
}

refused() {  # refused NAME VOLUMES-JSON PATTERN: ferryd exits 2 naming PATTERN
  config "$work/$1.json" "$2"
  local rc=0
  "$ferryd" --config "$work/$1.json" --state-dir "$work/bad-state" >"$work/out" 2>&1 || rc=$?
  [ $rc = 2 ] && grep -qF "$3" "$work/out" || { cat "$work/out"; fail "$1 not refused with '$3'"; }
  pass "$1 refused: $(cat "$work/out")"
}

lin='{"name": "lin", "table": "0 32768 linear r0 0"}'
str='{"name": "str", "table": ["0 32768 striped 2 128 r1 0 r2 0"]}'
echo "== bad volume configurations are refused before anything listens"
refused missing "[$lin, $str, {\"name\": \"v\", \"table\": \"0 8 linear nowhere 0\"}]" \
  "\$.volumes[2] (v): line 1: linear: device 'nowhere' does not exist"
refused cycle "[$lin, $str, {\"name\": \"a\", \"table\": [\"0 8 zero\", \"8 8 linear b 0\"]},
  {\"name\": \"b\", \"table\": \"0 16 linear a 0\"}]" "cycle (a -> b -> a)"
refused duplicate "[$lin, $str, $lin]" "\$.volumes[2].name: a second volume named 'lin'"
refused badline "[$lin, {\"name\": \"str\", \"table\": [\"0 32768 striped 2 7 r1 0 r2 0\"]}]" \
  "\$.volumes[1] (str): line 1: striped"

echo "== start: volumes named before the devices they use"
config "$work/c.json" "[{\"name\": \"outer\", \"table\": \"0 32768 linear inner 0\"}, $str, $lin,
  {\"name\": \"inner\", \"table\": \"0 32768 linear r3 0\"}]"
start_ferryd "$ferryd" "$work/ferryd.log" --config "$work/c.json" --state-dir "$work/state"
ctl() { "$ferryctl" --socket "$work/state/ferryd.sock" "$@"; }
url="iscsi://127.0.0.1:$port/$iqn"
ctl volume list | tee "$work/list"
[ "$(grep -c ' config$' "$work/list")" = 4 ] || fail "volume list"
grep -q "LUN 0: volume lin, LUN 1: volume str" "$work/ferryd.log" || fail "banner"

echo "== remove is refused while a LUN or another volume uses the volume"
ctl volume remove lin >"$work/out" 2>&1 && fail "removed a volume that is a LUN"
grep -q "LUN 0 of $iqn" "$work/out" || { cat "$work/out"; fail "remove: LUN not named"; }
ctl volume remove inner >"$work/out" 2>&1 && fail "removed a volume another volume uses"
grep -q "volume 'outer' (line 1)" "$work/out" || { cat "$work/out"; fail "remove: user not named"; }
pass "remove refused: $(cat "$work/out")"
ctl volume remove outer && ctl volume remove inner || fail "removing unused volumes"

echo "== table errors keep the parser's line numbers"
ctl volume create rt --table $'0 16 linear r3 0\n16 x linear r3 16' >"$work/out" 2>&1 &&
  fail "bad table accepted"
grep -q "volume 'rt': line 2: " "$work/out" || { cat "$work/out"; fail "line number lost"; }
printf '0 16384 linear r3 0\n16384 16384 linear r3 16384\n' >"$work/rt.table"
ctl volume create rt --table-file "$work/rt.table" >/dev/null || fail "volume create"
ctl volume table rt | cmp - "$work/rt.table" || fail "table does not print back"
ctl volume message rt 100 ping >"$work/out" 2>&1 && fail "linear took a message"
grep -q "takes no messages" "$work/out" || { cat "$work/out"; fail "message error"; }
ctl lun add "$iqn" 2 rt >/dev/null || fail "lun add of a volume"
qemu-io -f raw "$url/2" -c "write -P 0x33 1M 1M" -c "read -P 0x33 1M 1M" >"$work/rt.io"
grep -q "verification failed" "$work/rt.io" && fail "I/O on the runtime volume"
ctl volume remove rt >/dev/null 2>&1 && fail "removed a volume mapped by lun add"
ctl lun remove "$iqn" 2 >/dev/null && ctl volume remove rt >/dev/null || fail "unmap + remove"
pass "runtime volume created, used as LUN 2, removed"

echo "== I/O on both volume LUNs while their tables are swapped"
lin_a='0 32768 linear r0 0'
lin_b=$'0 16384 linear r0 0\n16384 16384 linear r0 16384'
str_a='0 32768 striped 2 128 r1 0 r2 0'
str_b=$'0 16384 striped 2 128 r1 0 r2 0\n16384 16384 striped 2 128 r1 8192 r2 8192'
# qemu-io arguments for round R: every 256 KiB chunk written with a pattern of R and
# read back (-r: read only, checking round R's patterns).
io_script() {  # io_script ROUND [-r]
  local off p
  for off in $(seq 0 256 16128); do
    p=$((($1 * 37 + off) % 251))
    [ "${2:-}" = -r ] || printf -- '-c\nwrite -P %d %dK 256K\n' $p "$off"
    printf -- '-c\nread -P %d %dK 256K\n' $p "$off"
  done
}
io_loop() {  # io_loop LUN: rounds of qemu-io until $work/stop exists
  local round=0 args
  while [ ! -e "$work/stop" ]; do
    round=$((round + 1))
    mapfile -t args < <(io_script $round)
    qemu-io -f raw "$url/$1" "${args[@]}" || echo "qemu-io exit status $?"
    echo "round $round done"
  done
}
swap() {  # swap VOLUME TABLE [SUSPEND-ARGS...]
  local v=$1 t=$2
  shift 2
  ctl volume load "$v" --table "$t" >/dev/null || fail "load $v"
  ctl volume suspend "$v" "$@" >/dev/null || fail "suspend $v"
  ctl volume resume "$v" >/dev/null || fail "resume $v"
}
io_loop 0 >"$work/io0" 2>&1 &
io0=$!
io_loop 1 >"$work/io1" 2>&1 &
io1=$!
for i in $(seq 1 10); do
  if [ $((i % 2)) = 1 ]; then l=$lin_b s=$str_b; else l=$lin_a s=$str_a; fi
  swap lin "$l" --deadline-ms 1000
  swap str "$s"
  kill -0 $io0 && kill -0 $io1 || fail "qemu-io loops ended early"
done
touch "$work/stop"
wait $io0 $io1
for f in io0 io1; do
  grep -q "verification failed\|error\|exit status" "$work/$f" &&
    { grep -m3 "failed\|error\|exit status" "$work/$f"; fail "$f"; }
  rounds=$(grep -c "^round .* done" "$work/$f")
  [ "$(grep -c '^read 262144/262144' "$work/$f")" = $((64 * rounds)) ] ||
    fail "$f: not every read of $rounds rounds completed"
done
ctl volume status lin | grep -q "generation 11" || { ctl volume status lin; fail "generation"; }
pass "10 swaps of both tables during $rounds+ rounds of qemu-io, every pattern read back"
# One more swap with the data at rest, then every chunk of each LUN's last round.
swap lin "$lin_b"
swap str "$str_b"
for lun in 0 1; do
  last=$(sed -n 's/^round \([0-9]*\) done$/\1/p' "$work/io$lun" | tail -1)
  mapfile -t args < <(io_script "$last" -r)
  qemu-io -f raw "$url/$lun" "${args[@]}" >"$work/after$lun"
  grep -q "verification failed" "$work/after$lun" && fail "LUN $lun: data after the swaps"
  [ "$(grep -c '^read 262144/262144' "$work/after$lun")" = 64 ] || fail "LUN $lun: reads after"
done
pass "the data reads back on the swapped tables"

echo "== EXTENDED COPY between the volume LUNs"
qemu-io -f raw "$url/0" -c "write -P 0x5a 0 16M" >/dev/null
qemu-io -f raw "$url/1" -c "write -P 0xa5 0 16M" >/dev/null
before=$(ctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["copy"]["commands"]["extended_copy"])')
qemu-img convert -C -n -f raw -O raw "$url/0" "$url/1" || fail "qemu-img convert -C"
qemu-img compare -f raw -F raw "$url/0" "$url/1" || fail "the copy differs from its source"
ctl status --json >"$work/status.json"
python3 - "$work/status.json" "$before" <<'PY' || fail "EXTENDED COPY not counted as offloaded"
import json, sys
c = json.load(open(sys.argv[1]))["copy"]
assert c["commands"]["extended_copy"] > int(sys.argv[2]), c
assert c["bytes_offloaded"] >= 16 << 20, c
PY
pass "qemu-img convert -C copied lin to str by EXTENDED COPY, bytes identical"

echo "== stop while a volume is suspended with a read queued"
ctl volume suspend lin >/dev/null || fail "suspend before stop"
timeout 60 qemu-io -f raw "$url/0" -c "read 0 1M" >"$work/queued" 2>&1 &
reader=$!
for _ in $(seq 50); do
  ctl volume status lin | grep -q "queued [1-9]" && break
  sleep 0.1
done
ctl volume status lin | grep -q "suspended, .* queued [1-9]" ||
  { ctl volume status lin; fail "the read was not queued by the suspended volume"; }
kill -TERM "$pid"
wait "$pid" || fail "ferryd did not stop cleanly with a suspended volume"
pid=""
wait $reader || true
grep -q "volume lin was suspended: resumed so that its I/O ends" "$work/ferryd.log" ||
  fail "stopping ferryd did not resume the suspended volume"
pass "ferryd resumed the suspended volume and stopped cleanly"
errors=$(grep -E '\] \[(error|critical)\] ' "$work/ferryd.log" || true)
[ -z "$errors" ] || { echo "$errors" >&2; fail "ferryd logged errors"; }
echo "volumes: all passed"
