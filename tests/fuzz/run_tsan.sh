#!/bin/sh
# run_tsan.sh - the multi-thread operation driver (ops.c) under
# ThreadSanitizer, for CTest: fuzz_ops --threads 4 for SECONDS in all, half
# with the default options and half with lifetime routing sampling fast and
# 4 KiB pool pages (blocks routed to jemalloc, sites marked while other
# threads free remotely, many pages abandoned and adopted). Every data race
# fails the test, apart from the justified entries of SUPPRESSIONS.
#
# usage: run_tsan.sh FUZZ_OPS_TSAN SUPPRESSIONS SECONDS
# exit 0 pass, 1 a race or a driver failure, 77 not built (no clang)
set -u
[ $# -eq 3 ] || { echo "usage: $0 FUZZ_OPS_TSAN SUPPRESSIONS SECONDS" >&2; exit 1; }
bin=$1 supp=$2 seconds=$3
[ -x "$bin" ] || { echo "SKIP: $bin not built (no clang or no libclang-rt-14-dev)"; exit 77; }
[ -f "$supp" ] || { echo "FAIL: no $supp"; exit 1; }
half=$(( (seconds + 1) / 2 ))

export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}suppressions=$supp:halt_on_error=1:second_deadlock_stack=1:print_suppressions=0"
log=$(mktemp) || exit 1
trap 'rm -f "$log"' EXIT

run() { # label, then env assignments and the driver's arguments
    label=$1
    shift
    echo "fuzz_ops_tsan ($label): $*"
    env "$@" >"$log" 2>&1
    rc=$?
    # clang 14's TSan cannot live with every ASLR layout: run it once more
    # without randomization
    if [ "$rc" -ne 0 ] && grep -q 'unexpected memory mapping' "$log" &&
        setarch "$(uname -m)" -R true 2>/dev/null; then
        echo "  (address layout TSan cannot use: again without ASLR)"
        setarch "$(uname -m)" -R env "$@" >"$log" 2>&1
        rc=$?
    fi
    grep -E '^fuzz_ops: ' "$log"
    if [ "$rc" -ne 0 ]; then
        head -n 120 "$log"
        echo "FAIL: fuzz_ops_tsan ($label) exited $rc"
        exit 1
    fi
}

run default "$bin" --seed 7 --ops 100000000 --seconds "$half" --threads 4 --generations 5
run "lifetime, 4K pages" POOLMALLOC_LIFETIME=1 POOLMALLOC_PROFILE_RATE=16 \
    POOLMALLOC_LIFETIME_THRESHOLD=1024 POOLMALLOC_POOL_SIZE=4K \
    "$bin" --seed 13 --ops 100000000 --seconds "$half" --threads 4 --generations 5
echo "PASS: fuzz_ops_tsan"
