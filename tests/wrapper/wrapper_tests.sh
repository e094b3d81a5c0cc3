#!/usr/bin/env bash
# wrapper_tests.sh - tests of scripts/poolmalloc, the command-line wrapper.
#
#   wrapper_tests.sh TEST WRAPPER LIB PM_OPTIONS FAKE_LIB WORKDIR
#   wrapper_tests.sh list
#
# LIB is the real libpoolmalloc.so; PM_OPTIONS the pm-options tool; FAKE_LIB
# a library that only exports poolmalloc_version() returning "9.8.7"
# (tests/wrapper/fakever.c). WORKDIR is emptied first, removed on success
# and kept on failure. Exit 0 pass, 1 fail, 77 skipped.

# shellcheck disable=SC2016,SC2086,SC2015,SC2012  # single-quoted $VARS are for the commands' shells
set -u
tests="exit_status preload output_pipeline options version unknown_option missing_library help"
tests+=" shim only killed stats_file_dir not_poolmalloc other_allocator static_setuid"
if [ "${1-}" = list ]; then printf '%s\n' ${tests}; exit 0; fi
[ $# -eq 6 ] || { echo "usage: $0 TEST WRAPPER LIB PM_OPTIONS FAKE_LIB WORKDIR" >&2; exit 2; }
test=$1 W=$2 LIB=$3 PMOPT=$4 FAKE=$5 WORK=$6
absp() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
W=$(absp "$W") LIB=$(absp "$LIB") PMOPT=$(absp "$PMOPT") FAKE=$(absp "$FAKE") WORK=$(absp "$WORK")

# nothing from the caller's environment may change what the wrapper does;
# the wrapper gets LIB through POOLMALLOC_LIB (the build directory need not
# be the checkout's build/, where the wrapper would look by itself)
unset LD_PRELOAD POOLMALLOC_LIB "${!POOLMALLOC_@}"

fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
skip() { echo "SKIP: $*"; exit 77; }
need() { command -v "$1" >/dev/null 2>&1 || skip "'$1' is not installed"; }
# check WHAT EXPECTED ACTUAL
check() {
  if [ "$2" = "$3" ]; then ok "$1: $3"; else fail "$1: expected [$2], got [$3]"; fi
}

[ -x "$W" ] || { echo "FAIL: wrapper $W is not executable" >&2; exit 1; }
[ -f "$LIB" ] || { echo "FAIL: library $LIB not found" >&2; exit 1; }
LIBREAL=$(readlink -f "$LIB")
export POOLMALLOC_LIB=$LIB
rm -rf "$WORK" && mkdir -p "$WORK" || exit 1
cd "$WORK" || exit 1

# json FILE PYTHON-EXPRESSION: evaluates the expression on the report `r`
# (the object under "poolmalloc") of the JSON report in FILE
json() {
  python3 -c '
import json, sys
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        r = json.loads(line)["poolmalloc"]
        print(eval(sys.argv[2]))
        break
else:
    print("<no report>")' "$1" "$2" 2>&1
}

# make_nobin: ./nobin, a PATH with what the wrapper needs but binutils
# (readelf), as on a fresh system
make_nobin() {
  local t
  mkdir -p nobin
  for t in bash sh env od tr sed awk grep readlink ls mkdir find sort comm wc mktemp rm cat stat id head tail touch true; do
    ln -sf "$(type -P "$t")" nobin/"$t"
  done
}

# run_status WRAPPER-ARGS...: the wrapper's exit status as a shell sees it
run_status() { "$W" "$@" >/dev/null 2>&1; echo $?; }

t_exit_status() {
  check "exit 0" 0 "$(run_status sh -c 'exit 0')"
  check "exit 3" 3 "$(run_status sh -c 'exit 3')"
  check "exit 77" 77 "$(run_status -- sh -c 'exit 77')"
  check "exit 255" 255 "$(run_status sh -c 'exit 255')"
  check "killed by SIGTERM" 143 "$(run_status sh -c 'kill -TERM $$')"
  check "killed by SIGKILL" 137 "$(run_status sh -c 'kill -KILL $$')"
  check "command not found" 127 "$(run_status ./no-such-program)"
  # the status reaches a parent that is not a shell the same way
  local py
  if command -v python3 >/dev/null 2>&1; then
    py=$(python3 -c 'import subprocess,sys; print(subprocess.call(sys.argv[1:]))' "$W" sh -c 'kill -TERM $$')
    check "killed by SIGTERM, seen by python" 143 "$py"
  fi
  # with --output the wrapper waits for the command: same statuses
  check "exit 3 with --output" 3 "$(run_status --output "$WORK/o" sh -c 'exit 3')"
  check "SIGTERM with --output" 143 "$(run_status --output "$WORK/o" sh -c 'kill -TERM $$')"
  # SIGTERM sent to the wrapper reaches the command; the command's status comes back
  "$W" sh -c 'echo $$ > pid; trap "exit 42" TERM; while :; do sleep 0.05; done' &
  local wpid=$!
  for _ in $(seq 100); do [ -s pid ] && break; sleep 0.05; done
  kill -TERM "$wpid"
  wait "$wpid"
  check "SIGTERM to the wrapper forwarded (command's trap exits 42)" 42 "$?"
  if [ -s pid ] && kill -0 "$(cat pid)" 2>/dev/null; then
    fail "the command survived the wrapper"; kill -KILL "$(cat pid)"
  fi
}

t_preload() {
  local out
  out=$("$W" sh -c 'echo "$LD_PRELOAD"')
  check "LD_PRELOAD alone" "$LIBREAL" "$out"
  # an entry already there stays, after the library (libm resolves by name)
  out=$(LD_PRELOAD=libm.so.6 "$W" sh -c 'echo "$LD_PRELOAD"' 2>&1)
  check "LD_PRELOAD with an existing entry" "$LIBREAL:libm.so.6" "$out"
  out=$(LD_PRELOAD="libm.so.6 libdl.so.2" "$W" sh -c 'echo "$LD_PRELOAD"' 2>&1)
  check "LD_PRELOAD with two entries (space-separated)" "$LIBREAL:libm.so.6:libdl.so.2" "$out"
  # the library is not listed twice when it is already there
  # (--library, not POOLMALLOC_LIB: with the library preloaded into the
  # wrapper's own shell, it would warn about POOLMALLOC_LIB)
  out=$(env -u POOLMALLOC_LIB LD_PRELOAD="$LIBREAL:libm.so.6" "$W" --library "$LIB" sh -c 'echo "$LD_PRELOAD"' 2>&1)
  check "LD_PRELOAD already holding the library" "$LIBREAL:libm.so.6" "$out"
  # it is really loaded in the command, with the other entry
  out=$(LD_PRELOAD=libm.so.6 "$W" cat /proc/self/maps | awk '{print $6}' | grep -E 'libpoolmalloc|libm\.so' | sort -u | xargs -n1 basename 2>/dev/null | tr '\n' ' ')
  case $out in
    *libm.so.6*libpoolmalloc*|*libpoolmalloc*libm.so.6*) ok "both mapped in the command: $out" ;;
    *) fail "libpoolmalloc and libm.so.6 not both mapped in the command: [$out]" ;;
  esac
  # a relative --library becomes absolute
  local dir base
  dir=$(dirname "$LIB") base=$(basename "$LIB")
  out=$(cd "$dir" && "$W" --library "$base" sh -c 'echo "$LD_PRELOAD"')
  check "relative --library made absolute" "$LIBREAL" "$out"
  out=$(POOLMALLOC_LIB="$FAKE" "$W" sh -c 'echo "$LD_PRELOAD"')
  check "POOLMALLOC_LIB" "$(readlink -f "$FAKE")" "$out"
  # the library warns about POOLMALLOC_ names it does not know: the wrapper
  # does not pass its own POOLMALLOC_LIB on
  out=$("$W" sh -c 'echo "${POOLMALLOC_LIB-unset}"; exec ls / >/dev/null' 2>&1)
  check "POOLMALLOC_LIB not passed to the command" unset "$out"
  out=$(POOLMALLOC_LIB="$FAKE" "$W" --lib "$LIB" sh -c 'echo "$LD_PRELOAD"')
  check "--lib wins over POOLMALLOC_LIB" "$LIBREAL" "$out"
  # stdin reaches the command
  out=$(echo through | "$W" cat)
  check "stdin" through "$out"
}

t_output_pipeline() {
  need python3
  local dir=$WORK/reports/sub out last n f prog pid
  printf 'twelve bytes' > input
  # the directory does not exist yet: the wrapper creates it
  out=$("$W" --output "$dir" sh -c "cat '$WORK/input' | wc -c" 2> err)
  check "pipeline output" 12 "$out"
  last=$(tail -n 1 err)
  check "final line" "poolmalloc: reports in $dir (2 files)" "$last"
  # dash ends with _exit and writes no report: one file for cat, one for wc
  n=$(find "$dir" -type f | wc -l)
  check "files in DIR" 2 "$n"
  for prog in cat wc; do
    f=$(find "$dir" -name "$prog-*.json")
    if [ -z "$f" ] || [ "$(echo "$f" | wc -l)" != 1 ]; then fail "$prog: want one $prog-PID.json, got [$f]"; continue; fi
    pid=$(basename "$f" .json); pid=${pid#"$prog"-}
    check "$prog report: pid" "$pid" "$(json "$f" 'r["pid"]')"
    check "$prog report: program" "$prog" "$(json "$f" 'r["program"].split()[0].split("/")[-1]')"
    check "$prog report: STATS" json "$(json "$f" 'r["options"]["STATS"]')"
    check "$prog report: STATS_FILE" "$dir/%e-%p.json" "$(json "$f" 'r["options"]["STATS_FILE"]')"
  done
  # a second run into the same directory counts only its own files
  "$W" --output "$dir" sh -c 'seq 3 | cat >/dev/null' 2> err
  check "second run's final line" "poolmalloc: reports in $dir (2 files)" "$(tail -n 1 err)"
  check "files after the second run" 4 "$(find "$dir" -type f | wc -l)"
  # --stats=text with --output: .txt files with text reports
  "$W" --output "$WORK/text" --stats=text /bin/true 2> err
  f=$(find "$WORK/text" -name 'true-*.txt')
  if [ -n "$f" ] && grep -q '^==== poolmalloc .* report begin' "$f"; then ok "text report in $f"; else fail "no text report true-PID.txt in $WORK/text"; fi
  # a relative --stats-file pattern lands where the wrapper was started, even
  # when the command changes directory
  mkdir -p sf
  (cd sf && "$W" --stats-file 'r-%e.json' sh -c 'cd / && exec ls >/dev/null' 2> ../err)
  if [ -f sf/r-ls.json ]; then ok "relative --stats-file: sf/r-ls.json"; else fail "relative --stats-file: no sf/r-ls.json ($(ls sf))"; fi
  check "--stats-file .json turns json reports on" json "$(json sf/r-ls.json 'r["options"]["STATS"]')"
  check "--stats-file final line" "poolmalloc: reports in $WORK/sf (1 file)" "$(tail -n 1 err)"
  # without --output/--stats-file nothing is printed after the command
  "$W" sh -c 'exit 0' 2> err
  check "no final line without --output" "" "$(cat err)"
}

t_options() {
  need python3
  local d=$WORK/o f
  "$W" --output "$d/a" --pool-size 128K /bin/true 2>/dev/null
  f=$(find "$d/a" -name 'true-*.json')
  check "--pool-size 128K: options.POOL_SIZE" 131072 "$(json "$f" 'r["options"]["POOL_SIZE"]')"
  check "--pool-size 128K: options.MAX_POOLED" 65536 "$(json "$f" 'r["options"]["MAX_POOLED"]')"
  "$W" --output="$d/b" --pool-size=256K --max-pooled=64K --decay-ms 250 --region-size 1G --disable /bin/true 2>/dev/null
  f=$(find "$d/b" -name 'true-*.json')
  check "--pool-size=256K" 262144 "$(json "$f" 'r["options"]["POOL_SIZE"]')"
  check "--max-pooled=64K" 65536 "$(json "$f" 'r["options"]["MAX_POOLED"]')"
  check "--decay-ms 250" 250 "$(json "$f" 'r["options"]["DECAY_MS"]')"
  check "--region-size 1G" 1073741824 "$(json "$f" 'r["options"]["REGION_SIZE"]')"
  check "--disable" 1 "$(json "$f" 'r["options"]["DISABLE"]')"
  # the option wins over the variable in the environment
  POOLMALLOC_POOL_SIZE=16K "$W" --output "$d/c" --pool-size 32K /bin/true 2>/dev/null
  check "--pool-size over POOLMALLOC_POOL_SIZE" 32768 "$(json "$(find "$d/c" -name 'true-*.json')" 'r["options"]["POOL_SIZE"]')"
  # a variable without an option passes through
  POOLMALLOC_DECAY_MS=77 "$W" --output "$d/e" /bin/true 2>/dev/null
  check "POOLMALLOC_DECAY_MS passes through" 77 "$(json "$(find "$d/e" -name 'true-*.json')" 'r["options"]["DECAY_MS"]')"
  # --stats json (separate word): a JSON report on stderr
  "$W" --stats json --pool-size 128K /bin/true 2> err.json
  check "--stats json on stderr" 131072 "$(json err.json 'r["options"]["POOL_SIZE"]')"
  "$W" --stats /bin/true 2> err.txt
  if grep -q '^==== poolmalloc .* report begin' err.txt; then ok "--stats: text report"; else fail "--stats: no text report on stderr"; fi
  # --verbose and --signal
  "$W" --verbose --signal USR2 ls / 2> err.v >/dev/null
  if grep -q 'POOLMALLOC_VERBOSE=1' err.v; then ok "--verbose"; else fail "--verbose: no option line: $(cat err.v)"; fi
  if grep -qE 'POOLMALLOC_STATS_SIGNAL=(12|USR2|SIGUSR2)' err.v; then ok "--signal USR2"; else fail "--signal USR2 not in: $(cat err.v)"; fi
  # a bad value goes to the library, which warns and runs on
  local st
  "$W" --pool-size 12x ls / 2> err.bad >/dev/null; st=$?
  check "bad value: command still runs" 0 "$st"
  if grep -q "POOLMALLOC_POOL_SIZE='12x'" err.bad; then ok "bad value: the library's warning"; else fail "bad value: no warning from the library: $(cat err.bad)"; fi
  # a signal to the wrapper is passed on: --signal USR2 writes a report
  "$W" --stats-file "$WORK/sig-%p.txt" --signal USR2 sleep 30 2>/dev/null &
  local wpid=$! cpid='' cgt
  # wait until the command (the wrapper's child) catches USR2 (bit 11 of SigCgt)
  for _ in $(seq 200); do
    cpid=$(pgrep -P "$wpid" | head -n 1)
    if [ -n "$cpid" ]; then
      cgt=$(awk '/^SigCgt/ {print $2}' "/proc/$cpid/status" 2>/dev/null)
      [ -n "$cgt" ] && (( 0x$cgt & 0x800 )) && break
    fi
    sleep 0.05
  done
  kill -USR2 "$wpid"
  for _ in $(seq 100); do grep -q 'report end' "$WORK"/sig-*.txt 2>/dev/null && break; sleep 0.05; done
  # the report came from the signal: sleep is still running
  if grep -q 'program: *sleep 30' "$WORK"/sig-*.txt 2>/dev/null && kill -0 "$cpid" 2>/dev/null; then
    ok "USR2 to the wrapper gave a report while the command runs"
  else
    fail "USR2 sent to the wrapper: no report from the running command"
  fi
  kill -TERM "$wpid"
  wait "$wpid"
  check "status after SIGTERM to the wrapper" 143 "$?"
  sleep 0.1
  if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null; then fail "the command outlived the wrapper"; kill -KILL "$cpid"; fi
}

t_version() {
  local out want v
  out=$("$W" --version 2>&1)
  # the version as the library reports it: its JSON report, and the verbose line
  v=$(LD_PRELOAD=$LIB POOLMALLOC_STATS=json /bin/true 2>&1 | sed -n 's/.*"version":"\([^"]*\)".*/\1/p')
  [ -n "$v" ] || fail "no version in the library's JSON report"
  check "--version against the JSON report" "poolmalloc $v" "$out"
  want=$(LD_PRELOAD=$LIB POOLMALLOC_VERBOSE=1 ls / 2>&1 >/dev/null | sed -n 's/^poolmalloc: version \([^,]*\),.*/\1/p')
  check "--version against the verbose line" "poolmalloc $want" "$out"
  if command -v python3 >/dev/null; then
    want=$(LD_PRELOAD=$LIB python3 -c 'import ctypes; f=ctypes.CDLL(None).poolmalloc_version; f.restype=ctypes.c_char_p; print(f().decode())')
    check "--version against poolmalloc_version()" "poolmalloc $want" "$out"
  fi
  # a library with another version: the wrapper must read it, not know it
  check "--version of the 9.8.7 stand-in" "poolmalloc 9.8.7" "$("$W" --library "$FAKE" --version 2>&1)"
  check "--version with POOLMALLOC_LIB" "poolmalloc 9.8.7" "$(POOLMALLOC_LIB=$FAKE "$W" --version 2>&1)"
  # without python3: the JSON report (real library) or the file name (stand-in)
  mkdir -p nopy
  printf '#!/bin/sh\nexit 1\n' > nopy/python3 && chmod +x nopy/python3
  check "--version without python3" "poolmalloc $v" "$(PATH=$WORK/nopy:$PATH "$W" --version 2>&1)"
  check "--version of the stand-in without python3" "poolmalloc 9.8.7" "$(PATH=$WORK/nopy:$PATH "$W" --library "$FAKE" --version 2>&1)"
  # POOLMALLOC_* in the environment do not leak into the probe
  out=$(POOLMALLOC_STATS=1 POOLMALLOC_VERBOSE=1 "$W" --version 2>&1)
  check "--version with POOLMALLOC_STATS=1 set" "poolmalloc $v" "$out"
}

t_unknown_option() {
  local st
  "$W" --no-such-option touch ran 2> err; st=$?
  check "unknown option: status" 2 "$st"
  grep -q -- "--no-such-option" err && ok "message names the option" || fail "message does not name the option: $(cat err)"
  grep -qi usage err && ok "usage printed" || fail "no usage: $(cat err)"
  [ ! -e ran ] && ok "command not run" || fail "the command ran"
  "$W" -x touch ran 2>/dev/null; check "unknown short option -x" 2 "$?"
  "$W" 2>/dev/null; check "no command" 2 "$?"
  "$W" --pool-size 2>/dev/null; check "--pool-size without a value" 2 "$?"
  "$W" --output --stats touch ran 2>/dev/null; check "--output followed by an option" 2 "$?"
  [ ! -e ran ] && ok "command never run" || fail "the command ran"
  # after --, words that look like options are the command
  "$W" -- --not-an-option 2> err; st=$?
  check "-- then a command named like an option: not found" 127 "$st"
}

t_missing_library() {
  local st
  "$W" --library "$WORK/nonexistent.so" touch ran 2> err; st=$?
  check "--library missing: status" 2 "$st"
  grep -q "nonexistent.so" err && ok "message names the path" || fail "message does not name the path: $(cat err)"
  POOLMALLOC_LIB=$WORK/nonexistent2.so "$W" touch ran 2> err; st=$?
  check "POOLMALLOC_LIB missing: status" 2 "$st"
  grep -q "nonexistent2.so" err && ok "message names POOLMALLOC_LIB's path" || fail "message: $(cat err)"
  "$W" --library "$WORK" touch ran 2> err; check "--library a directory" 2 "$?"
  # without POOLMALLOC_LIB from here on: the wrapper searches
  unset POOLMALLOC_LIB
  # a copy of the wrapper installed where no library is beside it
  mkdir -p inst/bin inst/lib
  cp "$W" inst/bin/poolmalloc
  inst/bin/poolmalloc touch ran 2> err; st=$?
  check "installed without a library: status" 2 "$st"
  grep -q "not found" err && ok "message: $(cat err)" || fail "no 'not found' message: $(cat err)"
  [ ! -e ran ] && ok "command not run" || fail "the command ran"
  # ...and finds one in lib/<multiarch>/
  mkdir -p inst/lib/x86_64-linux-gnu
  cp "$LIBREAL" inst/lib/x86_64-linux-gnu/libpoolmalloc.so
  check "installed, library in lib/<multiarch>" "$WORK/inst/lib/x86_64-linux-gnu/libpoolmalloc.so" \
    "$(inst/bin/poolmalloc sh -c 'echo "$LD_PRELOAD"' 2>&1)"
  # through a symlink to the wrapper, it still looks beside the real file
  ln -s "$WORK/inst/bin/poolmalloc" link
  check "through a symlink" "$WORK/inst/lib/x86_64-linux-gnu/libpoolmalloc.so" \
    "$(./link sh -c 'echo "$LD_PRELOAD"' 2>&1)"
  # a checkout: scripts/poolmalloc beside CMakeLists.txt finds build/libpoolmalloc.so
  mkdir -p co/scripts co/build
  touch co/CMakeLists.txt
  cp "$W" co/scripts/poolmalloc
  co/scripts/poolmalloc true 2> err; st=$?
  check "checkout without build/: status" 2 "$st"
  grep -q "cmake --build" err && ok "says how to build" || fail "no build hint: $(cat err)"
  ln -s "$LIBREAL" co/build/libpoolmalloc.so
  check "checkout: build/libpoolmalloc.so" "$LIBREAL" "$(co/scripts/poolmalloc sh -c 'echo "$LD_PRELOAD"' 2>&1)"
}

t_help() {
  local out st o v
  out=$("$W" --help 2>&1); st=$?
  check "--help: status" 0 "$st"
  check "-h same as --help" "$out" "$("$W" -h 2>&1)"
  for o in --stats --output --stats-file --only --pool-size --max-pooled --decay-ms --region-size \
           --lifetime --check-full --disable --verbose --signal --no-resolve --library --lib --version --help; do
    grep -q -- "$o\b" <<< "$out" || fail "--help does not list $o"
  done
  # every variable of the library's option table
  [ -x "$PMOPT" ] || { fail "pm-options $PMOPT not found"; return; }
  local n=0
  for v in $("$PMOPT" | awk '{print $1}'); do
    n=$((n + 1))
    grep -q "$v" <<< "$out" || fail "--help does not list $v"
  done
  [ "$n" -ge 5 ] && ok "$n variables listed" || fail "pm-options listed only $n variables"
  # the wrapper has no copy of the library's option table: without
  # pm-options beside the library it asks the library itself
  mkdir -p lonely
  cp "$LIBREAL" lonely/libpoolmalloc.so
  out=$("$W" --library lonely/libpoolmalloc.so --help 2>&1)
  grep -q '^variables (names and defaults from the library' <<< "$out" && ok "lonely library: its own list" ||
    fail "lonely library: $(grep '^variables' <<< "$out")"
  for v in $("$PMOPT" | awk '{print $1}'); do
    grep -q "^  $v " <<< "$out" || fail "the library's own list lacks $v"
  done
  # ...and a pm-options that does not match the library is not believed
  printf '#!/bin/sh\necho "POOLMALLOC_BOGUS 1  not an option"\n' > lonely/pm-options && chmod +x lonely/pm-options
  out=$("$W" --library lonely/libpoolmalloc.so --help 2>&1)
  grep -q BOGUS <<< "$out" && fail "a pm-options that does not match the library was believed" ||
    ok "a mismatching pm-options is ignored"
  # no variable name the wrapper has no option for is written in it
  for v in LIFETIME_RATE LIFETIME_THRESHOLD; do
    grep -q "POOLMALLOC_$v" "$W" && fail "scripts/poolmalloc names POOLMALLOC_$v: a copy of the option table" ||
      ok "scripts/poolmalloc does not name POOLMALLOC_$v"
  done
  # every variable the options set is one the library has
  for v in $("$W" --help | sed '/^variables/,$d' | grep -o 'POOLMALLOC_[A-Z_]*[A-Z]' | sort -u); do
    [ "$v" = POOLMALLOC_LIB ] || "$PMOPT" | grep -q "^$v " || fail "--help's options name $v, which pm-options does not list"
  done
  # every option --help lists is one the wrapper accepts
  local opts
  opts=$(sed -n 's/^  \(-[-a-z]*\)\(, \(--[a-z-]*\)\)\{0,1\}.*/\1 \3/p' <<< "$("$W" --help)")
  for o in $opts; do
    case $o in -h|--help|--version) continue ;; esac
    "$W" "$o" x ./no-such-command > /dev/null 2> err
    grep -q "unknown option" err && fail "--help lists $o, which the wrapper does not accept"
  done
  [ "$(wc -w <<< "$opts")" -ge 18 ] && ok "$(wc -w <<< "$opts") options in --help, all accepted" || fail "options in --help: $opts"
  # --help works without a library
  out=$("$W" --library "$WORK/nonexistent.so" --help 2>&1); st=$?
  check "--help without a library: status" 0 "$st"
}

# a version-manager shim (as pyenv's: a bash script in shims/ that runs a
# few processes, then `exec MANAGER exec NAME "$@"`; the manager runs a few
# more, then the real program): one report and one warning, not one per
# process of the shim
t_shim() {
  local m=$WORK/mgr out n
  mkdir -p "$m/shims" "$m/libexec" "$m/versions/1.0/bin"
  ln -s "$(type -P ls)" "$m/versions/1.0/bin/prog"
  ln -s "$(type -P env)" "$m/versions/1.0/bin/showenv"
  cat > "$m/libexec/fakeenv" <<'MGR'
#!/usr/bin/env bash
# a stand-in for pyenv: `fakeenv which NAME`, `fakeenv exec NAME ARGS...`
root=${FAKEENV_ROOT:?}
cmd=$1 name=$2; shift 2
uname >/dev/null; cat /dev/null; sort < /dev/null
case $cmd in
  which) echo "$root/versions/1.0/bin/$name" ;;
  exec) ls "$root" >/dev/null; PATH="$root/versions/1.0/bin:$PATH" exec "$root/versions/1.0/bin/$name" "$@" ;;
esac
MGR
  for n in prog showenv; do
    cat > "$m/shims/$n" <<SHIM
#!/usr/bin/env bash
set -e
program="\${0##*/}"
export FAKEENV_ROOT="$m"
uname >/dev/null; cat /dev/null
exec "$m/libexec/fakeenv" exec "\$program" "\$@"
SHIM
  done
  chmod +x "$m/libexec/fakeenv" "$m"/shims/*
  export PATH="$m/shims:$PATH"
  # through the shim by hand: many reports (what the wrapper must avoid)
  n=$("$W" --no-resolve --stats prog / 2>&1 >/dev/null | grep -c 'report begin')
  [ "$n" -gt 3 ] && ok "--no-resolve: the shim's processes write $n reports" || fail "--no-resolve: expected several reports, got $n"
  out=$("$W" --stats prog / 2>&1 >/dev/null)
  check "reports through a shim" 1 "$(grep -c 'report begin' <<< "$out")"
  if grep -q 'program: .*/versions/1.0/bin/prog /$' <<< "$out"; then ok "the report is prog's"; else fail "the report is not prog's: $(grep program: <<< "$out")"; fi
  check "warnings of a bad value through a shim" 1 "$("$W" --pool-size 12x prog / 2>&1 >/dev/null | grep -c "POOLMALLOC_POOL_SIZE='12x'")"
  check "status through a shim" 2 "$(run_status prog /no/such/dir)"
  "$W" --output "$WORK/out" prog / >/dev/null 2>&1
  check "--output through a shim: files" "prog" "$(ls "$WORK/out" | sed 's/-[0-9]*\.json$//' | tr '\n' ' ' | sed 's/ $//')"
  # the program runs as `MANAGER exec` runs it: its directory first in PATH
  check "PATH of the program" "$m/versions/1.0/bin" "$("$W" showenv | sed -n 's/^PATH=\([^:]*\):.*/\1/p')"
  # --verbose says what it ran
  out=$("$W" --verbose prog / 2>&1 >/dev/null | grep -v '^poolmalloc: version')
  check "--verbose names the program" "poolmalloc: prog is a fakeenv shim: running $m/versions/1.0/bin/prog (--no-resolve runs the shim)" "$out"
  # this machine's pyenv, when python3 is one of its shims
  local py
  py=$(type -P python3 2>/dev/null)
  case $py in
    */shims/python3)
      out=$("$W" --stats python3 -c pass 2>&1)
      check "reports of python3 through $py" 1 "$(grep -c 'report begin' <<< "$out")" ;;
    *) echo "(python3 is not a shim here: ${py:-none})" ;;
  esac
}

# a launcher script that is no shim: --only NAME keeps NAME's reports
t_only() {
  local out f
  cat > launch <<'SH'
#!/bin/sh
uname >/dev/null; cat /dev/null; sort < /dev/null
exec ls "$@"
SH
  chmod +x launch
  out=$("$W" --stats ./launch / 2>&1 >/dev/null)
  n=$(grep -c 'report begin' <<< "$out")
  [ "$n" -ge 4 ] && ok "without --only: $n reports" || fail "without --only: expected 4 reports, got $n"
  out=$("$W" --stats --only ls ./launch / 2>&1 >/dev/null)
  check "--only ls: reports" 1 "$(grep -c 'report begin' <<< "$out")"
  if grep -q 'program: *ls /' <<< "$out"; then ok "--only ls: the report is ls's"; else fail "--only ls: not ls's: $out"; fi
  "$W" --only ls --output "$WORK/o" ./launch / > /dev/null 2> err
  check "--only ls --output: files" ls "$(ls "$WORK/o" | sed 's/-[0-9]*\.json$//' | tr '\n' ' ' | sed 's/ $//')"
  check "--only ls --output: final line" "poolmalloc: reports in $WORK/o (1 file)" "$(tail -n 1 err)"
  "$W" --only ls --stats-file "$WORK/sf/r-%e-%p.txt" ./launch / > /dev/null 2> err
  f=$(ls "$WORK/sf")
  case $f in r-ls-[0-9]*.txt) ok "--only ls --stats-file: $f" ;; *) fail "--only ls --stats-file: files [$f]" ;; esac
  out=$("$W" --stats --only nosuch ./launch / 2>&1 >/dev/null)
  check "--only nosuch: reports" 0 "$(grep -c 'report begin' <<< "$out")"
  if grep -q '^poolmalloc: --only nosuch: no process of that name wrote a report (reports came from: .*ls' <<< "$out"; then
    ok "--only nosuch: says so"; else fail "--only nosuch: $out"; fi
  # nothing left behind
  check "no private directory left" "" "$(ls -d "${TMPDIR:-/tmp}"/poolmalloc-only.* 2>/dev/null | while read -r d; do [ -O "$d" ] && [ "$(find "$d" -newer launch -maxdepth 0)" ] && echo "$d"; done)"
}

# a command killed by a signal: one line, the status 128+N
t_killed() {
  local st
  "$W" sh -c 'kill -ABRT $$' 2> err; st=$?
  check "SIGABRT: status" 134 "$st"
  check "SIGABRT: stderr" "poolmalloc: sh killed by SIGABRT" "$(cat err)"
  "$W" --stats-file "$WORK/r/%p.json" sh -c 'kill -SEGV $$' 2> err; st=$?
  check "SIGSEGV with --stats-file: status" 139 "$st"
  check "SIGSEGV with --stats-file: stderr" "poolmalloc: sh killed by SIGSEGV; no report written" "$(cat err)"
  "$W" --output "$WORK/o" sh -c 'ls >/dev/null; kill -KILL $$' 2> err; st=$?
  check "SIGKILL with --output: status" 137 "$st"
  check "SIGKILL with --output: stderr" "poolmalloc: sh killed by SIGKILL; reports in $WORK/o (1 file), none from it" "$(cat err)"
  "$W" --stats sh -c 'kill -ABRT $$' 2> err
  check "SIGABRT with --stats" "poolmalloc: sh killed by SIGABRT; no report from it" "$(cat err)"
  # an exit with the same status is no death by signal
  "$W" sh -c 'exit 134' 2> err; st=$?
  check "exit 134: status" 134 "$st"
  check "exit 134: stderr" "" "$(cat err)"
  # poolmalloc's own abort on a double free: its line and the wrapper's
  if command -v python3 >/dev/null 2>&1; then
    "$W" python3 -c 'import ctypes; c = ctypes.CDLL(None); c.malloc.restype = ctypes.c_void_p; p = c.malloc(16); c.free(ctypes.c_void_p(p)); c.free(ctypes.c_void_p(p))' 2> err; st=$?
    check "double free: status" 134 "$st"
    check "double free: stderr lines" 2 "$(wc -l < err)"
    if grep -q '^poolmalloc: free(): double free' err && grep -qE '^poolmalloc: python3 killed by SIGABRT$' err; then
      ok "double free: $(tr '\n' '|' < err)"; else fail "double free: $(cat err)"; fi
  fi
}

# --stats-file into a directory that does not exist: created, as --output does
t_stats_file_dir() {
  local d=$WORK/new/sub
  "$W" --stats-file "$d/%e-%p.json" ls / > /dev/null 2> err
  check "files in the new directory" 1 "$(find "$d" -name 'ls-*.json' 2>/dev/null | wc -l)"
  check "final line" "poolmalloc: reports in $d (1 file)" "$(tail -n 1 err)"
  if grep -q 'report begin\|"poolmalloc":' err; then fail "the report went to stderr"; else ok "no report on stderr"; fi
  # a directory that cannot be made: status 2, command not run
  touch afile
  "$W" --stats-file "$WORK/afile/x/%p.json" touch ran 2> err; st=$?
  check "uncreatable directory: status" 2 "$st"
  [ ! -e ran ] && ok "command not run" || fail "the command ran"
}

# a library that is not poolmalloc: one line, status 2, the command not run
t_not_poolmalloc() {
  local st m
  "$W" --library /etc/passwd touch ran 2> err; st=$?
  check "--library /etc/passwd: status" 2 "$st"
  check "--library /etc/passwd: message" "poolmalloc: '/etc/passwd' (--library) is not the poolmalloc library: not an ELF shared object" "$(cat err)"
  [ ! -e ran ] && ok "command not run" || { fail "the command ran"; rm -f ran; }
  POOLMALLOC_LIB=/etc/passwd "$W" touch ran 2> err; st=$?
  check "POOLMALLOC_LIB=/etc/passwd: status" 2 "$st"
  # another shared library: libm
  m=$(readlink -f "$(ldconfig -p 2>/dev/null | awk '/libm\.so\.6 .*x86-64/ {print $NF; exit}')" 2>/dev/null)
  [ -f "$m" ] || m=$(readlink -f /lib/x86_64-linux-gnu/libm.so.6)
  "$W" --library "$m" --stats touch ran 2> err; st=$?
  check "--library libm: status" 2 "$st"
  check "--library libm: message" "poolmalloc: '$m' (--library) is not the poolmalloc library: it does not export poolmalloc_version" "$(cat err)"
  [ ! -e ran ] && ok "command not run" || { fail "the command ran"; rm -f ran; }
  m=$(ldconfig -p 2>/dev/null | awk '/libmimalloc\.so\.2 / {print $NF; exit}')
  if [ -n "$m" ]; then
    "$W" --library "$m" --stats true 2> err; st=$?
    check "--library libmimalloc: status" 2 "$st"
  fi
  # without binutils (a fresh system): the same answers
  make_nobin
  PATH=$WORK/nobin "$W" --library /etc/passwd touch ran 2> err; st=$?
  check "no readelf, --library /etc/passwd: status" 2 "$st"
  PATH=$WORK/nobin "$W" --library "$m" touch ran 2> err; st=$?
  check "no readelf, --library ${m##*/}: status" 2 "$st"
  [ ! -e ran ] && ok "command not run" || { fail "the command ran"; rm -f ran; }
  check "no readelf, the real library" "$LIBREAL" "$(PATH=$WORK/nobin "$W" sh -c 'echo "$LD_PRELOAD"' 2>&1)"
  # --help still works and says why
  "$W" --library /etc/passwd --help > out 2>&1; st=$?
  check "--help with /etc/passwd: status" 0 "$st"
  grep -q '^library: not found: .*not the poolmalloc library' out && ok "--help says why" || fail "--help: $(tail -n 1 out)"
}

# another allocator: in LD_PRELOAD, or linked into the program
t_other_allocator() {
  local m st
  m=$(ldconfig -p 2>/dev/null | awk '/libmimalloc\.so\.2 / {print $NF; exit}')
  [ -n "$m" ] || m=$(ldconfig -p 2>/dev/null | awk '/libjemalloc\.so\.2 / {print $NF; exit}')
  if [ -n "$m" ]; then
    LD_PRELOAD=${m##*/} "$W" sh -c 'exit 5' 2> err; st=$?
    check "another allocator in LD_PRELOAD: status" 5 "$st"
    check "another allocator in LD_PRELOAD: lines" 1 "$(wc -l < err)"
    grep -q "^poolmalloc: LD_PRELOAD already holds ${m##*/}, another allocator" err && ok "warned: $(cat err)" || fail "no warning: $(cat err)"
  else
    echo "(no libmimalloc.so.2 or libjemalloc.so.2: LD_PRELOAD case not tried)"
  fi
  LD_PRELOAD=libm.so.6 "$W" sh -c 'exit 0' 2> err
  check "libm in LD_PRELOAD: no warning" "" "$(cat err)"
  # a program linked against libjemalloc
  if command -v cc >/dev/null 2>&1 && echo 'int main(void) { return 3; }' |
       cc -x c - -o je -Wl,--no-as-needed -ljemalloc 2>/dev/null; then
    "$W" ./je 2> err; st=$?
    check "linked against jemalloc: status" 3 "$st"
    check "linked against jemalloc: message" "poolmalloc: ./je is linked against libjemalloc.so.2: poolmalloc serves its malloc and free, so that allocator's own statistics (e.g. redis INFO memory) describe an allocator that sees almost nothing" "$(cat err)"
    make_nobin
    PATH=$WORK/nobin "$W" ./je 2> err2
    check "linked against jemalloc, no readelf: same message" "$(cat err)" "$(cat err2)"
  else
    echo "(cc -ljemalloc failed: linked case not tried)"
  fi
  if command -v redis-server >/dev/null 2>&1; then
    "$W" redis-server --version > /dev/null 2> err
    grep -q '^poolmalloc: redis-server is linked against libjemalloc' err && ok "redis-server: $(cat err)" ||
      echo "(redis-server not linked against jemalloc here: $(cat err))"
  fi
  "$W" ls / > /dev/null 2> err
  check "ls: no warning" "" "$(cat err)"
}

# commands the loader runs without the library: one line, and they still run
t_static_setuid() {
  local st s=''
  if command -v cc >/dev/null 2>&1 && echo 'int main(void) { return 4; }' | cc -x c - -static -o static 2>/dev/null; then
    s=./static
  fi
  if [ -n "$s" ]; then
    "$W" "$s" 2> err; st=$?
    check "static: status" 4 "$st"
    check "static: message" "poolmalloc: ./static is statically linked: LD_PRELOAD does not apply to it, it runs without poolmalloc (no report)" "$(cat err)"
    make_nobin
    PATH=$WORK/nobin "$W" "$s" 2> err2
    check "static, no readelf: same message" "$(cat err)" "$(cat err2)"
    PATH=$WORK/nobin "$W" ls / > /dev/null 2> err2
    check "dynamic ls, no readelf: no message" "" "$(cat err2)"
  else
    echo "(cc -static failed: static program not tried)"
  fi
  if [ -x /sbin/ldconfig ] && file -L /sbin/ldconfig 2>/dev/null | grep -q 'static'; then
    out=$("$W" /sbin/ldconfig -p 2> err | head -n 1)
    [ -n "$out" ] && ok "ldconfig ran: $out" || fail "ldconfig did not run"
    grep -q '^poolmalloc: /sbin/ldconfig is statically linked' err && ok "ldconfig: static" || fail "ldconfig: $(cat err)"
  fi
  "$W" ls / > /dev/null 2> err
  check "dynamic ls: no message" "" "$(cat err)"
  # set-user-ID to another user (as root: a copy of id owned by nobody)
  if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
    cp "$(type -P id)" suid && chown nobody suid && chmod 4755 suid
    out=$("$W" ./suid -un 2> err); st=$?
    check "set-user-ID: status" 0 "$st"
    check "set-user-ID: message" "poolmalloc: ./suid is set-user-ID: the loader ignores LD_PRELOAD for it, it runs without poolmalloc (no report)" "$(cat err)"
  else
    echo "(not root: set-user-ID not tried)"
  fi
}

case " $tests " in
  *" $test "*) "t_$test" ;;
  *) echo "unknown test '$test'; tests: $tests" >&2; exit 2 ;;
esac
if [ "$fails" -ne 0 ]; then
  echo "FAIL: $test: $fails check(s) failed; work directory kept: $WORK" >&2
  exit 1
fi
cd / && rm -rf "$WORK"
echo "PASS: $test"
