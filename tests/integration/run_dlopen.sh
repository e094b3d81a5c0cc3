#!/bin/bash
# dlopen test driver: runs the C host program, which dlopen()s a C++ plugin
# and calls its plugin_run() (new/delete inside), under LD_PRELOAD with
# LD_DEBUG=bindings, and checks in the loader's binding trace (stderr) that
# the plugin's operator new/delete references (_Znwm, _Znam, _ZdlPv*,
# _ZdaPv*) were bound to the preloaded library and none to libstdc++.
#
# usage: run_dlopen.sh PRELOAD WORKDIR SECONDS HOST_PROGRAM PLUGIN.so
set -u
. "$(dirname "$0")/lib.sh"

[ $# -eq 5 ] || pm_fail "usage: $0 PRELOAD WORKDIR SECONDS HOST_PROGRAM PLUGIN.so"
preload=$1 work=$2 secs=$3 host=$4 plugin=$5
pm_check_preload_file "$preload"
[ -x "$host" ] || pm_fail "host program not found: $host"
[ -f "$plugin" ] || pm_fail "plugin not found: $plugin"
pm_workdir "$work"
pre_base=$(basename "$preload")
plugin_base=$(basename "$plugin")

echo "== $(basename "$host") $plugin_base with LD_PRELOAD=$preload LD_DEBUG=bindings"
LD_DEBUG=bindings pm_run_preloaded "$preload" "$secs" "$work/out" "$work/err" "$host" "$plugin"
rc=$?
cat "$work/out"
if [ "$rc" -ne 0 ]; then
    grep -v 'binding file' "$work/err" | tail -n 40
    pm_fail "host program exited with status $rc"
fi
grep -qx 'plugin_run: ok' "$work/out" || pm_fail "plugin_run did not report ok"
pm_check_preload_stderr "$preload" "$work/err" "dlopen host"

# Lines look like:
#   PID: binding file /path/libplugin.so [0] to /path/libpoolmalloc.so [0]: normal symbol `_Znwm' [GLIBCXX_3.4]
ops='`(_Znwm|_Znam|_ZdlPv|_ZdaPv)[A-Za-z0-9_]*'"'"
grep -E "binding file [^ ]*/$plugin_base \[[0-9]+\] to .*: normal symbol $ops" "$work/err" \
    >"$work/plugin_ops.txt"
echo "plugin operator bindings:"
sed -E 's/^ *[0-9]+: *//' "$work/plugin_ops.txt"

fail=0
for sym in _Znwm _ZdlPv; do
    if ! grep -qE "to [^ ]*/$pre_base \[[0-9]+\]: normal symbol \`$sym" "$work/plugin_ops.txt"; then
        echo "FAIL: no binding of the plugin's $sym... to $pre_base"
        fail=1
    fi
done
if grep -vE "to [^ ]*/$pre_base \[[0-9]+\]:" "$work/plugin_ops.txt" >"$work/wrong.txt"; then
    echo "FAIL: plugin operators bound to something other than $pre_base:"
    cat "$work/wrong.txt"
    fail=1
fi
# libstdc++'s own references to the operators must not bind to itself either.
if grep -E "binding file [^ ]*/libstdc\+\+[^ ]* \[[0-9]+\] to [^ ]*/libstdc\+\+[^ ]*: normal symbol $ops" \
    "$work/err" >"$work/stdcxx_self.txt"; then
    echo "FAIL: libstdc++ binds its operator new/delete references to itself:"
    head -n 20 "$work/stdcxx_self.txt"
    fail=1
fi
[ "$fail" -eq 0 ] || exit 1
echo "PASS: the plugin's operator new/delete bind to $pre_base"
pm_cleanup "$work"
exit 0
