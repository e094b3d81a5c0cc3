"""The fragmentation family (scripts/bench --frag, issue 14): programs whose
long-lived data is small next to what they allocated, and how much RSS each
allocator keeps for it. Every workload ends with a line giving live_bytes,
end_rss_kib and end_ratio (RSS ÷ live, right after the program dropped its
short-lived data) and idle_rss_kib and idle_ratio (the same after an idle
period; bench_fragsites adds tick_*: after as long again with a few calls
every 10 ms); the report's table is RSS ÷ live per workload, point and
allocator.

- frag-immortal, frag-k4, frag-1phase: tests/bench/bench_fragsites (site A's
  short-lived blocks, site B's long-lived ones: kept to the end, kept 4
  phases, or one phase only); frag-oracle: frag-immortal with B's blocks
  outside the allocator (the bound of perfect routing)
- frag-redis: redis-server filled, 80 % deleted at random, refilled
- frag-node: node keeping one small slice of each 8 KiB Buffer pool
"""
import random
import re
import shlex
import shutil
import statistics
import subprocess
import time

from .peers import child_env, preload_words
from .redis import (DriveFailure, RedisSetup, drive, info_fields, redis_server_argv,
                    setup_prepare)
from .tables import metric_table, report_header, report_tail
from .workloads import Workload

FRAG_IDLE, FRAG_QUICK_IDLE = 3.0, 0.05         # seconds of the idle period
FRAG_PER_PHASE, FRAG_QUICK_PER_PHASE = 200000, 20000
FRAG_TIMEOUT = 300                   # seconds per run (full runs; --quick: the suite's)
POINTS = [("end", "right after the frees"), ("idle", "after an idle sleep"),
          ("tick", "after as long with calls")]


def sites_workloads(bindir, quick):
    idle = FRAG_QUICK_IDLE if quick else FRAG_IDLE
    n = FRAG_QUICK_PER_PHASE if quick else FRAG_PER_PHASE
    prog = str(bindir / "bench_fragsites")
    common = ["--per-phase", str(n), "--every", "100", "--idle", f"{idle:g}",
              "--tick", f"{idle:g}"]
    table = [
        ("frag-immortal", f"40 phases of {n} short-lived 16-512 B (site A), 1 in 100 from "
         "site B kept to the end (issue 14)", ["--phases", "40"]),
        ("frag-k4", "as frag-immortal, site B's blocks freed 4 phases later",
         ["--phases", "40", "--keep", "4"]),
        ("frag-1phase", "as frag-immortal, one phase", ["--phases", "1"]),
        ("frag-oracle", "as frag-immortal, site B's blocks outside the allocator: what "
         "perfect routing from B's first block would leave", ["--phases", "40", "--oracle"]),
    ]
    return [Workload(name, what, [prog] + common + extra, expect="check=ok",
                     timeout=None if quick else FRAG_TIMEOUT) for name, what, extra in table]


# --------------------------------------------------------------------------
# redis: fill, delete 80 % at random, refill; INFO memory after the refill

REDIS_FILL = (300000, 16, 1024)      # keys, smallest and largest value
REDIS_REFILL = (150000, 100, 2000)
REDIS_DELETE = 0.8
REDIS_QUICK_DIV = 30                 # --quick: a thirtieth of the keys
REDIS_SETTLE = 0.3                   # s before INFO: redis refreshes used_memory_rss
                                     # in serverCron (10 Hz)


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def write_commands(workdir, quick):
    """The fill, delete and refill command files (RESP, for redis-cli --pipe);
    returns [(step, path, commands)]. Made once per scale, fixed seed."""
    div = REDIS_QUICK_DIV if quick else 1
    rng = random.Random(14)
    letters = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(1 << 16))
    steps = []
    fill_n, refill_n = REDIS_FILL[0] // div, REDIS_REFILL[0] // div
    dels = rng.sample(range(fill_n), int(fill_n * REDIS_DELETE))
    plan = [("fill", [(b"SET", b"k:%d" % i, REDIS_FILL) for i in range(fill_n)]),
            ("delete", [(b"DEL", b"k:%d" % i, None) for i in dels]),
            ("refill", [(b"SET", b"r:%d" % i, REDIS_REFILL) for i in range(refill_n)])]
    for step, cmds in plan:
        path = workdir / f"frag-{step}-{div}.resp"
        if not path.exists():
            with open(path.with_suffix(".tmp"), "wb") as f:
                for verb, key, sizes in cmds:
                    if sizes:
                        size, at = rng.randint(sizes[1], sizes[2]), rng.randrange(1 << 15)
                        f.write(resp(verb, key, letters[at:at + size]))
                    else:
                        f.write(resp(verb, key))
            path.with_suffix(".tmp").rename(path)
        steps.append((step, path, len(cmds)))
    return steps, fill_n - len(dels) + refill_n


def pipe(server, path, n, deadline):
    """redis-cli --pipe < path; checks that n replies came back without error."""
    cli = server.setup.cli
    with open(path, "rb") as f:
        try:
            res = subprocess.run([cli, "-h", "127.0.0.1", "-p", str(server.port), "--pipe"],
                                 stdin=f, capture_output=True, env=child_env({}),
                                 timeout=max(1, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            raise DriveFailure(f"redis-cli --pipe < {path.name} timed out", 0,
                               timed_out=True) from None
    out = res.stdout.decode(errors="replace")
    m = re.search(r"errors: (\d+), replies: (\d+)", out)
    server.check_alive(f"redis-cli --pipe < {path.name}")
    if res.returncode != 0 or not m or m.groups() != ("0", str(n)):
        raise DriveFailure(f"redis-cli --pipe < {path.name}: {out.strip()[-200:]!r}")


def memory(server):
    """used_memory, used_memory_rss (bytes) and mem_fragmentation_ratio."""
    info = info_fields(server.call("INFO", "memory"))
    try:
        return (int(info["used_memory"]), int(info["used_memory_rss"]),
                float(info["mem_fragmentation_ratio"]))
    except (KeyError, ValueError):
        raise DriveFailure(f"INFO memory lacks used_memory/_rss: {sorted(info)[:8]}") from None


def redis_frag_session(steps, keys, idle):
    def session(server, deadline):
        for _, path, n in steps:
            pipe(server, path, n, deadline)
        dbsize = server.call("DBSIZE")
        if dbsize != f":{keys}":
            raise DriveFailure(f"DBSIZE answered {dbsize!r}, expected {keys}")
        time.sleep(REDIS_SETTLE)
        used, rss, ratio = memory(server)
        time.sleep(idle)
        used2, rss2, ratio2 = memory(server)
        hwm, vmrss = server.rss_kib()
        return (f"frag-redis keys={keys} live_bytes={used} live_kib={used // 1024} "
                f"end_rss_kib={rss // 1024} end_ratio={rss / used:.2f} "
                f"mem_fragmentation_ratio={ratio:.2f} idle={idle:g} "
                f"idle_rss_kib={rss2 // 1024} idle_ratio={rss2 / used2:.2f} "
                f"idle_mem_fragmentation_ratio={ratio2:.2f} vmrss_kib={vmrss} "
                f"peak_rss_kib={hwm} check=ok\n"), hwm
    return session


def redis_frag_workload(workdir, quick):
    setup = RedisSetup(workdir / "redis")
    div = REDIS_QUICK_DIV if quick else 1
    idle = FRAG_QUICK_IDLE if quick else FRAG_IDLE
    w = Workload("frag-redis", f"redis-server: SET {REDIS_FILL[0] // div} keys of "
                 f"{REDIS_FILL[1]}-{REDIS_FILL[2]} B, DEL 80 % at random, SET "
                 f"{REDIS_REFILL[0] // div} of {REDIS_REFILL[1]}-{REDIS_REFILL[2]} B "
                 "(redis-cli --pipe); INFO memory", ["redis-server"], expect="check=ok",
                 timeout=None if quick else FRAG_TIMEOUT)
    found = setup_prepare(setup, w)
    state = {}

    def prepare():
        why = found()
        if not why and not setup.cli:
            why = "skipped, redis-cli missing (apt-get install -y redis-tools)"
        if not why:
            state["steps"], state["keys"] = write_commands(setup.workdir, quick)
        return why

    w.prepare = prepare
    w.driver = lambda pre, t, o, e: drive(redis_frag_session(state["steps"], state["keys"],
                                                             idle), setup, pre, t, o, e)
    w.repro = lambda pre: redis_frag_repro(setup, state.get("steps", []), pre)
    return w


def redis_frag_repro(setup, steps, preload):
    pre = "".join(shlex.quote(v) + " " for v in preload_words(preload))
    start = pre + " ".join(shlex.quote(a) for a in redis_server_argv(setup.server, 6399, "/tmp"))
    pipes = "; ".join(f"redis-cli -p 6399 --pipe < {p}" for _, p, _ in steps)
    return f"{start} & sleep 1; {pipes}; redis-cli -p 6399 info memory; " \
           "redis-cli -p 6399 shutdown nosave"


# --------------------------------------------------------------------------
# node: one small slice kept from each 8 KiB Buffer pool

NODE_POOLS, NODE_QUICK_POOLS = 10000, 300

NODE_FRAG_SCRIPT = r'''// scripts/bench --frag: keep one small slice of each pooled Buffer.
// Buffer.allocUnsafe(n) for n < 4 KiB slices an 8 KiB pool (one malloc'd
// ArrayBuffer); keeping any slice keeps the whole pool. Run: node --expose-gc
const pools = parseInt(process.argv[2], 10), idle = parseFloat(process.argv[3]);
let x = 0x2545f491;
const rnd = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x >>> 0; };
const rss = () => { global.gc(); global.gc(); return process.memoryUsage.rss(); };
const base = rss();
const kept = [];
let live = 0, slices = 0, cur = null;
while (kept.length < pools) {
  const b = Buffer.allocUnsafe(16 + (rnd() % 497));
  b.fill(kept.length & 255);
  slices++;
  if (b.buffer !== cur) { cur = b.buffer; kept.push(b); live += b.length; }
}
cur = null;
const report = (name, r) => {
  const kib = Math.round(r / 1024);
  return `${name}_rss_kib=${kib} ${name}_ratio=${(r / live).toFixed(2)} ` +
         `${name}_heap_ratio=${((r - base) / live).toFixed(2)}`;
};
const end = rss();
console.log(`point=end rss_kib=${Math.round(end / 1024)} live_bytes=${live} ` +
            `ratio=${(end / live).toFixed(2)}`);
setTimeout(() => {
  const after = rss();
  let ok = kept.length === pools;
  kept.forEach((b, i) => { ok = ok && b[0] === (i & 255) && b[b.length - 1] === (i & 255); });
  console.log(`frag-node pools=${pools} slices=${slices} live_bytes=${live} ` +
              `pool_bytes=${pools * Buffer.poolSize} base_rss_kib=${Math.round(base / 1024)} ` +
              `${report("end", end)} ${report("idle", after)} idle=${idle} ` +
              (ok ? "check=ok" : "check=bad"));
}, idle * 1000);
'''


def node_frag_workload(workdir, quick):
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        return None
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "frag-buffers.js"
    script.write_text(NODE_FRAG_SCRIPT)
    pools = NODE_QUICK_POOLS if quick else NODE_POOLS
    idle = FRAG_QUICK_IDLE if quick else FRAG_IDLE
    return Workload("frag-node", f"node: {pools} Buffer pools of 8 KiB, one small "
                    "(16-512 B) allocUnsafe slice of each kept, the rest dropped",
                    [node, "--expose-gc", str(script), str(pools), f"{idle:g}"],
                    expect="check=ok", timeout=None if quick else FRAG_TIMEOUT)


def frag_workloads(bindir, workdir, quick):
    """(workloads, notes) of the family."""
    found = sites_workloads(bindir, quick) + [redis_frag_workload(workdir, quick)]
    node = node_frag_workload(workdir, quick)
    notes = [] if node else ["frag-node: skipped, node not installed"]
    return found + ([node] if node else []), notes


# --------------------------------------------------------------------------
# the table


def live_mib(cells, w, allocs):
    vals = [cells[w.name, a].metrics.get("live_bytes") for a in allocs if cells[w.name, a].ok]
    vals = [v for v in vals if v]
    return statistics.median(vals) / 2**20 if vals else None


def frag_cell(c, pt, kind):
    """ratio× (RSS MiB), or for heap_ratio ratio× (MiB above the baseline)."""
    if not c.ok:
        return f"FAIL ({c.status})"
    ratio = c.metrics.get(f"{pt}_{kind}")
    rss = c.metrics.get(f"{pt}_rss_kib")
    if ratio is None or rss is None:
        return "–"
    if kind == "heap_ratio":
        rss -= c.metrics.get("base_rss_kib", 0)
    return f"{ratio:.2f}× ({rss / 1024:.1f})"


def frag_table(cells, workloads, allocs, kind="ratio"):
    """RSS ÷ live per workload and point (kind "ratio"), or RSS above the
    process's RSS before the work ÷ live (kind "heap_ratio")."""
    title = ("RSS ÷ live bytes (RSS in MiB in parentheses; lower is better)" if kind == "ratio"
             else "RSS above the process's own baseline ÷ live bytes (MiB above it)")
    names = list(allocs)
    rows = [f"### Fragmentation: {title}", "",
            "| workload | point | live (MiB) | " + " | ".join(names) + " |",
            "|---|---|---:|" + "---:|" * len(names)]
    for w in workloads:
        live = live_mib(cells, w, allocs)
        for pt, what in POINTS:
            if not any(cells[w.name, a].metrics.get(f"{pt}_{kind}") for a in names):
                continue
            row = [w.name, what, f"{live:.2f}" if live else "?"]
            row += [frag_cell(cells[w.name, a], pt, kind) for a in names]
            rows.append("| " + " | ".join(row) + " |")
    return rows


def frag_tables(cells, workloads, allocs):
    rows = frag_table(cells, workloads, allocs)
    rows += ["", "live: the bytes the program still holds (bench_fragsites: what site B's live "
             "blocks asked for; frag-node: the kept slices; frag-redis: redis's used_memory, "
             "which counts malloc_usable_size and so differs per allocator: the median is "
             "shown, each ratio uses its own run's). RSS: the whole process's VmRSS "
             "(frag-redis: used_memory_rss of INFO memory, so its ratio is redis's "
             "mem_fragmentation_ratio)."]
    heap = frag_table(cells, [w for w in workloads if w.name != "frag-redis"], allocs,
                      "heap_ratio")
    if len(heap) > 4:
        rows += [""] + heap + ["", "baseline: the process's VmRSS before its first allocation "
                               "of the work (bench_fragsites: after its bookkeeping is mapped; "
                               "node: after start-up and a GC)."]
    return rows


def check_frag_complete(text, workloads, allocs):
    """--frag --quick: each workload has a full row, without FAIL, for each point."""
    problems, points = [], {what for _, what in POINTS}
    for w in workloads:
        rows = [ln for ln in text.splitlines() if ln.startswith(f"| {w.name} |")
                and ln.split("|")[2].strip() in points and len(ln.split("|")) == len(allocs) + 5]
        if not rows or any("FAIL" in ln or "| – |" in ln for ln in rows):
            problems.append(f"{w.name}: no complete row in the fragmentation table")
    return problems


def frag_report(cells, workloads, allocs, opts, notes, versions):
    """The --frag report: the RSS ÷ live tables, then wall time and peak RSS."""
    lines = report_header(allocs, opts, versions, "Fragmentation results")
    lines += frag_tables(cells, workloads, allocs) + [""]
    lines += metric_table(cells, workloads, allocs, "wall", "Wall time (s, includes the idle "
                          "period)") + [""]
    lines += metric_table(cells, workloads, allocs, "rss", "Peak RSS (MiB, ru_maxrss)") + [""]
    return "\n".join(lines) + "\n" + report_tail(workloads, notes)


def frag_chart(cells, workloads, allocs):
    """Chart data: per workload, each allocator's RSS ÷ live at its last point
    (tick, else idle, else end); the line at 1 is the live data alone."""
    data = []
    for w in workloads:
        for pt, _ in reversed(POINTS):
            vals = [cells[w.name, a].metrics.get(f"{pt}_ratio") if cells[w.name, a].ok
                    else None for a in allocs]
            if any(vals):
                data.append((f"{w.name} ({pt})", vals))
                break
    return data, ("RSS / live bytes (log; lower is better)",
                  "RSS over live bytes after the idle period (--frag)")
