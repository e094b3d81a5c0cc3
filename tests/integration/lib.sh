# Shared helpers for the integration test scripts (sourced by the run_*.sh
# scripts, not run on its own): skipping when a program is missing, per-test
# work directories, running commands with and without the preload under a
# time limit, and checking that the preload library was really loaded.

# shellcheck shell=bash
PM_SKIP_RC=77

pm_fail() {
    echo "FAIL: $*" >&2
    exit 1
}

pm_skip() {
    echo "SKIP: $*"
    exit "$PM_SKIP_RC"
}

# pm_need PROG... : skip the test (exit 77) unless every PROG is on PATH.
pm_need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || pm_skip "'$c' is not installed"
    done
}

# pm_check_preload_file PRELOAD : the preload path must be an existing file.
pm_check_preload_file() {
    [ -n "$1" ] || pm_fail "no preload library given"
    case "$1" in
    /*) ;;
    *) pm_fail "preload path must be absolute: $1" ;;
    esac
    [ -f "$1" ] || pm_fail "preload library not found: $1"
}

# True if PRELOAD is the real poolmalloc library (as opposed to a stand-in
# such as libjemalloc.so.2 used while poolmalloc is being written).
pm_is_poolmalloc() {
    case "$(basename "$1")" in
    libpoolmalloc.so*) return 0 ;;
    esac
    return 1
}

# pm_workdir DIR : start with an empty directory.
# pm_clear_env: unsets every POOLMALLOC_* variable of the caller's
# environment, so a developer's settings cannot change a test
pm_clear_env() {
    local v
    for v in $(env | sed -n 's/^\(POOLMALLOC_[A-Za-z0-9_]*\)=.*/\1/p'); do
        unset "$v"
    done
}

pm_workdir() {
    rm -rf "$1" || pm_fail "cannot clean $1"
    mkdir -p "$1" || pm_fail "cannot create $1"
}

# pm_show FILE LABEL : print the last lines of FILE, for failure reports.
pm_show() {
    if [ -s "$1" ]; then
        echo "---- $2 (last 40 lines of $1) ----"
        tail -n 40 "$1"
        echo "----"
    fi
}

# pm_check_preload_stderr PRELOAD STDERR_FILE LABEL
# Fails if ld.so could not preload the library, and, for the real
# poolmalloc, if the POOLMALLOC_VERBOSE=1 banner (a stderr line starting
# with "poolmalloc") is missing, which would mean that interposition did not
# happen.  With a stand-in the banner check is skipped (and said so).
pm_check_preload_stderr() {
    if grep -q 'cannot be preloaded' "$2"; then
        pm_show "$2" "$3 stderr"
        pm_fail "$3: ld.so could not preload $1"
    fi
    if pm_is_poolmalloc "$1"; then
        if ! grep -q '^poolmalloc' "$2"; then
            pm_show "$2" "$3 stderr"
            pm_fail "$3: no line starting with 'poolmalloc' on stderr with POOLMALLOC_VERBOSE=1: was the allocator interposed?"
        fi
    else
        echo "note: $(basename "$1") is a stand-in, not libpoolmalloc: banner check skipped"
    fi
}

# pm_timed SECONDS CMD... : run CMD with a time limit; report a timeout.
# Returns CMD's exit status (124 on timeout).
pm_timed() {
    local secs=$1 rc
    shift
    timeout -k 10 "$secs" "$@"
    rc=$?
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "TIMEOUT after ${secs}s: $*" >&2
    fi
    return "$rc"
}

# pm_run_plain SECONDS OUT ERR CMD... : run CMD without the preload.
pm_run_plain() {
    local secs=$1 out=$2 err=$3
    shift 3
    pm_timed "$secs" env -u LD_PRELOAD "$@" >"$out" 2>"$err"
}

# pm_run_preloaded PRELOAD SECONDS OUT ERR CMD... : run CMD under the
# preload with POOLMALLOC_VERBOSE=1 (only CMD and its children are
# preloaded, not timeout(1)).
pm_run_preloaded() {
    local preload=$1 secs=$2 out=$3 err=$4
    shift 4
    pm_timed "$secs" env LD_PRELOAD="$preload" POOLMALLOC_VERBOSE=1 "$@" >"$out" 2>"$err"
}

# pm_cleanup DIR : remove a passing test's work directory, unless
# PM_IT_KEEP=1 is set (to inspect the outputs).
pm_cleanup() {
    [ "${PM_IT_KEEP:-0}" = 1 ] || rm -rf "$1"
}
