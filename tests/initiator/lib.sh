# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034  # work, port, ferryd, ferryctl: set by ferryd.sh and the caller
# Shared by tests/initiator/*.sh (source it after tests/lib/ferryd.sh, then call
# initiator_setup NAME): several ferryds side by side, each known by a name.
#
#   initiator_setup NAME        make_workdir NAME; every ferryd started here is stopped at
#                               exit (also on failure), then loop mounts go, then $work
#   start_named NAME CONFIG     ferryd with state in $work/NAME, log $work/NAME.ferryd.log;
#                               sets ${dpid[NAME]} and ${dport[NAME]}
#   stop_named NAME             SIGTERM, and fails unless it exits cleanly
#   kill_named NAME             SIGKILL (a crash), reaped
#   counter NAME KEY            a copy counter of ferryd NAME (status --json): bytes_offloaded,
#                               bytes_emulated or a mechanism (reflink, xcopy, odx, ...)
#   free_port                   a loopback port nobody listens on
#   secret_file PATH TEXT       a CHAP secret file, mode 0600
#   qio URL CMD...              qemu-io -f raw with one -c per CMD; fails on an error or a
#                               pattern mismatch (output in $work/qio.out)
#   same URL_A URL_B WHAT       qemu-img compare, fails with WHAT
# fail (redefined here) prints the end of every ferryd log.

declare -A dpid=() dport=()
pid=""

initiator_setup() {
  make_workdir "$1"
  trap _initiator_cleanup EXIT
}

_initiator_cleanup() {
  local n p
  for n in "${!dpid[@]}"; do
    p=${dpid[$n]}
    kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if declare -F loopfs_cleanup >/dev/null; then loopfs_cleanup; fi
  _ferry_cleanup
}

fail() {
  local f
  echo "FAIL: $*" >&2
  for f in "$work"/*.ferryd.log; do
    [ -f "$f" ] || continue
    echo "--- last lines of $(basename "$f"):" >&2
    tail -8 "$f" >&2
  done
  exit 1
}

start_named() {
  local name=$1 config=$2
  shift 2
  start_ferryd "$ferryd" "$work/$name.ferryd.log" --config "$config" --state-dir "$work/$name" "$@"
  dpid[$name]=$pid
  dport[$name]=$port
  pid=""
}

stop_named() {
  local p=${dpid[$1]} rc=0
  kill -TERM "$p"
  wait "$p" || rc=$?
  unset "dpid[$1]"
  [ $rc = 0 ] || fail "ferryd $1 did not exit cleanly on SIGTERM (exit status $rc)"
}

kill_named() {
  local p=${dpid[$1]}
  kill -KILL "$p"
  wait "$p" 2>/dev/null || true
  unset "dpid[$1]"
}

counter() {
  "$ferryctl" --socket "$work/$1/ferryd.sock" status --json | python3 -c '
import json, sys
c = json.load(sys.stdin)["copy"]
print(c[sys.argv[1]] if sys.argv[1].startswith("bytes_") else c["mechanisms"].get(sys.argv[1], 0))' "$2"
}

free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  fail "no free loopback port"
}

secret_file() {
  printf '%s\n' "$2" >"$1"
  chmod 600 "$1"
}

qio() {
  local url=$1 args=() c
  shift
  for c in "$@"; do args+=(-c "$c"); done
  qemu-io -f raw "${args[@]}" "$url" >"$work/qio.out" 2>&1 ||
    { cat "$work/qio.out" >&2; fail "qemu-io ${*} on $url"; }
  if grep -q "Pattern verification failed\|error" "$work/qio.out"; then
    cat "$work/qio.out" >&2
    fail "qemu-io ${*} on $url: pattern mismatch or error"
  fi
}

same() {
  qemu-img compare -f raw -F raw "$1" "$2" >"$work/compare.out" 2>&1 ||
    { cat "$work/compare.out" >&2; fail "$3"; }
}
