#!/bin/bash
# Layout test: what the loader writes in every process. The relocations
# outside RELRO (the two static heaps' page arrays, .data's pointers) must
# fall on at most two pages, and section pm_hot (the small variables every
# allocating process writes, src/common.h PM_HOT) must lie on those pages,
# so that it costs no page fault of its own (docs/design.md "Hot variables
# on a written page"). A variable added to pm_hot can push the second
# heap's array onto a third page: this test then fails.
#
# And the code every allocating process runs (cmake/pm_warm.ld) lies in
# section .text.pm_warm within the file's first 64 KiB, with the headers
# the loader reads: one fault-around maps it all (docs/design.md "The code
# a short process runs, together"). A function of that path that leaves the
# list, or a list grown past 64 KiB, fails here.
#
# And RELRO (the TLS image, .dynamic, the GOT) fits in one page: the
# loader writes it, so each page of it is a fault in every process. The
# option table and the other constant tables hold no pointers for that
# (docs/design.md "RELRO on one page"); about 64 bytes are left, eight
# more imports' GOT entries.
#
# usage: check_layout.sh PRELOAD
set -u
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || pm_fail "usage: $0 PRELOAD"
lib=$1
pm_need readelf
pm_need nm
pm_check_preload_file "$lib"
[ "$(uname -m)" = x86_64 ] || pm_skip "relocation types checked are x86-64's"

read -r relro_addr relro_size < <(readelf -lW "$lib" | awk '$1 == "GNU_RELRO" { print $3, $6 }')
[ -n "${relro_addr:-}" ] || pm_fail "no GNU_RELRO segment in $lib"
relro_end=$((relro_addr + relro_size))
[ $(((relro_end - 1) >> 12)) -eq $((relro_addr >> 12)) ] ||
    pm_fail "RELRO ($relro_addr, $((relro_size)) bytes) spans $(( ((relro_end - 1) >> 12) - (relro_addr >> 12) + 1 )) pages: a write fault each in every process"
echo "RELRO: $relro_addr, $((relro_size)) bytes, one page"

read -r hot_addr hot_size < <(readelf -SW "$lib" | sed 's/^ *\[ *[0-9]*\]//' |
    awk '$1 == "pm_hot" { print "0x" $3, "0x" $5 }')
[ -n "${hot_addr:-}" ] || pm_fail "no section pm_hot in $lib"
[ $((hot_size)) -gt 0 ] || pm_fail "section pm_hot is empty"

declare -A written=()
while read -r off; do
    o=$((16#$off))
    [ "$o" -ge "$relro_end" ] && written[$((o >> 12))]=1
done < <(readelf -rW "$lib" | awk '$3 ~ /^R_X86_64_/ && $3 != "R_X86_64_NONE" { print $1 }')

pages=$(printf '%s\n' "${!written[@]}" | sort -n | while read -r p; do printf '0x%x ' $((p << 12)); done)
echo "pages written by relocations past RELRO: $pages"
printf 'pm_hot: 0x%x-0x%x\n' $((hot_addr)) $((hot_addr + hot_size))
[ "${#written[@]}" -le 2 ] || pm_fail "relocations write ${#written[@]} pages past RELRO (at most 2)"
for ((p = hot_addr >> 12; p <= (hot_addr + hot_size - 1) >> 12; p++)); do
    [ -n "${written[$p]:-}" ] ||
        pm_fail "pm_hot's page $(printf 0x%x $((p << 12))) is not written by relocations: a fault of its own"
done
echo "PASS: pm_hot on the ${#written[@]} pages the loader writes"

read -r warm_addr warm_size < <(readelf -SW "$lib" | sed 's/^ *\[ *[0-9]*\]//' |
    awk '$1 == ".text.pm_warm" { print "0x" $3, "0x" $5 }')
[ -n "${warm_addr:-}" ] || pm_fail "no section .text.pm_warm in $lib (cmake/pm_warm.ld)"
warm_end=$((warm_addr + warm_size))
for sym in malloc free pm_library_init pm_thread_start pm_options_load pm_heap_page_for \
    pm_page_carve pm_malloc_slow pm_sample_draw pm_size_class; do
    read -r a s < <(nm -S "$lib" | awk -v n="$sym" '$4 == n { print "0x" $1, "0x" $2 }')
    [ -n "${a:-}" ] || pm_fail "no symbol $sym in $lib"
    [ $((a)) -ge $((warm_addr)) ] && [ $((a + s)) -le $warm_end ] ||
        pm_fail "$sym ($a) is not in .text.pm_warm: add its section to cmake/pm_warm.ld"
    [ $((a + s)) -le $((0x10000)) ] ||
        pm_fail "$sym ends at $(printf 0x%x $((a + s))), past the file's first 64 KiB"
done
printf '.text.pm_warm: 0x%x-0x%x\n' $((warm_addr)) $warm_end
echo "PASS: the code every allocating process runs is in the first 64 KiB"
