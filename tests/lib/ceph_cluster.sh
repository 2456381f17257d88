#!/usr/bin/env bash
# A throw-away single-node Ceph cluster for tests: one monitor and one memstore OSD on
# 127.0.0.1, every file (config, keyring, monitor store, logs, pid files) in one folder, and
# a pool "rbd" (application rbd, size 1) ready for images.
#
# Command line:
#   ceph_cluster.sh start DIR [OWNER_PID]  start; prints "ceph cluster up in N.N s"
#   ceph_cluster.sh stop DIR               stop the daemons started in DIR (by PID)
#   ceph_cluster.sh env DIR                print `export CEPH_CONF=...` lines for eval
#   ceph_cluster.sh restart-osd DIR        stop the OSD (SIGTERM: the memstore saves its
#                                          objects) and start it again; returns once it is up
# Sourced (tests/rbd/run.sh): ceph_cluster_start DIR [OWNER_PID], ceph_cluster_stop DIR,
# ceph_cluster_env DIR, ceph_cluster_restart_osd DIR.
#
# Exit 77 (the tests' "skipped") with the reason when a Ceph binary is missing; any other
# failure stops what was started and returns 1 with the tail of the daemon logs.
#
# Authentication is cephx with a keyring in DIR (client.admin), not "auth = none": Ferry's
# rbd backend is meant to log in with a client id and a keyring file named by the cluster's
# config, as it does against a real cluster, so the tests exercise that path.
#
# Daemons run in the foreground (-f) as children of a background shell and are only ever
# stopped by the PIDs in DIR/pids, never by name: other clusters on the machine are left
# alone. With OWNER_PID, a watchdog stops the cluster when that process ends (a test
# runner killed by a timeout leaves no daemon behind).
#
# Environment: CEPH_MEMSTORE_BYTES (the OSD's RAM store, default 1 GiB; a full store makes
# I/O hang, so keep test images small), CEPH_START_TIMEOUT (seconds, default 90).

_ceph_cluster_log() { echo "ceph_cluster: $*" >&2; }

# Prints the missing binaries' names; empty when all are present.
_ceph_cluster_missing() {
  local b missing=()
  for b in ceph-mon ceph-osd ceph ceph-authtool monmaptool rbd uuidgen python3; do
    command -v "$b" >/dev/null 2>&1 || missing+=("$b")
  done
  echo "${missing[*]}"
}

# Two free TCP ports on 127.0.0.1 for the monitor (msgr v2 and v1): clusters of parallel
# test runs must not collide on Ceph's default 3300/6789.
_ceph_cluster_ports() {
  python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

_ceph_cluster_write_conf() {
  local dir=$1 fsid=$2 p2=$3 p1=$4 store_bytes=$5
  cat >"$dir/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$p2,v1:127.0.0.1:$p1
mon initial members = a
public network = 127.0.0.0/8
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $dir/keyring
run dir = $dir/run
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
mon data = $dir/mon/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
osd objectstore = memstore
memstore device bytes = $store_bytes
# A stopped OSD saves the memstore to its folder (restart-osd keeps the data): no fast
# shutdown, which would exit without unmounting the store.
osd fast shutdown = false
osd memory target = 939524096
[mon]
admin socket = $dir/run/\$cluster-\$name.asok
[osd]
admin socket = $dir/run/\$cluster-\$name.asok
keyring = $dir/osd/\$cluster-\$id/keyring
EOF
}

# Runs a daemon in the foreground in the background; its PID goes to DIR/pids.
_ceph_cluster_spawn() {
  local dir=$1
  shift
  "$@" >>"$dir/log/daemons.out" 2>&1 &
  echo $! >>"$dir/pids"
}

# Waits until `cmd` succeeds or the deadline passes.
_ceph_cluster_wait() {
  local deadline=$1 what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      _ceph_cluster_log "timed out waiting for $what"
      return 1
    fi
    sleep 0.3
  done
}

_ceph_cluster_osd_up() { ceph -c "$1/ceph.conf" osd stat 2>/dev/null | grep -q "1 up"; }

_ceph_cluster_bootstrap() {
  local dir=$1 deadline=$2 conf=$1/ceph.conf ports fsid uuid secret id p1 p2
  fsid=$(uuidgen)
  ports=$(_ceph_cluster_ports) || return 1
  # shellcheck disable=SC2086
  _ceph_cluster_write_conf "$dir" "$fsid" $ports "${CEPH_MEMSTORE_BYTES:-1073741824}"
  read -r p2 p1 <<<"$ports"
  ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$dir/keyring" --gen-key -n client.admin --cap mon 'allow *' \
    --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$p2,v1:127.0.0.1:$p1]" \
    "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring" || return 1
  _ceph_cluster_spawn "$dir" ceph-mon -c "$conf" -i a -f
  _ceph_cluster_wait "$deadline" "the monitor" ceph -c "$conf" -s --connect-timeout 5 || return 1
  uuid=$(uuidgen)
  secret=$(ceph-authtool --gen-print-key)
  id=$(echo "{\"cephx_secret\": \"$secret\"}" |
    ceph -c "$conf" osd new "$uuid" -i - -n client.admin) || return 1
  mkdir -p "$dir/osd/ceph-$id"
  ceph-authtool --create-keyring "$dir/osd/ceph-$id/keyring" --name "osd.$id" \
    --add-key "$secret" >/dev/null
  ceph-osd -c "$conf" -i "$id" --mkfs --osd-uuid "$uuid" >>"$dir/log/daemons.out" 2>&1 || return 1
  _ceph_cluster_spawn "$dir" ceph-osd -c "$conf" -i "$id" -f
  echo "$id $(tail -1 "$dir/pids")" >"$dir/osd.id"
  _ceph_cluster_wait "$deadline" "the OSD" _ceph_cluster_osd_up "$dir" || return 1
  ceph -c "$conf" osd pool create rbd 8 8 >/dev/null 2>&1 || return 1
  rbd -c "$conf" pool init rbd || return 1
}

# Stops the cluster when OWNER_PID ends (and exits itself once the cluster is gone).
_ceph_cluster_watchdog() {
  local dir=$1 owner=$2
  (
    trap '' HUP INT
    while kill -0 "$owner" 2>/dev/null && [ -s "$dir/pids" ]; do sleep 1; done
    [ -s "$dir/pids" ] && ceph_cluster_stop "$dir" >/dev/null 2>&1
  ) </dev/null >/dev/null 2>&1 &
}

ceph_cluster_start() {
  local dir=${1:?usage: ceph_cluster_start DIR [OWNER_PID]} owner=${2:-} missing t0 t1
  missing=$(_ceph_cluster_missing)
  if [ -n "$missing" ]; then
    echo "SKIP: Ceph test cluster: missing $missing (scripts/install-deps installs" \
      "ceph-mon ceph-osd ceph-common uuid-runtime)" >&2
    return 77
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -s "$dir/pids" ]; then
    _ceph_cluster_log "$dir already has running daemons (stop it first)"
    return 1
  fi
  rm -rf "$dir/run" "$dir/log" "$dir/mon" "$dir/osd" "$dir/osd.id"
  mkdir -p "$dir/run" "$dir/log" "$dir/mon" "$dir/osd"
  : >"$dir/pids"
  t0=$(date +%s.%N)
  if ! _ceph_cluster_bootstrap "$dir" $(($(date +%s) + ${CEPH_START_TIMEOUT:-90})); then
    _ceph_cluster_log "start failed in $dir; last log lines:"
    tail -n 15 "$dir"/log/*.log "$dir/log/daemons.out" >&2 2>/dev/null
    ceph_cluster_stop "$dir"
    return 1
  fi
  [ -n "$owner" ] && _ceph_cluster_watchdog "$dir" "$owner"
  t1=$(date +%s.%N)
  printf 'ceph cluster up in %.1f s (conf %s)\n' "$(echo "$t1 - $t0" | bc 2>/dev/null ||
    python3 -c "print($t1 - $t0)")" "$dir/ceph.conf"
}

# Stops the daemons of DIR by PID: SIGTERM, then SIGKILL after 10 s. Idempotent.
ceph_cluster_stop() {
  local dir=${1:?usage: ceph_cluster_stop DIR} pid pids
  [ -f "$dir/pids" ] || return 0
  pids=$(tac "$dir/pids")
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null; done
  for pid in $pids; do
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  : >"$dir/pids"
  return 0
}

# The OSD stopped by its PID (SIGTERM, which has the memstore save its objects to DIR) and
# started again; returns once the monitor sees it up (I/O in flight waits in the clients
# meanwhile), 1 when it does not come back within CEPH_START_TIMEOUT.
ceph_cluster_restart_osd() {
  local dir=${1:?usage: ceph_cluster_restart_osd DIR} id pid
  read -r id pid <"$dir/osd.id" || return 1
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && return 1
  grep -vx "$pid" "$dir/pids" >"$dir/pids.new"
  mv "$dir/pids.new" "$dir/pids"
  _ceph_cluster_spawn "$dir" ceph-osd -c "$dir/ceph.conf" -i "$id" -f
  echo "$id $(tail -1 "$dir/pids")" >"$dir/osd.id"
  # A stopping OSD marks itself down with the monitor before it exits: "1 up" is the new one.
  _ceph_cluster_wait $(($(date +%s) + ${CEPH_START_TIMEOUT:-90})) "the restarted OSD" \
    _ceph_cluster_osd_up "$dir"
}

ceph_cluster_env() {
  local dir=${1:?usage: ceph_cluster_env DIR}
  dir=$(cd "$dir" && pwd)
  echo "export CEPH_CONF=$dir/ceph.conf"
  echo "export FERRY_RBD_CEPH_CONF=$dir/ceph.conf"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  case "${1:-}" in
    start) ceph_cluster_start "${2:?usage: $0 start DIR [OWNER_PID]}" "${3:-}" ;;
    stop) ceph_cluster_stop "${2:?usage: $0 stop DIR}" ;;
    env) ceph_cluster_env "${2:?usage: $0 env DIR}" ;;
    restart-osd) ceph_cluster_restart_osd "${2:?usage: $0 restart-osd DIR}" ;;
    *)
      echo "usage: $0 start DIR [OWNER_PID] | stop DIR | env DIR | restart-osd DIR" >&2
      exit 2
      ;;
  esac
fi
