# Shared by the shell tests that run ferryd (source it): tool checks, a work directory that
# is removed on exit (with ferryd stopped), failure reporting, and starting ferryd on a
# free loopback port.
#
#   require_tools TOOL...           exit 77 (skipped, with the reason) when one is missing
#   make_workdir NAME               $work: a fresh /var/tmp/ferry-NAME-XXXXXX, removed at exit
#   fail MESSAGE                    print MESSAGE and the end of ferryd's log, exit 1
#   start_ferryd FERRYD LOG ARGS... start ferryd in the background; sets $pid and $port

require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || {
      echo "SKIPPED: $tool is missing (scripts/install-deps installs libiscsi-bin, qemu-utils)" >&2
      exit 77
    }
  done
}

pid=""
make_workdir() {
  work=$(mktemp -d "/var/tmp/ferry-$1-XXXXXX")
  trap _ferry_cleanup EXIT
}
_ferry_cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}

fail() {
  echo "FAIL: $*" >&2
  [ -f "$work/ferryd.log" ] && tail -20 "$work/ferryd.log" >&2
  exit 1
}

start_ferryd() {
  local ferryd=$1 log=$2 t
  shift 2
  # The shell truncates the log in the child, maybe after the first grep below: remove an
  # earlier run's log first so that its port is never taken for this one's.
  rm -f "$log"
  "$ferryd" "$@" >"$log" 2>&1 &
  pid=$!
  port=""
  # Up to FERRYD_START_TIMEOUT seconds (default 60: the ASan build under ctest -j2 can be slow).
  for t in $(seq $((${FERRYD_START_TIMEOUT:-60} * 10))); do
    if grep -q "^Stop with" "$log" 2>/dev/null; then
      port=$(sed -n 's/^ferryd: serving .* on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$log" | head -1)
      [ -n "$port" ] && break
    fi
    kill -0 "$pid" 2>/dev/null || fail "ferryd exited at start: $(tail -3 "$log")"
    sleep 0.1
  done
  [ -n "$port" ] || fail "ferryd did not report its port within ${FERRYD_START_TIMEOUT:-60} s"
  if [ "$t" -gt 50 ]; then echo "note: ferryd took $((t / 10)) s to start"; fi
}
