# Shared by the shell tests whose ferryd serves volumes on file backstores in $work
# (tests/crash/run.sh, tests/soak/run.sh); source it after tests/lib/ferryd.sh. They set
# $iqn, start ferryd with --state-dir "$work/state" and call these:
#
#   file_backstore NAME SIZE        a config entry: $work/NAME.img, 4 KiB blocks, created
#   volume_config BACKSTORES VOLUMES LUNS
#                                   a whole config: those JSON pieces, target $iqn on
#                                   127.0.0.1 (port chosen by the system)
#   ctl ARGS...                     ferryctl on this ferryd's admin socket ($ferryctl)
#   create_thin_device CONFIG ID    starts ferryd on CONFIG, creates thin device ID in the
#                                   pool "pool" and stops ferryd cleanly
#   wait_clients MESSAGE            waits for the background clients in $clients ("PID:NAME",
#                                   output in $work/NAME.out); when one failed, prints the
#                                   end of its output and fails with MESSAGE
#   expect_pool_clean POOL          fails when the thin pool's status says needs_check
#   expect_mirror_in_sync MIRROR LEG0 LEG1 BYTES
#                                   waits up to 10 s for the mirror to be in sync, stops
#                                   ferryd cleanly and compares the legs' first BYTES

file_backstore() {
  printf '"%s": {"type": "file", "path": "%s/%s.img", "size": "%s", "create": true, "block_size": 4096}' \
    "$1" "$work" "$1" "$2"
}

volume_config() {
  cat <<JSON
{
  "backstores": {$1},
  "volumes": [$2],
  "targets": {
    "$iqn": {
      "portal_groups": [{"tag": 1, "portals": ["127.0.0.1:0"]}],
      "luns": [$3]
    }
  }
}
JSON
}

ctl() { "$ferryctl" --socket "$work/state/ferryd.sock" "$@"; }

create_thin_device() {
  start_ferryd "$ferryd" "$work/ferryd.log" --config "$work/$1" --state-dir "$work/state"
  ctl volume message pool 0 create_thin "$2" >/dev/null || fail "create_thin $2"
  kill "$pid" && wait "$pid" || fail "ferryd did not stop cleanly after the setup"
  pid=""
}

wait_clients() {
  local c status=0
  for c in "${clients[@]}"; do
    wait "${c%%:*}" || {
      status=$?
      echo "client ${c#*:} failed (exit $status):" >&2
      tail -25 "$work/${c#*:}.out" >&2
    }
  done
  clients=()
  [ "$status" -eq 0 ] || fail "$1"
}

expect_pool_clean() {
  ctl volume status "$1" >"$work/$1.status" || fail "volume status $1"
  if grep -q needs_check "$work/$1.status"; then
    fail "the thin pool needs a check: $(cat "$work/$1.status")"
  fi
}

expect_mirror_in_sync() {
  local insync="" total="-"
  for _ in $(seq 100); do # the mirror resyncs the regions dirty at a kill or still busy
    ctl volume status "$1" >"$work/$1.status" || fail "volume status $1"
    read -r insync total < <(grep -oE '[0-9]+/[0-9]+' "$work/$1.status" | head -1 | tr / ' ')
    [ "$insync" = "$total" ] && break
    sleep 0.1
  done
  [ "$insync" = "$total" ] || fail "the mirror is not in sync after 10 s: $(cat "$work/$1.status")"
  kill "$pid" && wait "$pid" || fail "ferryd did not stop cleanly"
  pid=""
  cmp -n "$4" "$work/$2.img" "$work/$3.img" || fail "the mirror's legs differ"
}
