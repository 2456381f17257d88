#!/bin/bash
# cp between two file backstores on one loop-mounted XFS (reflink=1), through ferryd's FUSE
# mount: copy_file_range runs on the copy engine, which clones the blocks (FICLONERANGE):
# the file system's used space does not grow and the copy is identical.
# Needs root, loop devices, mkfs.xfs and /dev/fuse (else exit 77).
# Usage: reflink_test.sh FERRYD FERRYCTL
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integration/loopfs.sh"
loopfs_require
. "$here/../lib/ferryd.sh"
. "$here/lib.sh"
fuse_require
fuse_workdir fuse-reflink
fuse_extra_cleanup=loopfs_cleanup
size=$((128 << 20))

xfs=$(loopfs_mount xfs 512M)
head -c $size /dev/urandom >"$xfs/src.img"
truncate -s $size "$xfs/dst.img"
sync
cat >"$work/c.json" <<JSON
{
  "backstores": {
    "src": {"type": "file", "path": "$xfs/src.img"},
    "dst": {"type": "file", "path": "$xfs/dst.img"}
  },
  "targets": {
    "iqn.2026-11.org.ferry:fuse-reflink": {
      "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
      "luns": [{"lun": 0, "backstore": "src"}]
    }
  },
  "fuse": {"mount_point": "$mnt", "devices": ["src", "dst"]}
}
JSON
start_ferryd "$ferryd" "$work/ferryd.log" --config "$work/c.json" --state-dir "$work/state"
[ "$(stat -c %b "$mnt/src")" = $((size / 512)) ] || fail "src st_blocks $(stat -c %b "$mnt/src")"
[ "$(stat -c %b "$mnt/dst")" = 0 ] || fail "the sparse dst has st_blocks $(stat -c %b "$mnt/dst")"
used_kib() { df --output=used -k "$xfs" | tail -1; }
before=$(used_kib)
cp "$mnt/src" "$mnt/dst" || fail "cp src dst on the mount"
sync
after=$(used_kib)
cmp "$xfs/src.img" "$xfs/dst.img" || fail "dst.img differs from src.img"
reflinked=$(fuse_stat copy.mechanisms.reflink)
echo "XFS used: $before KiB before, $after KiB after; reflinked $reflinked bytes"
[ "$reflinked" = $size ] || fail "expected $size bytes by reflink, got $reflinked"
[ $((after - before)) -lt $((size / 1024 / 8)) ] ||
  fail "XFS used $((after - before)) KiB more: the blocks were copied, not shared"
echo "ok: cp on the mount reflinked $size bytes; XFS space did not grow"
kill -TERM "$pid"
wait "$pid" || fail "ferryd did not stop cleanly"
pid=""
is_mounted "$mnt" && fail "the mount is still there after ferryd stopped"
echo "ok: unmounted"
