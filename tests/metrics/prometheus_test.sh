#!/usr/bin/env bash
# ferryd scraped by a real Prometheus (docs/metrics.md). Usage: prometheus_test.sh FERRYD FERRYCTL
#
# ferryd serves two RAM LUNs with metrics on a free port; Prometheus (Debian's package)
# scrapes it every second into a temporary TSDB. A qemu-io write of N bytes and a read of M
# bytes must appear exactly in ferry_lun_write_bytes_total / ferry_lun_read_bytes_total as
# Prometheus' query API returns them, an EXTENDED COPY (qemu-img convert -C) in
# ferry_copy_bytes_total{mechanism="ram"}; /metrics passes promtool's lint; /healthz answers.
# Without metrics.listen, ferryd listens on its iSCSI portal only. Exit 77: tools missing.
set -uo pipefail
ferryd=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/ferryd.sh"
require_tools prometheus promtool qemu-io qemu-img curl jq ss python3

make_workdir metrics
prom_pid=""
plain_pid=""
cleanup() {
  [ -n "$prom_pid" ] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null
  [ -n "$plain_pid" ] && kill "$plain_pid" 2>/dev/null && wait "$plain_pid" 2>/dev/null
  _ferry_cleanup
}
trap cleanup EXIT
prom_fail() {
  [ -f "$work/prometheus.log" ] && tail -5 "$work/prometheus.log" >&2
  fail "$@"
}

start_ferryd "$ferryd" "$work/ferryd.log" --config "$here/ferryd-metrics.json" \
  --state-dir "$work/state" --reactors 2
mport=$(sed -n 's|^ferryd: metrics on http://127\.0\.0\.1:\([0-9]*\)/metrics$|\1|p' "$work/ferryd.log")
[ -n "$mport" ] || fail "ferryd did not report its metrics port"
iqn=iqn.2026-11.org.ferry:metrics
lun0="iscsi://127.0.0.1:$port/$iqn/0"
lun1="iscsi://127.0.0.1:$port/$iqn/1"

[ "$(curl -sf "http://127.0.0.1:$mport/healthz")" = ok ] || fail "/healthz did not answer ok"
curl -sf "http://127.0.0.1:$mport/metrics" >"$work/metrics.txt" || fail "GET /metrics failed"
# promtool lints names (counters end in _total, units) and the text format.
promtool check metrics <"$work/metrics.txt" >"$work/promtool.txt" 2>&1 ||
  { cat "$work/promtool.txt" >&2; fail "promtool check metrics"; }
grep -q '"level":"info"' "$work/ferryd.log" || fail "log.format json: no JSON log line"
# Every family is documented, and the dashboard uses only families ferryd serves.
docs="$here/../../docs"
for f in $(sed -n 's/^# TYPE \(ferry_[a-z_]*\) .*/\1/p' "$work/metrics.txt"); do
  grep -q "\`$f\`" "$docs/metrics.md" || fail "$f is not in docs/metrics.md"
done
for f in $(grep -o 'ferry_[a-z_]*' "$docs/grafana-ferry.json" | sed 's/_bucket$//' | sort -u); do
  grep -q "^# TYPE $f " "$work/metrics.txt" || fail "docs/grafana-ferry.json uses $f, not served"
done

# Prometheus on a free port, scraping ferryd every second.
pport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: ferryd
    static_configs:
      - targets: ['127.0.0.1:$mport']
YML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$pport" >"$work/prometheus.log" 2>&1 &
prom_pid=$!

# query EXPR: the value of the first series (empty when none).
query() {
  curl -sf "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$1" |
    jq -r '.data.result[0].value[1] // empty' 2>/dev/null
}
# wait_for EXPR VALUE: until Prometheus returns VALUE for EXPR (20 s at most).
wait_for() {
  local got=""
  for _ in $(seq 100); do
    got=$(query "$1")
    [ "$got" = "$2" ] && return 0
    kill -0 "$prom_pid" 2>/dev/null || prom_fail "prometheus exited"
    sleep 0.2
  done
  prom_fail "$1: Prometheus says '$got', expected $2"
}

# wait_true EXPR: until the PromQL filter EXPR returns a series (20 s at most).
wait_true() {
  for _ in $(seq 100); do
    [ -n "$(query "$1")" ] && return 0
    kill -0 "$prom_pid" 2>/dev/null || prom_fail "prometheus exited"
    sleep 0.2
  done
  prom_fail "$1: no series"
}

wait_for 'up{job="ferryd"}' 1
write_bytes=$((3 * 1024 * 1024 + 4096))
read_bytes=$((1024 * 1024))
qemu-io -f raw -c "write -P 0x5a 0 $write_bytes" "$lun0" >"$work/qemu-io.log" 2>&1 ||
  fail "qemu-io write: $(tail -2 "$work/qemu-io.log")"
qemu-io -f raw -c "read -P 0x5a 4096 $read_bytes" "$lun0" >>"$work/qemu-io.log" 2>&1 ||
  fail "qemu-io read: $(tail -2 "$work/qemu-io.log")"
sel="target=\"$iqn\",lun=\"0\",backstore=\"m-src\""
wait_for "ferry_lun_write_bytes_total{$sel}" "$write_bytes"
wait_for "ferry_lun_read_bytes_total{$sel}" "$read_bytes"
wait_for "ferry_lun_write_bytes_total{backstore=\"m-dst\"}" 0
wait_true "ferry_lun_io_duration_seconds_count{$sel,op=\"read\"} > 0"
wait_for "ferry_lun_io_duration_seconds_count{$sel,op=\"write\"} - ignoring(op) ferry_lun_write_ops_total{$sel}" 0
wait_true "ferry_iscsi_logins_total{result=\"accepted\"} >= 2"
wait_for "ferry_lun_queue_depth{$sel}" 0

# EXTENDED COPY between the two RAM LUNs: one arena, so the copy engine moves the bytes
# natively ("ram"); the destination's write counters stay at 0 (no data went through it).
qemu-img convert -C -n -f raw -O raw "$lun0" "$lun1" >"$work/convert.log" 2>&1 ||
  fail "qemu-img convert -C: $(tail -2 "$work/convert.log")"
wait_true "ferry_copy_bytes_total{mechanism=\"ram\"} >= $write_bytes"
wait_true 'ferry_copy_commands_total{command="extended_copy"} > 0'
qemu-io -f raw -c "read -P 0x5a 0 $write_bytes" "$lun1" >>"$work/qemu-io.log" 2>&1 ||
  fail "the copy did not copy: $(tail -2 "$work/qemu-io.log")"

# Metrics are off by default: the embedded default without --metrics-listen listens on its
# portal and nothing else.
"$ferryd" --listen 127.0.0.1:0 --lun-size 16M --state-dir "$work/plain" --reactors 1 \
  >"$work/plain.log" 2>&1 &
plain_pid=$!
for _ in $(seq 100); do grep -q "^Stop with" "$work/plain.log" && break; sleep 0.1; done
grep -q "^Stop with" "$work/plain.log" || fail "the second ferryd did not start"
grep -q "metrics on" "$work/plain.log" && fail "metrics listener without metrics.listen"
listening=$(ss -Hltnp | grep -c "pid=$plain_pid,")
[ "$listening" = 1 ] || { ss -Hltnp | grep "pid=$plain_pid," >&2; fail "$listening listeners, expected 1"; }
echo "PASS: Prometheus read the exact workload from ferryd's metrics"
