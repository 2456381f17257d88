#!/usr/bin/env bash
# Runs GoogleTest binaries of the rbd backend against a throw-away Ceph cluster
# (tests/lib/ceph_cluster.sh): one cluster for all of them, its config in FERRY_RBD_CEPH_CONF.
#
#   tests/rbd/run.sh BINARY [BINARY...]
#   tests/rbd/run.sh --skip REASON      (a build without librbd: says so, exit 77)
#
# Exit 77 (skipped) with the reason when Ceph is not installed; the cluster is stopped by PID
# and its folder removed on every exit, also on failure or interruption.
set -uo pipefail

if [ "${1:-}" = "--skip" ]; then
  echo "SKIP: rbd backend tests: ${2:-skipped}"
  exit 77
fi
if [ $# -eq 0 ]; then
  echo "usage: $0 BINARY [BINARY...] | --skip REASON" >&2
  exit 2
fi

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
  "$bin" || status=1
done
exit $status
