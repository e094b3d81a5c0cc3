#!/bin/bash
# Real-program test: redis-server, once without and once with
# LD_PRELOAD=PRELOAD (only the server is preloaded; redis-cli,
# redis-benchmark and redis-check-rdb run without it).  Each run:
#   - starts redis-server on 127.0.0.1 at a free high port (--save ""
#     --appendonly no --dir <run dir>) and waits for PING;
#   - loads known data: 10,000 SETs, hashes, lists, sets, sorted sets and
#     64 values of 256 KiB through redis-cli --pipe, then DEBUG POPULATE
#     100000;
#   - runs redis-benchmark (-n 20000 -q, 6 tests, on db 9) and issues BGSAVE
#     while it runs: the forked child that writes dump.rdb runs under the
#     preload too; waits for rdb_bgsave_in_progress:0 and
#     rdb_last_bgsave_status:ok;
#   - checks DBSIZE, GET/HGETALL/LRANGE/ZRANGE values and DEBUG DIGEST of db 0
#     before and after, deletes part of the data (UNLINK/FLUSHDB ASYNC free
#     in redis's background thread), runs MEMORY PURGE/INFO;
#   - SHUTDOWN NOSAVE: the server must exit with status 0 in time (else
#     kill -9 and fail); dump.rdb must be non-empty and pass redis-check-rdb;
#   - starts a second server on that dump.rdb and checks that it holds the
#     data saved by the BGSAVE child (DBSIZE, DEBUG DIGEST), then shuts it
#     down the same way.
# The deterministic output (no timing numbers: redis-benchmark lines are
# reduced to the test names) must be the same in both runs, the exit status
# 0, and the preloaded servers must print the POOLMALLOC_VERBOSE=1 banner.
# Every wait is bounded.  Exits 77 (skipped) if redis is not installed.
#
# usage: run_real_redis.sh PRELOAD WORKDIR [SECONDS]
#   SECONDS bounds redis-benchmark; other waits have fixed bounds.
set -u
. "$(dirname "$0")/lib.sh"

[ $# -ge 2 ] || pm_fail "usage: $0 PRELOAD WORKDIR [SECONDS]"
preload=$1 work=$2 secs=${3:-120}
pm_check_preload_file "$preload"
pm_need redis-server redis-cli redis-benchmark redis-check-rdb awk timeout
pm_workdir "$work"
cd "$work" || pm_fail "cannot enter $work"
export LC_ALL=C TZ=UTC

srv_pid="" bench_pid="" port=""
cleanup() {
    # Only the processes this script started, by pid.
    if [ -n "$bench_pid" ]; then
        kill -9 "$bench_pid" 2>/dev/null
        wait "$bench_pid" 2>/dev/null
    fi
    if [ -n "$srv_pid" ]; then
        echo "killing redis-server pid $srv_pid" >&2
        kill -9 "$srv_pid" 2>/dev/null
        wait "$srv_pid" 2>/dev/null
    fi
    bench_pid="" srv_pid=""
}
trap cleanup EXIT

# The protocol stream loaded with redis-cli --pipe (the same for both runs).
awk 'function cmd(n, a,   i, s) {
        s = "*" n "\r\n"
        for (i = 1; i <= n; i++) s = s "$" length(a[i]) "\r\n" a[i] "\r\n"
        printf "%s", s
    }
    BEGIN {
        for (i = 0; i < 10000; i++) {
            a[1] = "SET"; a[2] = "key:" i; a[3] = "value-" i "-" substr("abcdefghijklmnopqrstuvwxyz", 1 + i % 26)
            cmd(3, a)
        }
        for (i = 0; i < 1000; i++) {
            a[1] = "HSET"; a[2] = "hash:" i; n = 2
            for (f = 0; f < 1 + i % 40; f++) { a[++n] = "f" f; a[++n] = "v" (i * f) }
            cmd(n, a)
        }
        for (i = 0; i < 300; i++) {
            a[1] = "RPUSH"; a[2] = "list:" i; n = 2
            for (e = 0; e < 200; e++) a[++n] = "elem-" i "-" e
            cmd(n, a)
        }
        for (i = 0; i < 300; i++) {
            a[1] = "ZADD"; a[2] = "zset:" i; n = 2
            for (e = 0; e < 150; e++) { a[++n] = (e * 7919 + i) % 1000; a[++n] = "m" e }
            cmd(n, a)
        }
        for (i = 0; i < 300; i++) {
            a[1] = "SADD"; a[2] = "set:" i; n = 2
            for (e = 0; e < 100; e++) a[++n] = "s" (e * i % 1000)
            cmd(n, a)
        }
        big = "0123456789abcdef"
        while (length(big) < 262144) big = big big
        for (i = 0; i < 64; i++) {
            a[1] = "SET"; a[2] = "big:" i; a[3] = i ":" substr(big, 1, 262144 - 1000 * i)
            cmd(3, a)
        }
    }' >load.resp || pm_fail "cannot generate the redis protocol stream"

# cli ARGS... : redis-cli on the current server, bounded, never preloaded.
cli() {
    timeout -k 5 30 env -u LD_PRELOAD redis-cli -h 127.0.0.1 -p "$port" "$@"
}

# start_server MODE DIR : start redis-server (preloaded if MODE is preload)
# at a free port; sets srv_pid and port.  Returns 1 if it does not answer
# PING within 30 s.
start_server() {
    local mode=$1 dir=$2
    for _ in 1 2 3 4 5; do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        # Something already listening there: take another port.
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
        set -- --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
            --dir "$dir" --dbfilename dump.rdb --daemonize no --logfile "" \
            --enable-debug-command local --lazyfree-lazy-user-del yes
        if [ "$mode" = preload ]; then
            env LD_PRELOAD="$preload" POOLMALLOC_VERBOSE=1 redis-server "$@" >>"$dir/server.log" 2>&1 &
        else
            env -u LD_PRELOAD redis-server "$@" >>"$dir/server.log" 2>&1 &
        fi
        srv_pid=$!
        for _ in $(seq 1 300); do
            if ! kill -0 "$srv_pid" 2>/dev/null; then
                wait "$srv_pid"
                echo "redis-server exited with status $? at start" >&2
                srv_pid=""
                break
            fi
            [ "$(cli PING 2>/dev/null)" = PONG ] && return 0
            sleep 0.1
        done
        if [ -n "$srv_pid" ]; then
            echo "redis-server (pid $srv_pid) does not answer PING within 30 s" >&2
            return 1
        fi
        grep -q 'Address already in use' "$dir/server.log" || return 1
    done
    echo "no free port found" >&2
    return 1
}

# stop_server : SHUTDOWN NOSAVE; the server must exit with status 0 within
# 30 s, else it is killed and the function fails.
stop_server() {
    local st
    cli SHUTDOWN NOSAVE >/dev/null 2>&1 # no reply when it works
    for _ in $(seq 1 300); do
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$srv_pid" 2>/dev/null; then
        echo "redis-server (pid $srv_pid) still running 30 s after SHUTDOWN NOSAVE: killed" >&2
        kill -9 "$srv_pid"
        wait "$srv_pid"
        srv_pid=""
        return 1
    fi
    wait "$srv_pid"
    st=$?
    srv_pid=""
    if [ "$st" -ne 0 ]; then
        echo "redis-server exited with status $st after SHUTDOWN NOSAVE" >&2
        return 1
    fi
    echo "server exit status 0"
}

# wait_bgsave : until INFO persistence shows no save in progress (60 s).
wait_bgsave() {
    local info
    for _ in $(seq 1 600); do
        info=$(cli INFO persistence | tr -d '\r')
        if echo "$info" | grep -qx 'rdb_bgsave_in_progress:0'; then
            echo "$info" | grep -x 'rdb_last_bgsave_status:ok' || {
                echo "BGSAVE failed:" >&2
                echo "$info" >&2
                return 1
            }
            return 0
        fi
        sleep 0.1
    done
    echo "BGSAVE still in progress after 60 s" >&2
    return 1
}

# show_data : deterministic view of db 0.
show_data() {
    echo "dbsize $(cli DBSIZE)"
    echo "digest $(cli DEBUG DIGEST)"
    cli MGET key:0 key:4242 key:9999 pop:0 pop:99999 | tr '\n' ' '
    echo
    cli HGETALL hash:39 | md5sum
    cli LRANGE list:299 195 -1 | tr '\n' ' '
    echo
    cli ZRANGE zset:7 0 4 WITHSCORES | tr '\n' ' '
    echo
    echo "scard $(cli SCARD set:123) strlen $(cli STRLEN big:5) $(cli GETRANGE big:63 0 9)"
}

# scenario MODE : one complete run in $work/MODE; deterministic output on
# stdout, diagnostics on stderr.  Returns non-zero at the first failure.
scenario() {
    local mode=$1 dir=$work/$1 st
    mkdir -p "$dir" || return 1
    start_server "$mode" "$dir" || return 1
    echo "ping $(cli PING)"

    timeout -k 5 120 env -u LD_PRELOAD redis-cli -h 127.0.0.1 -p "$port" --pipe <load.resp >"$dir/pipe.out" 2>&1 || {
        cat "$dir/pipe.out" >&2
        return 1
    }
    grep -o 'errors: [0-9]*, replies: [0-9]*' "$dir/pipe.out"
    echo "populate $(cli DEBUG POPULATE 100000 pop 48)"
    show_data

    # redis-benchmark on db 9 in the background, BGSAVE while it runs.
    timeout -k 5 "$secs" env -u LD_PRELOAD redis-benchmark -h 127.0.0.1 -p "$port" --dbnum 9 \
        -n 20000 -c 20 -q -t set,get,lpush,lpop,hset,mset >"$dir/bench.out" 2>&1 &
    bench_pid=$!
    for _ in $(seq 1 100); do # until its clients are connected (10 s)
        [ "$(cli INFO clients | tr -d '\r' | sed -n 's/^connected_clients://p')" -gt 5 ] 2>/dev/null && break
        sleep 0.1
    done
    echo "bgsave $(cli BGSAVE)"
    kill -0 "$bench_pid" 2>/dev/null || echo "note: redis-benchmark had already finished at BGSAVE" >&2
    wait_bgsave || return 1
    wait "$bench_pid"
    st=$?
    bench_pid=""
    if [ "$st" -ne 0 ]; then
        echo "redis-benchmark exits $st" >&2
        tail -c 2000 "$dir/bench.out" >&2
        return 1
    fi
    # Test names only, without the numbers.
    tr '\r' '\n' <"$dir/bench.out" | grep ' requests per second' | sed 's/:.*//; s/^ *//' | tr '\n' ' '
    echo
    tr '\r' '\n' <"$dir/bench.out" | grep -q -i 'error' && {
        echo "redis-benchmark reports errors" >&2
        return 1
    }

    echo "flush db 9 $(cli -n 9 FLUSHDB ASYNC)"
    show_data
    # Free in the main thread and in the lazy-free thread, then introspection.
    cli DEL $(seq -f 'key:%g' 0 2 9999) | tr '\n' ' '
    cli UNLINK $(seq -f 'list:%g' 0 199) | tr '\n' ' '
    cli UNLINK $(seq -f 'big:%g' 0 31) | tr '\n' ' '
    echo
    echo "memory purge $(cli MEMORY PURGE)"
    cli INFO all >/dev/null || return 1
    cli MEMORY STATS >/dev/null || return 1
    show_data
    stop_server || return 1

    # The dump written by the BGSAVE child.
    [ -s "$dir/dump.rdb" ] || {
        echo "dump.rdb is missing or empty" >&2
        return 1
    }
    if ! timeout -k 5 60 env -u LD_PRELOAD redis-check-rdb "$dir/dump.rdb" >"$dir/check.out" 2>&1 ||
        ! grep -q 'RDB looks OK' "$dir/check.out"; then
        cat "$dir/check.out" >&2
        return 1
    fi
    echo "redis-check-rdb: RDB looks OK"
    if ! grep -q 'Background saving terminated with success' "$dir/server.log" ||
        ! grep -q ':C .*DB saved on disk' "$dir/server.log"; then
        echo "server log does not show a successful BGSAVE by a child" >&2
        return 1
    fi

    # A second server loads it: db 0 as it was at BGSAVE time.
    start_server "$mode" "$dir" || return 1
    echo "flush db 9 $(cli -n 9 FLUSHDB)"
    show_data
    stop_server || return 1
}

fail=0
for mode in plain preload; do
    echo "== redis $mode"
    start=$(date +%s)
    scenario "$mode" >"$work/$mode.out" 2>"$work/$mode.err"
    rc=$?
    cleanup 2>>"$work/$mode.err" # after a failure: a server or benchmark may be left
    echo "   exit $rc, $(($(date +%s) - start)) s"
    if [ "$rc" -ne 0 ]; then
        echo "FAIL: redis scenario fails ($mode)"
        pm_show "$work/$mode.err" "diagnostics ($mode)"
        pm_show "$work/$mode/server.log" "server log ($mode)"
        fail=1
    fi
done
if [ "$fail" -eq 0 ] && ! diff -u "$work/plain.out" "$work/preload.out" >"$work/diff.txt"; then
    echo "FAIL: output differs between glibc (-) and the preload (+):"
    head -n 60 "$work/diff.txt"
    fail=1
fi
if [ "$fail" -ne 0 ]; then
    echo "(work directory kept: $work)"
    exit 1
fi
pm_check_preload_stderr "$preload" "$work/preload/server.log" "redis-server"
if pm_is_poolmalloc "$preload"; then
    n=$(grep -c '^poolmalloc' "$work/preload/server.log")
    [ "$n" -ge 2 ] || pm_fail "redis-server: $n poolmalloc banners in the log, expected one per server start (2)"
fi
echo "PASS: redis: identical output ($(wc -l <"$work/plain.out") lines), clean shutdowns, BGSAVE dump verified"
pm_cleanup "$work"
exit 0
