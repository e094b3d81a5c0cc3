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


def reader(args, stdin=None, expect_rc=0, **env_extra):
    r = subprocess.run([sys.executable, READER] + args, input=stdin, capture_output=True,
                       text=True, timeout=120, env=base_env(**env_extra))
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
            "fallback_region_full", "fallback_no_heap", "fallback_long_lived", "long_lived_to_pages", "samples",
            "large_bytes", "large_frees",
            "realloc_in_place", "realloc_moved", "pages_in_use", "pages_in_use_bytes", "pages_peak", "page_size",
            "live_block_bytes", "live_block_waste", "tail_bytes", "pinned_pages", "pinned_bytes",
            "remote_pending_pages", "remote_pending_bytes", "purged_bytes", "region_committed", "jemalloc_allocated",
            "jemalloc_resident", "jemalloc_purged", "rss", "rss_peak"]
OPTIONS = ["POOL_SIZE", "MAX_POOLED", "DISABLE", "VERBOSE", "STATS", "STATS_FILE", "DECAY_MS",
           "BACKGROUND", "CHECK", "PROFILE", "PROFILE_RATE", "UNWINDER", "LIFETIME", "LIFETIME_THRESHOLD", "REGION_SIZE"]


def is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def validate(rep, where):
    """Schema 2, field by field (docs/report.md)."""
    check(isinstance(rep, dict) and list(rep) == ["poolmalloc"], "%s: top level must be {\"poolmalloc\": ...}" % where)
    r = rep["poolmalloc"]
    check(r.get("schema") == 2, "%s: schema is %r, expected 2" % (where, r.get("schema")))
    check(isinstance(r.get("version"), str) and re.match(r"^\d+\.\d+\.\d+", r["version"]),
          "%s: version %r" % (where, r.get("version")))
    check(is_uint(r.get("pid")) and r["pid"] > 0, "%s: pid %r" % (where, r.get("pid")))
    check(is_uint(r.get("ppid")), "%s: ppid %r" % (where, r.get("ppid")))
    check(isinstance(r.get("forked_without_exec"), bool),
          "%s: forked_without_exec %r" % (where, r.get("forked_without_exec")))
    check(r.get("trigger") in ("exit", "signal", "api"), "%s: trigger %r" % (where, r.get("trigger")))
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
    tls = r.get("too_large_sizes")
    check(isinstance(tls, list), "%s: too_large_sizes missing" % where)
    prev = 0
    for b in tls:
        check(isinstance(b, dict) and is_uint(b.get("max_bytes")) and is_uint(b.get("count")),
              "%s: too_large_sizes item %r" % (where, b))
        mb = b["max_bytes"]
        check(mb & (mb - 1) == 0 or mb == 2 ** 64 - 1, "%s: max_bytes %d is not a power of two" % (where, mb))
        check(mb > prev and b["count"] > 0, "%s: too_large_sizes not increasing or a zero count: %r" % (where, tls))
        prev = mb
    check(sum(b["count"] for b in tls) == c["fallback_too_large"],
          "%s: too_large_sizes counts %d != fallback_too_large %d"
          % (where, sum(b["count"] for b in tls), c["fallback_too_large"]))
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
    tls = {b["max_bytes"]: b["count"] for b in rep["poolmalloc"]["too_large_sizes"]}
    check(tls.get(65536, 0) >= n, "%d requests of %d B, too_large_sizes %s" % (n, size, tls))

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
            pool_size=65536, rss_peak=10 << 20, max_pooled=None, ppid=None, forked=None,
            trigger=None, sizes=None, **counters):
    """A report as the library writes it. ppid, forked (forked_without_exec),
    trigger and sizes (too_large_sizes, {max_bytes: count}; sets
    fallback_too_large to their sum) are left out when None, as in reports of
    0.1.0 before they were added."""
    c = {k: 0 for k in COUNTERS}
    c.update(page_size=pool_size, rss=rss_peak // 2, rss_peak=rss_peak,
             fallback_too_large=too_large, large_bytes=large_bytes, remote_frees=remote)
    c.update(counters)
    cls = []
    for num, allocs, frees, req in classes:
        cls.append({"class": num, "block_size": class_size(num), "allocs": allocs, "frees": frees,
                    "requested_bytes": req, "live": max(0, allocs - frees)})
    c["live_block_bytes"] = sum(k["live"] * k["block_size"] for k in cls)
    r = {"schema": 1, "version": "0.1.0", "pid": pid}
    if ppid is not None:
        r["ppid"] = ppid
    if forked is not None:
        r["forked_without_exec"] = forked
    if trigger is not None:
        r["trigger"] = trigger
    r.update({
        "program": program, "run_time_ms": run_ms,
        "options": {"POOL_SIZE": pool_size, "MAX_POOLED": max_pooled or pool_size // 2, "DISABLE": 0,
                    "VERBOSE": 0, "STATS": "json", "STATS_FILE": "", "DECAY_MS": 1000,
                    "REGION_SIZE": 32 << 30},
        "threads": {"total": 1, "peak": 1, "live": 1}, "counters": c})
    if sizes is not None:
        r["too_large_sizes"] = [{"max_bytes": b, "count": n} for b, n in sorted(sizes.items())]
        c["fallback_too_large"] = sum(sizes.values())
    r["classes"] = cls
    return {"poolmalloc": r}


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
    check(re.search(r"^poolmalloc-report: error: <stdin>:7: truncated report", r.stderr, re.M),
          "the truncated report was not reported on stderr: %r" % r.stderr)
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


def have_matplotlib(python, **env_extra):
    try:
        return subprocess.run([python, "-c", "import matplotlib"], env=base_env(**env_extra),
                              capture_output=True, timeout=60).returncode == 0
    except OSError:
        return False


def t_reader_plot():
    """--plot FILE.png writes a PNG (re-running with /usr/bin/python3 when
    this python lacks matplotlib), or says why not and prints the report"""
    d = tempfile.mkdtemp(dir=TMP)
    write(d + "/r.json", [crafted(100, "app", classes=[(0, 5000, 4000, 5000 * 10), (20, 800, 700, 800 * 1200)],
                                  sizes={65536: 300, 262144: 20}, large_bytes=300 * 50000 + 20 * 200000),
                          crafted(101, "tool", classes=[(3, 1000, 1000, 60000)], fallback_alignment=5)])
    png = os.path.join(TMP, "out.png")
    available = have_matplotlib(sys.executable) or have_matplotlib("/usr/bin/python3")
    r = reader(["--plot", png, d + "/r.json"])
    check(r.stdout.startswith("poolmalloc-report: 2 processes"), "--plot: no text report on stdout:\n" + r.stdout)
    if available:
        check(os.path.exists(png), "--plot with matplotlib available: %s not written; stderr: %s" % (png, r.stderr))
        with open(png, "rb") as f:
            data = f.read()
        check(data[:8] == b"\x89PNG\r\n\x1a\n", "--plot: %s does not start with the PNG signature: %r" % (png, data[:8]))
        check(len(data) > 10000, "--plot: %s is only %d bytes" % (png, len(data)))
        check("plot written to " + png in r.stderr, "--plot: no 'plot written' message: %r" % r.stderr)
        # --json keeps stdout pure JSON with --plot
        os.unlink(png)
        j = json.loads(reader(["--json", "--plot", png, d + "/r.json"]).stdout)
        check(j["processes"] == 2 and os.path.exists(png), "--json --plot: %s" % j.get("processes"))
        # a plot that cannot be written: exit 1 and the file named
        bad = "/nonexistent/dir/p.png"
        r = reader(["--plot", bad, d + "/r.json"], expect_rc=1)
        check(bad in r.stderr, "unwritable --plot: the error does not name %s: %r" % (bad, r.stderr))
    else:
        check("needs matplotlib" in r.stderr, "--plot without matplotlib: no message: %r" % r.stderr)
        check(not os.path.exists(png), "--plot without matplotlib: %s exists" % png)
    # matplotlib missing everywhere (a module that fails to import, first on
    # PYTHONPATH for every python): the message, the text report, exit 0
    fake = os.path.join(TMP, "fake")
    os.makedirs(fake + "/matplotlib")
    with open(fake + "/matplotlib/__init__.py", "w") as f:
        f.write("raise ImportError('simulated: no matplotlib')\n")
    png2 = os.path.join(TMP, "none.png")
    r = reader(["--advise", "--plot", png2, d + "/r.json"], PYTHONPATH=fake)
    check("needs matplotlib" in r.stderr and "python3-matplotlib" in r.stderr,
          "--plot without matplotlib: no message saying so: %r" % r.stderr)
    check(r.stdout.startswith("poolmalloc-report: 2 processes") and "\nadvice:\n" in r.stdout,
          "--plot without matplotlib: the text report was not printed:\n" + r.stdout)
    check(not os.path.exists(png2), "--plot without matplotlib: %s was written" % png2)


def t_reader_truncated():
    """a truncated or malformed report file is named on stderr (with the
    line) and the other files are still read; exit 0 if a report was read"""
    d = tempfile.mkdtemp(dir=TMP)
    good = crafted(10, "good", classes=[(1, 7000, 6000, 7000 * 20)], sizes={65536: 40},
                   large_bytes=40 * 40000, ppid=1, forked=False, trigger="exit")
    write(d + "/good.json", [good])
    line = json.dumps(crafted(11, "cut", classes=[(2, 999, 0, 999 * 40)], ppid=1, forked=False,
                              trigger="exit"), separators=(",", ":"))
    with open(d + "/trunc.json", "w") as f:
        f.write(line[:len(line) // 2])          # the writer was killed in the middle
    j_good = json.loads(reader(["--json", d + "/good.json"]).stdout)
    r = reader(["--json", d + "/trunc.json", d + "/good.json"])
    check(re.search(r"^poolmalloc-report: error: %s:1: truncated report" % re.escape(d + "/trunc.json"),
                    r.stderr, re.M), "the truncated file is not named with its line: %r" % r.stderr)
    check("good.json" not in r.stderr, "the good file is named on stderr: %r" % r.stderr)
    j = json.loads(r.stdout)
    check(j["processes"] == 1 and j["pooled"] == 7000 and j["requests"] == 7040,
          "aggregate with a truncated file: %d processes, %d pooled, %d requests (expected 1, 7000, 7040)"
          % (j["processes"], j["pooled"], j["requests"]))
    check({k: v for k, v in j.items() if k != "input"} == {k: v for k, v in j_good.items() if k != "input"},
          "the aggregate of good.json changed when read with trunc.json")
    check(j["input"]["invalid_reports"] == 1, "input %s" % j["input"])
    # the text aggregate too, and a directory holding both
    r = reader([d])
    check(r.stdout.startswith("poolmalloc-report: 1 process from 2 sources"), "text header: %r" % r.stdout[:80])
    check(re.search(r"^requests:\s+7,040 allocations", r.stdout, re.M), "text aggregate:\n" + r.stdout)
    check("trunc.json:1: truncated report" in r.stderr, "directory: %r" % r.stderr)
    # a malformed line among good ones: the line is named, the others read
    lines = [json.dumps(crafted(20 + i, "p%d" % i, classes=[(0, 100, 0, 800)]), separators=(",", ":"))
             for i in range(3)]
    lines[1] = lines[1].replace('"allocs":100', '"allocs":1OO')
    with open(d + "/mid.json", "w") as f:
        f.write("\n".join(lines) + "\n")
    r = reader(["--json", d + "/mid.json", d + "/nonexistent.json"])
    check(re.search(r"error: .*/mid\.json:2: malformed report", r.stderr), "malformed line 2: %r" % r.stderr)
    check(re.search(r"error: .*/nonexistent\.json: cannot be read", r.stderr), "missing file: %r" % r.stderr)
    check(json.loads(r.stdout)["processes"] == 2, "the 2 good lines of mid.json were not read")
    # a pretty-printed report cut short
    with open(d + "/pretty.json", "w") as f:
        f.write(json.dumps(good, indent=2)[:300])
    r = reader(["--json", d + "/pretty.json", d + "/good.json"])
    check(re.search(r"error: .*/pretty\.json:\d+: truncated report", r.stderr), "pretty-printed: %r" % r.stderr)
    # nothing readable at all: exit 1, the file still named
    r = reader([d + "/trunc.json"], expect_rc=1)
    check("trunc.json:1: truncated report" in r.stderr and "no poolmalloc JSON report" in r.stderr,
          "only a truncated file: %r" % r.stderr)


def t_reader_schema():
    """reports of an unknown newer schema are read for the fields the reader
    knows, with a warning naming the file; unknown fields are ignored"""
    d = tempfile.mkdtemp(dir=TMP)
    v1 = crafted(1, "old", classes=[(0, 1000, 900, 8000)], too_large=10, large_bytes=10 * 40000)
    v1b = crafted(2, "new1", classes=[(0, 500, 100, 4000)], ppid=1, forked=False, trigger="exit",
                  sizes={65536: 3})
    # schema 1 with fields this reader does not know (per-class page counts)
    v1b["poolmalloc"]["counters"]["pages_peak"] = 9
    for k in v1b["poolmalloc"]["classes"]:
        k.update(pages=3, pages_peak=4)
    v2 = crafted(3, "next", classes=[(0, 2000, 1000, 16000), (9, 10, 0, 1800)], ppid=1, forked=False,
                 trigger="exit", sizes={131072: 7}, large_bytes=7 * 100000)
    r2 = v2["poolmalloc"]
    r2["schema"] = 2
    r2["heaps"] = [{"id": 1, "pages": 4}]
    r2["counters"]["histogram"] = {"a": [1, 2]}
    r2["counters"]["pages_peak"] = 12
    r2["classes"][0]["pages"] = {"now": 1, "peak": 2}
    r2["too_large_sizes"].append({"max_bytes": 262144, "count": 2, "bytes": 400000})
    r2["counters"]["fallback_too_large"] = 9
    # fields that changed shape in the new schema: read what still fits
    r2["threads"] = [{"id": 1}, {"id": 2}]
    r2["classes"].append("summary")
    r2["counters"]["rss_peak"] = "unknown"
    write(d + "/v1.json", [v1])
    write(d + "/v1b.json", [v1b])
    write(d + "/v2.json", [v2])
    r = reader(["--json", "--advise", d])
    warn = [l for l in r.stderr.splitlines() if "warning" in l]
    check(len(warn) == 1 and "v2.json" in warn[0] and "schema 2" in warn[0],
          "expected one warning naming v2.json and schema 2: %r" % r.stderr)
    check("v1" not in r.stderr, "a schema 1 file was warned about: %r" % r.stderr)
    j = json.loads(r.stdout)
    check(j["processes"] == 3, "processes %d, expected 3" % j["processes"])
    check(j["pooled"] == 1000 + 500 + 2010, "pooled %d, expected %d" % (j["pooled"], 3510))
    check(j["jemalloc_by_reason"]["fallback_too_large"]["count"] == 10 + 3 + 9, "too large %s" % j["jemalloc_by_reason"])
    check({b["max_bytes"]: b["count"] for b in j["too_large_sizes"]} == {65536: 3, 131072: 7, 262144: 2},
          "too_large_sizes %s" % j["too_large_sizes"])
    check(j["too_large_sizes_complete"] is False, "v1.json has no too_large_sizes: complete must be false")
    check(j["input"]["other_schema"] == {"2": 1}, "input %s" % j["input"])
    # text output, and only schema 1 files: no warning at all
    r = reader([d + "/v1.json", d + "/v1b.json"])
    check(r.stderr == "", "schema 1 only: stderr %r" % r.stderr)
    r = reader([d + "/v2.json"])
    check("v2.json" in r.stderr and r.stdout.startswith("poolmalloc-report: 1 process"),
          "schema 2 alone: %r / %r" % (r.stderr, r.stdout[:60]))


def t_reader_trigger():
    """"trigger" picks the final report of a process: snapshots before an
    exit report are skipped, a second exit report of a pid is another
    process, the last snapshot counts when there is no exit report"""
    d = tempfile.mkdtemp(dir=TMP)

    def rep(pid, run, allocs, trigger):
        return crafted(pid, "daemon -x", run_ms=run, classes=[(0, allocs, 0, allocs * 8)],
                       ppid=1, forked=False, trigger=trigger)
    # pid 7 dumps at 100 ms and exits at 300; pid 7 again (reused) exits at
    # 250, shorter and later; pid 8 dumps twice and is killed
    seq = [rep(7, 100, 10, "signal"), rep(7, 300, 1000, "exit"), rep(7, 250, 20000, "exit"),
           rep(8, 50, 5, "signal"), rep(8, 80, 300000, "api")]
    write(d + "/t.json", seq, noise=True)
    j = json.loads(reader(["--json", d + "/t.json"]).stdout)
    check(j["processes"] == 3, "with trigger: %d processes, expected 3" % j["processes"])
    check(j["pooled"] == 1000 + 20000 + 300000, "with trigger: pooled %d, expected %d" % (j["pooled"], 321000))
    check(j["input"]["superseded_snapshots"] == 2 and j["input"]["without_exit_report"] == 1,
          "input %s" % j["input"])
    r = reader([d + "/t.json"])
    check("1 without an exit report" in r.stdout.splitlines()[0], "text header: %r" % r.stdout.splitlines()[0])
    # the same reports without trigger: the old guess (a later report with a
    # run time at least as long supersedes) keeps 300 ms then 250 ms of pid
    # 7 as two processes, and 80 ms of pid 8
    for x in seq:
        del x["poolmalloc"]["trigger"]
    write(d + "/old.json", seq)
    j = json.loads(reader(["--json", d + "/old.json"]).stdout)
    check(j["processes"] == 3 and j["pooled"] == 321000, "without trigger: %d processes, %d pooled"
          % (j["processes"], j["pooled"]))
    # where the guess and trigger differ: an exit report at 300 ms, then a
    # second process of pid 7 that runs longer. Guess: one process
    seq2 = [rep(7, 300, 1000, "exit"), rep(7, 400, 2000, "exit")]
    write(d + "/t2.json", seq2)
    j = json.loads(reader(["--json", d + "/t2.json"]).stdout)
    check(j["processes"] == 2 and j["pooled"] == 3000, "trigger, pid reused: %d processes, %d pooled (expected 2, 3000)"
          % (j["processes"], j["pooled"]))
    for x in seq2:
        del x["poolmalloc"]["trigger"]
    write(d + "/old2.json", seq2)
    j = json.loads(reader(["--json", d + "/old2.json"]).stdout)
    check(j["processes"] == 1 and j["pooled"] == 2000, "no trigger, pid reused: %d processes, %d pooled (expected 1, 2000)"
          % (j["processes"], j["pooled"]))
    # a real signal dump, then the exit report, in one file
    dd = tempfile.mkdtemp(dir=TMP)
    run_prog(["signal", "5000"], {"POOLMALLOC_STATS": "json", "POOLMALLOC_STATS_SIGNAL": "USR2",
                                  "POOLMALLOC_STATS_FILE": dd + "/r-%p.json"})
    files = os.listdir(dd)
    check(len(files) == 1, "signal run: files %s" % files)
    with open(os.path.join(dd, files[0])) as f:
        reps = [validate(json.loads(l), "signal run line %d" % i) for i, l in enumerate(f, 1)]
    check([x["trigger"] for x in reps] == ["signal", "exit"], "signal run: triggers %s" % [x["trigger"] for x in reps])
    j = json.loads(reader(["--json", dd]).stdout)
    check(j["processes"] == 1 and j["input"]["superseded_snapshots"] == 1, "signal run: input %s" % j["input"])
    check(j["pooled"] == sum(k["allocs"] for k in reps[1]["classes"]),
          "signal run: pooled %d is not the exit report's" % j["pooled"])


def t_reader_too_large():
    """--advise uses too_large_sizes: the smallest POOL_SIZE whose
    MAX_POOLED pools >= 80% of the too-large requests, with the effect and
    the cost"""
    d = tempfile.mkdtemp(dir=TMP)
    pooled = [(1, 10000, 9000, 10000 * 30)]

    def advise(name, reports):
        write(d + "/" + name, reports)
        j = json.loads(reader(["--json", "--advise", d + "/" + name]).stdout)
        text = reader(["--advise", d + "/" + name]).stdout
        return j, [x for x in j["advice"] if x["rule"] == "too-large"], text

    # 3,500 of 4,000 are 32-64 KiB (87.5%): POOL_SIZE=131072 pools exactly those
    j, adv, text = advise("a.json", [crafted(1, "srv", classes=pooled, large_bytes=4000 * 60000,
                                             sizes={65536: 3500, 131072: 300, 4 << 20: 200})])
    check(len(adv) == 1 and adv[0]["variable"] == "POOLMALLOC_POOL_SIZE" and adv[0]["value"] == 131072,
          "87.5%% at 32-64 KiB: advice %s" % j["advice"])
    f = adv[0]["figures"]
    check(f["sizes_exact"] is True and f["pooled_requests"] == 3500 and f["pooled_pct"] == 87.5
          and f["new_max_pooled"] == 65536, "figures %s" % f)
    check(re.search(r"^  1\. POOLMALLOC_POOL_SIZE=131072\b", text, re.M), "text advice:\n" + text)
    flat = " ".join(text.split())
    check("25% of requests (3,500, 88% of the too-large ones) were 32\u201364 KiB and went to jemalloc; "
          "POOLMALLOC_POOL_SIZE=131072" in flat, "the effect is not stated:\n" + text)
    check("pool pages double in size" in flat and "never carved" in flat, "the cost is not stated:\n" + text)
    check("the other 500 stay in jemalloc" in flat, "the rest is not stated:\n" + text)
    check("by size: 32\u201364 KiB: 3,500, 64\u2013128 KiB: 300, 2\u20134 MiB: 200" in flat,
          "the size line of the aggregate:\n" + text)

    # 50% at 32-64 KiB, 87.5% up to 128 KiB: POOL_SIZE=262144, pages 4 times larger
    j, adv, text = advise("b.json", [crafted(2, "srv", classes=pooled, large_bytes=4000 * 70000,
                                             sizes={65536: 2000, 131072: 1500, 262144: 500})])
    check(adv and adv[0]["value"] == 262144 and adv[0]["figures"]["pooled_requests"] == 3500,
          "87.5%% up to 128 KiB: advice %s" % j["advice"])
    flat = " ".join(text.split())
    check("were 32\u2013128 KiB" in flat and "grow 4 times in size (64 KiB -> 256 KiB)" in flat,
          "b.json text:\n" + text)

    # sizes of exactly 60,000 B: the exact buckets say 64 KiB; from the mean
    # alone (no too_large_sizes) the bound only proves 17% under 64 KiB
    exact = crafted(3, "srv", classes=pooled, large_bytes=3000 * 60000, sizes={65536: 3000})
    j, adv, _ = advise("c.json", [exact])
    check(adv and adv[0]["value"] == 131072 and adv[0]["figures"]["pooled_pct"] == 100,
          "60,000 B with sizes: advice %s" % j["advice"])
    del exact["poolmalloc"]["too_large_sizes"]
    j, adv, _ = advise("c_old.json", [exact])
    check(adv and adv[0]["value"] == 262144 and adv[0]["figures"]["sizes_exact"] is False,
          "60,000 B without sizes (bound): advice %s" % j["advice"])

    # MAX_POOLED set below POOL_SIZE/2: raising it is enough, pages stay
    j, adv, text = advise("d.json", [crafted(4, "srv", classes=pooled, max_pooled=8192,
                                             large_bytes=3000 * 12000, sizes={16384: 2900, 32768: 100})])
    check(adv and adv[0]["variable"] == "POOLMALLOC_MAX_POOLED" and adv[0]["value"] == 16384,
          "MAX_POOLED=8192: advice %s" % j["advice"])
    check("pages stay 64 KiB" in " ".join(text.split()), "d.json text:\n" + text)

    # 60% at 32-64 KiB and 40% above 1 MiB: below 80% anywhere, 60% is worth it
    j, adv, _ = advise("e.json", [crafted(5, "srv", classes=pooled, large_bytes=3000 * 600000,
                                          sizes={65536: 1800, 8 << 20: 1200})])
    check(adv and adv[0]["value"] == 131072 and adv[0]["figures"]["pooled_pct"] == 60,
          "60%% then 8 MiB: advice %s" % j["advice"])

    # nearly all above what any page can pool: a note, no advice
    j, adv, _ = advise("f.json", [crafted(6, "srv", classes=pooled, large_bytes=3000 * (2 << 20),
                                          sizes={65536: 100, 4 << 20: 2900})])
    check(not adv and any(n["rule"] == "too-large" for n in j["notes"]),
          "above 1 MiB: advice %s notes %s" % (j["advice"], j["notes"]))

    # a real run: 3,000 requests of 50,000 B
    dd = tempfile.mkdtemp(dir=TMP)
    run_prog(["large", "3000", "50000"], {"POOLMALLOC_STATS": "json", "POOLMALLOC_STATS_FILE": dd + "/r-%p.json"})
    j = json.loads(reader(["--json", "--advise", dd]).stdout)
    adv = [x for x in j["advice"] if x["rule"] == "too-large"]
    check(adv and adv[0]["value"] == 131072 and adv[0]["figures"]["sizes_exact"] is True
          and adv[0]["figures"]["pooled_requests"] >= 3000,
          "report_prog large 3000 50000: advice %s" % j["advice"])


def t_reader_fork():
    """a child forked without exec is counted without what it inherited:
    less what its parent's report already holds, or once for a group of
    siblings whose parent left no report of that program"""
    d = tempfile.mkdtemp(dir=TMP)

    def rep(pid, ppid, program, allocs, forked, run=500, tl=0):
        return crafted(pid, program, run_ms=run, classes=[(0, allocs, allocs // 2, allocs * 8)],
                       ppid=ppid, forked=forked, trigger="exit", sizes={65536: tl} if tl else {},
                       large_bytes=tl * 40000, rss_peak=(4 << 20))
    reps = [rep(100, 1, "srv", 10000, False, tl=100),
            rep(101, 100, "srv", 13000, True, tl=100),          # +3,000 of its own
            rep(102, 100, "srv", 10500, True, tl=130),          # +500, +30 too large
            rep(103, 101, "srv", 13050, True, tl=100),          # grandchild: +50
            rep(104, 100, "/bin/true", 20, False),              # exec'd: all its own
            # the parent (pid 200) exec'd something else after forking these two
            rep(200, 1, "python3 app.py", 700, False),
            rep(201, 200, "sh wrapper", 5100, True, run=30),     # 5,000 inherited
            rep(202, 200, "sh wrapper", 5700, True, run=60)]
    write(d + "/f.json", reps)
    j = json.loads(reader(["--json", d + "/f.json"]).stdout)
    want = 10000 + 3000 + 500 + 50 + 20 + 700 + 5100 + 600
    check(j["pooled"] == want, "pooled %d, expected %d (inherited counters subtracted)" % (j["pooled"], want))
    check(j["jemalloc_by_reason"]["fallback_too_large"]["count"] == 130,
          "too large %d, expected 130" % j["jemalloc_by_reason"]["fallback_too_large"]["count"])
    check({b["max_bytes"]: b["count"] for b in j["too_large_sizes"]} == {65536: 130}, "sizes %s" % j["too_large_sizes"])
    check(j["forks"]["forked_children"] == 5 and j["forks"]["with_parent_report"] == 3
          and j["forks"]["without_parent_report"] == 2, "forks %s" % j["forks"])
    check(j["processes"] == 8, "processes %d" % j["processes"])
    # the state at exit is each process's own: not subtracted
    check(j["pages_at_exit"]["live_block_bytes"] == sum(r["poolmalloc"]["counters"]["live_block_bytes"] for r in reps),
          "live_block_bytes changed by the fork subtraction")
    check(j["rss_peak"]["sum"] == 8 * (4 << 20), "rss_peak %s" % j["rss_peak"])
    r = reader([d + "/f.json"])
    check("5 forked without exec" in r.stdout.splitlines()[0], "text header: %r" % r.stdout.splitlines()[0])
    # the same reports marked as not forked: plain sums
    for x in reps:
        x["poolmalloc"]["forked_without_exec"] = False
    write(d + "/plain.json", reps)
    j = json.loads(reader(["--json", d + "/plain.json"]).stdout)
    check(j["pooled"] == sum(x["poolmalloc"]["classes"][0]["allocs"] for x in reps), "not forked: pooled %d" % j["pooled"])

    # a real fork: the parent makes 10,000 blocks, the child 5,000 more
    dd = tempfile.mkdtemp(dir=TMP)
    run_prog(["fork", "10000"], {"POOLMALLOC_STATS": "json", "POOLMALLOC_STATS_FILE": dd + "/r-%p.json"})
    got = {}
    for f in os.listdir(dd):
        with open(os.path.join(dd, f)) as fh:
            x = validate(json.loads(fh.read()), f)
        got[x["forked_without_exec"]] = x
    check(set(got) == {True, False}, "fork run: expected a parent and a forked child report, got %s" % os.listdir(dd))
    parent, child = got[False], got[True]
    check(child["ppid"] == parent["pid"], "child ppid %d != parent pid %d" % (child["ppid"], parent["pid"]))
    pa = sum(k["allocs"] for k in parent["classes"])
    ch = sum(k["allocs"] for k in child["classes"])
    check(ch >= 15000, "the child's report holds %d allocations, expected >= 15,000 (inherited)" % ch)
    j = json.loads(reader(["--json", dd]).stdout)
    check(abs(j["pooled"] - (pa + 5000)) <= 5, "fork run: pooled %d, expected the parent's %d + the child's "
          "own 5,000 (raw sum %d)" % (j["pooled"], pa, pa + ch))




def t_reader_lifetime():
    """--advise suggests POOLMALLOC_LIFETIME=2 (the default) when mostly-free pages hold much memory, and
    names the long-lived call sites the reports list"""
    d = tempfile.mkdtemp(dir=TMP)
    pinned = crafted(300, "cache-server", run_ms=9000, rss_peak=80 << 20,
                     classes=[(3, 900000, 880000, 900000 * 60)],
                     pinned_pages=400, pinned_bytes=24 << 20)
    write(d + "/pinned.json", [pinned])
    j = json.loads(reader(["--advise", "--json", d + "/pinned.json"]).stdout)
    rules = [a for a in j["advice"] if a["variable"] == "POOLMALLOC_LIFETIME"]
    check(rules and rules[0]["value"] == 2 and rules[0]["figures"]["pinned_bytes"] == 24 << 20,
          "pinned pages: no POOLMALLOC_LIFETIME=2 advice: %s" % j["advice"])
    # with routing on already: no such advice, and the sites are named
    routed = crafted(301, "cache-server", run_ms=9000, rss_peak=80 << 20,
                     classes=[(3, 900000, 880000, 900000 * 60)],
                     pinned_pages=400, pinned_bytes=24 << 20, fallback_long_lived=5000)
    routed["poolmalloc"]["options"]["LIFETIME"] = 1
    routed["poolmalloc"]["lifetime"] = {"samples": 900, "sites": 12, "marked": 1, "long_lived_sites": [
        {"site": "cache_insert+0x2a (cache-server)", "address": "0x5555", "marked": True,
         "block_sizes": [64], "routed_blocks": 5000, "routed_bytes": 320000,
         "long_samples": 9, "short_samples": 0}]}
    write(d + "/routed.json", [routed])
    r = reader(["--advise", d + "/routed.json"])
    check("POOLMALLOC_LIFETIME=" not in r.stdout, "advice to turn on what is on:\n" + r.stdout)
    check("cache_insert+0x2a (cache-server): 5,000 blocks" in " ".join(r.stdout.split()),
          "the long-lived site is not named:\n" + r.stdout)
    j = json.loads(reader(["--json", d + "/routed.json"]).stdout)
    check(j["long_lived_sites"] and j["long_lived_sites"][0]["routed_blocks"] == 5000,
          "--json long_lived_sites: %s" % j.get("long_lived_sites"))
    # a real run: lifetime routing on, the long-lived site is in the aggregate
    dd = tempfile.mkdtemp(dir=TMP)
    run_prog(["sparse", "400000"], {"POOLMALLOC_STATS": "json", "POOLMALLOC_STATS_FILE": dd + "/r-%p.json",
                                    "POOLMALLOC_LIFETIME": "1", "POOLMALLOC_PROFILE_RATE": "1024",
                                    "POOLMALLOC_LIFETIME_THRESHOLD": "262144"})
    j = json.loads(reader(["--json", dd]).stdout)
    check(isinstance(j.get("long_lived_sites"), list), "no long_lived_sites in --json: %s" % list(j))


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
