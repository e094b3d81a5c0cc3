#!/bin/bash
# Exports test: the dynamic symbols defined by the preload library
# (nm -D --defined-only, version suffixes stripped, version-definition
# symbols of type A ignored) must be exactly the names in tests/exports.txt;
# the poolmalloc_* names in exports.txt must be exactly the poolmalloc_*
# functions declared in include/poolmalloc.h (when the header exists); and
# readelf -d must show no libstdc++ and no libjemalloc among NEEDED.
#
# usage: check_exports.sh PRELOAD EXPORTS_TXT HEADER
set -u
. "$(dirname "$0")/lib.sh"

[ $# -eq 3 ] || pm_fail "usage: $0 PRELOAD EXPORTS_TXT HEADER"
lib=$1 exports=$2 header=$3
pm_need nm readelf
pm_check_preload_file "$lib"
[ -f "$exports" ] || pm_fail "exports list not found: $exports"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pm-exports.XXXXXX") || pm_fail "mktemp failed"
trap 'rm -rf "$tmp"' EXIT

sed -e 's/#.*//' -e 's/[[:space:]]//g' "$exports" | grep -v '^$' | LC_ALL=C sort >"$tmp/expected.raw"
LC_ALL=C sort -u "$tmp/expected.raw" >"$tmp/expected"
if [ "$(wc -l <"$tmp/expected.raw")" -ne "$(wc -l <"$tmp/expected")" ]; then
    echo "FAIL: duplicate names in $exports:"
    uniq -d "$tmp/expected.raw"
    exit 1
fi

nm -D --defined-only "$lib" >"$tmp/nm.txt" || pm_fail "nm -D --defined-only $lib failed"
awk 'NF >= 3 && $2 != "A" { print $3 } NF == 2 && $1 != "A" { print $2 }' "$tmp/nm.txt" |
    sed 's/@.*//' | LC_ALL=C sort -u >"$tmp/actual"

fail=0
if ! diff "$tmp/expected" "$tmp/actual" >"$tmp/diff"; then
    echo "FAIL: exported symbols of $(basename "$lib") differ from $exports"
    echo "missing (in exports.txt, not exported):"
    grep '^<' "$tmp/diff" | sed 's/^< /    /'
    echo "extra (exported, not in exports.txt):"
    grep '^>' "$tmp/diff" | sed 's/^> /    /'
    fail=1
else
    echo "exported symbols match $exports ($(wc -l <"$tmp/actual") names)"
fi

# The poolmalloc_* section of exports.txt must match the public header.
grep '^poolmalloc_' "$tmp/expected" >"$tmp/api_expected"
if [ -f "$header" ]; then
    # Function declarations: an identifier poolmalloc_xxx followed by '(',
    # outside preprocessor lines and not a function-pointer typedef name
    # ("(*poolmalloc_cb)(").  Static inline helpers are not exports.
    # shellcheck disable=SC2020 # tr: each of ; { } ends a declaration
    sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' "$header" | sed -e 's://.*$::' |
        grep -v '^[[:space:]]*#' | tr '\n' ' ' |
        sed -e 's:/\*[^*]*\*\+\([^/*][^*]*\*\+\)*/: :g' \
            -e 's/([[:space:]]*\*[[:space:]]*poolmalloc_/(*FNPTR_/g' |
        tr ';{}' '\n\n\n' | grep -v 'static[[:space:]]\+inline' | sed 's/^/ /' |
        grep -o '[^A-Za-z0-9_]poolmalloc_[A-Za-z0-9_]*[[:space:]]*(' |
        sed -e 's/^.//' -e 's/[[:space:]]*($//' | LC_ALL=C sort -u >"$tmp/api_header"
    if ! diff "$tmp/api_expected" "$tmp/api_header" >"$tmp/api_diff"; then
        echo "FAIL: poolmalloc_* names in $exports and functions declared in $header differ"
        echo "only in exports.txt:"
        grep '^<' "$tmp/api_diff" | sed 's/^< /    /'
        echo "only in the header:"
        grep '^>' "$tmp/api_diff" | sed 's/^> /    /'
        fail=1
    else
        echo "poolmalloc_* exports match $(basename "$header") ($(wc -l <"$tmp/api_header") functions)"
    fi
else
    echo "note: $header does not exist yet; poolmalloc_* section not cross-checked"
fi

readelf -d "$lib" >"$tmp/dyn.txt" || pm_fail "readelf -d $lib failed"
grep '(NEEDED)' "$tmp/dyn.txt" | sed 's/.*\[\(.*\)\]/\1/' >"$tmp/needed"
echo "NEEDED: $(tr '\n' ' ' <"$tmp/needed")"
if grep -Ei 'libstdc\+\+|libjemalloc' "$tmp/needed"; then
    echo "FAIL: $(basename "$lib") must not depend on libstdc++ or libjemalloc"
    fail=1
fi
[ "$fail" -eq 0 ] || exit 1
echo "PASS: exports"
exit 0
