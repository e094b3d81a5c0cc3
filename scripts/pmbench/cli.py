"""scripts/bench - runs poolmalloc's benchmark suite against its peer allocators.

Every workload (the programs of tests/bench plus real programs that are
installed) runs under glibc (no preload), jemalloc, mimalloc, tcmalloc,
poolmalloc (as it comes: lifetime routing on) and poolmalloc-off (the same
library with POOLMALLOC_LIFETIME=0: routing off; not a peer), interleaved
(A B C D E F, A B C D E F, ...).
Each run is a child process
with a timeout; its wall time is taken here and its peak RSS is ru_maxrss of
the program (including its own waited-for children such as cc1), reported by
GNU time when /usr/bin/time exists, else by wait4(). The medians go to a Markdown
table in <out>/results.md and on stdout, every run to <out>/runs.csv, and a
chart to <out>/results.png when matplotlib or gnuplot is available.

usage: scripts/bench [--quick] [--runs N] [--lib /path/libpoolmalloc.so]
                     [--bindir DIR] [--out DIR] [--only name,...]
                     [--allocators name,...] [--frag] [--list]

--quick runs every workload tiny, once by default, and exits nonzero if any run
fails or the table is incomplete; it never judges timings. --frag runs the
fragmentation family instead (frag.py: RSS over live bytes, with
poolmalloc-off and poolmalloc-lt columns). See docs/benchmarks.md.
"""
import argparse
import json
import subprocess
import shutil
import tempfile
from pathlib import Path

from . import chart
from .common import (FULL_SCALE, FULL_TIMEOUT, QUICK_SCALE, QUICK_TIMEOUT, REAL_QUICK_SCALE,
                     TOP, log)
from .peers import (ALL_ALLOCATORS, DEFAULT_ALLOCATORS, FRAG_ALLOCATORS, POOLMALLOC_COLUMNS,
                    allocator_versions, resolve_allocators)
from .frag import check_frag_complete, frag_chart, frag_report, frag_workloads
from .redis import redis_workloads
from .runner import run_all, summarise, write_csv
from .startup import startup_workloads
from .tables import load_text, own_columns, report
from .workloads import BENCH_PROGRAMS, bench_workloads, real_workloads


def parse_args(argv):
    p = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny scale, 1 run; exit nonzero on any failure (for CTest)")
    p.add_argument("--runs", type=int, help="runs per allocator (default 5, quick 1)")
    p.add_argument("--lib", type=Path, help="libpoolmalloc.so (default build/libpoolmalloc.so)")
    p.add_argument("--bindir", type=Path, help="directory of the bench_* programs "
                   "(default build/tests/bench; built with cc into OUT/bin if absent)")
    p.add_argument("--out", type=Path, default=TOP / "bench-results",
                   help="output directory (default bench-results/)")
    p.add_argument("--only", help="comma-separated workload names or groups (churn, real, ...)")
    p.add_argument("--allocators", help="comma-separated subset of " + ",".join(ALL_ALLOCATORS))
    p.add_argument("--frag", action="store_true",
                   help="run the fragmentation family instead (RSS over live bytes; with "
                   "poolmalloc-off and poolmalloc-lt among the default allocators)")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    p.add_argument("--render-chart", nargs=2, metavar=("JSON", "PNG"), help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    if opts.runs is None:
        opts.runs = 1 if opts.quick else 5
    if opts.runs < 1:
        p.error("--runs must be at least 1")
    return opts


def build_programs(bindir):
    """Compiles tests/bench/*.c with cc -O2 when no CMake build is at hand
    (only the programs that are missing or older than their source)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise SystemExit("bench: no bench programs found and no C compiler to build them")
    bindir.mkdir(parents=True, exist_ok=True)
    for prog in BENCH_PROGRAMS:
        src, exe = TOP / "tests" / "bench" / f"{prog}.c", bindir / prog
        if exe.exists() and exe.stat().st_mtime >= src.stat().st_mtime:
            continue
        log(f"bench: building {exe}")
        cmd = [cc, "-O2", "-Wall", "-Wextra", "-fno-builtin-malloc", "-fno-builtin-free",
               "-fno-builtin-calloc", "-fno-builtin-realloc", "-pthread", str(src),
               "-o", str(exe)]
        if subprocess.run(cmd).returncode != 0:
            raise SystemExit(f"bench: failed to build {prog}")


def has_programs(d):
    return all((d / p).exists() for p in BENCH_PROGRAMS)


def resolve_bindir(opts):
    if opts.bindir:
        if not has_programs(opts.bindir):
            raise SystemExit(f"bench: {opts.bindir} lacks some of: {' '.join(BENCH_PROGRAMS)}")
        return opts.bindir.resolve()
    default = TOP / "build" / "tests" / "bench"
    if has_programs(default):
        return default
    build_programs(opts.out / "bin")
    return (opts.out / "bin").resolve()


def resolve_pm_lib(opts, notes, columns):
    lib = opts.lib or TOP / "build" / "libpoolmalloc.so"
    if lib.exists():
        return lib.resolve()
    if opts.lib:
        raise SystemExit(f"bench: --lib {lib} does not exist")
    notes.append(f"{', '.join(columns)}: skipped, {lib} not built")
    log(f"bench: {lib} not found; running without poolmalloc")
    return None


def select(workloads, only):
    if not only:
        return workloads
    names = [n.strip() for n in only.split(",") if n.strip()]
    known = {w.name for w in workloads} | {w.name.split("-")[0] for w in workloads}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"bench: unknown workload(s) {', '.join(unknown)}; known: "
                         + ", ".join(sorted(known)))
    return [w for w in workloads if w.name in names or w.name.split("-")[0] in names]


def prepare_workloads(workloads, notes):
    """Runs the set-up of the selected workloads that have one (outside the
    timing); leaves out, with a note, those whose set-up says why not."""
    ready = []
    for w in workloads:
        why = w.prepare() if w.prepare else None
        if why:
            notes.append(f"{w.name}: {why}")
            log(f"bench: {w.name}: {why}")
        else:
            ready.append(w)
        if w.note and w.note not in notes:
            notes.append(w.note)
    if any(w.driver and w.higher for w in ready):
        notes.append("redis-*: the server's peak RSS is its VmHWM and its final RSS its VmRSS, "
                     "read from /proc just before SHUTDOWN NOSAVE (the data set still in "
                     "memory); its live data is redis's used_memory (INFO memory: the "
                     "malloc_usable_size of what it holds), so × live is redis's "
                     "mem_fragmentation_ratio; redis-benchmark runs without a preload; "
                     "the rates are in the throughput tables, not in the wall-time table")
    return ready


def check_complete(text, workloads, allocs):
    """--quick: every workload has a full row (a cell per allocator) in both the
    wall time and the peak RSS table."""
    problems = []
    for w in workloads:
        rows = [ln for ln in text.splitlines() if ln.startswith(f"| {w.name} |")
                and len(ln.split("|")) == len(allocs) + len(own_columns(allocs)) + 3]
        if len(rows) < 2:
            problems.append(f"{w.name}: no complete row in the results table")
    return problems


def list_workloads(opts):
    if opts.frag:
        with tempfile.TemporaryDirectory() as tmp:
            for w in frag_workloads(Path("tests/bench"), Path(tmp), opts.quick)[0]:
                print(f"{w.name:16} {w.what}")
        return
    scale = QUICK_SCALE if opts.quick else FULL_SCALE
    real_scale = REAL_QUICK_SCALE if opts.quick else FULL_SCALE
    for w in bench_workloads(Path("tests/bench"), scale):
        print(f"{w.name:16} {w.what}")
    with tempfile.TemporaryDirectory() as tmp:
        for w in real_workloads(Path(tmp), real_scale)[0]:
            print(f"{w.name:16} {w.what}")
        for w in redis_workloads(Path(tmp), opts.quick):
            print(f"{w.name:16} {w.what}")
        for w in startup_workloads(Path("tests/bench"), Path(tmp), opts.quick):
            print(f"{w.name:16} {w.what}")


def wanted_allocators(opts):
    if not opts.allocators:
        return list(FRAG_ALLOCATORS if opts.frag else DEFAULT_ALLOCATORS)
    wanted = [a.strip() for a in opts.allocators.split(",") if a.strip()]
    bad = [a for a in wanted if a not in ALL_ALLOCATORS]
    if bad:
        raise SystemExit(f"bench: unknown allocator(s) {', '.join(bad)}")
    return wanted


def suite_workloads(opts, notes):
    """The selected workloads of the suite, prepared."""
    scale = QUICK_SCALE if opts.quick else FULL_SCALE
    real_scale = REAL_QUICK_SCALE if opts.quick else FULL_SCALE
    bindir = resolve_bindir(opts)
    workloads = bench_workloads(bindir, scale)
    real, real_notes = real_workloads(opts.out / "work", real_scale)
    startup = startup_workloads(bindir, opts.out / "work", opts.quick)
    redis = redis_workloads(opts.out / "work", opts.quick)
    workloads = select(workloads + real + redis + startup, opts.only)
    notes += real_notes
    return prepare_workloads(workloads, notes)


def family_workloads(opts, notes):
    """The selected workloads of the fragmentation family (--frag), prepared."""
    found, frag_notes = frag_workloads(resolve_bindir(opts), opts.out / "work", opts.quick)
    notes += frag_notes
    return prepare_workloads(select(found, opts.only), notes)


def columns(opts, wanted, notes):
    """{name: Preload or None} of the allocators that can run."""
    pm_wanted = [a for a in wanted if a in POOLMALLOC_COLUMNS]
    pm_lib = resolve_pm_lib(opts, notes, pm_wanted) if pm_wanted else None
    return resolve_allocators([a for a in wanted if a not in POOLMALLOC_COLUMNS or pm_lib],
                              pm_lib, notes)


def finish(opts, results, workloads, allocs, notes, render, chart_spec=None):
    """Summary, runs.csv, the chart, the report; returns the report's text."""
    cells = summarise(results, workloads, allocs)
    write_csv(opts.out / "runs.csv", results)
    if not opts.quick:
        chart.need_chart_tool()
    notes.append(chart.make_chart(opts.out / "results.png", cells, workloads, allocs, opts.out,
                                  chart_spec))
    for r in results:
        if not r.ok:
            notes.append(f"FAIL: {r.workload} under {r.allocator}, run {r.index + 1}: "
                         f"{r.status}; reproduce: `{r.repro}` (log in failures/)")
    text = render(cells, workloads, allocs, opts, notes, allocator_versions(allocs))
    (opts.out / "results.md").write_text(text)
    print(text, end="")
    return text


def quick_verdict(opts, text, results, workloads, allocs, check=check_complete):
    """--quick: 1 when a run failed or the table is incomplete, else 0."""
    fails = [r for r in results if not r.ok]
    problems = check(text, workloads, allocs)
    if opts.allocators is None and "poolmalloc" not in allocs:
        problems.append("poolmalloc library not found")
    for p in problems:
        log(f"bench: --quick: {p}")
    if fails or problems:
        log(f"bench: --quick FAILED: {len(fails)} failed run(s), {len(problems)} problem(s)")
        return 1
    log("bench: --quick OK: every workload ran under every allocator")
    return 0


def main(argv):
    opts = parse_args(argv)
    if opts.render_chart:  # internal: make_chart runs this under a Python with matplotlib
        spec = json.loads(Path(opts.render_chart[0]).read_text())
        chart.chart_matplotlib(Path(opts.render_chart[1]), spec["data"], spec["names"],
                               spec.get("labels", chart.LABELS_TIME))
        return 0
    opts.out = opts.out.resolve()
    opts.out.mkdir(parents=True, exist_ok=True)
    opts.load_start = load_text()
    notes = []
    wanted = wanted_allocators(opts)
    if opts.list:
        list_workloads(opts)
        return 0
    workloads = (family_workloads if opts.frag else suite_workloads)(opts, notes)
    allocs = columns(opts, wanted, notes)
    timeout = QUICK_TIMEOUT if opts.quick else FULL_TIMEOUT
    own = sorted({w.timeout for w in workloads if w.timeout})
    log(f"bench: {len(workloads)} workloads x {len(allocs)} allocators x {opts.runs} runs, "
        f"timeout {timeout}s" + (f" ({'these' if opts.frag else 'start-up'} workloads "
                                 f"{own[-1]}s)" if own else "")
        + f", output in {opts.out}")
    results = run_all(workloads, allocs, opts.runs, timeout, opts.out / "failures")
    text = (finish(opts, results, workloads, allocs, notes, frag_report, frag_chart) if opts.frag
            else finish(opts, results, workloads, allocs, notes, report))
    if not opts.quick:
        return 0
    check = check_frag_complete if opts.frag else check_complete
    return quick_verdict(opts, text, results, workloads, allocs, check)
