#!/bin/bash
# Thin volumes as LUNs (issue 6): a copy between LUNs on two thin volumes of one pool is
# metadata-only.
#  - ferryd starts with a thin-pool volume over RAM backstores (blank metadata: formatted);
#  - ferryctl volume message creates thin devices 1 and 2, volume create and lun add make
#    them LUNs 1 and 2;
#  - qemu-io writes 32 MiB to LUN 1 (512 data blocks of 64 KiB provisioned);
#  - qemu-img convert -C copies LUN 1 to LUN 2 by EXTENDED COPY: the bytes compare equal,
#    the copy counts as offloaded, and the pool's used data blocks do not change (the two
#    thins share the blocks);
#  - ODX (POPULATE TOKEN, WRITE USING TOKEN; thin_odx_test) from LUN 1 into LUN 4, another
#    thin of the pool: bytes identical, no data block used;
#  - a write to LUN 2 then copies one shared block (one more block used) and LUN 1 keeps
#    its data; a thin snapshot of LUN 1 (create_snap) reads the same as LUN 1.
# Usage: run.sh FERRYD FERRYCTL THIN_ODX_TEST. Exit 77 when qemu-utils are missing.
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
odx_test=$(realpath "$3")
# shellcheck source=SCRIPTDIR/../lib/ferryd.sh
. "$(dirname "$(realpath "$0")")/../lib/ferryd.sh"
require_tools qemu-io qemu-img python3
make_workdir thin
pass() { echo "ok: $*"; }
iqn=iqn.2026-11.org.ferry:thin

cat >"$work/c.json" <<JSON
{
  "backstores": {
    "meta": {"type": "ram", "size": "4M"},
    "data": {"type": "ram", "size": "256M"},
    "scratch": {"type": "ram", "size": "1M"}
  },
  "volumes": [{"name": "pool", "table": "0 524288 thin-pool meta data 128 0"}],
  "targets": {
    "$iqn": {
      "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
      "luns": [{"lun": 0, "backstore": "scratch"}]
    }
  }
}
JSON
start_ferryd "$ferryd" "$work/ferryd.log" --config "$work/c.json" --state-dir "$work/state"
ctl() { "$ferryctl" --socket "$work/state/ferryd.sock" "$@"; }
url="iscsi://127.0.0.1:$port/$iqn"
# The pool's used data blocks: the third word of its status line ("<used>/<total>").
used_blocks() {
  ctl volume status pool >"$work/pool-status" || fail "volume status pool"
  local u
  u=$(grep -oE "thin-pool [0-9]+ [0-9]+/[0-9]+ [0-9]+/[0-9]+" "$work/pool-status" |
    awk '{print $4}' | cut -d/ -f1)
  [ -n "$u" ] || { cat "$work/pool-status"; fail "no thin-pool status line"; }
  echo "$u"
}
offloaded() {
  ctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["copy"]["bytes_offloaded"])'
}

echo "== thin devices 1, 2 and 4 as LUNs 1, 2 and 4"
ctl volume message pool 0 create_thin 1 >/dev/null || fail "create_thin 1"
ctl volume message pool 0 create_thin 2 >/dev/null || fail "create_thin 2"
ctl volume message pool 0 create_thin 4 >/dev/null || fail "create_thin 4"
for id in 1 2 4; do
  ctl volume create "t$id" --table "0 65536 thin pool $id" || fail "volume create t$id"
  ctl lun add "$iqn" "$id" "t$id" || fail "lun add t$id"
done
[ "$(used_blocks)" = 0 ] || fail "a new pool has blocks in use: $(cat "$work/pool-status")"

echo "== 32 MiB written to LUN 1"
qemu-io -f raw "$url/1" -c "write -P 0x5a 0 16M" -c "write -P 0xc3 16M 16M" >/dev/null ||
  fail "qemu-io write LUN 1"
used=$(used_blocks)
[ "$used" = 512 ] || fail "32 MiB in 64 KiB blocks should use 512 blocks, not $used"
pass "512 data blocks provisioned"

echo "== EXTENDED COPY from LUN 1 to LUN 2 shares the blocks"
before=$(offloaded)
qemu-img convert -C -n -f raw -O raw "$url/1" "$url/2" || fail "qemu-img convert -C"
qemu-img compare -f raw -F raw "$url/1" "$url/2" || fail "the copy differs from its source"
after=$(offloaded)
[ $((after - before)) -ge $((32 << 20)) ] ||
  fail "the copy was not offloaded: $((after - before)) bytes offloaded"
[ "$(used_blocks)" = 512 ] ||
  fail "the copy moved data: $(used_blocks) data blocks used after it, 512 before"
pass "32 MiB copied by EXTENDED COPY, identical, $((after - before)) bytes offloaded, 512 blocks still used"

echo "== ODX from LUN 1 into LUN 4 shares the blocks"
before=$(offloaded)
FERRY_PORTAL="127.0.0.1:$port" FERRY_TARGET="$iqn" "$odx_test" >"$work/odx.log" 2>&1 ||
  { cat "$work/odx.log"; fail "ODX between thin LUNs"; }
grep -q "\[  PASSED  \] 1 test" "$work/odx.log" || { cat "$work/odx.log"; fail "ODX test did not run"; }
after=$(offloaded)
[ $((after - before)) -ge $((8 << 20)) ] ||
  fail "the token copy was not offloaded: $((after - before)) bytes offloaded"
[ "$(used_blocks)" = 512 ] || fail "the token copy moved data: $(used_blocks) data blocks used"
pass "8 MiB copied by WRITE USING TOKEN, identical, 512 blocks still used"

echo "== a write to a shared block copies it; the source keeps its data"
qemu-io -f raw "$url/2" -c "write -P 0x11 4096 4096" >/dev/null || fail "write LUN 2"
[ "$(used_blocks)" = 513 ] || fail "a write to a shared block: $(used_blocks) blocks used, want 513"
qemu-io -f raw "$url/1" -c "read -P 0x5a 0 16M" -c "read -P 0xc3 16M 16M" >"$work/r1" ||
  fail "read LUN 1"
grep -q "verification failed" "$work/r1" && fail "LUN 1 changed by a write to LUN 2"
qemu-io -f raw "$url/2" -c "read -P 0x5a 0 4096" -c "read -P 0x11 4096 4096" \
  -c "read -P 0x5a 8192 57344" >"$work/r2" || fail "read LUN 2"
grep -q "verification failed" "$work/r2" && fail "LUN 2 does not hold its write"
pass "copy-on-write of one shared block"

echo "== a thin snapshot of LUN 1 reads the same"
ctl volume suspend t1 >/dev/null || fail "suspend t1"
ctl volume message pool 0 create_snap 3 1 >/dev/null || fail "create_snap 3 1"
ctl volume resume t1 >/dev/null || fail "resume t1"
ctl volume create t3 --table "0 65536 thin pool 3" || fail "volume create t3"
ctl lun add "$iqn" 3 t3 || fail "lun add t3"
qemu-img compare -f raw -F raw "$url/1" "$url/3" || fail "the snapshot differs from its origin"
[ "$(used_blocks)" = 513 ] || fail "a snapshot moved data: $(used_blocks) blocks used"
pass "snapshot identical, no data moved"

errors=$(grep -E '\] \[(error|critical)\] ' "$work/ferryd.log" || true)
[ -z "$errors" ] || { echo "$errors" >&2; fail "ferryd logged errors"; }
echo "thin: all passed"
