#!/bin/bash
# ferryd's FUSE mount (docs/fuse.md) over RAM backstores and thin volumes:
#  - the configuration's files, and ferryctl fuse add/remove at run time;
#  - coreutils cp between two thin volumes of one pool runs on the copy engine and shares
#    blocks (the pool's used data blocks do not grow);
#  - os.copy_file_range with offsets, qemu-img convert -C between files of the mount;
#  - copies past the ends, overlapping ranges of one file, and to another file system fail
#    (or come back short) as the VFS says;
#  - st_blocks, SEEK_DATA/SEEK_HOLE, fallocate punch/zero, fsync;
#  - asynchronous direct writes of different bytes of the same blocks all land;
#  - iSCSI writes seen through the mount, mount writes seen through iSCSI;
#  - SIGTERM removes the mount.
# Needs root and /dev/fuse (else exit 77). Usage: mount_test.sh FERRYD FERRYCTL
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/ferryd.sh"
. "$here/lib.sh"
fuse_require
require_tools qemu-io qemu-img python3 fallocate cmp fio
fuse_workdir fuse-mount
iqn=iqn.2026-11.org.ferry:fuse
MiB=$((1 << 20))
pass() { echo "ok: $*"; }

cat >"$work/c.json" <<JSON
{
  "backstores": {
    "r1": {"type": "ram", "size": "64M"},
    "r2": {"type": "ram", "size": "64M"},
    "meta": {"type": "ram", "size": "4M"},
    "data": {"type": "ram", "size": "256M"}
  },
  "volumes": [{"name": "pool", "table": "0 524288 thin-pool meta data 128 0"}],
  "targets": {
    "$iqn": {
      "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
      "luns": [{"lun": 0, "backstore": "r1"}]
    }
  },
  "fuse": {"mount_point": "$mnt", "devices": ["r1", "r2"]}
}
JSON
start_ferryd "$ferryd" "$work/ferryd.log" --config "$work/c.json" --state-dir "$work/state" \
  --reactors 2
url="iscsi://127.0.0.1:$port/$iqn"
is_mounted "$mnt" || fail "no FUSE mount at $mnt"
[ "$(ls "$mnt" | tr '\n' ' ')" = "r1 r2 " ] || fail "files: $(ls "$mnt")"
[ "$(stat -c %s "$mnt/r1")" = $((64 * MiB)) ] || fail "r1 size $(stat -c %s "$mnt/r1")"
[ "$(stat -c %b "$mnt/r1")" = 0 ] || fail "an unwritten RAM device has st_blocks $(stat -c %b "$mnt/r1")"
pass "configured files r1, r2 (64 MiB, nothing allocated)"

echo "== thin volumes t1, t2 added at run time"
used_blocks() {
  fuse_ctl volume status pool >"$work/pool-status" || fail "volume status pool"
  grep -oE "thin-pool [0-9]+ [0-9]+/[0-9]+ [0-9]+/[0-9]+" "$work/pool-status" |
    awk '{print $4}' | cut -d/ -f1
}
for id in 1 2; do
  fuse_ctl volume message pool 0 create_thin $id >/dev/null || fail "create_thin $id"
  fuse_ctl volume create "t$id" --table "0 65536 thin pool $id" || fail "volume create t$id"
  fuse_ctl fuse add "t$id" || fail "fuse add t$id"
done
[ -f "$mnt/t2" ] || fail "t2 is not a file after fuse add"
fuse_ctl fuse add t1 2>/dev/null && fail "a second fuse add t1 succeeded"
fuse_ctl volume remove t1 2>/dev/null && fail "volume remove of a volume shown as a file succeeded"
dd if=/dev/urandom of="$mnt/t1" bs=1M count=32 conv=notrunc,fsync status=none ||
  fail "dd into t1"
used=$(used_blocks)
[ "$used" = 512 ] || fail "32 MiB in 64 KiB blocks should use 512 pool blocks, not $used"
[ "$(stat -c %b "$mnt/t1")" = $((32 * MiB / 512)) ] || fail "t1 st_blocks $(stat -c %b "$mnt/t1")"
pass "32 MiB written through the mount: 512 pool blocks, st_blocks 65536"

echo "== cp t1 t2 shares the thin blocks"
cp "$mnt/t1" "$mnt/t2" || fail "cp t1 t2"
cmp "$mnt/t1" "$mnt/t2" || fail "t2 differs from t1 after cp"
used=$(used_blocks)
[ "$used" = 512 ] || fail "cp moved data: the pool uses $used blocks, not 512"
shared=$(fuse_stat copy.mechanisms.thin_share)
[ "$shared" -ge $((32 * MiB)) ] || fail "thin_share bytes $shared after cp"
pass "cp: identical, $shared bytes shared, the pool still uses 512 blocks"

echo "== SEEK_DATA / SEEK_HOLE, fallocate, fsync on t2"
fallocate -p -o 8M -l 8M "$mnt/t2" || fail "fallocate --punch-hole of shared blocks"
cmp -n $((8 * MiB)) -i $((8 * MiB)):0 "$mnt/t2" /dev/zero || fail "a punched range is not zeroes"
cmp -n $((8 * MiB)) -i $((8 * MiB)) "$mnt/t1" /dev/zero >/dev/null && fail "punching t2 changed t1"
[ "$(used_blocks)" = 512 ] || fail "punching shared blocks changed the pool: $(used_blocks)"
[ "$(stat -c %b "$mnt/t2")" = $((24 * MiB / 512)) ] || fail "t2 st_blocks $(stat -c %b "$mnt/t2")"
dd if=/dev/urandom of="$mnt/t2" bs=1M seek=9 count=1 conv=notrunc status=none ||
  fail "dd into t2's hole"
[ "$(used_blocks)" = 528 ] || fail "1 MiB more should use 528 pool blocks, not $(used_blocks)"
python3 - "$mnt/t2" <<'PY' || fail "SEEK_DATA/SEEK_HOLE"
import errno, os, sys
M = 1 << 20
fd = os.open(sys.argv[1], os.O_RDONLY)
assert os.lseek(fd, 0, os.SEEK_DATA) == 0
assert os.lseek(fd, 0, os.SEEK_HOLE) == 8 * M, os.lseek(fd, 0, os.SEEK_HOLE)
assert os.lseek(fd, 8 * M, os.SEEK_DATA) == 9 * M
assert os.lseek(fd, 9 * M, os.SEEK_HOLE) == 10 * M
assert os.lseek(fd, 10 * M, os.SEEK_DATA) == 16 * M
assert os.lseek(fd, 16 * M, os.SEEK_HOLE) == 32 * M  # the end
try:
    os.lseek(fd, 32 * M, os.SEEK_DATA)
    sys.exit("SEEK_DATA at the end did not fail")
except OSError as e:
    assert e.errno == errno.ENXIO, e
PY
fallocate -p -o 9M -l 1M "$mnt/t2" || fail "fallocate --punch-hole"
[ "$(used_blocks)" = 512 ] || fail "punching t2's own MiB left $(used_blocks) blocks, not 512"
fallocate -z -o 2M -l 1M "$mnt/t2" || fail "fallocate --zero-range"
cmp -n $MiB -i $((2 * MiB)):0 "$mnt/t2" /dev/zero || fail "a zeroed MiB does not read as zeroes"
cmp -n $MiB -i $((3 * MiB)) "$mnt/t1" "$mnt/t2" || fail "zeroing went past its range"
fallocate -o 0 -l 1M -c "$mnt/t2" 2>/dev/null && fail "fallocate --collapse-range succeeded"
flushes=$(fuse_stat stats.flushes)
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.fsync(fd)' "$mnt/t2" ||
  fail "fsync"
[ "$(fuse_stat stats.flushes)" -gt "$flushes" ] || fail "fsync did not flush the device"
pass "SEEK_DATA/HOLE from provisioning, punch frees blocks, zero-range, fsync flushes"

echo "== os.copy_file_range and the VFS's rules"
dd if=/dev/urandom of="$mnt/r1" bs=1M count=64 conv=notrunc status=none || fail "fill r1"
python3 - "$mnt/r1" "$mnt/r2" "$work/outside" <<'PY' || fail "copy_file_range cases"
import errno, os, sys
M = 1 << 20
a = os.open(sys.argv[1], os.O_RDWR)
b = os.open(sys.argv[2], os.O_RDWR)
n = os.copy_file_range(a, b, 8 * M, 1 * M, 3 * M)
assert n == 8 * M, n
assert os.pread(a, 8 * M, 1 * M) == os.pread(b, 8 * M, 3 * M), "copied bytes differ"
# The whole device in one call (cp's way): the kernel clamps to the source's end.
n = os.copy_file_range(a, b, 1 << 62, 0, 0)
assert n == 64 * M, n
assert os.pread(a, 64 * M, 0) == os.pread(b, 64 * M, 0)
# Short at the destination's end, nothing past the source's end, ENOSPC past the
# destination's end.
assert os.copy_file_range(a, b, 4 * M, 0, 62 * M) == 2 * M
assert os.copy_file_range(a, b, 4096, 64 * M, 0) == 0
def fails(code, *args):
    try:
        os.copy_file_range(*args)
    except OSError as e:
        assert e.errno == code, (args, e)
        return
    sys.exit("copy_file_range%r did not fail" % (args[2:],))
fails(errno.ENOSPC, a, b, 4096, 0, 64 * M)
# Overlapping ranges of one file: the VFS refuses before ferryd sees it.
fails(errno.EINVAL, a, a, 2 * M, 0, 1 * M)
assert os.copy_file_range(a, a, M, 0, 8 * M) == M, "non-overlapping, same file"
# Another file system: EXDEV from the VFS.
c = os.open(sys.argv[3], os.O_RDWR | os.O_CREAT, 0o600)
fails(errno.EXDEV, a, c, 4096, 0, 0)
# Unaligned: ferryd declines (EOPNOTSUPP), the kernel copies by read and write.
assert os.copy_file_range(a, b, 1000, 7, 13) == 1000
assert os.pread(a, 1000, 7) == os.pread(b, 1000, 13)
PY
[ "$(fuse_stat copy.declined)" -ge 1 ] || fail "the unaligned copy was not declined"
pass "offsets, whole device, short at the end, ENOSPC, EINVAL (overlap), EXDEV, unaligned"

echo "== qemu-img convert -C between files of the mount"
copies=$(fuse_stat copy.copies)
dd if=/dev/urandom of="$mnt/r1" bs=1M count=64 conv=notrunc status=none || fail "refill r1"
qemu-img convert -C -n -f raw -O raw "$mnt/r1" "$mnt/r2" || fail "qemu-img convert -C"
cmp "$mnt/r1" "$mnt/r2" || fail "qemu-img convert: r2 differs"
[ "$(fuse_stat copy.copies)" -gt "$copies" ] || fail "qemu-img did not copy through copy_file_range"
pass "qemu-img convert -C: identical, through the copy engine"

echo "== writers of different bytes of the same blocks all land"
# fio with libaio and O_DIRECT keeps 32 writes of 100 bytes in flight at once (the kernel
# sends asynchronous direct writes of one file to the mount without waiting; synchronous
# ones it sends one at a time): each is off the device's blocks, so ferryd reads, merges and
# writes its blocks. Every record must then verify; without the mount's write lock some
# come back as their neighbour's read-merge-write left them.
fio --name=subblock --filename="$mnt/r2" --ioengine=libaio --direct=1 --iodepth=32 \
  --rw=randwrite --bs=100 --size=1M --verify=crc32c --do_verify=1 --verify_fatal=1 \
  --output="$work/fio-subblock.log" ||
  fail "fio sub-block writes: $(grep -m1 -i verify "$work/fio-subblock.log")"
grep -q "err= 0" "$work/fio-subblock.log" || fail "fio: $(grep -m1 err= "$work/fio-subblock.log")"
pass "10,485 writes of 100 bytes, 32 in flight into shared blocks: every one verifies"

echo "== iSCSI and the mount see each other's writes (LUN 0 is r1)"
qemu-io -f raw "$url/0" -c "write -P 0xab 5M 1M" >/dev/null || fail "qemu-io write"
python3 -c 'import sys; d = open(sys.argv[1], "rb"); d.seek(5 << 20)
sys.exit(d.read(1 << 20) != b"\xab" * (1 << 20))' "$mnt/r1" || fail "the mount misses an iSCSI write"
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, b"\xcd" * (1 << 20), 9 << 20)' "$mnt/r1" || fail "write through the mount"
qemu-io -f raw "$url/0" -c "read -P 0xcd 9M 1M" | grep -q "read 1048576" ||
  fail "iSCSI misses a write through the mount"
qemu-io -f raw "$url/0" -c "read -P 0xcd 9M 1M" 2>&1 | grep -qi "pattern verification failed" &&
  fail "iSCSI reads other bytes than the mount wrote"
pass "coherent both ways"

echo "== ferryctl fuse remove"
exec 3<"$mnt/t2"
fuse_ctl fuse remove t2 2>/dev/null && fail "fuse remove of an open file succeeded"
exec 3<&-
fuse_ctl fuse remove t2 || fail "fuse remove t2"
[ -e "$mnt/t2" ] && fail "t2 still there after fuse remove"
fuse_ctl volume remove t2 || fail "volume remove t2 after its file went"
fuse_ctl fuse list | grep -q "^t1 " || fail "fuse list: $(fuse_ctl fuse list)"
pass "refused while open; gone after; the volume is free again"

echo "== SIGTERM removes the mount"
kill -TERM "$pid"
wait "$pid" || fail "ferryd did not stop cleanly"
pid=""
is_mounted "$mnt" && fail "the mount is still there after ferryd stopped"
pass "unmounted"
