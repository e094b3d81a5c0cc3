"""Running a workload under an allocator: one child process with a timeout,
its wall time (taken here) and peak RSS (GNU time's %M, else wait4), the
checks of its result; interleaving of the allocators; medians."""
import csv
import os
import re
import shlex
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .common import GNU_TIME, log
from .peers import Preload, child_env, preload_words


@dataclass
class Run:
    workload: str
    allocator: str
    index: int
    ok: bool
    status: str     # "ok", "exit 3", "SIGSEGV", "timeout 30s", "no check=ok", ...
    wall: float     # seconds
    maxrss: int     # KiB
    out: str        # last line of standard output
    final_rss: int = None  # KiB, when the program reports final_rss_kib
    repro: str = ""  # command line that reproduces a failed run
    metrics: dict = field(default_factory=dict)  # key=number pairs of the result line


def result_metrics(line):
    """The numeric key=value pairs of a program's result line (units stripped:
    time=1.234s gives 1.234)."""
    found = {}
    for k, v in re.findall(r"(\w+)=(-?[0-9.]+(?:e[-+]?\d+)?)[a-z]*(?=\s|;|$)", line):
        try:
            found[k] = float(v)
        except ValueError:
            pass
    return found


@dataclass
class Exit:
    code: int       # exit status (when not killed by a signal)
    sig: int        # terminating signal or 0
    timed_out: bool
    wall: float
    maxrss: int     # KiB
    reason: str = None  # a driver's account of a failure


def command_line(w, preload, timefile):
    """The argv to spawn. LD_PRELOAD (and the column's other variables) are set
    by env(1) right before the program, so /usr/bin/time itself never runs on
    the allocator under test. Through GNU time, ru_maxrss is that of a child
    forked from a small process; spawned straight from Python it would start at
    this script's own RSS."""
    argv = (["/usr/bin/env"] + preload_words(preload) if preload else []) + w.argv
    if timefile:
        argv = [GNU_TIME, "-f", "%M", "-o", timefile] + argv
    return argv


def parse_time_file(path):
    """(signal or 0, maxrss KiB or None) from GNU time's output file."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return 0, None
    sig = 0
    for line in lines:
        m = re.match(r"Command terminated by signal (\d+)", line)
        if m:
            sig = int(m.group(1))
    last = lines[-1].strip() if lines else ""
    return sig, int(last) if last.isdigit() else None


def spawn_and_wait(argv, w, timeout, out_f, err_f):
    """Runs argv in its own session with a kill timer; returns (status, timed
    out?, wall seconds, rusage of the direct child)."""
    stdin = open(w.stdin, "rb") if w.stdin else subprocess.DEVNULL
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=stdin, stdout=out_f, stderr=err_f,
                                env=child_env(w.env), cwd=w.cwd, start_new_session=True)
    finally:
        if w.stdin:
            stdin.close()
    timed_out = threading.Event()

    def kill():
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    timer.cancel()
    proc.returncode = status  # reaped here; keeps Popen from waiting again
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group, if any
    except (ProcessLookupError, PermissionError):
        pass
    return status, timed_out.is_set(), wall, usage


def execute(w, preload, timeout, out_f, err_f):
    with tempfile.NamedTemporaryFile(suffix=".time") as tf:
        timefile = tf.name if os.access(GNU_TIME, os.X_OK) else None
        argv = command_line(w, preload, timefile)
        status, timed_out, wall, usage = spawn_and_wait(argv, w, timeout, out_f, err_f)
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 0
        maxrss = usage.ru_maxrss
        if timefile:
            tsig, tmax = parse_time_file(timefile)
            sig = sig or tsig
            code = 0 if tsig else code
            maxrss = tmax if tmax is not None else maxrss
    return Exit(code, sig, timed_out, wall, maxrss)


def describe_exit(e, timeout):
    if e.reason:
        return e.reason
    if e.timed_out:
        return f"timeout {timeout}s"
    if e.sig:
        try:
            return signal.Signals(e.sig).name
        except ValueError:
            return f"signal {e.sig}"
    return "ok" if e.code == 0 else f"exit {e.code}"


def run_once(w, alloc, preload, index, timeout, logdir):
    if w.output and w.output.exists():
        w.output.unlink()
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        if w.driver:
            e = w.driver(preload, timeout, out_f, err_f)
        else:
            e = execute(w, preload, timeout, out_f, err_f)
        out_f.seek(0)
        out = out_f.read().decode(errors="replace")
        err_f.seek(0)
        err = err_f.read().decode(errors="replace")
    desc = describe_exit(e, timeout)
    if desc == "ok" and w.expect and w.expect not in out:
        desc = f"no '{w.expect}' in output"
    if desc == "ok" and w.output and not (w.output.exists() and w.output.stat().st_size):
        desc = f"no {w.output.name} written"
    if desc == "ok" and w.quiet and err.strip():
        desc = f"wrote to stderr: {err.strip().splitlines()[0][:80]!r}"
    if desc == "ok" and w.verify:
        desc = w.verify() or "ok"
    lines = out.strip().splitlines()
    run = Run(w.name, alloc, index, desc == "ok", desc, e.wall, e.maxrss,
              lines[-1] if lines else "")
    run.metrics = result_metrics(run.out)
    if run.metrics.get("final_rss_kib"):
        run.final_rss = int(run.metrics["final_rss_kib"])
    if not run.ok:
        run.repro = repro_command(w, preload)
        save_failure(logdir, run, out, err)
    return run


def save_failure(logdir, run, out, err):
    logdir.mkdir(parents=True, exist_ok=True)
    path = logdir / f"{run.workload}.{run.allocator}.{run.index}.log"
    path.write_text(f"command: {run.repro}\nstatus: {run.status}\n"
                    f"--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-8000:]}\n")
    log(f"bench: FAIL {run.workload} under {run.allocator}: {run.status} (log: {path})")


def repro_command(w, preload):
    if w.repro:
        return w.repro(preload)
    parts = [shlex.quote(v) for v in preload_words(preload)]
    parts += [f"{k}={v}" for k, v in w.env.items()]
    cmd = " ".join(parts + [shlex.quote(a) for a in w.argv])
    if w.cwd:
        cmd = f"cd {shlex.quote(str(w.cwd))} && {cmd}"
    return cmd + (f" < {w.stdin}" if w.stdin else "")


def run_all(workloads, allocs, runs, timeout, logdir):
    """Interleaves allocators within each repetition: A B C D E F, A B C D E F..."""
    results = []
    for k, w in enumerate(workloads, 1):
        for i in range(runs):
            line = []
            for alloc, preload in allocs.items():
                if alloc == "glibc" and w.glibc_preload:
                    preload = Preload(Path(w.glibc_preload))
                r = run_once(w, alloc, preload, i, w.timeout or timeout, logdir)
                results.append(r)
                if not r.ok:
                    line.append(f"{alloc} FAIL({r.status})")
                elif w.higher:
                    line.append(f"{alloc} {r.metrics.get(w.higher, 0):.0f} {w.higher}")
                else:
                    line.append(f"{alloc} {r.wall:.2f}s")
            log(f"[{k}/{len(workloads)}] {w.name} run {i + 1}/{runs}: " + ", ".join(line))
    return results


@dataclass
class Cell:
    ok: bool
    wall: float = None
    rss: float = None        # MiB
    final_rss: float = None  # MiB
    status: str = ""
    metrics: dict = field(default_factory=dict)  # medians of the result-line numbers


def summarise(results, workloads, allocs):
    cells = {}
    for w in workloads:
        for a in allocs:
            rs = [r for r in results if r.workload == w.name and r.allocator == a]
            bad = [r for r in rs if not r.ok]
            if not rs:
                cells[w.name, a] = Cell(False, status="not run")
                continue
            if bad:
                cells[w.name, a] = Cell(False, status=f"{bad[0].status}, {len(bad)} of {len(rs)}"
                                        f" run{'s' if len(rs) > 1 else ''}")
                continue
            finals = [r.final_rss for r in rs if r.final_rss is not None]
            keys = set.intersection(*(set(r.metrics) for r in rs))
            cells[w.name, a] = Cell(True, statistics.median(r.wall for r in rs),
                                    statistics.median(r.maxrss for r in rs) / 1024,
                                    statistics.median(finals) / 1024 if finals else None,
                                    metrics={k: statistics.median(r.metrics[k] for r in rs)
                                             for k in keys})
    return cells


def write_csv(path, results):
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["workload", "allocator", "run", "status", "wall_s", "maxrss_kib",
                     "final_rss_kib", "output"])
        for r in results:
            wr.writerow([r.workload, r.allocator, r.index, r.status, f"{r.wall:.4f}",
                         r.maxrss, r.final_rss if r.final_rss is not None else "", r.out])
