#!/bin/bash
# Differential test driver: runs a test program once without and once with
# LD_PRELOAD=PRELOAD (POOLMALLOC_VERBOSE=1).  Both runs must exit 0 and print
# identical stdout; the preloaded run must show that the library was loaded.
# Used for the conformance and C++ operator tests.
#
# usage: run_diff.sh PRELOAD WORKDIR SECONDS PROGRAM [ARGS...]
set -u
. "$(dirname "$0")/lib.sh"

[ $# -ge 4 ] || pm_fail "usage: $0 PRELOAD WORKDIR SECONDS PROGRAM [ARGS...]"
preload=$1 work=$2 secs=$3
shift 3
pm_check_preload_file "$preload"
[ -x "$1" ] || pm_fail "test program not found: $1"
name=$(basename "$1")
pm_workdir "$work"

echo "== $name without preload"
pm_run_plain "$secs" "$work/plain.out" "$work/plain.err" "$@"
rc_plain=$?
echo "== $name with LD_PRELOAD=$preload"
pm_run_preloaded "$preload" "$secs" "$work/preload.out" "$work/preload.err" "$@"
rc_pre=$?

fail=0
if [ "$rc_plain" -ne 0 ]; then
    echo "FAIL: $name exits $rc_plain without the preload (the test itself is wrong for glibc):"
    grep ': FAIL' "$work/plain.out" || pm_show "$work/plain.out" "stdout without preload"
    pm_show "$work/plain.err" "stderr without preload"
    fail=1
fi
if [ "$rc_pre" -ne 0 ]; then
    if grep -q ': FAIL' "$work/preload.out"; then
        echo "FAIL: $name exits $rc_pre under the preload; failed checks:"
        grep ': FAIL' "$work/preload.out"
    else
        echo "FAIL: $name exits $rc_pre under the preload (no failed check printed: crash?)"
        pm_show "$work/preload.out" "stdout with preload"
    fi
    pm_show "$work/preload.err" "stderr with preload"
    fail=1
fi
if ! diff -u "$work/plain.out" "$work/preload.out" >"$work/diff.txt"; then
    echo "FAIL: output differs between glibc (-) and the preload (+):"
    cat "$work/diff.txt"
    fail=1
fi
[ "$fail" -eq 0 ] || exit 1
pm_check_preload_stderr "$preload" "$work/preload.err" "$name"
echo "PASS: $name: $(wc -l <"$work/preload.out") identical lines, exit 0 in both runs"
pm_cleanup "$work"
exit 0
