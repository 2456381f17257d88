# shellcheck shell=bash
# Shared by the tests that run libiscsi's iscsi-test-cu over every suite (source it after
# ferryd.sh, which provides fail):
#
#   cu_run_all URL LOG [ARGS...]     iscsi-test-cu --dataloss --allow-sanitize -t ALL ARGS URL,
#                                    bounded to 600 s, its output in LOG; never fails itself
#   cu_check_summary LOG MIN_RAN     prints CUnit's Run Summary; fails when the run did not
#                                    finish, ran fewer than MIN_RAN tests or any test failed
#   cu_check_skips LOG [EXTRA]       lists every [SKIPPED] test by reason (reason: count) and
#                                    fails on a reason that is neither on cu_allowed_skips nor
#                                    matches the extended regex EXTRA
#   cu_run_lbppb URL LOG WHAT        the tests skipped as "LBPPB < 2" where a LUN has one
#                                    block per physical block, on URL (a LUN with LBPPB > 1):
#                                    each must run and pass; WHAT names the LUN in messages
#
# libiscsi counts a [SKIPPED] test as passed, so a run that skips what the target claims to
# do would look green: every skip's reason has to be on the list.

# Skips that are no missing feature: the medium is not removable (PreventAllow,
# StartStopUnit), the LUN is not write-protected (the WriteProtect tests run on a
# write-protected LUN elsewhere), the NUL-bit case of ExtendedCopy.ValidTgtDescr exists only
# for SPC-3 targets, LBPPB < 2 (no physical block larger than the logical one), SANITIZE
# CRYPTO ERASE (nothing is encrypted at rest: no key to change), and MultipathIO with one path.
cu_allowed_skips='Multipath unavailable'
cu_allowed_skips+='|Target is SPC-4\+\. Skipping NUL bit test|not removable|Media is not removable'
cu_allowed_skips+='|not write-protected|LBPPB < 2|SANITIZE CRYPTO_ERASE is not implemented'

cu_run_all() {
  local url=$1 log=$2
  shift 2
  timeout 600 iscsi-test-cu --dataloss --allow-sanitize -t ALL "$@" "$url" >"$log" 2>&1 || true
}

# The CUnit summary line: "tests  Total  Ran  Passed  Failed  Inactive". ("[FAILED]" also
# appears in the log of tests that check that a bad command fails, so that is not counted.)
cu_check_summary() {
  local log=$1 min_ran=$2 summary failed ran
  summary=$(grep -A3 "Run Summary" "$log" || true)
  echo "$summary"
  [ -n "$summary" ] ||
    { tail -30 "$log"; fail "iscsi-test-cu did not finish (ferryd died or a test hung)"; }
  failed=$(awk '$1 == "tests" { print $5 }' "$log")
  ran=$(awk '$1 == "tests" { print $3 }' "$log")
  if [ "$failed" != "0" ] || [ "${ran:-0}" -lt "$min_ran" ]; then
    grep -E "\.\.\.FAILED|^FAILED$" -A4 "$log" | head -60 >&2
    fail "iscsi-test-cu: $failed failed of $ran (at least $min_ran must run)"
  fi
}

cu_check_skips() {
  local log=$1 extra=${2:-} allowed=$cu_allowed_skips unexpected
  [ -z "$extra" ] || allowed+="|$extra"
  echo "== skipped tests (reason: count)"
  grep -o "\[SKIPPED\].*" "$log" | sed 's/\[SKIPPED\] *//' | sort | uniq -c | sort -rn |
    tee "$log.skips"
  unexpected=$(grep -vE "$allowed" "$log.skips" || true)
  [ -z "$unexpected" ] || fail "skips for features this target claims: $unexpected"
}

# VAAI tests that need more than one logical block per physical block (512-byte blocks in a
# file system of 4 KiB blocks): they must run and pass.
cu_run_lbppb() {
  local url=$1 log=$2 what=$3 t
  for t in CompareAndWrite.InvalidDataOutSize WriteSame10.InvalidDataOutSize \
    WriteSame16.InvalidDataOutSize WriteSame10.UnmapUnaligned WriteSame16.UnmapUnaligned; do
    iscsi-test-cu --dataloss -t "SCSI.$t" "$url" >"$log" 2>&1 || true
    if [ "$(awk '$1 == "tests" { print $4 }' "$log")" != 1 ] ||
      ! grep -q "Test: ${t#*.} \.\.\.passed" "$log" ||
      grep -qE "Test: ${t#*.} \.\.\. *\[SKIPPED\]" "$log"; then
      cat "$log" >&2
      fail "SCSI.$t on $what (LBPPB 8)"
    fi
    echo "SCSI.$t on $what: passed"
  done
}
