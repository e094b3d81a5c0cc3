"""redis: redis-server under the allocator, driven by redis-benchmark (not
preloaded) over the loopback address; see "redis" in docs/benchmarks.md.
RedisServer is also what the frag family's fill/delete/refill workload runs."""
import csv
import math
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .common import apt_install, can_install, log
from .peers import child_env, find_lib, preload_vars, preload_words
from .runner import Exit
from .workloads import Workload

REDIS_TESTS = ["SET", "GET", "LPUSH", "LPOP", "INCR", "SADD", "HSET", "MSET"]
REDIS_SIZES = [16, 256, 4096]          # -d: value size in bytes
REDIS_CLIENTS, REDIS_PIPELINE = 50, 16
REDIS_REQUESTS, REDIS_QUICK_REQUESTS = 50000, 1000  # -n, per test; also the keyspace (-r)
REDIS_READY_TIMEOUT = 20               # seconds for the server to answer PING
REDIS_SHUTDOWN_TIMEOUT = 10            # seconds for it to exit after SHUTDOWN NOSAVE
REDIS_PACKAGE = "redis-tools"          # has redis-benchmark and the server binary (as
                                       # redis-check-rdb); redis-server only adds a service


class RedisSetup:
    """Finds (installs, when root) redis-server and redis-benchmark once, and
    works out which malloc the server uses and what LD_PRELOAD does to it."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.done = False
        self.why = None       # skipped: why
        self.server = self.bench = self.cli = None
        self.glibc_preload = None
        self.note = None

    def prepare(self):
        if not self.done:
            self.done = True
            self.why = self._find()
        return self.why

    def _install(self):
        if (shutil.which("redis-benchmark") and
                (shutil.which("redis-server") or shutil.which("redis-check-rdb"))):
            return
        line = f"apt-get install -y {REDIS_PACKAGE}"
        if not can_install():
            return f"skipped, redis not installed (sudo {line})"
        log(f"bench: installing redis: {line}")
        apt_install([REDIS_PACKAGE])
        return None

    def _server_binary(self):
        server = shutil.which("redis-server")
        if not server and shutil.which("redis-check-rdb"):
            # Debian's redis-server package only adds a symlink (and a service);
            # the binary picks its mode from the name it is run under
            server = self.workdir / "redis-server"
            if not server.is_symlink():
                server.symlink_to(shutil.which("redis-check-rdb"))
            server = str(server)
        return server

    def _find(self):
        why = self._install()
        if why:
            return why
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.bench = shutil.which("redis-benchmark")
        self.cli = shutil.which("redis-cli")
        server = self._server_binary()
        if not (server and self.bench):
            return f"skipped, redis-server or redis-benchmark missing ({REDIS_PACKAGE})"
        self.server = server
        res = subprocess.run([server, "--version"], capture_output=True, text=True,
                             env=child_env({}))
        m = re.search(r"v=(\S+).*malloc=(\S+)", res.stdout)
        if res.returncode != 0 or not m:
            return f"skipped, `{server} --version` failed: {res.stdout}{res.stderr}"[:300]
        self._describe_malloc(*m.groups())
        return None

    def _describe_malloc(self, version, malloc):
        linked = subprocess.run(["ldd", os.path.realpath(self.server)], capture_output=True,
                                text=True).stdout if shutil.which("ldd") else ""
        jelib = re.search(r"(libjemalloc\.so\S*)", linked)
        libc = find_lib("libc.so.6")
        what = f"redis-server {version}, built with malloc={malloc}"
        if malloc.startswith("jemalloc") and jelib:
            # it calls malloc/free/... by their plain names, so a preload wins
            # for them; with no preload they resolve to the linked jemalloc,
            # which is why the glibc column preloads libc.so.6 itself
            self.glibc_preload = str(libc) if libc else None
            self.note = (
                f"redis: {what}, dynamically linked to {jelib.group(1)}: LD_PRELOAD replaces "
                "its malloc, calloc, realloc, free and malloc_usable_size; mallctl, nallocx "
                "and malloc_stats_print still go to the linked jemalloc (statistics and a "
                "size hint only). " + (
                    f"The glibc column preloads {libc} so that glibc's malloc wins over the "
                    "linked jemalloc (without a preload redis would run on jemalloc)."
                    if libc else "libc.so.6 not found: the glibc column is the linked jemalloc."))
        elif malloc.startswith("jemalloc"):
            self.note = (f"redis: {what}, linked statically: LD_PRELOAD does NOT replace its "
                         "allocator, every column measures redis's own jemalloc")
        else:
            self.note = f"redis: {what}: LD_PRELOAD replaces it, glibc is the run without one"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resp_complete(data):
    """True when data holds a whole reply: one line, or a bulk string ($n) and
    its n bytes."""
    head, sep, rest = data.partition(b"\r\n")
    if not sep:
        return False
    if not head.startswith(b"$") or head == b"$-1":
        return True
    return len(rest) >= int(head[1:]) + 2


def redis_call(port, *args, timeout=2.0):
    """Sends one command (RESP) to 127.0.0.1:port; returns the reply's first
    line, or for a bulk string ($n) its content."""
    msg = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(msg.encode())
        data = b""
        while not resp_complete(data):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, rest = data.decode(errors="replace").partition("\r\n")
    return rest[:-2] if head.startswith("$") and head != "$-1" else head


def proc_status_kib(pid, key):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def info_fields(text):
    """{field: value} of an INFO reply."""
    return dict(ln.split(":", 1) for ln in text.splitlines() if ":" in ln
                and not ln.startswith("#"))


def redis_server_argv(server, port, workdir):
    return [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--dir", str(workdir),
            "--dbfilename", f"bench-{port}.rdb", "--logfile", "", "--loglevel", "warning",
            "--jemalloc-bg-thread", "no"]


class DriveFailure(Exception):
    """A driven run that failed: how, for the Exit the driver returns."""

    def __init__(self, reason, code=1, sig=0, timed_out=False, maxrss=0):
        super().__init__(reason)
        self.reason, self.code, self.sig = reason, code, sig
        self.timed_out, self.maxrss = timed_out, maxrss


def exit_of(proc):
    """(exit code, signal) of a finished Popen."""
    st = proc.returncode
    return (0, -st) if st < 0 else (st, 0)


def how(proc):
    code, sig = exit_of(proc)
    if sig:
        try:
            return signal.Signals(sig).name
        except ValueError:
            return f"signal {sig}"
    return f"exit {code}"


class RedisServer:
    """One redis-server under a preload on a free loopback port, in its own
    process group; its output goes to err_f. Failures raise DriveFailure."""

    def __init__(self, setup, preload, err_f):
        self.setup, self.err_f = setup, err_f
        self.env = child_env(preload_vars(preload))
        self.proc = self.port = None

    def argv(self):
        return redis_server_argv(self.setup.server, self.port, self.setup.workdir)

    def _wait_pong(self, deadline):
        ready_by = min(deadline, time.perf_counter() + REDIS_READY_TIMEOUT)
        while self.proc.poll() is None and time.perf_counter() < ready_by:
            try:
                if redis_call(self.port, "PING", timeout=1.0) == "+PONG":
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def start(self, deadline):
        for attempt in range(3):  # a port found free may be taken before the bind
            self.port = free_port()
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=self.err_f, stderr=self.err_f, env=self.env,
                                         cwd=self.setup.workdir, start_new_session=True)
            if self._wait_pong(deadline):
                return
            if self.proc.poll() is None:
                raise DriveFailure(f"no PONG within {REDIS_READY_TIMEOUT}s", 0, timed_out=True)
            code, sig = exit_of(self.proc)
            if sig or attempt == 2:
                raise DriveFailure(f"server exited before answering ({how(self.proc)})",
                                   code, sig)

    def check_alive(self, during):
        if self.proc.poll() is not None:
            code, sig = exit_of(self.proc)
            raise DriveFailure(f"server died during {during} ({how(self.proc)})", code or 1, sig)

    def call(self, *args, timeout=2.0):
        try:
            return redis_call(self.port, *args, timeout=timeout)
        except OSError as e:
            raise DriveFailure(f"{' '.join(args)} failed: {e}") from e

    def rss_kib(self):
        """(VmHWM, VmRSS) of the server, KiB."""
        return proc_status_kib(self.proc.pid, "VmHWM"), proc_status_kib(self.proc.pid, "VmRSS")

    def shutdown(self, maxrss):
        """SHUTDOWN NOSAVE and wait; returns (code, signal) of the server."""
        try:
            redis_call(self.port, "SHUTDOWN", "NOSAVE")
        except OSError:
            pass  # the server closes the connection as it exits
        try:
            self.proc.wait(timeout=REDIS_SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise DriveFailure(f"server still running {REDIS_SHUTDOWN_TIMEOUT}s after "
                               "SHUTDOWN NOSAVE", maxrss=maxrss) from None
        return exit_of(self.proc)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


def drive(session, setup, preload, timeout, out_f, err_f):
    """Runs session(server, deadline) -> (result line, peak RSS KiB) against a
    started server, then shuts it down; returns the Exit of the run. The result
    line goes to out_f once the server has exited."""
    t0 = time.perf_counter()
    server = RedisServer(setup, preload, err_f)
    try:
        server.start(t0 + timeout)
        line, hwm = session(server, t0 + timeout)
        code, sig = server.shutdown(maxrss=hwm or 0)
        out_f.write(line.encode())
        return Exit(code, sig, False, time.perf_counter() - t0, hwm or 0)
    except DriveFailure as f:
        err_f.write(f"bench: redis: {f.reason}\n".encode())
        return Exit(f.code, f.sig, f.timed_out, time.perf_counter() - t0, f.maxrss, f.reason)
    finally:
        server.kill()


def redis_bench_argv(bench, port, size, n):
    return [bench, "-h", "127.0.0.1", "-p", str(port), "-c", str(REDIS_CLIENTS),
            "-n", str(n), "-r", str(n), "-d", str(size), "-P", str(REDIS_PIPELINE),
            "-t", ",".join(t.lower() for t in REDIS_TESTS), "--csv"]


def parse_redis_csv(text):
    """{test: requests/s} from redis-benchmark --csv ("MSET (10 keys)" -> MSET)."""
    rps = {}
    for row in csv.reader(text.splitlines()):
        if len(row) >= 2 and row[0] != "test":
            try:
                rps[row[0].split()[0].upper()] = float(row[1])
            except (ValueError, IndexError):
                pass
    return rps


def run_redis_benchmark(server, size, n, deadline, out_f, err_f):
    """redis-benchmark (no preload) against the server; its requests/s per test."""
    out_f.write(f"server: {' '.join(shlex.quote(a) for a in server.argv())}\n".encode())
    bargv = redis_bench_argv(server.setup.bench, server.port, size, n)
    out_f.write(f"client: {' '.join(bargv)}\n".encode())
    try:
        res = subprocess.run(bargv, stdin=subprocess.DEVNULL, capture_output=True,
                             env=child_env({}), timeout=max(1, deadline - time.perf_counter()))
    except subprocess.TimeoutExpired:
        raise DriveFailure("redis-benchmark timed out", 0, timed_out=True) from None
    out_f.write(res.stdout)
    err_f.write(res.stderr)
    server.check_alive("the benchmark")
    if res.returncode != 0:
        raise DriveFailure(f"redis-benchmark exited {res.returncode}")
    rps = parse_redis_csv(res.stdout.decode(errors="replace"))
    missing = [t for t in REDIS_TESTS if not rps.get(t)]
    if missing:
        raise DriveFailure(f"no requests/s for {', '.join(missing)}")
    return rps


def bench_session(size, n, out_f, err_f):
    """The redis-d* session: the benchmark, DBSIZE, INFO memory and the server's
    VmHWM/VmRSS; returns (result line, VmHWM)."""
    def session(server, deadline):
        rps = run_redis_benchmark(server, size, n, deadline, out_f, err_f)
        keys = server.call("DBSIZE")
        if not re.fullmatch(r":[1-9]\d*", keys):
            raise DriveFailure(f"DBSIZE answered {keys!r} after the benchmark")
        info = server.call("INFO", "memory")
        used = re.search(r"^used_memory:(\d+)", info, re.M)
        if not used:
            raise DriveFailure(f"no used_memory in INFO memory: {info[:100]!r}")
        hwm, rss = server.rss_kib()
        geo = math.exp(sum(math.log(rps[t]) for t in REDIS_TESTS) / len(REDIS_TESTS))
        return (f"redis d={size} n={n} clients={REDIS_CLIENTS} pipeline={REDIS_PIPELINE} "
                f"keys={keys[1:]} live_kib={int(used.group(1)) // 1024} rps={geo:.0f} "
                + " ".join(f"rps_{t}={rps[t]:.0f}" for t in REDIS_TESTS)
                + f" peak_rss_kib={hwm} final_rss_kib={rss} check=ok\n"), hwm
    return session


def redis_drive(setup, size, n, preload, timeout, out_f, err_f):
    """One run: start the server (preloaded), wait for PING, run redis-benchmark,
    read the server's VmHWM/VmRSS, SHUTDOWN NOSAVE; returns an Exit whose maxrss
    is the server's peak RSS. The result line goes to out_f."""
    return drive(bench_session(size, n, out_f, err_f), setup, preload, timeout, out_f, err_f)


def redis_repro(setup, size, n, preload):
    port = 6399
    pre = "".join(shlex.quote(v) + " " for v in preload_words(preload))
    server = " ".join(shlex.quote(a) for a in redis_server_argv(setup.server, port, "/tmp"))
    bench = " ".join(redis_bench_argv(setup.bench, port, size, n))
    return (f"{pre}{server} & sleep 1; {bench}; redis-cli -p {port} shutdown nosave")


def redis_workloads(workdir, quick):
    setup = RedisSetup(workdir / "redis")
    n = REDIS_QUICK_REQUESTS if quick else REDIS_REQUESTS
    found = []
    for size in REDIS_SIZES:
        w = Workload(f"redis-d{size}",
                     f"redis-server (preloaded) + redis-benchmark -c {REDIS_CLIENTS} -P "
                     f"{REDIS_PIPELINE} -n {n} -d {size}: {','.join(REDIS_TESTS)}",
                     ["redis-server"], expect="check=ok", higher="rps")
        w.prepare = setup_prepare(setup, w)
        w.driver = (lambda pre, t, o, e, size=size: redis_drive(setup, size, n, pre, t, o, e))
        w.repro = lambda pre, size=size: redis_repro(setup, size, n, pre)
        found.append(w)
    return found


def setup_prepare(setup, w):
    """A Workload.prepare that finds redis once and fills in w's server, the
    glibc column's preload and the note."""
    def prepare():
        why = setup.prepare()
        if not why:
            w.argv = [setup.server]
            w.glibc_preload = setup.glibc_preload
            w.note = setup.note
        return why
    return prepare
