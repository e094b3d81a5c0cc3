#!/bin/bash
# exit_order driver: runs exit_order with POOLMALLOC_STATS=1 without and
# with LD_PRELOAD=PRELOAD. Both runs must exit 0 and print the same stdout,
# with every phase once and "ok"; under the preload, stderr must hold one
# exit report, and the phases that glibc runs after poolmalloc's destructor
# (DT_NEEDED and dlopen()ed libraries' destructors, an atexit handler
# registered by one of them) must be seen after the report's last line.
#
# usage: run_exit_order.sh PRELOAD WORKDIR SECONDS PROGRAM DLOPEN_LIBRARY
set -u
. "$(dirname "$0")/../integration/lib.sh"

[ $# -eq 5 ] || pm_fail "usage: $0 PRELOAD WORKDIR SECONDS PROGRAM DLOPEN_LIBRARY"
preload=$1 work=$2 secs=$3 prog=$4 lib=$5
pm_check_preload_file "$preload"
[ -x "$prog" ] || pm_fail "test program not found: $prog"
[ -f "$lib" ] || pm_fail "library not found: $lib"
pm_workdir "$work"
pm_clear_env

phases=(
    "worker thread_local destructor"
    "main"
    "main thread_local destructor"
    "function-local static object destructor"
    "atexit handler registered in main"
    "dlopen-lib static object destructor"
    "global static object destructor"
    "atexit handler registered first"
    "program destructor"
    "needed-lib destructor"
    "dlopen-lib destructor"
    "atexit handler registered in a destructor"
)
after_report=(
    "needed-lib destructor"
    "dlopen-lib destructor"
    "atexit handler registered in a destructor"
)

echo "== $(basename "$prog") without preload"
pm_timed "$secs" env -u LD_PRELOAD PM_HARD_EXPECT=0 POOLMALLOC_STATS=1 "$prog" "$lib" \
    >"$work/plain.out" 2>"$work/plain.err"
rc_plain=$?
echo "== $(basename "$prog") with LD_PRELOAD=$preload POOLMALLOC_STATS=1"
pm_timed "$secs" env LD_PRELOAD="$preload" PM_HARD_EXPECT=1 POOLMALLOC_STATS=1 "$prog" "$lib" \
    >"$work/preload.out" 2>"$work/preload.err"
rc_pre=$?

fail=0
bad() {
    echo "FAIL: $*"
    fail=1
}
[ "$rc_plain" -eq 0 ] || bad "exit status $rc_plain without the preload"
[ "$rc_pre" -eq 0 ] || bad "exit status $rc_pre under the preload"
if ! diff -u "$work/plain.out" "$work/preload.out" >"$work/diff.txt"; then
    bad "stdout differs between glibc (-) and the preload (+):"
    cat "$work/diff.txt"
fi
for run in plain preload; do
    for p in "${phases[@]}"; do
        n=$(grep -cxF "exit_order: $p: ok" "$work/$run.out")
        [ "$n" -eq 1 ] || bad "$run run: 'exit_order: $p: ok' printed $n times"
    done
    n=$(wc -l <"$work/$run.out")
    [ "$n" -eq "${#phases[@]}" ] || bad "$run run: $n lines on stdout, want ${#phases[@]}"
done

# the report: one, and which phases came after it
begin=$(grep -n '^==== poolmalloc.*report begin' "$work/preload.err" | cut -d: -f1)
end=$(grep -n '^==== poolmalloc.*report end' "$work/preload.err" | cut -d: -f1)
if [ "$(echo "$begin" | grep -c .)" -ne 1 ] || [ "$(echo "$end" | grep -c .)" -ne 1 ]; then
    bad "want one exit report on stderr under the preload (begin lines: '$begin', end lines: '$end')"
else
    echo "report: stderr lines $begin-$end"
    for p in "${after_report[@]}"; do
        at=$(grep -nxF "MARK $p" "$work/preload.err" | cut -d: -f1)
        if [ -z "$at" ]; then
            bad "no 'MARK $p' on stderr"
        elif [ "$at" -le "$end" ]; then
            bad "'$p' ran before the end of poolmalloc's report (line $at <= $end): not testing allocation after it"
        else
            echo "after the report: $p (stderr line $at)"
        fi
    done
fi
if [ "$fail" -ne 0 ]; then
    pm_show "$work/preload.out" "stdout with preload"
    pm_show "$work/preload.err" "stderr with preload"
    pm_show "$work/plain.err" "stderr without preload"
    exit 1
fi
cat "$work/preload.out"
echo "PASS: exit_order"
pm_cleanup "$work"
exit 0
