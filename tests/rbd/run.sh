#!/usr/bin/env bash
# Every test of the rbd backend against one throw-away Ceph cluster (tests/lib/ceph_cluster.sh),
# started once, its config in FERRY_RBD_CEPH_CONF: the GoogleTest binaries, then, given
# ferryd, RBD images as iSCSI LUNs of ferryd (luns.sh: iscsi-test-cu -t ALL, qemu-img
# convert -C between two LUNs, the cluster unreachable at ferryd's start). Prints the time
# each part and the whole took.
#
#   tests/rbd/run.sh [--ferryd FERRYD FERRYCTL] BINARY [BINARY...]
#   tests/rbd/run.sh --skip REASON      (a build without librbd: says so, exit 77)
#
# Exit 77 (skipped) with the reason when Ceph is not installed; the cluster is stopped by PID
# and its folder removed on every exit, also on failure or interruption.
set -uo pipefail

if [ "${1:-}" = "--skip" ]; then
  echo "SKIP: rbd backend tests: ${2:-skipped}"
  exit 77
fi
ferryd=""
if [ "${1:-}" = "--ferryd" ] && [ $# -ge 3 ]; then
  ferryd=$2
  ferryctl=$3
  shift 3
fi
if [ $# -eq 0 ]; then
  echo "usage: $0 [--ferryd FERRYD FERRYCTL] BINARY [BINARY...] | --skip REASON" >&2
  exit 2
fi
SECONDS=0

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/ceph_cluster.sh
source "$here/../lib/ceph_cluster.sh"

dir=$(mktemp -d "${TMPDIR:-/tmp}/ferry-rbd.XXXXXX")
cleanup() {
  ceph_cluster_stop "$dir"
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ceph_cluster_start "$dir" $$
rc=$?
if [ $rc -ne 0 ]; then
  [ $rc -eq 77 ] && echo "SKIP: rbd backend tests need a Ceph cluster"
  exit $rc
fi

export FERRY_RBD_CEPH_CONF=$dir/ceph.conf
status=0
for bin in "$@"; do
  echo "== $bin"
  t0=$SECONDS
  "$bin" || status=1
  echo "== $(basename "$bin"): $((SECONDS - t0)) s"
done
if [ -n "$ferryd" ]; then
  echo "== RBD LUNs through ferryd (tests/rbd/luns.sh)"
  "$here/luns.sh" "$ferryd" "$ferryctl"
  rc=$?
  # Skipped (a tool missing) leaves the result of the rest; any failure fails the test.
  [ $rc -eq 0 ] || [ $rc -eq 77 ] || status=1
fi
echo "rbd backend tests: $([ $status = 0 ] && echo passed || echo FAILED) in $SECONDS s," \
  "cluster start included"
exit $status
