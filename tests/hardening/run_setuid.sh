#!/bin/bash
# setuid test: a setuid program must not write POOLMALLOC_STATS_FILE (a
# file named by the environment, created with the program's privileges).
# PROGRAM (linked against libpoolmalloc.so, absolute RUNPATH) is copied into
# WORKDIR twice: a plain copy and a setuid-nobody copy (chown nobody, chmod
# u+s), and both are run as root with POOLMALLOC_STATS=1 and
# POOLMALLOC_STATS_FILE=WORKDIR/report-%p.txt, WORKDIR being writable by
# everyone. The plain run must create report-<pid>.txt (the control: the
# check can fail); the setuid run (AT_SECURE=1, checked by the program) must
# exit 0 and create no file, and its stderr must say why and carry the
# report instead. Skipped (77) when not root, on a nosuid mount, or when
# nobody cannot reach the library.
#
# usage: run_setuid.sh WORKDIR SECONDS PROGRAM LIBRARY
set -u
. "$(dirname "$0")/../integration/lib.sh"

[ $# -eq 4 ] || pm_fail "usage: $0 WORKDIR SECONDS PROGRAM LIBRARY"
work=$1 secs=$2 prog=$3 lib=$4
[ -x "$prog" ] || pm_fail "test program not found: $prog"
[ "$(id -u)" -eq 0 ] || pm_skip "not root: cannot make a setuid copy"
id nobody >/dev/null 2>&1 || pm_skip "no user 'nobody'"
pm_workdir "$work"
chmod 0777 "$work" || pm_fail "chmod $work"
if findmnt -no OPTIONS -T "$work" 2>/dev/null | tr ',' '\n' | grep -qx nosuid; then
    pm_skip "$work is on a nosuid mount"
fi
if ! setpriv --reuid=nobody --regid=nogroup --clear-groups test -r "$lib" 2>/dev/null; then
    pm_skip "user nobody cannot read $lib (a parent directory is not searchable)"
fi
pm_clear_env
unset LD_PRELOAD

cp "$prog" "$work/prog-plain" && cp "$prog" "$work/prog-suid" || pm_fail "cp"
chown nobody "$work/prog-suid" && chmod 4755 "$work/prog-suid" || pm_fail "chown/chmod"
fail=0
bad() {
    echo "FAIL: $*"
    fail=1
}

# 1. the control: not setuid, the file is written
pm_timed "$secs" env POOLMALLOC_STATS=1 POOLMALLOC_STATS_FILE="$work/report-%p.txt" \
    "$work/prog-plain" --plain >"$work/plain.out" 2>"$work/plain.err"
rc=$?
cat "$work/plain.out"
pid=$(sed -n 's/^pid \([0-9]*\)$/\1/p' "$work/plain.out")
if [ "$rc" -ne 0 ]; then
    bad "plain run exited $rc"
elif [ ! -s "$work/report-$pid.txt" ]; then
    bad "plain run (control): no report in $work/report-$pid.txt"
elif ! grep -q 'report begin' "$work/report-$pid.txt"; then
    bad "plain run: $work/report-$pid.txt is not a report"
else
    echo "control: report written to report-$pid.txt"
fi
rm -f "$work"/report-*

# 2. setuid nobody, run by root: AT_SECURE, no file
pm_timed "$secs" env POOLMALLOC_STATS=1 POOLMALLOC_STATS_FILE="$work/report-%p.txt" \
    "$work/prog-suid" --secure >"$work/suid.out" 2>"$work/suid.err"
rc=$?
cat "$work/suid.out"
if [ "$rc" -eq "$PM_SKIP_RC" ]; then
    pm_skip "the setuid copy did not run in secure mode"
fi
files=$(find "$work" -name 'report-*' | head -5)
if [ "$rc" -ne 0 ]; then
    bad "setuid run exited $rc"
fi
if [ -n "$files" ]; then
    bad "setuid run created a report file: $files"
fi
grep -q 'POOLMALLOC_STATS_FILE.*setuid' "$work/suid.err" ||
    bad "setuid run: no line on stderr saying that POOLMALLOC_STATS_FILE is ignored"
grep -q 'report begin' "$work/suid.err" || bad "setuid run: no report on stderr"
if [ "$fail" -ne 0 ]; then
    pm_show "$work/plain.err" "stderr of the plain run"
    pm_show "$work/suid.err" "stderr of the setuid run"
    exit 1
fi
grep 'POOLMALLOC_STATS_FILE' "$work/suid.err"
echo "PASS: setuid_report"
pm_cleanup "$work"
exit 0
