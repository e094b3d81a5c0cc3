#!/bin/bash
# Bad POOLMALLOC_* values, end to end: for every variable that pm-options
# lists, and for each bad value (empty, not a number, negative, overflowing,
# out of range, and a few per kind), PROGRAM runs under the preload. It must
# exit 0 with the same stdout as without the preload, and stderr must be
# exactly one line that names poolmalloc and the variable. Then every
# variable gets a bad value at once: one line per variable. The string
# variable POOLMALLOC_STATS_FILE takes any value and is left out.
#
# usage: run_bad_options.sh PRELOAD WORKDIR SECONDS PROGRAM PM_OPTIONS
set -u
. "$(dirname "$0")/../integration/lib.sh"

[ $# -eq 5 ] || pm_fail "usage: $0 PRELOAD WORKDIR SECONDS PROGRAM PM_OPTIONS"
preload=$1 work=$2 secs=$3 prog=$4 pm_options=$5
pm_check_preload_file "$preload"
[ -x "$prog" ] || pm_fail "test program not found: $prog"
[ -x "$pm_options" ] || pm_fail "pm-options not found: $pm_options"
pm_workdir "$work"
pm_clear_env

# "64K" -> 65536
to_bytes() {
    local v=$1 m=1
    case "$v" in
    *K) m=1024 ;;
    *M) m=$((1024 * 1024)) ;;
    *G) m=$((1024 * 1024 * 1024)) ;;
    *T) m=$((1024 * 1024 * 1024 * 1024)) ;;
    esac
    v=${v%[KMGT]}
    echo $((v * m))
}

# the variables, their defaults and ranges, from the option table
"$pm_options" --markdown >"$work/options.md" || pm_fail "pm-options --markdown failed"
mapfile -t vars < <(sed -n 's/^| `\(POOLMALLOC_[A-Z0-9_]*\)` |.*/\1/p' "$work/options.md")
[ "${#vars[@]}" -ge 5 ] || pm_fail "could not read the option table: $(cat "$work/options.md")"

# the per-variable bad values beyond the generic ones
bad_values() {
    local var=$1 row range lo hi
    row=$(grep -F "| \`$var\` |" "$work/options.md")
    range=$(echo "$row" | awk -F'|' '{ gsub(/ /, "", $4); print $4 }')
    printf '%s\n' "" "abc" "12x" "-1" "99999999999999999999999"
    if [ -n "$range" ]; then
        lo=$(to_bytes "${range%%–*}")
        hi=$(to_bytes "${range##*–}")
        echo $((hi + 1))
        [ "$lo" -gt 0 ] && echo $((lo - 1))
    fi
    case "$var" in
    POOLMALLOC_POOL_SIZE) echo 65537 ;;  # in range, not a power of two
    POOLMALLOC_MAX_POOLED) echo 128K ;;  # larger than the default pool size
    POOLMALLOC_DISABLE | POOLMALLOC_VERBOSE) printf '%s\n' 2 maybe ;;
    POOLMALLOC_STATS) printf '%s\n' 3 xml ;;
    POOLMALLOC_STATS_SIGNAL) printf '%s\n' 9 65 SIGFOO ;;
    esac
}

echo "== reference run without the preload"
pm_timed "$secs" env -u LD_PRELOAD PM_HARD_EXPECT=0 "$prog" >"$work/ref.out" 2>"$work/ref.err"
rc=$?
[ "$rc" -eq 0 ] || {
    pm_show "$work/ref.out" stdout
    pm_show "$work/ref.err" stderr
    pm_fail "reference run exited $rc"
}
cat "$work/ref.out"
echo "== with the preload and no setting"
pm_timed "$secs" env LD_PRELOAD="$preload" PM_HARD_EXPECT=1 "$prog" >"$work/none.out" 2>"$work/none.err"
rc=$?
[ "$rc" -eq 0 ] && cmp -s "$work/ref.out" "$work/none.out" && [ ! -s "$work/none.err" ] || {
    pm_show "$work/none.out" stdout
    pm_show "$work/none.err" stderr
    pm_fail "the preload run without settings exited $rc or printed something else"
}

fail=0 runs=0
i=0
for var in "${vars[@]}"; do
    if grep -F "| \`$var\` |" "$work/options.md" | grep -qF '(unset)'; then
        echo "$var: a string (any value is valid): not tested"
        continue
    fi
    while IFS= read -r value; do
        i=$((i + 1)) runs=$((runs + 1))
        out=$work/$i.out err=$work/$i.err
        pm_timed "$secs" env LD_PRELOAD="$preload" PM_HARD_EXPECT=1 "$var=$value" "$prog" \
            >"$out" 2>"$err"
        rc=$?
        lines=$(wc -l <"$err")
        what="$var='$value'"
        if [ "$rc" -ne 0 ]; then
            echo "FAIL: $what: exit status $rc"
            fail=1
        elif ! cmp -s "$work/ref.out" "$out"; then
            echo "FAIL: $what: stdout differs: $(head -c 300 "$out")"
            fail=1
        elif [ "$lines" -ne 1 ] || [ -n "$(tail -c 1 "$err")" ]; then
            echo "FAIL: $what: $lines lines on stderr, want exactly 1:"
            head -n 5 "$err" | sed 's/^/    /'
            fail=1
        elif ! grep -q "poolmalloc" "$err" || ! grep -qF "$var" "$err"; then
            echo "FAIL: $what: the line does not name poolmalloc and $var: $(cat "$err")"
            fail=1
        else
            echo "ok: $what -> $(cat "$err")"
        fi
    done < <(bad_values "$var")
done

# every variable bad at once: one line each
envs=()
n=0
for var in "${vars[@]}"; do
    grep -F "| \`$var\` |" "$work/options.md" | grep -qF '(unset)' && continue
    envs+=("$var=abc")
    n=$((n + 1))
done
pm_timed "$secs" env LD_PRELOAD="$preload" PM_HARD_EXPECT=1 "${envs[@]}" "$prog" \
    >"$work/all.out" 2>"$work/all.err"
rc=$?
if [ "$rc" -ne 0 ] || ! cmp -s "$work/ref.out" "$work/all.out"; then
    echo "FAIL: all $n variables bad at once: exit $rc or stdout differs"
    fail=1
elif [ "$(wc -l <"$work/all.err")" -ne "$n" ]; then
    echo "FAIL: all $n variables bad at once: $(wc -l <"$work/all.err") lines on stderr:"
    sed 's/^/    /' "$work/all.err"
    fail=1
else
    for e in "${envs[@]}"; do
        var=${e%%=*}
        c=$(grep -c "^poolmalloc.*$var\b" "$work/all.err")
        if [ "$c" -ne 1 ]; then
            echo "FAIL: all at once: $c lines name $var"
            fail=1
        fi
    done
    [ "$fail" -ne 0 ] || echo "ok: all $n variables bad at once -> $n lines"
fi

[ "$fail" -eq 0 ] || pm_fail "bad option values: see above ($runs single-variable runs)"
echo "PASS: bad_options ($runs single-variable runs and one with all $n at once)"
pm_cleanup "$work"
exit 0
