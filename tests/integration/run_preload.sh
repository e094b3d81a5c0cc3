#!/bin/bash
# Single-run test driver: runs a test program under LD_PRELOAD=PRELOAD
# (POOLMALLOC_VERBOSE=1) with a time limit; it must exit 0, and the library
# must have been loaded.  Used for the thread, thread-churn and fork tests,
# whose output (timings, RSS) is not comparable between allocators.
#
# usage: run_preload.sh PRELOAD WORKDIR SECONDS PROGRAM [ARGS...]
set -u
. "$(dirname "$0")/lib.sh"

[ $# -ge 4 ] || pm_fail "usage: $0 PRELOAD WORKDIR SECONDS PROGRAM [ARGS...]"
preload=$1 work=$2 secs=$3
shift 3
pm_check_preload_file "$preload"
[ -x "$1" ] || pm_fail "test program not found: $1"
name=$(basename "$1")
pm_workdir "$work"

echo "== $name with LD_PRELOAD=$preload"
pm_run_preloaded "$preload" "$secs" "$work/out" "$work/err" "$@"
rc=$?
cat "$work/out"
if [ "$rc" -ne 0 ]; then
    pm_show "$work/err" "stderr"
    pm_fail "$name exited with status $rc under the preload"
fi
pm_check_preload_stderr "$preload" "$work/err" "$name"
echo "PASS: $name"
pm_cleanup "$work"
exit 0
