#!/usr/bin/env python3
"""report_tests.py - the at-exit report (text and JSON schema 1) and the
reader scripts/poolmalloc-report.

  report_tests.py TEST LIBPOOLMALLOC REPORT_PROG POOLMALLOC_REPORT

Each TEST runs tests/report/report_prog (or crafted reports) and exits 1 with
a message naming what was wrong. `report_tests.py list` prints the names.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

LIB = PROG = READER = None
TMP = None


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def base_env(**extra):
    """The environment without any POOLMALLOC_ setting or preload."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("POOLMALLOC_") and k != "LD_PRELOAD"}
    env.update(extra)
    return env


def run_prog(args, env_extra, check_rc=True):
    env = base_env(LD_PRELOAD=LIB, **env_extra)
    r = subprocess.run([PROG] + args, env=env, capture_output=True, text=True, timeout=60)
    if check_rc:
        check(r.returncode == 0, "report_prog %s exited %d: %s" % (args, r.returncode, r.stderr[-500:]))
    return r


def json_run(args, **extra):
    """Runs report_prog with POOLMALLOC_STATS=json into its own file; returns
    (stdout, report)."""
    d = tempfile.mkdtemp(dir=TMP)
    r = run_prog(args, dict(POOLMALLOC_STATS="json", POOLMALLOC_STATS_FILE=d + "/r-%p.json", **extra))
    files = os.listdir(d)
    check(len(files) == 1, "one process, expected one report file in %s, found %s" % (d, files))
    with open(os.path.join(d, files[0])) as f:
        lines = [l for l in f.read().splitlines() if l.strip()]
    check(len(lines) == 1, "expected one JSON line in %s, found %d" % (files[0], len(lines)))
    try:
        rep = json.loads(lines[0])
    except ValueError as e:
        raise Fail("report is not valid JSON (%s): %s" % (e, lines[0][:300]))
    return r.stdout, rep


def reader(args, stdin=None, expect_rc=0):
    r = subprocess.run([sys.executable, READER] + args, input=stdin, capture_output=True,
                       text=True, timeout=60, env=base_env())
    check(r.returncode == expect_rc, "poolmalloc-report %s exited %d (expected %d): %s%s"
          % (args, r.returncode, expect_rc, r.stdout[-800:], r.stderr[-800:]))
    return r


# ---------------------------------------------------------------- the schema

def class_size(c):
    if c < 8:
        return (c + 1) * 16
    g, k = (c - 8) >> 2, (c - 8) & 3
    return (128 << g) + (k + 1) * (32 << g)


COUNTERS = ["pages_fresh", "pages_reused", "pages_released", "pages_abandoned", "pages_adopted",
            "remote_frees", "fallback_too_large", "fallback_alignment", "fallback_disabled",
            "fallback_region_full", "fallback_no_heap", "large_bytes", "large_frees",
            "realloc_in_place", "realloc_moved", "pages_in_use", "page_size", "live_block_bytes",
            "tail_bytes", "purged_bytes", "region_committed", "jemalloc_allocated",
            "jemalloc_resident", "rss", "rss_peak"]
OPTIONS = ["POOL_SIZE", "MAX_POOLED", "DISABLE", "VERBOSE", "STATS", "STATS_FILE", "DECAY_MS",
           "REGION_SIZE"]


def is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def validate(rep, where):
    """Schema 1, field by field (docs/report.md)."""
    check(isinstance(rep, dict) and list(rep) == ["poolmalloc"], "%s: top level must be {\"poolmalloc\": ...}" % where)
    r = rep["poolmalloc"]
    check(r.get("schema") == 1, "%s: schema is %r, expected 1" % (where, r.get("schema")))
    check(isinstance(r.get("version"), str) and re.match(r"^\d+\.\d+\.\d+", r["version"]),
          "%s: version %r" % (where, r.get("version")))
    check(is_uint(r.get("pid")) and r["pid"] > 0, "%s: pid %r" % (where, r.get("pid")))
    check(isinstance(r.get("program"), str), "%s: program %r" % (where, r.get("program")))
    check(is_uint(r.get("run_time_ms")), "%s: run_time_ms %r" % (where, r.get("run_time_ms")))
    o = r.get("options")
    check(isinstance(o, dict), "%s: options missing" % where)
    for k in OPTIONS:
        check(k in o, "%s: options.%s missing" % (where, k))
    for k in ("POOL_SIZE", "MAX_POOLED", "DISABLE", "VERBOSE", "DECAY_MS", "REGION_SIZE"):
        check(is_uint(o[k]), "%s: options.%s=%r is not a number" % (where, k, o[k]))
    check(o["STATS"] in ("off", "text", "json"), "%s: options.STATS=%r" % (where, o["STATS"]))
    check(isinstance(o["STATS_FILE"], str), "%s: options.STATS_FILE=%r" % (where, o["STATS_FILE"]))
    check(0 < o["MAX_POOLED"] <= o["POOL_SIZE"], "%s: MAX_POOLED %r vs POOL_SIZE %r" % (where, o["MAX_POOLED"], o["POOL_SIZE"]))
    t = r.get("threads")
    check(isinstance(t, dict) and all(is_uint(t.get(k)) for k in ("total", "peak", "live")),
          "%s: threads %r" % (where, t))
    check(t["peak"] <= t["total"] and t["live"] <= t["peak"], "%s: threads live <= peak <= total: %r" % (where, t))
    c = r.get("counters")
    check(isinstance(c, dict), "%s: counters missing" % where)
    for k in COUNTERS:
        check(is_uint(c.get(k)), "%s: counters.%s=%r" % (where, k, c.get(k)))
    # page_size is the pool page size once the region is reserved (it reads
    # 1 in 0.1.0 when it never was: POOLMALLOC_DISABLE=1, no allocation)
    if c["region_committed"] or c["pages_in_use"]:
        check(c["page_size"] == o["POOL_SIZE"], "%s: page_size %d != POOL_SIZE %d" % (where, c["page_size"], o["POOL_SIZE"]))
    check(c["rss"] <= c["rss_peak"], "%s: rss %d > rss_peak %d" % (where, c["rss"], c["rss_peak"]))
    check(c["tail_bytes"] <= c["pages_in_use"] * c["page_size"], "%s: tail_bytes larger than the pages in use" % where)
    check(c["live_block_bytes"] + c["tail_bytes"] <= c["pages_in_use"] * c["page_size"],
          "%s: live blocks + tails larger than the pages in use" % where)
    cls = r.get("classes")
    check(isinstance(cls, list), "%s: classes missing" % where)
    prev = -1
    live_bytes = 0
    for k in cls:
        for f in ("class", "block_size", "allocs", "frees", "requested_bytes", "live"):
            check(is_uint(k.get(f)), "%s: classes[].%s=%r" % (where, f, k.get(f)))
        check(k["class"] > prev, "%s: classes not in increasing order" % where)
        prev = k["class"]
        check(k["block_size"] == class_size(k["class"]),
              "%s: class %d has block_size %d, expected %d" % (where, k["class"], k["block_size"], class_size(k["class"])))
        check(k["allocs"] or k["frees"], "%s: class %d listed with no allocs and no frees" % (where, k["class"]))
        check(k["live"] == max(0, k["allocs"] - k["frees"]), "%s: class %d live != allocs - frees" % (where, k["class"]))
        check(k["requested_bytes"] <= k["allocs"] * k["block_size"],
              "%s: class %d requested more than its blocks hold" % (where, k["class"]))
        live_bytes += k["live"] * k["block_size"]
    check(live_bytes == c["live_block_bytes"],
          "%s: sum of live x block_size %d != live_block_bytes %d" % (where, live_bytes, c["live_block_bytes"]))
    return r


# ---------------------------------------------------------------- tests

def t_files_per_process():
    """a shell pipeline of 3 processes leaves 3 files, one report each"""
    d = tempfile.mkdtemp(dir=TMP)
    # bash itself is not preloaded (LD_PRELOAD is exported after it started)
    script = ('export LD_PRELOAD="$1" POOLMALLOC_STATS=json POOLMALLOC_STATS_FILE="$2/r-%p.json"; '
              '"$3" count 1000 | "$3" count 2000 | "$3" count 3000 >/dev/null')
    r = subprocess.run(["bash", "-c", script, "bash", LIB, d, PROG], env=base_env(),
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "pipeline failed: %s" % r.stderr)
    files = sorted(os.listdir(d))
    check(len(files) == 3, "3 processes, expected 3 files, found %s" % files)
    programs = set()
    for f in files:
        with open(os.path.join(d, f)) as fh:
            lines = [l for l in fh.read().splitlines() if l.strip()]
        check(len(lines) == 1, "%s: expected one report, found %d lines" % (f, len(lines)))
        rep = validate(json.loads(lines[0]), f)
        check(f == "r-%d.json" % rep["pid"], "%s holds the report of pid %d" % (f, rep["pid"]))
        programs.add(rep["program"].split(" ", 1)[1])
    check(programs == {"count 1000", "count 2000", "count 3000"}, "programs %s" % programs)


def t_json_schema():
    """every field of schema 1 is there with its type and invariants, for
    several option sets"""
    for extra in ({}, {"POOLMALLOC_POOL_SIZE": "16K"}, {"POOLMALLOC_MAX_POOLED": "1000"},
                  {"POOLMALLOC_DISABLE": "1"}):
        _, rep = json_run(["count", "3000"], **extra)
        r = validate(rep, "report with %s" % extra)
        if extra.get("POOLMALLOC_DISABLE"):
            check(not r["classes"] and r["counters"]["fallback_disabled"] >= 3000,
                  "POOLMALLOC_DISABLE=1: expected no classes and >= 3000 fallback_disabled")
        if "POOLMALLOC_MAX_POOLED" in extra:
            check(r["options"]["MAX_POOLED"] == 1000, "MAX_POOLED=1000 reported as %r" % r["options"]["MAX_POOLED"])
            check(all(k["block_size"] <= 1024 for k in r["classes"]), "a class above MAX_POOLED=1000 was used")


def t_json_every_option():
    """the report stays valid JSON whatever the options (a named signal in
    POOLMALLOC_STATS_SIGNAL, quotes and backslashes in the program and the
    file name)"""
    d = tempfile.mkdtemp(dir=TMP)
    for extra in ({"POOLMALLOC_STATS_SIGNAL": "USR2"}, {"POOLMALLOC_STATS_SIGNAL": "12"}):
        env = base_env(LD_PRELOAD=LIB, POOLMALLOC_STATS="json",
                       POOLMALLOC_STATS_FILE=d + '/q"uo\\te-%p.json', **extra)
        r = subprocess.run([PROG, "count", "10", 'arg "with" \\ quotes'], env=env,
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "report_prog failed: %s" % r.stderr)
        files = os.listdir(d)
        check(len(files) == 1, "expected one file, found %s" % files)
        path = os.path.join(d, files[0])
        with open(path) as f:
            line = f.read().strip()
        os.unlink(path)
        try:
            rep = json.loads(line)
        except ValueError as e:
            raise Fail("with %s the report is not valid JSON (%s): ...%s..."
                       % (extra, e, line[max(0, e.pos - 60):e.pos + 30]))
        r = validate(rep, "with %s" % extra)
        check(r["program"].endswith('arg "with" \\ quotes'), "program %r" % r["program"])


def t_counters():
    """counters agree with what the program did"""
    n = 20000
    out, rep = json_run(["count", str(n)])
    r = rep["poolmalloc"]
    calls = int(out.strip())
    allocs = sum(k["allocs"] for k in r["classes"])
    frees = sum(k["frees"] for k in r["classes"])
    fallbacks = sum(r["counters"][k] for k in COUNTERS if k.startswith("fallback_"))
    check(allocs + fallbacks >= calls, "pooled %d + jemalloc %d < %d calls made" % (allocs, fallbacks, calls))
    check(allocs >= n, "sum of class allocs %d < %d mallocs of 1..1000 bytes" % (allocs, n))
    check(frees <= allocs, "frees %d > allocs %d" % (frees, allocs))
    check(frees >= n * 3 // 4, "frees %d < %d (the program frees 3 of 4)" % (frees, n * 3 // 4))
    for k in r["classes"]:
        check(k["frees"] <= k["allocs"], "class %d: frees %d > allocs %d" % (k["class"], k["frees"], k["allocs"]))
    req = sum(k["requested_bytes"] for k in r["classes"])
    want = sum(1 + (i * 37) % 1000 for i in range(n))
    check(req >= want, "requested_bytes %d < %d bytes the program asked for" % (req, want))

    n, size = 500, 50000
    _, rep = json_run(["large", str(n), str(size)])
    c = rep["poolmalloc"]["counters"]
    check(c["fallback_too_large"] >= n, "fallback_too_large %d < %d requests of %d B" % (c["fallback_too_large"], n, size))
    check(c["large_bytes"] >= n * size, "large_bytes %d < %d" % (c["large_bytes"], n * size))
    check(c["large_frees"] >= n // 2, "large_frees %d < %d" % (c["large_frees"], n // 2))

    n = 20000
    _, rep = json_run(["remote", str(n)])
    r = rep["poolmalloc"]
    check(r["counters"]["remote_frees"] >= n, "remote_frees %d < %d frees from a second thread" % (r["counters"]["remote_frees"], n))
    k48 = [k for k in r["classes"] if k["block_size"] == 48]
    check(k48 and k48[0]["allocs"] >= n and k48[0]["frees"] >= n, "class 48 B: %s" % k48)


def t_text_report():
    """POOLMALLOC_STATS=1 writes the text report on stderr between the
    begin and end lines"""
    r = run_prog(["count", "500"], {"POOLMALLOC_STATS": "1"})
    check(r.stdout == "501\n", "stdout changed by the report: %r" % r.stdout)
    lines = r.stderr.splitlines()
    check(lines, "nothing on stderr")
    m = re.match(r"^==== poolmalloc \S+ report begin: pid (\d+) ====$", lines[0])
    check(m, "first stderr line is not the begin line: %r" % lines[0])
    check(lines[-1] == "==== poolmalloc report end ====", "last stderr line is not the end line: %r" % lines[-1])
    check(sum(l.startswith("==== poolmalloc") for l in lines) == 2, "more than one report on stderr")
    body = "\n".join(lines)
    for label in ("program:", "run time:", "options:", "threads:", "requests:", "pool pages:", "memory:"):
        check(re.search(r"^%s" % re.escape(label), body, re.M), "no %r line in the text report" % label)
    check(re.search(r"^program:\s+\S*report_prog count 500$", body, re.M), "program line does not name the command")
    m = re.search(r"^requests:\s+(\d+) allocations", body, re.M)
    check(m and int(m.group(1)) >= 501, "requests line counts fewer than 501 allocations")
    check(re.search(r"^\s+class\s+block\s+allocs\s+frees\s+live\s+requested\s+waste\s+pages\s+peak$", body, re.M),
          "no size-class table header")


def t_unwritable_path():
    """an unwritable POOLMALLOC_STATS_FILE gives one poolmalloc: line and
    the report on stderr"""
    bad = "/nonexistent/dir/r.json"
    for fmt in ("json", "1"):
        r = run_prog(["count", "200"], {"POOLMALLOC_STATS": fmt, "POOLMALLOC_STATS_FILE": bad})
        lines = r.stderr.splitlines()
        warn = [l for l in lines if l.startswith("poolmalloc:")]
        check(len(warn) == 1, "STATS=%s: expected one 'poolmalloc:' line, got %d: %s" % (fmt, len(warn), warn))
        check(bad in warn[0], "the warning does not name the path: %r" % warn[0])
        check(lines[0] == warn[0], "the warning is not the first stderr line: %r" % lines[0])
        rest = lines[1:]
        if fmt == "json":
            check(len(rest) == 1, "STATS=json: expected one JSON line after the warning, got %d" % len(rest))
            try:
                validate(json.loads(rest[0]), "stderr JSON")
            except ValueError as e:
                raise Fail("the report on stderr is not valid JSON: %s" % e)
        else:
            check(rest and rest[0].startswith("==== poolmalloc ") and "report begin" in rest[0],
                  "STATS=1: the text report does not follow the warning: %r" % rest[:1])
            check(rest[-1] == "==== poolmalloc report end ====", "STATS=1: no end line")
    check(not os.path.exists(bad), "%s was created" % bad)


# ---------------------------------------------------------------- the reader

def crafted(pid, program, run_ms=500, classes=(), too_large=0, large_bytes=0, remote=0,
            pool_size=65536, rss_peak=10 << 20, **counters):
    c = {k: 0 for k in COUNTERS}
    c.update(page_size=pool_size, rss=rss_peak // 2, rss_peak=rss_peak,
             fallback_too_large=too_large, large_bytes=large_bytes, remote_frees=remote)
    c.update(counters)
    cls = []
    for num, allocs, frees, req in classes:
        cls.append({"class": num, "block_size": class_size(num), "allocs": allocs, "frees": frees,
                    "requested_bytes": req, "live": max(0, allocs - frees)})
    c["live_block_bytes"] = sum(k["live"] * k["block_size"] for k in cls)
    return {"poolmalloc": {
        "schema": 1, "version": "0.1.0", "pid": pid, "program": program, "run_time_ms": run_ms,
        "options": {"POOL_SIZE": pool_size, "MAX_POOLED": pool_size // 2, "DISABLE": 0, "VERBOSE": 0,
                    "STATS": "json", "STATS_FILE": "", "DECAY_MS": 1000, "REGION_SIZE": 32 << 30},
        "threads": {"total": 1, "peak": 1, "live": 1}, "counters": c, "classes": cls}}


def write(path, reports, noise=False):
    with open(path, "w") as f:
        for rep in reports:
            if noise:
                f.write("some program output\n")
            f.write(json.dumps(rep, separators=(",", ":")) + "\n")


def t_reader_advise():
    """--advise names a POOLMALLOC_ variable and value for reports that need
    one, and says so when nothing is worth changing"""
    d = tempfile.mkdtemp(dir=TMP)
    # 40% of requests are too large, mean 40,000 B: at least 76% of them fit
    # under 64 KiB, so POOLMALLOC_POOL_SIZE=131072
    write(d + "/big.json", [crafted(100, "server --big", classes=[(1, 60000, 59000, 60000 * 20)],
                                    too_large=40000, large_bytes=40000 * 40000, large_frees=40000)])
    r = reader(["--advise", d + "/big.json"])
    check(re.search(r"^  1\. POOLMALLOC_POOL_SIZE=131072\b", r.stdout, re.M),
          "too-large report: no POOLMALLOC_POOL_SIZE=131072 advice:\n" + r.stdout)
    check("40%" in r.stdout and "too large" in r.stdout, "the advice does not give the 40%% that triggered it")
    j = json.loads(reader(["--advise", "--json", d + "/big.json"]).stdout)
    check(j["advice"] and j["advice"][0]["variable"] == "POOLMALLOC_POOL_SIZE" and j["advice"][0]["value"] == 131072,
          "--json --advise: %s" % j.get("advice"))
    check(j["advice"][0]["figures"]["fallback_too_large"] == 40000, "advice figures %s" % j["advice"][0]["figures"])

    # 30 processes of 2 ms with 300 allocations each: POOLMALLOC_DISABLE=1
    write(d + "/short.json", [crafted(1000 + i, "/bin/tool %d" % i, run_ms=2, rss_peak=3 << 20,
                                      classes=[(0, 200, 150, 1600), (3, 100, 90, 6000)]) for i in range(30)])
    r = reader(["--advise", d + "/short.json"])
    check(re.search(r"^  \d\. POOLMALLOC_DISABLE=1\b", r.stdout, re.M), "short-lived: no POOLMALLOC_DISABLE=1 advice:\n" + r.stdout)
    check("30 of 30" in r.stdout, "short-lived advice does not give the 30 of 30 processes")

    # a healthy report: nothing to change
    write(d + "/ok.json", [crafted(7, "app", run_ms=5000, classes=[(2, 100000, 99000, 100000 * 40)])])
    r = reader(["--advise", d + "/ok.json"])
    check("nothing worth changing" in r.stdout, "healthy report: advice given:\n" + r.stdout)
    check(not re.search(r"^  \d\. POOLMALLOC_", r.stdout, re.M), "healthy report: advice given:\n" + r.stdout)

    # real runs: many requests of 50,000 B, then sparse survivors
    for args, want in ((["large", "3000", "50000"], "POOLMALLOC_POOL_SIZE="),
                       (["sparse", "400000"], "POOLMALLOC_POOL_SIZE=16384"),
                       (["remote", "50000"], "POOLMALLOC_DISABLE=1")):
        dd = tempfile.mkdtemp(dir=TMP)
        run_prog(args, {"POOLMALLOC_STATS": "json", "POOLMALLOC_STATS_FILE": dd + "/r-%p.json"})
        r = reader(["--advise", dd])
        check(re.search(r"^  \d\. %s" % re.escape(want), r.stdout, re.M),
              "report_prog %s: no %s advice:\n%s" % (" ".join(args), want, r.stdout))


def t_reader_inputs():
    """files, directories and stdin; reports mixed with other output; one
    pid's snapshots counted once; aggregates add up"""
    d = tempfile.mkdtemp(dir=TMP)
    reps = [crafted(10 + i, "prog %d" % i, classes=[(0, 100 * (i + 1), 50, 800), (9, 10, 10, 1800)],
                    too_large=i, large_bytes=i * 40000, remote=3, rss_peak=(i + 1) << 20,
                    realloc_in_place=2, realloc_moved=1)
            for i in range(5)]
    write(d + "/a.json", reps[:2])
    os.makedirs(d + "/sub")
    write(d + "/sub/b.json", reps[2:4], noise=True)
    # a signal dump of pid 14 before its exit report: counted once
    early = json.loads(json.dumps(reps[4]))
    early["poolmalloc"]["run_time_ms"] = 100
    early["poolmalloc"]["classes"][0]["allocs"] = 1
    text = ("==== poolmalloc 0.1.0 report begin: pid 99 ====\nprogram:   x\n==== poolmalloc report end ====\n"
            "garbage line\n" + json.dumps(early) + "\n" + "prefix " + json.dumps(reps[4]) + "\n"
            + '{"poolmalloc":{"schema":1,"pid": truncated\n' + '{"other": 1}\n')
    j = json.loads(reader(["--json", d], stdin=None).stdout)
    check(j["processes"] == 4, "directory: %d processes, expected 4" % j["processes"])
    r = reader(["--json", "-", d], stdin=text)
    j = json.loads(r.stdout)
    check(j["processes"] == 5, "stdin + directory: %d processes, expected 5" % j["processes"])
    check(j["input"]["superseded_snapshots"] == 1, "the signal dump of pid 14 was not superseded: %s" % j["input"])
    check(j["input"]["text_reports_ignored"] == 1, "text report not counted: %s" % j["input"])
    check("not valid JSON" in r.stderr, "the truncated report was not reported on stderr: %r" % r.stderr)
    pooled = sum(100 * (i + 1) + 10 for i in range(5))
    tl = sum(range(5))
    check(j["pooled"] == pooled, "pooled %d, expected %d" % (j["pooled"], pooled))
    check(j["requests"] == pooled + tl, "requests %d, expected %d" % (j["requests"], pooled + tl))
    check(j["jemalloc_by_reason"]["fallback_too_large"]["count"] == tl, "too large %s" % j["jemalloc_by_reason"])
    check(j["frees"]["remote_frees"] == 15, "remote frees %d, expected 15" % j["frees"]["remote_frees"])
    check(j["realloc"] == {"calls": 15, "in_place": 10, "moved": 5, "in_place_pct": 66.67}, "realloc %s" % j["realloc"])
    check(j["rss_peak"] == {"max": 5 << 20, "sum": 15 << 20}, "rss_peak %s" % j["rss_peak"])
    check([p["pid"] for p in j["processes_by_rss_peak"]] == [14, 13, 12, 11, 10], "processes by RSS %s" % j["processes_by_rss_peak"])
    c0 = [k for k in j["classes"] if k["block_size"] == 16][0]
    check(c0["block_bytes"] == c0["allocs"] * 16 and c0["requested_bytes"] == 5 * 800,
          "class 16 B: %s" % c0)
    check(j["waste"]["block_bytes"] == sum(k["allocs"] * k["block_size"] for k in j["classes"]), "waste %s" % j["waste"])
    # the text aggregate carries the same figures
    r = reader(["--top", "3", "-", d], stdin=text)
    check(re.search(r"^requests:\s+%s allocations" % "{:,}".format(pooled + tl), r.stdout, re.M),
          "text: requests line\n" + r.stdout)
    check(re.search(r"^peak RSS:\s+max 5 MiB, sum 15 MiB over 5 processes$", r.stdout, re.M), "text: peak RSS line\n" + r.stdout)
    check(len(re.findall(r"^\s+1[0-4]\s+\d", r.stdout, re.M)) == 3, "--top 3 did not limit the process table\n" + r.stdout)
    # nothing to read: exit 1 and a message
    r = reader([], stdin="no report here\n", expect_rc=1)
    check("no poolmalloc JSON report" in r.stderr, "no-report message: %r" % r.stderr)


def t_reader_real():
    """the reader's aggregate of real reports equals the sums of their fields"""
    d = tempfile.mkdtemp(dir=TMP)
    script = ('export LD_PRELOAD="$1" POOLMALLOC_STATS=json POOLMALLOC_STATS_FILE="$2/r-%p.json"; '
              '"$3" count 5000 | "$3" large 300 40000 >/dev/null; "$3" remote 3000 >/dev/null')
    r = subprocess.run(["bash", "-c", script, "bash", LIB, d, PROG], env=base_env(),
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "runs failed: %s" % r.stderr)
    reps = []
    for f in sorted(os.listdir(d)):
        with open(os.path.join(d, f)) as fh:
            reps.append(validate(json.loads(fh.read()), f))
    check(len(reps) == 3, "expected 3 reports, found %d" % len(reps))
    j = json.loads(reader(["--json", "--advise", d]).stdout)
    pooled = sum(k["allocs"] for rep in reps for k in rep["classes"])
    fb = sum(rep["counters"][k] for rep in reps for k in COUNTERS if k.startswith("fallback_"))
    check(j["processes"] == 3, "processes %d" % j["processes"])
    check(j["pooled"] == pooled and j["requests"] == pooled + fb,
          "pooled %d / requests %d, expected %d / %d" % (j["pooled"], j["requests"], pooled, pooled + fb))
    check(j["frees"]["remote_frees"] == sum(rep["counters"]["remote_frees"] for rep in reps), "remote frees")
    check(j["rss_peak"]["max"] == max(rep["counters"]["rss_peak"] for rep in reps), "rss max")
    check(j["pages_at_exit"]["tail_bytes"] == sum(rep["counters"]["tail_bytes"] for rep in reps), "tail bytes")
    for item in j["advice"]:
        check(item["variable"].startswith("POOLMALLOC_") and item["variable"] in item["text"],
              "advice without its variable: %s" % item)
    r = reader(["--advise", d])
    check(r.stdout.startswith("poolmalloc-report: 3 processes"), "text output header: %r" % r.stdout[:80])


TESTS = {name[2:]: fn for name, fn in sorted(globals().items()) if name.startswith("t_")}


def main():
    global LIB, PROG, READER, TMP
    if len(sys.argv) == 2 and sys.argv[1] == "list":
        print("\n".join(TESTS))
        return 0
    if len(sys.argv) != 5 or sys.argv[1] not in TESTS:
        sys.stderr.write("usage: report_tests.py {%s} LIB REPORT_PROG POOLMALLOC_REPORT\n" % "|".join(TESTS))
        return 2
    name, LIB, PROG, READER = sys.argv[1:]
    for p in (LIB, PROG, READER):
        if not os.path.exists(p):
            sys.stderr.write("report_tests: %s not found\n" % p)
            return 2
    TMP = tempfile.mkdtemp(prefix="pm-report-%s-" % name)
    try:
        TESTS[name]()
    except Fail as e:
        sys.stderr.write("FAIL %s: %s\n(files kept in %s)\n" % (name, e, TMP))
        return 1
    except (ValueError, KeyError, IndexError, TypeError, OSError, subprocess.TimeoutExpired) as e:
        import traceback
        traceback.print_exc()
        sys.stderr.write("FAIL %s: %s: %s\n(files kept in %s)\n" % (name, type(e).__name__, e, TMP))
        return 1
    shutil.rmtree(TMP, ignore_errors=True)
    print("ok %s: %s" % (name, TESTS[name].__doc__.split("\n")[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
