"""results.png: per workload, each allocator's wall time (redis: time per
request) over the best peer's, log scale (--frag: RSS over live bytes); drawn
with matplotlib (this Python's or Debian's), else gnuplot, else skipped with a
note."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

from .common import DEBIAN_PYTHON, SCRIPT, apt_install, can_install, log
from .peers import child_env
from .tables import best_peer, cell_value

# (y label, title) of the chart
LABELS_TIME = ("time / best peer (log; lower is better)",
               "wall time (redis: time per request) relative to the best peer")


def chart_data(cells, workloads, allocs):
    """Per workload, each allocator's wall time over the best peer's (None on FAIL)."""
    data = []
    for w in workloads:
        metric = w.higher or "wall"
        best, _ = best_peer(cells, w.name, allocs, metric, bool(w.higher))
        if not best:
            continue
        vals = [cell_value(cells[w.name, a], metric) if cells[w.name, a].ok else None
                for a in allocs]
        # a rate becomes time per request: best ÷ value, lower is better like the rest
        data.append((w.name, [(best / v if w.higher else v / best) if v else None
                              for v in vals]))
    return data


def chart_matplotlib(path, data, names, labels=LABELS_TIME):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    fig, ax = plt.subplots(figsize=(max(8, len(data) * 0.9), 5))
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        xs = [i + j * width for i in range(len(data))]
        ax.bar(xs, [row[1][j] or 0 for row in data], width, label=name)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(data))])
    ax.set_xticklabels([row[0] for row in data], rotation=45, ha="right")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_ylabel(labels[0])
    ax.set_title(labels[1])
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def chart_gnuplot(path, data, names, workdir, labels=LABELS_TIME):
    dat = workdir / "chart.dat"
    with open(dat, "w") as f:
        f.write("workload " + " ".join(names) + "\n")
        for wname, vals in data:
            f.write(wname + " " + " ".join(f"{v:.4f}" if v else "NaN" for v in vals) + "\n")
    res = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
    terms = res.stdout + res.stderr
    term = "pngcairo" if "pngcairo" in terms else "png"
    plots = ", ".join(f"'{dat}' using {j + 2}:xtic(1) title columnheader({j + 2})"
                      for j in range(len(names)))
    script = (f"set terminal {term} noenhanced size {max(800, 90 * len(data))},500\n"
              f"set output '{path}'\nset style data histograms\n"
              "set style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
              f"set logscale y\nset ylabel '{labels[0]}'\nset title '{labels[1]}'\n"
              "set xtics rotate by -45\nset key top left\nset grid ytics\n"
              f"plot {plots}, 1 notitle lc rgb 'black'\n")
    res = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if res.returncode != 0 or not path.exists():
        raise RuntimeError(res.stderr.strip() or "gnuplot failed")


CHART_PACKAGE = "python3-matplotlib"


def matplotlib_python():
    """The Python to draw the chart with: this one if it has matplotlib, else
    Debian's python3 if it has it (this script may run under another python3,
    e.g. pyenv's, that cannot see Debian's python3-matplotlib); else None."""
    if importlib.util.find_spec("matplotlib"):
        return sys.executable
    if (os.access(DEBIAN_PYTHON, os.X_OK)
            and os.path.realpath(DEBIAN_PYTHON) != os.path.realpath(sys.executable)):
        res = subprocess.run([DEBIAN_PYTHON, "-c", "import matplotlib"],
                             capture_output=True, env=child_env({}))
        if res.returncode == 0:
            return DEBIAN_PYTHON
    return None


def need_chart_tool():
    """Full runs: installs Debian's matplotlib (as root) for Debian's python3
    when no Python at hand has matplotlib and gnuplot is absent. --quick never
    installs it: it falls back to gnuplot or skips the chart with a note."""
    if matplotlib_python() or shutil.which("gnuplot"):
        return
    if not can_install() or not os.access(DEBIAN_PYTHON, os.X_OK):
        return
    log(f"bench: installing {CHART_PACKAGE} for the chart")
    apt_install([CHART_PACKAGE])
    importlib.invalidate_caches()


def make_chart(path, cells, workloads, allocs, workdir, spec=None):
    """Draws the chart: wall time over the best peer's, or, with spec (a
    callable(cells, workloads, allocs) -> (data, labels)), that. Returns a note
    saying what happened."""
    data, labels = (spec or (lambda *a: (chart_data(*a), LABELS_TIME)))(cells, workloads, allocs)
    names = list(allocs)
    if not data:
        return "chart: skipped, no workload has a peer result"
    py = matplotlib_python()
    if py == sys.executable:
        try:
            chart_matplotlib(path, data, names, labels)
            return f"chart: {path.name} (matplotlib)"
        except Exception as e:  # a broken matplotlib should not lose the results
            log(f"bench: matplotlib chart failed: {e}")
    elif py:  # draw it with that Python: this script, in its --render-chart mode
        spec_file = workdir / "chart.json"
        spec_file.write_text(json.dumps({"data": data, "names": names, "labels": labels}))
        res = subprocess.run([py, str(SCRIPT), "--render-chart", str(spec_file),
                              str(path)], capture_output=True, text=True, env=child_env({}))
        if res.returncode == 0 and path.exists():
            return f"chart: {path.name} (matplotlib, {py})"
        log(f"bench: matplotlib chart with {py} failed: {res.stderr.strip()[-300:]}")
    if shutil.which("gnuplot"):
        try:
            chart_gnuplot(path, data, names, workdir, labels)
            return f"chart: {path.name} (gnuplot)"
        except Exception as e:
            return f"chart: skipped, gnuplot failed: {e}"
    return ("chart: skipped, neither matplotlib nor gnuplot is available "
            "(apt-get install gnuplot-nox or python3-matplotlib)")
