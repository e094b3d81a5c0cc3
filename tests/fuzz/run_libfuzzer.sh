#!/bin/sh
# run_libfuzzer.sh - a bounded, reproducible libFuzzer run for CTest.
#
# usage: run_libfuzzer.sh FUZZER SECONDS CORPUS REGRESSIONS WORKDIR [libFuzzer flags...]
#
# Runs every input in REGRESSIONS once, then fuzzes for SECONDS with
# -seed=1 over CORPUS and REGRESSIONS (read only: new inputs go to
# WORKDIR/new, crash inputs to WORKDIR/artifacts). The source tree is never
# written. exit 0 pass, 1 a crash/leak/timeout/assertion, 77 FUZZER not
# built (no clang: see clang_build.sh).
set -u
[ $# -ge 5 ] || { echo "usage: $0 FUZZER SECONDS CORPUS REGRESSIONS WORKDIR [flags...]" >&2; exit 1; }
fuzzer=$1 seconds=$2 corpus=$3 regressions=$4 work=$5
shift 5
[ -x "$fuzzer" ] || { echo "SKIP: $fuzzer not built (no clang or no libclang-rt-14-dev)"; exit 77; }
[ -d "$corpus" ] || { echo "FAIL: no corpus $corpus"; exit 1; }
name=$(basename "$fuzzer")

rm -rf "$work"
mkdir -p "$work/new" "$work/artifacts" || exit 1

# symbolized reports; errors exit 1, never 77 (libFuzzer's default
# -error_exitcode is 77, which CTest would take for "skipped")
for s in llvm-symbolizer /usr/lib/llvm-14/bin/llvm-symbolizer; do
    if command -v "$s" >/dev/null 2>&1; then
        ASAN_SYMBOLIZER_PATH=$(command -v "$s")
        export ASAN_SYMBOLIZER_PATH
        break
    fi
done
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:abort_on_error=0:symbolize=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1"
common="-error_exitcode=1 -timeout_exitcode=1 -rss_limit_mb=2048 -artifact_prefix=$work/artifacts/"

report() { # $1: log, then the flags of the run
    log=$1
    shift
    echo "---- $name: last lines of $log ----"
    tail -n 80 "$log"
    echo "---- inputs kept in $work/artifacts: ----"
    ls -l "$work/artifacts"
    for a in "$work"/artifacts/* $(sed -n 's/^Running: //p' "$log" | tail -n 1); do
        [ -f "$a" ] && echo "reproduce: $fuzzer $* $a"
    done
    echo "(copy a crashing input to $regressions/ so that every run checks it)"
}

regs=""
if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions" 2>/dev/null)" ]; then
    regs=$regressions
    echo "$name: the regression inputs in $regressions"
    # shellcheck disable=SC2086
    if ! "$fuzzer" $common "$@" "$regressions"/* >"$work/regressions.log" 2>&1; then
        report "$work/regressions.log" "$@"
        echo "FAIL: $name: a regression input fails again"
        exit 1
    fi
fi

echo "$name: fuzzing for ${seconds}s (-seed=1) over $corpus${regs:+ and $regs}"
start=$(date +%s)
# shellcheck disable=SC2086
"$fuzzer" $common -seed=1 -max_total_time="$seconds" -print_final_stats=1 "$@" \
    "$work/new" "$corpus" $regs >"$work/fuzz.log" 2>&1
rc=$?
end=$(date +%s)
grep -E '^(INFO: seed|INFO: .*files found|#[0-9]+.*(INITED|DONE))|^stat::' "$work/fuzz.log" | head -n 20
if [ "$rc" -ne 0 ]; then
    report "$work/fuzz.log" "$@"
    echo "FAIL: $name exited $rc after $((end - start))s"
    exit 1
fi
if ! grep -q '^Done [0-9]* runs' "$work/fuzz.log"; then
    tail -n 30 "$work/fuzz.log"
    echo "FAIL: $name did not finish its run"
    exit 1
fi
echo "$name: $(grep '^Done [0-9]* runs' "$work/fuzz.log"), $(ls "$work/new" | wc -l) new input(s) in $work/new"
echo "PASS: $name"
