"""The Markdown report: one table per measure (wall time, throughput,
start-up, peak RSS, final RSS, page faults, lifetime routing on vs off), each
cell a median and its ratio to the best peer."""
import datetime
import math
import os
import platform
import statistics
from pathlib import Path

from .common import GNU_TIME
from .peers import PEERS, POOLMALLOC_COLUMNS
from .redis import REDIS_TESTS


def cell_value(c, metric):
    """metric: a Cell attribute (wall, rss, final_rss) or a number of the result line."""
    if metric in ("wall", "rss", "final_rss"):
        return getattr(c, metric)
    return c.metrics.get(metric)


def best_peer(cells, wname, allocs, metric, higher=False):
    """(value, name) of the best peer: the lowest value, or the highest when
    higher is better."""
    vals = [(cell_value(cells[wname, a], metric), a) for a in allocs
            if a in PEERS and cells[wname, a].ok and cell_value(cells[wname, a], metric)]
    if not vals:
        return None, None
    return max(vals) if higher else min(vals)


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def fmt_value(metric, v):
    if metric == "wall":
        return f"{v:.3f}" if v < 10 else f"{v:.2f}"
    if metric == "rps" or metric.startswith("rps_"):
        return f"{v / 1e3:.1f}k"
    if metric == "minflt":
        return f"{v:.0f}"
    return f"{v:.1f}"


def own_columns(allocs):
    """poolmalloc's columns that get a "÷ best peer" column of their own (the
    poolmalloc one always, as before, even when it did not run)."""
    return [a for a in POOLMALLOC_COLUMNS if a in allocs] or ["poolmalloc"]


def metric_table(cells, workloads, allocs, metric, title, higher=False, rows_spec=None):
    """One row per workload (or per (label, workload, metric) of rows_spec):
    median (ratio to the best peer). The ratio is always value ÷ best peer's
    value; the best peer is the lowest value, or the highest when higher is
    better, so 1.00× marks the best peer either way."""
    names = list(allocs)
    if rows_spec is None:
        rows_spec = [(w.name, w.name, metric) for w in workloads]
    own = own_columns(allocs)
    head = ["workload"] + names + [f"{a} ÷ best peer" for a in own]
    rows = [f"### {title}", "", "| " + " | ".join(head) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    ratios = {a: [] for a in names}
    for label, wname, m in rows_spec:
        best, best_name = best_peer(cells, wname, allocs, m, higher)
        row = [label]
        for a in names:
            c = cells[wname, a]
            v = cell_value(c, m) if c.ok else None
            if not c.ok:
                row.append(f"FAIL ({c.status})")
            elif v is None:
                row.append("–")
            elif best:
                ratios[a].append(v / best)
                row.append(f"{fmt_value(m, v)} ({v / best:.2f}×)")
            else:
                row.append(fmt_value(m, v))
        for a in own:
            pm = cells.get((wname, a))
            pv = cell_value(pm, m) if pm and pm.ok else None
            row.append(f"{pv / best:.2f} vs {best_name}" if pv and best else "–")
        rows.append("| " + " | ".join(row) + " |")
    rows.append(geomean_row(ratios, names, own))
    return rows


def throughput_tables(cells, workloads, allocs):
    """Workloads whose result is a rate (higher is better): the rate per
    workload, then per test when the program reports one per test."""
    ws = [w for w in workloads if w.higher]
    if not ws:
        return []
    rows = metric_table(cells, ws, allocs, "rps",
                        "Throughput (requests/s, median; higher is better: ratio = value ÷ "
                        "best peer's, below 1.00× is slower)", higher=True,
                        rows_spec=[(w.name, w.name, w.higher) for w in ws])
    spec = []
    for w in ws:
        prefix = w.higher + "_"
        keys = {k[len(prefix):] for a in allocs if cells[w.name, a].ok
                for k in cells[w.name, a].metrics if k.startswith(prefix)}
        tests = [t for t in REDIS_TESTS if t in keys] + sorted(keys - set(REDIS_TESTS))
        spec += [(f"{w.name} {t}", w.name, prefix + t) for t in tests]
    if spec:
        rows += [""] + metric_table(cells, ws, allocs, "rps",
                                    "Throughput per test (requests/s; higher is better)",
                                    higher=True, rows_spec=spec)
    rows += ["", f"The {w.higher} of a workload is the geometric mean of its tests' rates."]
    return rows


def faults_table(cells, workloads, allocs):
    """Minor page faults, for the programs that count them (bench_large)."""
    ws = [w for w in workloads if any(cells[w.name, a].ok and "minflt" in cells[w.name, a].metrics
                                      for a in allocs)]
    if not ws:
        return []
    return metric_table(cells, ws, allocs, "minflt",
                        "Minor page faults (ru_minflt of the program's loop; lower is better)")


def geomean_row(ratios, names, own):
    """Geometric mean of each allocator's ratios; says so when some are missing."""
    most = max((len(r) for r in ratios.values()), default=0)

    def cell(a, bold=False):
        g = geomean(ratios.get(a, []))
        if not g:
            return "–"
        text = f"**{g:.2f}**" if bold else f"{g:.2f}×"
        n = len(ratios[a])
        return text + (f" ({n} of {most})" if n < most else "")

    row = ["**geomean ratio**"] + [cell(a) for a in names] + [cell(a, True) for a in own]
    return "| " + " | ".join(row) + " |"


def startup_table(cells, workloads, allocs):
    """The start-up workloads' wall time over glibc's, and what that is per
    process started (when the workload knows how many it starts)."""
    ws = [w for w in workloads if w.name.startswith("startup-")]
    if not ws or "glibc" not in allocs:
        return []
    names, own = list(allocs), own_columns(allocs)
    rows = ["### Start-up: wall time ratio to glibc (and the extra time per process)", "",
            "| workload | processes | " + " | ".join(names + [f"{a} − glibc per process"
                                                          for a in own]) + " |",
            "|---|---:|" + "---:|" * (len(names) + len(own))]
    ratios = {a: [] for a in names}
    for w in ws:
        g = cells[w.name, "glibc"]
        row = [w.name, str(w.procs) if w.procs else "?"]
        for a in names:
            c = cells[w.name, a]
            if not (c.ok and g.ok):
                row.append(f"FAIL ({c.status or g.status})" if not c.ok else "–")
                continue
            ratios[a].append(c.wall / g.wall)
            text = f"{c.wall / g.wall:.2f}×"
            if w.procs and a != "glibc":
                text += f" ({(c.wall - g.wall) / w.procs * 1e3:+.2f} ms)"
            elif w.procs:
                text += f" ({g.wall / w.procs * 1e3:.2f} ms)"
            row.append(text)
        for a in own:
            pm = cells.get((w.name, a))
            if pm and pm.ok and g.ok and w.procs:
                row.append(f"{(pm.wall - g.wall) / w.procs * 1e6:+.0f} µs")
            else:
                row.append("–")
        rows.append("| " + " | ".join(row) + " |")
    rows.append("| **geomean** | | " + " | ".join(
        [f"{geomean(ratios[a]):.2f}×" if geomean(ratios[a]) else "–" for a in names]
        + [""] * len(own)) + " |")
    rows += ["", "glibc's cell gives its own time per process; the others' the time they add "
             "per process (a negative value is within the noise or a real gain)."]
    return rows


def final_rss_table(cells, workloads, allocs):
    ws = [w for w in workloads
          if any(cells[w.name, a].ok and cells[w.name, a].final_rss for a in allocs)]
    if not ws:
        return []
    def live_mib(w):  # live data at that point, when the program reports it
        vals = [cells[w.name, a].metrics.get("live_kib") for a in allocs if cells[w.name, a].ok]
        vals = [v for v in vals if v]
        return statistics.median(vals) / 1024 if vals else None

    live = {w.name: live_mib(w) for w in ws}
    rows = ["### RSS at the end of the run (MiB, as reported by the program; survivors live)",
            "", "| workload | live data | " + " | ".join(allocs) + " |",
            "|---|---:|" + "---:|" * len(allocs)]
    for w in ws:
        vals = []
        for a in allocs:
            c = cells[w.name, a]
            if not (c.ok and c.final_rss):
                vals.append("–")
            elif live[w.name]:
                vals.append(f"{c.final_rss:.1f} ({c.final_rss / live[w.name]:.1f}× live)")
            else:
                vals.append(f"{c.final_rss:.1f}")
        lv = f"{live[w.name]:.1f}" if live[w.name] else "?"
        rows.append(f"| {w.name} | {lv} | " + " | ".join(vals) + " |")
    rows += ["", "live data: what the program still holds when it reads its RSS (\"?\" when it "
             "does not say); × live: RSS over it, including the process's own baseline "
             "(binary, libraries, bookkeeping)."]
    return rows


def lifetime_table(cells, workloads, allocs):
    """routing on over routing off, per workload: time (for a rate, time per
    request), peak RSS and, where the program reports it, final RSS. On is
    poolmalloc as it comes (routing on by default) or, without that column,
    poolmalloc-lt; off is poolmalloc-off or, in runs with only the other
    two, poolmalloc (an older library, routing off by default)."""
    off = "poolmalloc-off" if "poolmalloc-off" in allocs else "poolmalloc"
    on = "poolmalloc" if off == "poolmalloc-off" and "poolmalloc" in allocs else "poolmalloc-lt"
    if on not in allocs or off not in allocs:
        return []
    cols = [("time", None), ("peak RSS", "rss"), ("final RSS", "final_rss")]
    rows = [f"### Lifetime routing on vs off ({on} ÷ {off}; below 1.00× "
            "favours routing)", "",
            "| workload | " + " | ".join(c for c, _ in cols) + " |",
            "|---|" + "---:|" * len(cols)]
    ratios = {c: [] for c, _ in cols}
    for w in workloads:
        a, b = cells[w.name, on], cells[w.name, off]
        if not (a.ok and b.ok):
            bad = [f"{n}: {c.status}" for n, c in ((on, a), (off, b)) if not c.ok]
            rows.append(f"| {w.name} | " + " | ".join([f"FAIL ({'; '.join(bad)})"]
                                                     + ["–"] * (len(cols) - 1)) + " |")
            continue
        row = [w.name]
        for col, attr in cols:
            metric = attr or w.higher or "wall"
            v_on, v_off = cell_value(a, metric), cell_value(b, metric)
            if not (v_on and v_off):
                row.append("–")
                continue
            # a rate (higher is better): time per request is off's rate ÷ on's
            ratio = v_off / v_on if metric == w.higher else v_on / v_off
            ratios[col].append(ratio)
            unit = {"wall": " s", "rss": " MiB", "final_rss": " MiB"}.get(metric, f" {metric}")
            row.append(f"{ratio:.2f}× ({fmt_value(metric, v_off)} → "
                       f"{fmt_value(metric, v_on)}{unit})")
        rows.append("| " + " | ".join(row) + " |")
    def gm(col):  # "k of n" when failed workloads are left out (final RSS: where reported)
        g, n = geomean(ratios[col]), len(ratios[col])
        most = n if col == "final RSS" else len(workloads)
        return f"**{g:.2f}×**" + (f" ({n} of {most})" if n < most else "") if g else "–"

    rows.append("| **geomean** | " + " | ".join(gm(c) for c, _ in cols) + " |")
    rows += ["", f"Values in parentheses: {off} → {on} (for a rate, requests/s, "
             "and the time ratio is the inverse of the rate ratio); final RSS only for the "
             "programs that report it."]
    return rows


def machine_line():
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}"


def rss_method():
    if os.access(GNU_TIME, os.X_OK):
        return "ru_maxrss of the program, from GNU time (includes ~1 MiB of the forking time/env)"
    import resource
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return (f"ru_maxrss from wait4(); /usr/bin/time is absent, so values include this "
            f"script's own RSS ({base:.0f} MiB) as a floor (apt-get install time)")


def load_text():
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def report_header(allocs, opts, versions, title="Benchmark results"):
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    mode = "quick (tiny scale; timings meaningless)" if opts.quick else "full"
    return [f"## {title} — {when}", "",
            f"- machine: {machine_line()}",
            f"- load average (1/5/15 min): {opts.load_start} at the start, {load_text()} at "
            "the end (other work on the machine makes timings noisy)",
            f"- mode: {mode}; {opts.runs} run(s) per allocator, interleaved; medians",
            "- cells: median value (ratio to the best of glibc/jemalloc/mimalloc/tcmalloc); "
            "geomean row: geometric mean of those ratios",
            *(["- poolmalloc: as it comes, lifetime routing on (POOLMALLOC_LIFETIME=2 by "
               "default)"] if "poolmalloc" in allocs else []),
            *(["- poolmalloc-off: poolmalloc with POOLMALLOC_LIFETIME=0 (lifetime routing off); "
               "not a peer"] if "poolmalloc-off" in allocs else []),
            *(["- poolmalloc-lt: poolmalloc with POOLMALLOC_LIFETIME=1 (long-lived sites' "
               "requests go to jemalloc); not a peer"] if "poolmalloc-lt" in allocs
              else []),
            *(["- poolmalloc-lt2: poolmalloc with POOLMALLOC_LIFETIME=2 (long-lived sites get "
               "pool pages of their own); not a peer"] if "poolmalloc-lt2" in allocs else []),
            *(["- poolmalloc-prof: poolmalloc writing a JSON report at exit (to /dev/null): the "
               "profile's sampler on; not a peer"] if "poolmalloc-prof" in allocs else []),
            f"- peak RSS: {rss_method()}",
            "- allocators: " + "; ".join(f"{a} = {v}" for a, v in versions.items()), ""]


def report_tail(workloads, notes):
    lines = ["### Workloads", ""] + [f"- `{w.name}`: {w.what}" for w in workloads]
    if notes:
        lines += ["", "### Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def report(cells, workloads, allocs, opts, notes, versions):
    lines = report_header(allocs, opts, versions)
    timed = [w for w in workloads if not w.higher]
    if timed:
        lines += metric_table(cells, timed, allocs, "wall", "Wall time (s)") + [""]
    for extra in (throughput_tables(cells, workloads, allocs),
                  startup_table(cells, workloads, allocs)):
        if extra:
            lines += extra + [""]
    lines += metric_table(cells, workloads, allocs, "rss", "Peak RSS (MiB, ru_maxrss)") + [""]
    for extra in (final_rss_table(cells, workloads, allocs),
                  faults_table(cells, workloads, allocs),
                  lifetime_table(cells, workloads, allocs)):
        if extra:
            lines += extra + [""]
    return "\n".join(lines) + "\n" + report_tail(workloads, notes)
