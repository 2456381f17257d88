#!/bin/bash
# Conformance harness (issue 3): starts ferryd on loopback with ferryd-test.json (RAM LUN 0,
# file LUN 1, write-protected LUN 2) and runs real initiators against it:
#  1. libiscsi's iscsi-test-cu --dataloss --allow-sanitize over every suite (-t ALL): any FAILED fails
#     the
#     harness; every SKIPPED test is listed with its reason, and a skip whose reason is not
#     on the list of features that later issues deliver fails the harness too;
#  2. qemu-io writes and verifies patterns over iscsi://;
#  3. qemu-img convert copies an image into a LUN and back, and cmp compares;
#  4. the WriteProtect tests of iscsi-test-cu run against the write-protected LUN 2 and
#     must pass (not skip).
#  5. VAAI and provisioning (COMPARE AND WRITE, WRITE SAME, UNMAP, GET LBA STATUS, ...) run in
#     step 1 with no skip; those that need LBPPB > 1 again on the file LUN.
#  6. third-party copy: the ExtendedCopy and ReceiveCopyResults suites with no skip, and
#     qemu-img convert -C between LUNs, with ferryd's copy counters showing that every byte
#     was copied inside ferryd (by RAM memmove, or emulated between RAM and file).
# Usage: run.sh PATH/TO/ferryd PATH/TO/ferryctl. Exit 77 (skipped, with the reason) when a tool is missing.
set -euo pipefail
ferryd=$(realpath "$1")
ferryctl=$(realpath "$2")
here=$(dirname "$(realpath "$0")")
# shellcheck source=SCRIPTDIR/../lib/ferryd.sh
. "$here/../lib/ferryd.sh"
# shellcheck source=SCRIPTDIR/../lib/iscsi_test_cu.sh
. "$here/../lib/iscsi_test_cu.sh"
require_tools iscsi-test-cu iscsi-ls qemu-io qemu-img
make_workdir conformance
# A free port: the test config's portal is 127.0.0.1:0 and ferryd prints what it got.
start_ferryd "$ferryd" "$work/ferryd.log" --config "$here/ferryd-test.json" --state-dir "$work/state"
portal="iscsi://127.0.0.1:$port"
url="$portal/iqn.2026-11.org.ferry:demo"
# The second portal group: a second path to the same LUNs (libiscsi's MultipathIO tests).
port2=$(sed -n 's/.*iscsi: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/ferryd.log" |
  grep -vx "$port" | head -1)
[ -n "$port2" ] || fail "ferryd did not report the second portal group's port"
url2="iscsi://127.0.0.1:$port2/iqn.2026-11.org.ferry:demo"
echo "ferryd listening on 127.0.0.1:$port and 127.0.0.1:$port2"

echo "== discovery"
iscsi-ls -s "$portal" | tee "$work/ls.txt"
grep -q "Lun:1" "$work/ls.txt" || fail "iscsi-ls did not list LUN 1"

echo "== libiscsi iscsi-test-cu --dataloss --allow-sanitize -t ALL"
# SANITIZE overwrites LUN 0 at 32 MiB/s (the config's sanitize.bandwidth), so that
# Sanitize.Reset finds it still running after its 3-second sleep, as a real disk would be.
# One path here: given two, libiscsi's "second initiator" tests use the second path's
# long-lived session instead of a session of their own, and Sanitize.Reservations then
# leaves its RESERVE(6) held into the next test. MultipathIO runs on two paths below.
cu_run_all "$url/0" "$work/cu.log"
kill -0 $pid 2>/dev/null || fail "ferryd died during iscsi-test-cu"
cu_check_summary "$work/cu.log" 200
# Allowed skips (tests/lib/iscsi_test_cu.sh): the WriteProtect tests run on LUN 2 below, the
# LBPPB >= 2 ones on the file LUN below and MultipathIO on two paths below. Anything else is
# a bug here.
cu_check_skips "$work/cu.log"

# Third-party copy: every ExtendedCopy and ReceiveCopyResults test ran and passed above
# (a skip of theirs is not on the allowed list); the copy suite again on the file LUN.
for t in Simple ParamHdr DescrLimits DescrType ValidTgtDescr ValidSegDescr; do
  grep -q "Test: $t \.\.\.passed" "$work/cu.log" || fail "ExtendedCopy.$t did not pass"
done
iscsi-test-cu --dataloss -t "SCSI.ExtendedCopy.*" "$url/1" >"$work/xcopy1.log" 2>&1 || true
[ "$(awk '$1 == "tests" { print $4 }' "$work/xcopy1.log")" = 6 ] ||
  { cat "$work/xcopy1.log"; fail "SCSI.ExtendedCopy.* on the file LUN"; }

# VAAI tests that need more than one logical block per physical block: on the file LUN.
cu_run_lbppb "$url/1" "$work/lbppb.log" "the file LUN"

echo "== libiscsi MultipathIO over two paths (the two portal groups)"
iscsi-test-cu --dataloss -t "ALL.MultipathIO" "$url/0" "$url2/0" >"$work/mpath.log" 2>&1 || true
grep -q "found matching LU device identifier for all (2) paths" "$work/mpath.log" ||
  { cat "$work/mpath.log"; fail "the two paths do not show the same LU identity"; }
if [ "$(awk '$1 == "tests" { print $4 }' "$work/mpath.log")" != 4 ] ||
  grep -q "SKIPPED" "$work/mpath.log"; then
  cat "$work/mpath.log" >&2
  fail "MultipathIO over two paths"
fi
echo "MultipathIO: 4 of 4 passed over 127.0.0.1:$port and 127.0.0.1:$port2"

echo "== qemu-io patterns"
qemu-io -f raw -c "write -P 0xab 0 4M" -c "read -P 0xab 0 4M" \
  -c "write -P 0x5c 1048576 307200" -c "read -P 0x5c 1048576 307200" \
  -c "read -P 0xab 0 1048576" "$url/1" >"$work/qemu-io.log" 2>&1 ||
  { cat "$work/qemu-io.log"; fail "qemu-io pattern check"; }
grep -q "Pattern verification failed" "$work/qemu-io.log" && fail "qemu-io pattern mismatch"
# The same with header digests (CRC32C on every PDU header; libiscsi has no data digests).
qemu-io --image-opts "driver=iscsi,transport=tcp,portal=127.0.0.1:$port,header-digest=crc32c,target=iqn.2026-11.org.ferry:demo,lun=1" \
  -c "write -P 0x6d 0 4M" -c "read -P 0x6d 0 4M" -c "aio_write -P 0x17 8M 64k" \
  -c "aio_write -P 0x18 9M 1M" -c aio_flush -c "read -P 0x17 8M 64k" -c "read -P 0x18 9M 1M" \
  >"$work/qemu-io-hd.log" 2>&1 || { cat "$work/qemu-io-hd.log"; fail "qemu-io with header digests"; }
grep -q "Pattern verification failed" "$work/qemu-io-hd.log" &&
  { cat "$work/qemu-io-hd.log"; fail "qemu-io pattern mismatch with header digests"; }
grep -q "HeaderDigest\|header digest" "$work/ferryd.log" && fail "header digest errors in ferryd's log"

# The whole of LUN 0 is written here: LUNs are thin (LBPME), and qemu-img convert -C below
# copies only the blocks GET LBA STATUS reports mapped.
echo "== qemu-img convert into a LUN and back"
head -c $((256 << 20)) /dev/urandom >"$work/in.raw"
qemu-img convert -n -f raw -O raw "$work/in.raw" "$url/0" || fail "qemu-img convert into LUN 0"
qemu-img convert -f raw -O raw "$url/0" "$work/out.raw" || fail "qemu-img convert out of LUN 0"
cmp -n $((256 << 20)) "$work/in.raw" "$work/out.raw" || fail "the image came back different"

echo "== qemu-img convert -C: EXTENDED COPY between LUNs, the data never reaches qemu"
copied() {  # bytes ferryd's copy manager has moved, by mechanism NAME (or all: total)
  "$ferryctl" --socket "$work/state/ferryd.sock" status --json | python3 -c '
import json, sys
c = json.load(sys.stdin)["copy"]
print(sum(c["mechanisms"].values()) if sys.argv[1] == "total" else c["mechanisms"][sys.argv[1]])' "$1"
}
for pair in "0 3 ram" "0 1 emulated"; do
  read -r from to how <<<"$pair"
  before=$(copied total)
  before_how=$(copied "$how")
  qemu-img convert -C -n -f raw -O raw "$url/$from" "$url/$to" ||
    fail "qemu-img convert -C LUN $from -> LUN $to"
  qemu-img compare -f raw -F raw "$url/$from" "$url/$to" >/dev/null ||
    fail "LUN $to differs from LUN $from after qemu-img convert -C"
  moved=$(( $(copied total) - before ))
  # Every byte of the 256 MiB LUN went through the copy manager: none through qemu.
  [ "$moved" = $((256 << 20)) ] || fail "convert -C LUN $from -> $to: ferryd copied $moved bytes"
  [ $(( $(copied "$how") - before_how )) = $((256 << 20)) ] ||
    fail "convert -C LUN $from -> $to: not by $how"
  echo "qemu-img convert -C LUN $from -> LUN $to: 256 MiB copied by ferryd ($how)"
done

echo "== write-protected LUN 2: iscsi-test-cu *.WriteProtect"
for t in Write10 Write12 Write16 WriteVerify10 WriteVerify12 WriteVerify16; do
  iscsi-test-cu --dataloss -t "SCSI.$t.WriteProtect" "$url/2" >"$work/wp.log" 2>&1 || true
  ran=$(awk '$1 == "tests" { print $3 }' "$work/wp.log")
  failed=$(awk '$1 == "tests" { print $5 }' "$work/wp.log")
  if [ "${ran:-0}" != 1 ] || [ "$failed" != 0 ] || grep -qE "WriteProtect \.\.\. *\[SKIPPED\]" "$work/wp.log"; then
    cat "$work/wp.log" >&2
    fail "SCSI.$t.WriteProtect on the write-protected LUN"
  fi
  echo "SCSI.$t.WriteProtect: passed"
done

echo "== clean stop"
kill -TERM $pid
wait $pid || fail "ferryd did not exit cleanly on SIGTERM"
pid=""
grep -q "ferryd: stopped" "$work/ferryd.log" || fail "ferryd did not report a clean stop"
echo "conformance: all checks passed"
