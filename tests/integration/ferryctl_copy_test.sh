#!/bin/bash
# End-to-end test of `ferryctl copy` on real file systems (issue 2 acceptance):
#  - XFS (reflink): a 1 GiB copy is 100% offloaded by reflink and byte-identical;
#  - ext4: offloaded by copy_file_range, --no-offload emulates, both byte-identical;
#  - XFS -> ext4: emulated, with the reason in --verbose;
#  - --sparse keeps holes; SIGINT stops a copy with exit code 130.
# Needs root and loop devices: otherwise it exits 77 (ctest reports it as skipped, with the
# reason on stderr). Usage: ferryctl_copy_test.sh PATH/TO/ferryctl
set -euo pipefail
ferryctl=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/loopfs.sh"
loopfs_require
trap loopfs_cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
# The number after "KEY": in the JSON on stdin (keys are unique in ferryctl's output).
json_field() { grep -o "\"$1\":[0-9]*" | head -n1 | cut -d: -f2; }

xfs=$(loopfs_mount xfs 4G)
ext4=$(loopfs_mount ext4 2G)
gib=$((1 << 30))

echo "== XFS: 1 GiB reflink"
head -c $gib /dev/urandom > "$xfs/big"
out=$("$ferryctl" copy --json "$xfs/big" "$xfs/big.copy")
echo "$out"
[ "$(echo "$out" | json_field offloaded_bytes)" = $gib ] || fail "XFS copy not 100% offloaded"
[ "$(echo "$out" | json_field reflink)" = $gib ] || fail "XFS copy did not reflink"
cmp "$xfs/big" "$xfs/big.copy" || fail "XFS copy differs"

echo "== XFS: odd length and offsets (reflink where aligned, copy_file_range for the rest)"
"$ferryctl" copy --src-offset 4097 --length 10000001 "$xfs/big" "$xfs/odd"
cmp -n 10000001 -i 4097:0 "$xfs/big" "$xfs/odd" || fail "odd-range copy differs"

echo "== ext4: copy_file_range and emulated"
head -c $((256 << 20)) /dev/urandom > "$ext4/a"
out=$("$ferryctl" copy --json "$ext4/a" "$ext4/b")
echo "$out"
[ "$(echo "$out" | json_field copy_file_range)" = $((256 << 20)) ] ||
  fail "ext4 copy was not copy_file_range"
cmp "$ext4/a" "$ext4/b" || fail "ext4 copy differs"
out=$("$ferryctl" copy --json --no-offload "$ext4/a" "$ext4/c")
[ "$(echo "$out" | json_field emulated_bytes)" = $((256 << 20)) ] || fail "--no-offload offloaded"
cmp "$ext4/a" "$ext4/c" || fail "emulated ext4 copy differs"

echo "== XFS -> ext4: emulated, reason in --verbose"
err=$("$ferryctl" copy --verbose --length 64M "$xfs/big" "$ext4/x" 2>&1 >/dev/null)
echo "$err"
echo "$err" | grep -q "not offloaded: .*" || fail "--verbose gave no reason for emulating"
cmp -n $((64 << 20)) "$xfs/big" "$ext4/x" || fail "cross-fs copy differs"

echo "== --sparse keeps holes"
truncate -s 512M "$ext4/sparse"
dd if=/dev/urandom of="$ext4/sparse" bs=1M count=4 seek=100 conv=notrunc status=none
out=$("$ferryctl" copy --json --sparse "$ext4/sparse" "$ext4/sparse.copy")
echo "$out"
cmp "$ext4/sparse" "$ext4/sparse.copy" || fail "sparse copy differs"
used=$(du -k "$ext4/sparse.copy" | cut -f1)
[ "$used" -lt 65536 ] || fail "sparse copy uses ${used} KiB: holes were filled"

echo "== SIGINT cancels cleanly"
set +e
timeout --preserve-status -s INT 1 "$ferryctl" copy --no-offload --throttle 16M --length 256M "$xfs/big" "$xfs/slow"
rc=$?
set -e
[ $rc -eq 130 ] || fail "interrupted copy exited $rc, expected 130"

echo "ferryctl copy: all integration checks passed"
