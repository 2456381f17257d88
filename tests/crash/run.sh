#!/bin/bash
# ferryd killed with SIGKILL at random moments under real work, restarted on the same state,
# and checked (issue 19; docs/reliability.md says what each check proves).
#
# LUNs, each on file backstores in the work directory:
#   0 a file backstore: writes, FUA, SYNCHRONIZE CACHE and EXTENDED COPY within the LUN
#   1 a thin device of a thin pool            2 snapshot-origin with a persistent snapshot
#   3 that snapshot (never written: must keep reading as the origin was, all zeroes)
#   4 a two-leg mirror with a disk log        5 a file LUN whose PR key keeps changing (APTPL)
# Each iteration starts ferryd, runs one crash_client per LUN (each first checks its LUN
# against what was acknowledged before the last kill), kills ferryd after 0.5-2 s, and
# waits for the clients. At the end: a last check of every LUN, the mirror's legs compare
# equal once it is in sync, the thin pool's metadata reports no needs_check, and ferryd stops
# cleanly.
#
# Usage: run.sh FERRYD FERRYCTL CRASH_CLIENT. CRASH_ITERATIONS (default 4) sets the kills;
# CRASH_SUMMARY=FILE appends the figures there (bench/crash_kill).
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
client=$(realpath "$3")
iterations=${CRASH_ITERATIONS:-4}
# shellcheck source=SCRIPTDIR/../lib/ferryd.sh
. "$(dirname "$(realpath "$0")")/../lib/ferryd.sh"
# shellcheck source=SCRIPTDIR/../lib/volumes.sh
. "$(dirname "$(realpath "$0")")/../lib/volumes.sh"
make_workdir crash
iqn=iqn.2026-12.org.ferry:crash
blocks=2048  # 8 MiB of 4 KiB blocks per LUN

bs() { file_backstore "$@"; }
backstores="$(bs data 16M), $(bs tmeta 4M), $(bs tdata 64M), $(bs origin 16M), $(bs cow 32M),
  $(bs leg0 16M), $(bs leg1 16M), $(bs mlog 1M), $(bs prlun 1M)"
pool='{"name": "pool", "table": "0 131072 thin-pool tmeta tdata 128 0"}'
volume_config "$backstores" "$pool" '{"lun": 0, "backstore": "data"}' >"$work/setup.json"
volume_config "$backstores" "$pool,
    {\"name\": \"thin1\", \"table\": \"0 32768 thin pool 1\"},
    {\"name\": \"origin_v\", \"table\": \"0 32768 snapshot-origin origin\"},
    {\"name\": \"snap\", \"table\": \"0 32768 snapshot origin cow P 8\"},
    {\"name\": \"mirror\", \"table\": \"0 32768 mirror disk 2 mlog 1024 2 leg0 0 leg1 0\"}" \
  '{"lun": 0, "backstore": "data"}, {"lun": 1, "backstore": "thin1"},
   {"lun": 2, "backstore": "origin_v"}, {"lun": 3, "backstore": "snap"},
   {"lun": 4, "backstore": "mirror"}, {"lun": 5, "backstore": "prlun"}' >"$work/crash.json"

clients=()
run_client() {  # NAME ARGS...: in the background, output to $work/NAME.out
  local name=$1
  shift
  "$client" --portal "127.0.0.1:$port" --target "$iqn" --blocks "$blocks" "$@" \
    >>"$work/$name.out" 2>&1 &
  clients+=("$!:$name")
}
# ferryd on crash.json and the state kept across kills.
start() {
  start_ferryd "$ferryd" "$work/ferryd.log" --config "$work/crash.json" --state-dir "$work/state"
}

echo "== setup: thin device 1 in the pool"
create_thin_device setup.json 1

# Before a kill, every client has read its LUN back: in a slow build (ThreadSanitizer) that
# can take longer than the kill's delay, and a read cut off by the kill proves nothing.
# Iteration N: the verify-only client of LUN 3 has said "blocks verified" N times, the
# others (which have a model from the second iteration on) N - 1 times.
wait_verified() {  # N
  local name want t ok
  for t in $(seq 600); do
    ok=1
    for name in lun0 lun1 lun2 lun3 lun4; do
      want=$(($1 - 1))
      [ "$name" = lun3 ] && want=$1
      [ "$(grep -c "blocks verified" "$work/$name.out" 2>/dev/null || true)" -ge "$want" ] || ok=0
    done
    [ "$ok" = 1 ] && return 0
    sleep 0.1
  done
  fail "the clients did not read their LUNs back within 60 s"
}

for i in $(seq "$iterations"); do
  echo "== kill $i of $iterations"
  start
  run_client lun0 --lun 0 --model "$work/lun0.model" --xcopy --isid 10
  run_client lun1 --lun 1 --model "$work/lun1.model" --isid 11
  run_client lun2 --lun 2 --model "$work/lun2.model" --isid 12
  run_client lun4 --lun 4 --model "$work/lun4.model" --isid 14
  run_client lun5 --lun 5 --model "$work/lun5.pr" --pr --isid 15 --blocks 16
  run_client lun3 --lun 3 --model "$work/lun3.model" --verify-only --isid 13
  wait_verified "$i"
  sleep "$(printf '0.%03d' $((RANDOM % 1000)))"
  sleep 0.5 && sleep "$((RANDOM % 2))"
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
  wait_clients "a client found lost or torn data (or could not run)"
done

echo "== after the last kill: every LUN, the mirror's legs, the pool's metadata"
start
for l in 0 1 2 3 4; do run_client "lun$l" --lun "$l" --model "$work/lun$l.model" --verify-only --isid "1$l"; done
run_client lun5 --lun 5 --model "$work/lun5.pr" --pr --verify-only --isid 15 --blocks 16
wait_clients "a client found lost or torn data (or could not run)"
expect_pool_clean pool
expect_mirror_in_sync mirror leg0 leg1 16777216

writes=$(cat "$work"/lun[0-4].out | sed -n 's/.*: \([0-9]*\) writes (\([0-9]*\) FUA), \([0-9]*\) syncs, \([0-9]*\) copies.*/\1 \2 \3 \4/p' |
  awk '{w += $1; f += $2; s += $3; c += $4} END {print w, f, s, c}')
regs=$(sed -n 's/.*: \([0-9]*\) registrations acknowledged/\1/p' "$work/lun5.out" | awk '{r += $1} END {print r}')
summary="$iterations kills survived; acknowledged: $(echo "$writes" | awk '{print $1 " writes (" $2 " FUA), " $3 " syncs, " $4 " copies"}'), $regs PR registrations; every block of 5 LUNs checked after each restart"
echo "ok: $summary"
[ -n "${CRASH_SUMMARY:-}" ] && echo "$summary" >>"$CRASH_SUMMARY"
exit 0
