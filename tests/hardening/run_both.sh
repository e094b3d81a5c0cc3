#!/bin/bash
# Hardening test driver: runs PROGRAM once without the preload
# (PM_HARD_EXPECT=0) and once with LD_PRELOAD=PRELOAD (PM_HARD_EXPECT=1),
# each under a time limit. Both runs must exit 0 (77 from the run without
# the preload means the test does not apply here: skipped). With --diff
# their stdout must also be identical. The programs check PM_HARD_EXPECT
# themselves (dlsym of poolmalloc_version), so a preload that silently did
# not load fails the test. No POOLMALLOC_* variable of the caller's
# environment is passed on.
#
# usage: run_both.sh [--diff] PRELOAD WORKDIR SECONDS PROGRAM [ARGS...]
set -u
. "$(dirname "$0")/../integration/lib.sh"

diff_out=0
if [ "${1:-}" = --diff ]; then
    diff_out=1
    shift
fi
[ $# -ge 4 ] || pm_fail "usage: $0 [--diff] PRELOAD WORKDIR SECONDS PROGRAM [ARGS...]"
preload=$1 work=$2 secs=$3
shift 3
pm_check_preload_file "$preload"
[ -x "$1" ] || pm_fail "test program not found: $1"
name=$(basename "$1")
pm_workdir "$work"
pm_clear_env
ulimit -c 0

echo "== $name $* (without preload)"
start=$(date +%s.%N)
pm_timed "$secs" env -u LD_PRELOAD PM_HARD_EXPECT=0 "$@" >"$work/plain.out" 2>"$work/plain.err"
rc_plain=$?
mid=$(date +%s.%N)
echo "== $name $* (LD_PRELOAD=$preload)"
pm_timed "$secs" env LD_PRELOAD="$preload" PM_HARD_EXPECT=1 "$@" >"$work/preload.out" 2>"$work/preload.err"
rc_pre=$?
end=$(date +%s.%N)
awk -v a="$start" -v b="$mid" -v c="$end" \
    'BEGIN { printf "time: %.1f s without, %.1f s with the preload\n", b - a, c - b }'

if [ "$rc_plain" -eq "$PM_SKIP_RC" ]; then
    cat "$work/plain.out"
    pm_skip "$name does not apply here"
fi
fail=0
if [ "$rc_plain" -ne 0 ]; then
    echo "FAIL: $name exits $rc_plain without the preload"
    pm_show "$work/plain.out" "stdout without preload"
    pm_show "$work/plain.err" "stderr without preload"
    fail=1
fi
if [ "$rc_pre" -ne 0 ]; then
    echo "FAIL: $name exits $rc_pre under the preload$([ "$rc_pre" -gt 128 ] && echo " (signal $((rc_pre - 128)))")"
    pm_show "$work/preload.out" "stdout with preload"
    pm_show "$work/preload.err" "stderr with preload"
    fail=1
fi
if [ "$diff_out" -eq 1 ] && ! diff -u "$work/plain.out" "$work/preload.out" >"$work/diff.txt"; then
    echo "FAIL: stdout differs between glibc (-) and the preload (+):"
    cat "$work/diff.txt"
    fail=1
fi
[ "$fail" -eq 0 ] || exit 1
echo "---- stdout with preload ----"
cat "$work/preload.out"
echo "PASS: $name"
pm_cleanup "$work"
exit 0
