#!/bin/bash
# ferryd under a long mixed load (issue 19; docs/reliability.md says what it proves).
#
# LUNs, 64 MiB each on file backstores in the work directory, 4 KiB blocks:
#   0 a file backstore        1 a thin device of a thin pool (snapshots come and go)
#   2 a linear volume whose table is reloaded (one line, then the same mapping in two)
#   3 a two-leg mirror with a disk log
# Four soak_clients per LUN (16 sessions), each on its own 8 MiB, log in and out again and
# again; between, writes (FUA, SYNCHRONIZE CACHE), EXTENDED COPY and token copies within
# their blocks, ABORT TASK of commands in flight, and one client per LUN resets the LU
# now and then. Every block is checked against the client's model at each login and at the
# end. Meanwhile this script reloads LUN 2's table and takes a thin snapshot of LUN 1 (and
# deletes the one before the last), and every SOAK_SAMPLE seconds prints ferryd's RSS, open
# descriptors and sessions. At the end: descriptors back to where they were before the
# first login, RSS within SOAK_RSS_SLACK_MB (default 32) or 25% of the first sample
# (SOAK_RSS_CHECK=0 skips that, under ASan), the pool's metadata clean, the mirror's legs
# equal, and a clean stop.
#
# Usage: run.sh FERRYD FERRYCTL SOAK_CLIENT. SOAK_SECONDS (default 25) and SOAK_SAMPLE
# (default 5) set the length; SOAK_SUMMARY=FILE appends the figures there (bench/soak).
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
client=$(realpath "$3")
seconds=${SOAK_SECONDS:-25}
sample=${SOAK_SAMPLE:-5}
slack_mb=${SOAK_RSS_SLACK_MB:-32}
# shellcheck source=SCRIPTDIR/../lib/ferryd.sh
. "$(dirname "$(realpath "$0")")/../lib/ferryd.sh"
# shellcheck source=SCRIPTDIR/../lib/volumes.sh
. "$(dirname "$(realpath "$0")")/../lib/volumes.sh"
make_workdir soak
clients=()
stop_all() {
  local c
  for c in "${clients[@]}"; do kill "${c%%:*}" 2>/dev/null || true; done
  _ferry_cleanup
}
trap stop_all EXIT
iqn=iqn.2026-12.org.ferry:soak
blocks=2048 # per client: 8 MiB of 4 KiB blocks

bs() { file_backstore "$@"; }
backstores="$(bs data 64M), $(bs tmeta 8M), $(bs tdata 256M), $(bs lin 64M), $(bs leg0 64M),
  $(bs leg1 64M), $(bs mlog 1M)"
pool='{"name": "pool", "table": "0 524288 thin-pool tmeta tdata 128 0"}'
volume_config "$backstores" "$pool" '{"lun": 0, "backstore": "data"}' >"$work/setup.json"
volume_config "$backstores" "$pool,
    {\"name\": \"thin1\", \"table\": \"0 131072 thin pool 1\"},
    {\"name\": \"linear\", \"table\": \"0 131072 linear lin 0\"},
    {\"name\": \"mirror\", \"table\": \"0 131072 mirror disk 2 mlog 1024 2 leg0 0 leg1 0\"}" \
  '{"lun": 0, "backstore": "data"}, {"lun": 1, "backstore": "thin1"},
   {"lun": 2, "backstore": "linear"}, {"lun": 3, "backstore": "mirror"}' >"$work/soak.json"
start() { # CONFIG
  start_ferryd "$ferryd" "$work/ferryd.log" --config "$work/$1" --state-dir "$work/state"
}

echo "== setup: thin device 1 in the pool"
create_thin_device setup.json 1

start soak.json
fds() { find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
sessions() { ctl sessions --json | grep -o '"tsih"' | wc -l; }
fds0=$(fds)
echo "== $seconds s, 16 sessions; before the first login: RSS $(($(rss_kb) / 1024)) MiB, $fds0 descriptors"

# Client k of LUN l owns blocks k*2048..; the first of each LUN also resets the LU.
for l in 0 1 2 3; do
  for k in 0 1 2 3; do
    extra=()
    [ "$k" = 0 ] && extra=(--reset-every 7)
    "$client" --portal "127.0.0.1:$port" --target "$iqn" --lun "$l" --first-lba $((k * blocks)) \
      --blocks "$blocks" --seconds "$seconds" --isid $((l * 4 + k + 1)) --xcopy --odx \
      --abort-every 97 "${extra[@]}" >"$work/c$l$k.out" 2>&1 &
    clients+=("$!:c$l$k")
  done
done

two_lines="0 65536 linear lin 0
65536 65536 linear lin 65536"
reload() { # TABLE: load, suspend (in-flight I/O drains), resume onto it
  ctl volume load linear --table "$1" >/dev/null || fail "volume load linear"
  ctl volume suspend linear >/dev/null || fail "volume suspend linear"
  ctl volume resume linear >/dev/null || fail "volume resume linear"
}
snapshot() { # ID: a snapshot of thin device 1 (suspended while it is taken), ID-2 deleted
  ctl volume suspend thin1 >/dev/null || fail "volume suspend thin1"
  ctl volume message pool 0 create_snap "$1" 1 >/dev/null || fail "create_snap $1"
  ctl volume resume thin1 >/dev/null || fail "volume resume thin1"
  if [ "$1" -gt 3 ]; then
    ctl volume message pool 0 delete $(($1 - 2)) >/dev/null || fail "delete thin $(($1 - 2))"
  fi
}
running() {
  local c
  for c in "${clients[@]}"; do kill -0 "${c%%:*}" 2>/dev/null && return 0; done
  return 1
}

started=$(date +%s)
reloads=0 snaps=0 snap_id=2 rss_first="" rss_max=0 next_sample=$sample
while running; do
  sleep 1
  now=$(($(date +%s) - started))
  if [ $((now % 3)) = 0 ]; then
    if [ $((reloads % 2)) = 0 ]; then reload "$two_lines"; else reload "0 131072 linear lin 0"; fi
    reloads=$((reloads + 1))
  fi
  if [ $((now % 4)) = 0 ]; then
    snapshot "$snap_id"
    snap_id=$((snap_id + 1)) snaps=$((snaps + 1))
  fi
  if [ "$now" -ge "$next_sample" ] && running; then
    rss=$(rss_kb)
    [ -n "$rss_first" ] || rss_first=$rss
    [ "$rss" -gt "$rss_max" ] && rss_max=$rss
    echo "t=${now}s RSS $((rss / 1024)) MiB, $(fds) descriptors, $(sessions) sessions, $reloads reloads, $snaps snapshots"
    next_sample=$((next_sample + sample))
  fi
  if [ "$now" -ge $((seconds + 120)) ]; then
    for c in "${clients[@]}"; do
      kill -0 "${c%%:*}" 2>/dev/null || continue
      echo "soak_client ${c#*:} still running:" >&2
      tail -5 "$work/${c#*:}.out" >&2
    done
    fail "the clients did not finish within 120 s of the end"
  fi
done

wait_clients "a client found lost or torn data, or lost its session"
cat "$work"/c??.out

for _ in $(seq 50); do # the last logouts close their sockets
  [ "$(fds)" -le "$fds0" ] && break
  sleep 0.1
done
fds_end=$(fds)
[ "$fds_end" -le "$fds0" ] || fail "ferryd holds $fds_end descriptors after the soak, $fds0 before: $(ls -l "/proc/$pid/fd")"
rss_end=$(rss_kb)
[ "$rss_end" -gt "$rss_max" ] && rss_max=$rss_end
echo "== after the soak: RSS $((rss_end / 1024)) MiB (first sample $((${rss_first:-0} / 1024)), highest $((rss_max / 1024))), $fds_end descriptors"
if [ "${SOAK_RSS_CHECK:-1}" = 1 ] && [ -n "$rss_first" ]; then
  allowed=$((rss_first + (rss_first / 4 > slack_mb * 1024 ? rss_first / 4 : slack_mb * 1024)))
  [ "$rss_max" -le "$allowed" ] ||
    fail "ferryd's RSS grew from $((rss_first / 1024)) MiB to $((rss_max / 1024)) MiB (allowed $((allowed / 1024)))"
else
  echo "note: RSS not bounded in this build (SOAK_RSS_CHECK=0)"
fi

expect_pool_clean pool
expect_mirror_in_sync mirror leg0 leg1 67108864

totals=$(cat "$work"/c??.out | sed -n 's/.*: \([0-9]*\) logins, [0-9]* logouts, \([0-9]*\) writes ([0-9]* FUA), [0-9]* syncs, \([0-9]*\) copies, \([0-9]*\) token copies acknowledged; \([0-9]*\) aborts, \([0-9]*\) LU resets.*/\1 \2 \3 \4 \5 \6/p' |
  awk '{l += $1; w += $2; c += $3; t += $4; a += $5; r += $6} END {print l, w, c, t, a, r}')
read -r logins writes copies tokens aborts resets <<<"$totals"
summary="$seconds s, 16 sessions: $logins logins, $writes writes, $copies EXTENDED COPYs, $tokens token copies acknowledged, $aborts aborts, $resets LU resets, $reloads table reloads, $snaps thin snapshots; every block checked at each login; RSS $((${rss_first:-0} / 1024)) MiB at the first sample, $((rss_max / 1024)) MiB at most, $((rss_end / 1024)) MiB at the end; descriptors $fds0 before, $fds_end after"
echo "ok: $summary"
[ -n "${SOAK_SUMMARY:-}" ] && echo "$summary" >>"$SOAK_SUMMARY"
exit 0
