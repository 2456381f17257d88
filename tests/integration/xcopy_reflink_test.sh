#!/bin/bash
# EXTENDED COPY between two file LUNs on one XFS (reflink) file system: qemu-img convert -C
# makes ferryd copy the whole LUN, and ferryd's counters show the copy was done by reflink
# (blocks shared, no data moved), not by qemu and not emulated. Also a copy into a file LUN
# on ext4 from XFS: emulated, same bytes.
# Needs root and loop devices: otherwise it exits 77 (ctest reports it as skipped, with the
# reason on stderr). Usage: xcopy_reflink_test.sh PATH/TO/ferryd PATH/TO/ferryctl
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/loopfs.sh"
loopfs_require
. "$here/../lib/ferryd.sh"
require_tools qemu-img
make_workdir xcopy-reflink
trap 'loopfs_cleanup; _ferry_cleanup' EXIT

xfs=$(loopfs_mount xfs 3G)
ext4=$(loopfs_mount ext4 1G)
size=$((512 << 20))
head -c $size /dev/urandom >"$xfs/src.img"
truncate -s $size "$xfs/dst.img" "$ext4/far.img"
cat >"$work/ferryd.json" <<JSON
{
  "backstores": {
    "src": {"type": "file", "path": "$xfs/src.img"},
    "dst": {"type": "file", "path": "$xfs/dst.img"},
    "far": {"type": "file", "path": "$ext4/far.img"}
  },
  "targets": {
    "iqn.2026-11.org.ferry:reflink": {
      "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
      "luns": [{"lun": 0, "backstore": "src"}, {"lun": 1, "backstore": "dst"},
               {"lun": 2, "backstore": "far"}]
    }
  }
}
JSON
start_ferryd "$ferryd" "$work/ferryd.log" --config "$work/ferryd.json" --state-dir "$work/state"
url="iscsi://127.0.0.1:$port/iqn.2026-11.org.ferry:reflink"
copied() {  # bytes ferryd's copy manager moved by mechanism $1
  "$ferryctl" --socket "$work/state/ferryd.sock" status --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["copy"]["mechanisms"][sys.argv[1]])' "$1"
}

echo "== XFS -> XFS: reflink"
qemu-img convert -C -n -f raw -O raw "$url/0" "$url/1" || fail "qemu-img convert -C to LUN 1"
reflinked=$(copied reflink)
echo "reflinked $reflinked of $size bytes"
[ "$reflinked" = $size ] || fail "expected all $size bytes by reflink, got $reflinked"
cmp "$xfs/src.img" "$xfs/dst.img" || fail "the reflinked copy differs"

echo "== XFS -> ext4: emulated"
qemu-img convert -C -n -f raw -O raw "$url/0" "$url/2" || fail "qemu-img convert -C to LUN 2"
[ "$(copied emulated)" = $size ] || fail "expected $size emulated bytes, got $(copied emulated)"
cmp "$xfs/src.img" "$ext4/far.img" || fail "the emulated copy differs"

kill -TERM "$pid"
wait "$pid" || fail "ferryd did not stop cleanly"
pid=""
echo "xcopy reflink: all checks passed"
