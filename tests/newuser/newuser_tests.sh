#!/usr/bin/env bash
# newuser_tests.sh PRELOAD PROG MIMALLOC NOPIE - issue 17's library items, as a new
# user meets them (each check failed against poolmalloc 0.1.0 before the fix):
#   1  the report never goes into a file that took descriptor 2
#   5  a newline in argv is escaped in the text report; invalid UTF-8 in argv
#      is escaped in the JSON report (it parses)
#   10 another malloc library before poolmalloc in LD_PRELOAD is named; a
#      non-PIE program that takes malloc's address (NOPIE: its PLT entry is
#      then malloc's canonical address) is not said to serve malloc itself
#   11 a dump signal taken over by the program's own handler is reported
#   8  a report file that cannot be opened: the message gives the reason
set -u
preload=$1 prog=$2 mimalloc=${3:-} nopie=${4:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

clean_env() { for v in $(env | sed -n 's/^\(POOLMALLOC_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done; }
clean_env

# 1. fd 2 closed before the first allocation and reused for a data file
LD_PRELOAD=$preload POOLMALLOC_STATS=1 "$prog" reuse-fd2 "$work/data.bin" 2>/dev/null
got=$(cat "$work/data.bin")
[ "$got" = DATA ] || bad "1: data.bin holds '${got:0:80}...' instead of DATA (the report went into it)"

# 5. argv with a newline (text) and with invalid UTF-8 (JSON)
out=$(LD_PRELOAD=$preload POOLMALLOC_STATS=1 "$prog" alloc $'two\nlines' 2>&1 >/dev/null)
echo "$out" | grep -q '^program:.*two\\nlines$' || bad "5: the newline in argv is not escaped: $(echo "$out" | sed -n '/^program/,+1p')"
echo "$out" | grep -q '^lines$' && bad "5: argv's newline broke the program: line"
LD_PRELOAD=$preload POOLMALLOC_STATS=json POOLMALLOC_STATS_FILE=$work/u.json "$prog" alloc $'caf\xe9 \xff'
python3 -c 'import json,sys; json.load(open(sys.argv[1], encoding="utf-8"))' "$work/u.json" 2>/dev/null ||
  bad "5: invalid UTF-8 in argv makes the JSON report unreadable: $(head -c 300 "$work/u.json")"

# 10. another allocator first in LD_PRELOAD
if [ -n "$mimalloc" ] && [ -e "$mimalloc" ]; then
  out=$(LD_PRELOAD=$mimalloc:$preload POOLMALLOC_STATS=1 "$prog" alloc 2>&1 >/dev/null)
  echo "$out" | grep -q '^note: .*malloc is served by libmimalloc' ||
    bad "10: no note that libmimalloc serves malloc: $(echo "$out" | grep -E 'requests:|note:')"
else
  echo "10: libmimalloc not installed, not checked"
fi
if [ -n "$nopie" ]; then
  out=$(LD_PRELOAD=$preload POOLMALLOC_STATS=1 "$nopie" alloc 2>&1 >/dev/null)
  echo "$out" | grep -q 'malloc is served by' &&
    bad "10: a non-PIE program taking malloc's address is said to serve malloc: $(echo "$out" | grep note:)"
  echo "$out" | grep -q '^requests:' || bad "10: no report from the non-PIE program: $(echo "$out" | head -3)"
  if [ -n "$mimalloc" ] && [ -e "$mimalloc" ]; then
    out=$(LD_PRELOAD=$mimalloc:$preload POOLMALLOC_STATS=1 "$nopie" alloc 2>&1 >/dev/null)
    echo "$out" | grep -q '^note: .*malloc is served by libmimalloc' ||
      bad "10: non-PIE, libmimalloc first: no note that it serves malloc: $(echo "$out" | grep -E 'note:')"
  fi
fi

# 11. the program takes the dump signal over
out=$(LD_PRELOAD=$preload POOLMALLOC_STATS=1 POOLMALLOC_STATS_SIGNAL=USR2 "$prog" own-handler 12 2>&1 >/dev/null)
echo "$out" | grep -q "^note: .*STATS_SIGNAL SIGUSR2 was taken over by the program's own handler" ||
  bad "11: no note that SIGUSR2 was taken over: $(echo "$out" | grep -E 'note:|options:')"
out=$(LD_PRELOAD=$preload POOLMALLOC_STATS=1 POOLMALLOC_STATS_SIGNAL=USR2 "$prog" alloc 2>&1 >/dev/null)
echo "$out" | grep -q "taken over" && bad "11: a note although the program kept poolmalloc's handler"

# 8. the reason a report file cannot be opened
out=$(LD_PRELOAD=$preload POOLMALLOC_STATS=1 POOLMALLOC_STATS_FILE=$work/missing/r.txt "$prog" alloc 2>&1 >/dev/null)
echo "$out" | grep -q "could not be opened (no such file or directory); writing the report to stderr" ||
  bad "8: no reason for the unopenable report file: $(echo "$out" | head -2)"

# 6. an idle program gets its free memory back with POOLMALLOC_BACKGROUND
read -r before after < <(LD_PRELOAD=$preload POOLMALLOC_BACKGROUND=1 POOLMALLOC_DECAY_MS=200 "$prog" idle)
[ "${after:-0}" -gt 0 ] && [ "$after" -lt $((before / 2)) ] ||
  bad "6: idle with POOLMALLOC_BACKGROUND=1: RSS ${before:-?} KiB after the frees, ${after:-?} KiB 2 s later"
read -r before after < <(LD_PRELOAD=$preload POOLMALLOC_DECAY_MS=200 "$prog" idle)
echo "6: idle RSS without the background thread: $before -> $after KiB (kept: documented)"

[ $fail = 0 ] && echo "newuser: all checks passed"
exit $fail
