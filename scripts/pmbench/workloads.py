"""The Workload record, the C programs of tests/bench and the real programs
(python3, node, sqlite3, gcc) that are installed."""
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

BENCH_PROGRAMS = ["bench_churn", "bench_larson", "bench_xmalloc", "bench_cthrash",
                  "bench_realloc", "bench_mixed", "bench_large", "bench_frag", "bench_tiny",
                  "bench_fragsites", "bench_mstress"]


@dataclass
class Workload:
    name: str
    what: str
    argv: list          # full command line (scale already filled in)
    stdin: Path = None  # file fed on standard input
    env: dict = field(default_factory=dict)
    expect: str = None  # text the standard output must contain
    output: Path = None  # file the run must create (removed before each run)
    cwd: Path = None    # directory the run starts in
    quiet: bool = False  # a run that writes anything to stderr fails
    verify: object = None   # callable() -> None if the run's result is right, else why not
    prepare: object = None  # callable() -> None when ready, else why skipped (run once,
                            # outside the timing, only when the workload is selected)
    procs: int = None   # processes a run starts (start-up workloads), when known
    timeout: int = None  # seconds per run, instead of the suite's default
    driver: object = None   # callable(preload, timeout, out_f, err_f) -> Exit that runs
                            # the workload itself (a server and its client) instead of
                            # argv; preload is a Preload or None
    repro: object = None    # callable(preload) -> command line that reproduces a run
    glibc_preload: str = None  # preload for the glibc column, when the program links
                               # another allocator (libc.so.6: glibc's malloc wins)
    higher: str = None  # metric reported by the program where higher is better (e.g.
                        # "rps"): its table replaces the wall-time row
    note: str = None    # set by prepare(): a note for the report


def bench_workloads(bindir, scale):
    s = f"{scale:g}"
    table = [
        ("churn-pair32", "malloc(32)+free, same thread", ["bench_churn", s, "pair32"]),
        ("churn-lifo", "batch of 10k 16-256 B, freed in reverse", ["bench_churn", s, "lifo"]),
        ("churn-fifo", "batch of 10k 16-256 B, freed in order", ["bench_churn", s, "fifo"]),
        ("churn-random", "batch of 10k 16-256 B, freed randomly", ["bench_churn", s, "random"]),
        ("larson", "2 threads replace slots, 1/16 freed remotely", ["bench_larson", s]),
        ("xmalloc", "producer mallocs, consumer frees (ring)", ["bench_xmalloc", s]),
        ("cthrash", "2 threads malloc/write/free 8 B objects", ["bench_cthrash", s, "thrash"]),
        ("cscratch", "as cthrash, first object from main thread",
         ["bench_cthrash", s, "scratch"]),
        ("realloc-chain", "realloc growth chains to <=1 MiB", ["bench_realloc", s, "chain"]),
        ("calloc-big", "calloc 1-8 MiB, touch all, free", ["bench_realloc", s, "calloc"]),
        ("mixed", "short-lived phases + long-lived survivors", ["bench_mixed", s]),
        ("large", "64 KiB-8 MiB blocks, <=8 live, one write per 4 KiB page; counts faults",
         ["bench_large", s]),
        ("frag", "phases of short-lived 16-512 B + 1/200 long-lived from another call site",
         ["bench_frag", s]),
        ("mstress", "4 threads x 10 rounds churn 8 B-5 MiB, keep half, swap with a shared array",
         ["bench_mstress", s]),
    ]
    return [Workload(n, w, [str(bindir / a[0])] + a[1:], expect="check=ok")
            for n, w, a in table]


PY_SCRIPT = r'''# dict/list-heavy Python workload for scripts/bench (run with PYTHONMALLOC=malloc)
import sys
rounds = max(1, int(float(sys.argv[1]) * 15))
check = 0
for r in range(rounds):
    d = {}
    for i in range(20000):
        d[f"key-{i}-{r}"] = [i, str(i) * 3, (i, r), {"v": i}]
    rows = sorted(d.values(), key=lambda v: (v[0] * 7919) % 20000)
    for k in list(d)[::2]:
        del d[k]
    words = " ".join(v[1] for v in d.values()).split()
    check += len(rows) + len(d) + len(words)
print("check=ok" if check == rounds * 40000 else f"check=bad {check}")
'''

NODE_SCRIPT = r'''// Buffer- and object-heavy Node.js workload for scripts/bench
const rounds = Math.max(1, Math.floor(parseFloat(process.argv[2] || "1") * 8));
let check = 0;
for (let r = 0; r < rounds; r++) {
  const bufs = [];
  for (let i = 0; i < 1500; i++) bufs.push(Buffer.alloc(256 + ((i * 7919) % 32768), i & 255));
  const objs = [];
  for (let i = 0; i < 30000; i++) objs.push({ id: i, name: "n" + i, tags: [i, r] });
  const byName = new Map(objs.map((o) => [o.name, o]));
  const json = JSON.parse(JSON.stringify(objs.slice(0, 10000)));
  const joined = Buffer.concat(bufs.slice(0, 300));
  let ok = byName.size === 30000 && json.length === 10000 && joined.length > 0;
  for (let i = 0; i < bufs.length; i += 97) ok = ok && bufs[i][bufs[i].length - 1] === (i & 255);
  if (ok) check++;
}
console.log(check === rounds ? "check=ok" : "check=bad " + check);
'''


def sqlite_script(scale):
    rows = max(1000, int(300000 * scale))
    return f"""-- SQLite workload for scripts/bench: recursive CTE, inserts, indexes
.bail on
CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c BLOB);
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {rows})
INSERT INTO t(a, b, c) SELECT (x * 7919) % 1000, printf('row-%08d-%x', x, x * 31), zeroblob(x % 200)
FROM n;
CREATE INDEX t_a ON t(a);
CREATE INDEX t_b ON t(b);
UPDATE t SET b = b || '-u' WHERE a % 3 = 0;
DELETE FROM t WHERE a % 5 = 0;
CREATE TABLE agg AS SELECT a, count(*) AS k, max(length(b)) AS m FROM t GROUP BY a;
SELECT CASE WHEN (SELECT count(*) FROM t) = {rows} - (SELECT count(*) FROM (
  WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {rows})
  SELECT x FROM n WHERE ((x * 7919) % 1000) % 5 = 0))
  AND (SELECT count(*) FROM agg) = 800 THEN 'check=ok' ELSE 'check=bad' END;
"""


def gcc_source(scale):
    nfuncs = max(5, int(80 * scale))
    out = ["/* generated by scripts/bench: a C file for gcc -O2 -c */",
           "#include <string.h>", "struct rec { int a, b; double w; char name[16]; };"]
    for i in range(nfuncs):
        out.append(f"""
static int helper_{i}(const struct rec *r, int n) {{
  int acc = {i};
  for (int k = 0; k < n; k++) {{
    switch ((r[k].a + k) % 5) {{
    case 0: acc += r[k].b * {i % 7 + 1}; break;
    case 1: acc ^= (int)(r[k].w * {i % 11 + 2}); break;
    case 2: acc -= (int)strlen(r[k].name); break;
    case 3: acc = acc * 31 + r[k].a; break;
    default: acc += k;
    }}
  }}
  return acc;
}}
int func_{i}(struct rec *r, int n) {{
  for (int k = 0; k < n; k++) {{ r[k].w = r[k].w * 0.5 + k; r[k].b ^= k * {i + 3}; }}
  return helper_{i}(r, n) + (n > 1 ? helper_{i}(r + 1, n - 1) : 0);
}}""")
    out.append("int (*const table[])(struct rec *, int) = {")
    out.append(",\n".join(f"  func_{i}" for i in range(nfuncs)) + "\n};")
    return "\n".join(out) + "\n"


def find_python():
    for cand in ("/usr/bin/python3", shutil.which("python3")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def real_workloads(workdir, scale):
    """Real programs that are installed; returns (workloads, notes)."""
    workdir.mkdir(parents=True, exist_ok=True)
    s = f"{scale:g}"
    found, notes = [], []
    py = find_python()
    if py:
        (workdir / "dicts.py").write_text(PY_SCRIPT)
        found.append(Workload("real-python3", "python3 dict/list churn, PYTHONMALLOC=malloc",
                              [py, str(workdir / "dicts.py"), s],
                              env={"PYTHONMALLOC": "malloc"}, expect="check=ok"))
    node = shutil.which("node") or shutil.which("nodejs")
    if node:
        (workdir / "buffers.js").write_text(NODE_SCRIPT)
        found.append(Workload("real-node", "node Buffers + objects + JSON",
                              [node, str(workdir / "buffers.js"), s], expect="check=ok"))
    sqlite = shutil.which("sqlite3")
    if sqlite:
        (workdir / "load.sql").write_text(sqlite_script(scale))
        found.append(Workload("real-sqlite3", "sqlite3 :memory: CTE inserts + indexes",
                              [sqlite, ":memory:"], stdin=workdir / "load.sql",
                              expect="check=ok"))
    gcc = shutil.which("gcc")
    if gcc:
        (workdir / "gen.c").write_text(gcc_source(scale))
        found.append(Workload("real-gcc", "gcc -O2 -c of a generated C file",
                              [gcc, "-O2", "-c", str(workdir / "gen.c"), "-o",
                               str(workdir / "gen.o")], output=workdir / "gen.o"))
    for name, prog in (("real-python3", py), ("real-node", node), ("real-sqlite3", sqlite),
                       ("real-gcc", gcc)):
        if not prog:
            notes.append(f"{name}: skipped, program not installed")
    return found, notes
