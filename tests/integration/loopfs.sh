# Shell helpers for tests and benchmarks that need a real file system on a loop device.
# Source it, then:
#   loopfs_require            exits 77 (ctest: skipped) with the reason when not root,
#                             no loop device or no mkfs.xfs / mkfs.ext4
#   loopfs_mount KIND SIZE    KIND xfs (reflink=1) or ext4; SIZE for truncate (e.g. 6G);
#                             prints the mount point; everything is undone by loopfs_cleanup
#   loopfs_cleanup            unmounts, detaches and deletes every image (trap it on EXIT)
# Images are sparse files under ${LOOPFS_TMP:-/var/tmp}. loopfs_mount is usually called as
# $(loopfs_mount ...), a subshell, so what it creates is recorded in a state file that the
# parent shell's loopfs_cleanup reads.

LOOPFS_STATE=$(mktemp "${LOOPFS_TMP:-/var/tmp}/ferry-loopfs-state-XXXXXX")

loopfs_skip() { echo "SKIPPED: $*" >&2; exit 77; }

loopfs_require() {
  [ "$(id -u)" -eq 0 ] || loopfs_skip "needs root to attach loop devices and mount (run as root)"
  [ -e /dev/loop-control ] || loopfs_skip "no /dev/loop-control: the kernel has no loop devices"
  command -v losetup >/dev/null || loopfs_skip "losetup missing (scripts/install-deps: util-linux)"
  command -v mkfs.xfs >/dev/null || loopfs_skip "mkfs.xfs missing (scripts/install-deps: xfsprogs)"
  command -v mkfs.ext4 >/dev/null || loopfs_skip "mkfs.ext4 missing (scripts/install-deps: e2fsprogs)"
}

loopfs_mount() {
  kind=$1; size=$2
  base=${LOOPFS_TMP:-/var/tmp}
  img=$(mktemp "$base/ferry-$kind-XXXXXX.img")
  mnt=$(mktemp -d "$base/ferry-$kind-XXXXXX.mnt")
  echo "file $img" >> "$LOOPFS_STATE"
  echo "file $mnt" >> "$LOOPFS_STATE"
  truncate -s "$size" "$img"
  case $kind in
    xfs) mkfs.xfs -f -q -m reflink=1 "$img" >&2 ;;
    ext4) mkfs.ext4 -q -F "$img" >&2 ;;
    *) echo "loopfs_mount: unknown kind $kind" >&2; return 2 ;;
  esac
  if ! mount -o loop "$img" "$mnt" >&2; then
    loopfs_skip "mount -o loop of a $kind image failed (no free loop device, or $kind missing from the kernel)"
  fi
  echo "mount $mnt" >> "$LOOPFS_STATE"
  echo "$mnt"
}

loopfs_cleanup() {
  [ -f "$LOOPFS_STATE" ] || return 0
  # Newest mount first, then every file.
  for m in $(sed -n 's/^mount //p' "$LOOPFS_STATE" | tac); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  for f in $(sed -n 's/^file //p' "$LOOPFS_STATE"); do rm -rf "$f"; done
  rm -f "$LOOPFS_STATE"
}
