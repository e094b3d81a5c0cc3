#!/bin/bash
# C++ operator test driver: first makes sure the cxx_forms binary really
# references all 20 replaceable new/delete forms (so none was optimised away
# or compiled to a different form), then runs it with and without the
# preload through run_diff.sh.
#
# usage: run_cxx.sh PRELOAD WORKDIR SECONDS CXX_FORMS_BINARY
set -u
. "$(dirname "$0")/lib.sh"

[ $# -eq 4 ] || pm_fail "usage: $0 PRELOAD WORKDIR SECONDS CXX_FORMS_BINARY"
pm_need nm
forms="_Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t _ZnwmSt11align_val_t
_ZnamSt11align_val_t _ZnwmSt11align_val_tRKSt9nothrow_t _ZnamSt11align_val_tRKSt9nothrow_t
_ZdlPv _ZdaPv _ZdlPvm _ZdaPvm _ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t _ZdlPvSt11align_val_t
_ZdaPvSt11align_val_t _ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t
_ZdlPvSt11align_val_tRKSt9nothrow_t _ZdaPvSt11align_val_tRKSt9nothrow_t"
undef=$(nm -u "$4" | awk '{print $NF}' | sed 's/@.*//' | sort -u) || pm_fail "nm -u $4 failed"
missing=""
for f in $forms; do
    grep -qx "$f" <<<"$undef" || missing="$missing $f"
done
[ -z "$missing" ] || pm_fail "$(basename "$4") does not call:$missing"
echo "$(basename "$4") references all 20 operator new/delete forms"
exec "$(dirname "$0")/run_diff.sh" "$@"
