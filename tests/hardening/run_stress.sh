#!/bin/bash
# Stress driver (label `stress`, not in the default run): runs PROGRAM N
# times under LD_PRELOAD=PRELOAD and counts passes, hangs (exit 2: the
# program's supervisor killed a hung scenario, or the time limit here) and
# other failures. Passes only if all N pass; prints the first failure's
# output and the total time.
#
# usage: run_stress.sh PRELOAD N SECONDS_PER_RUN PROGRAM [ARGS...]
set -u
. "$(dirname "$0")/../integration/lib.sh"
[ $# -ge 4 ] || pm_fail "usage: $0 PRELOAD N SECONDS_PER_RUN PROGRAM [ARGS...]"
preload=$1 n=$2 secs=$3
shift 3
pm_check_preload_file "$preload"
[ -x "$1" ] || pm_fail "test program not found: $1"
pm_clear_env
ulimit -c 0
name=$(basename "$1")
out=$(mktemp) first=""
pass=0 hung=0 failed=0
start=$(date +%s.%N)
for i in $(seq 1 "$n"); do
    pm_timed "$secs" env LD_PRELOAD="$preload" PM_HARD_EXPECT=1 "$@" >"$out" 2>&1
    rc=$?
    case $rc in
    0) pass=$((pass + 1)) ;;
    2 | 124 | 137) hung=$((hung + 1)) ;;
    *) failed=$((failed + 1)) ;;
    esac
    if [ "$rc" -ne 0 ] && [ -z "$first" ]; then
        first="run $i (exit $rc):"$'\n'"$(cat "$out")"
    fi
done
end=$(date +%s.%N)
rm -f "$out"
awk -v a="$start" -v b="$end" -v n="$n" -v p="$pass" -v h="$hung" -v f="$failed" -v name="$name" \
    'BEGIN { printf "%s: %d/%d passed, %d hung, %d failed, %.1f s\n", name, p, n, h, f, b - a }'
if [ "$pass" -ne "$n" ]; then
    echo "FAIL: first failure, $first"
    exit 1
fi
echo "PASS: $name x$n"
