# Shared by the FUSE mount tests (source it after tests/lib/ferryd.sh):
#   fuse_require                 exit 77 (skipped, with the reason) without root or /dev/fuse
#   fuse_workdir NAME            make_workdir, plus $mnt (an empty directory inside $work)
#                                and an EXIT trap that stops ferryd, then detaches $mnt
#                                (also when the test failed halfway), then removes $work
#   is_mounted DIR               true while a FUSE file system is mounted at DIR
#   fuse_ctl ARGS...             ferryctl on $work/state/ferryd.sock (needs $ferryctl)
#   fuse_stat JSON_PATH          one number from ferryctl fuse list --json ("copy.copies")

# ASan builds: libfuse's one allocation per mount that ferryd cannot free (lsan.supp).
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$(dirname "${BASH_SOURCE[0]}")/lsan.supp"

fuse_require() {
  [ "$(id -u)" -eq 0 ] || { echo "SKIPPED: FUSE mount tests need root (mount(2))" >&2; exit 77; }
  [ -c /dev/fuse ] || { echo "SKIPPED: no /dev/fuse (modprobe fuse)" >&2; exit 77; }
  grep -qw fuse /proc/filesystems ||
    { echo "SKIPPED: the kernel has no fuse file system (modprobe fuse)" >&2; exit 77; }
}

is_mounted() {
  local dir
  dir=$(realpath -m "$1")
  awk -v d="$dir" '$2 == d && $3 ~ /^fuse/ { found = 1 } END { exit !found }' /proc/mounts
}

_fuse_cleanup() {
  local rc=$?
  for p in ${extra_pids:-}; do kill -9 "$p" 2>/dev/null; done
  if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; fi
  pid=""
  for _ in 1 2 3; do
    is_mounted "$mnt" || break
    umount -l "$mnt" 2>/dev/null
  done
  [ -n "${fuse_extra_cleanup:-}" ] && $fuse_extra_cleanup
  rm -rf "$work"
  exit $rc
}

fuse_workdir() {
  make_workdir "$1"
  mnt="$work/mnt"
  mkdir "$mnt"
  trap _fuse_cleanup EXIT
}

fuse_ctl() { "$ferryctl" --socket "$work/state/ferryd.sock" "$@"; }

fuse_stat() {
  fuse_ctl fuse list --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v.get(k, 0) if isinstance(v, dict) else 0
print(v)' "$1"
}
