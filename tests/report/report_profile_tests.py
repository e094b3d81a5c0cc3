#!/usr/bin/env python3
"""report_profile_tests.py - poolmalloc-report: its field list against the
real library, the advice rule table, the lifetime advice on carved bytes,
command lines in the process table, and the schema 2 heap profile (--sites,
--flame, --pprof, addr2line names, site advice).

  report_profile_tests.py TEST LIBPOOLMALLOC REPORT_PROG POOLMALLOC_REPORT PROFILE_PROG PROFILE_PROG_NOPIE

The fixtures are in tests/report/fixtures/ (README there). Exit status 0
passed, 1 failed, 77 skipped (a tool the test needs is missing: objdump,
addr2line, google-pprof). `report_profile_tests.py list` prints the names.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")
LIB = PROG = READER = PPROG = PPROG_NOPIE = None
TMP = None
SKIP = 77


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def base_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("POOLMALLOC_") and k != "LD_PRELOAD"}
    env.update(extra)
    return env


def reader(args, expect_rc=0, stdin=None):
    r = subprocess.run([sys.executable, READER] + args, capture_output=True, text=True,
                       timeout=120, env=base_env(), input=stdin)
    check(r.returncode == expect_rc, "poolmalloc-report %s exited %d (expected %d):\n%s%s"
          % (" ".join(args), r.returncode, expect_rc, r.stdout[-1500:], r.stderr[-1500:]))
    return r


def fixture(name):
    return os.path.join(FIX, name)


def flat(text):
    return " ".join(text.split())


def need(tool):
    path = shutil.which(tool)
    if not path:
        raise Skip("%s not found" % tool)
    return path


# ---------------------------------------------------------------- A: fields and rules

def library_reports():
    """JSON reports of the real library: report_prog in a few modes (with
    lifetime routing on, so that long_lived_sites has elements)."""
    d = tempfile.mkdtemp(dir=TMP)
    runs = [(["count", "1000"], {}),
            (["sparse", "400000"], {"POOLMALLOC_LIFETIME": "1", "POOLMALLOC_LIFETIME_RATE": "16",
                                    "POOLMALLOC_LIFETIME_THRESHOLD": "4096"}),
            (["large", "300", "50000"], {})]
    for i, (args, extra) in enumerate(runs):
        env = base_env(LD_PRELOAD=LIB, POOLMALLOC_STATS="json",
                       POOLMALLOC_STATS_FILE="%s/run%d-%%p.json" % (d, i), **extra)
        r = subprocess.run([PROG] + args, env=env, capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "report_prog %s exited %d: %s" % (args, r.returncode, r.stderr[-500:]))
    files = sorted(os.listdir(d))
    check(len(files) == len(runs), "expected %d reports in %s, found %s" % (len(runs), d, files))
    # a library with the heap profiler (schema 2): one more run with it on,
    # so that the keys of "profile" are checked too
    with open(os.path.join(d, files[0])) as fh:
        options = json.loads(fh.readline())["poolmalloc"].get("options", {})
    prof = {}
    for k, v in options.items():
        if k.startswith("PROFILE"):
            # PROFILE=1 turns it on; a rate (bytes between samples) small enough to sample
            prof["POOLMALLOC_" + k] = "65536" if isinstance(v, int) and not isinstance(v, bool) \
                and k != "PROFILE" else "1"
    if prof:
        env = base_env(LD_PRELOAD=LIB, POOLMALLOC_STATS="json",
                       POOLMALLOC_STATS_FILE="%s/profile-%%p.json" % d, **prof)
        r = subprocess.run([PROG, "count", "20000"], env=env, capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "report_prog with %s exited %d" % (prof, r.returncode))
        name = [f for f in os.listdir(d) if f.startswith("profile-")]
        check(len(name) == 1, "no report of the run with %s" % prof)
        with open(os.path.join(d, name[0])) as fh:
            check("profile" in json.loads(fh.readline())["poolmalloc"],
                  "the library has %s but its report with %s has no \"profile\"" % (sorted(prof), prof))
    return d


def t_fields():
    """every key the reader's field list expects is in the real library's
    JSON report, and every key the library writes is in the list
    (poolmalloc-report --check-fields, pmreport/schema.py)"""
    d = library_reports()
    r = reader(["--check-fields", d], expect_rc=0)
    check("all known, none missing" in r.stdout, "--check-fields: %s" % r.stdout)
    reps = []
    for f in sorted(os.listdir(d)):
        with open(os.path.join(d, f)) as fh:
            reps += [json.loads(l) for l in fh if l.strip()]
    check(any(x["poolmalloc"]["lifetime"]["long_lived_sites"] for x in reps),
          "no report with long_lived_sites elements: the test does not cover their keys")
    # the counters the reader's code reads by name are in its declared list
    here = os.path.dirname(os.path.realpath(READER))
    sys.path.insert(0, here)
    from pmreport import schema
    known = set(schema.FIELDS[1]["counters"])
    code = ""
    for f in [READER] + [os.path.join(here, "pmreport", n) for n in sorted(os.listdir(os.path.join(here, "pmreport")))
                         if n.endswith(".py")]:
        with open(f, encoding="utf-8") as fh:
            code += fh.read()
    used = set(re.findall(r'\bc\.get\("(\w+)"', code)) | set(re.findall(r'\bc\["(\w+)"\]', code))
    used |= set(re.findall(r'^\s+\("(fallback_\w+|lifetime_samples)", "', code, re.M))
    check(len(used) > 15, "the scan of the reader's code found only %s" % sorted(used))
    check(used <= known, "counters read by the reader but not in pmreport/schema.py: %s" % sorted(used - known))


def t_fields_detect():
    """--check-fields fails on a key the reader does not know (a new counter
    added to the library only) and on a key it expects that is missing"""
    d = library_reports()
    name = sorted(os.listdir(d))[0]
    with open(os.path.join(d, name)) as fh:
        rep = json.loads(fh.readline())
    extra = json.loads(json.dumps(rep))
    extra["poolmalloc"]["counters"]["brand_new_counter"] = 1
    extra["poolmalloc"]["classes"][0]["brand_new_class_field"] = 2
    gone = json.loads(json.dumps(rep))
    del gone["poolmalloc"]["counters"]["tail_bytes"]
    del gone["poolmalloc"]["threads"]["peak"]
    with open(os.path.join(TMP, "extra.json"), "w") as f:
        f.write(json.dumps(extra) + "\n")
    with open(os.path.join(TMP, "gone.json"), "w") as f:
        f.write(json.dumps(gone) + "\n")
    r = reader(["--check-fields", os.path.join(TMP, "extra.json")], expect_rc=1)
    check(re.search(r"unknown .*\bcounters\.brand_new_counter\b", r.stdout)
          and re.search(r"unknown .*classes\[\]\.brand_new_class_field\b", r.stdout),
          "unknown keys not named: %s" % r.stdout)
    r = reader(["--check-fields", os.path.join(TMP, "gone.json")], expect_rc=1)
    check("missing counters.tail_bytes threads.peak" in r.stdout, "missing keys not named: %s" % r.stdout)
    # schema 2: the profile's keys, and the fixture is complete
    r = reader(["--check-fields", fixture("python3-profile.json")])
    with open(fixture("python3-profile.json")) as fh:
        rep = json.loads(fh.readline())
    rep["poolmalloc"]["profile"]["sites"][0]["frames"][0]["line"] = 3
    del rep["poolmalloc"]["profile"]["peak"]["time_ms"]
    with open(os.path.join(TMP, "p2.json"), "w") as f:
        f.write(json.dumps(rep) + "\n")
    r = reader(["--check-fields", os.path.join(TMP, "p2.json")], expect_rc=1)
    check("missing profile.peak.time_ms" in r.stdout and "unknown profile.sites[].frames[].line" in r.stdout,
          "schema 2 keys: %s" % r.stdout)


def t_rules_table():
    """the advice rules are a table of (name, function, one-line doc) and
    the rule names in the output come from it"""
    sys.path.insert(0, os.path.dirname(os.path.realpath(READER)))
    from pmreport import advice
    names = [n for n, _, _ in advice.RULES]
    check(len(names) == len(set(names)), "duplicate rule names: %s" % names)
    for n, fn, doc in advice.RULES:
        check(callable(fn) and fn.__name__ == "rule_" + n.replace("-", "_"),
              "rule %s: function %r" % (n, fn))
        check(isinstance(doc, str) and doc and "\n" not in doc, "rule %s: doc %r" % (n, doc))
    for f in ("lifetime-carved.json", "python3-profile.json", "make-cc1.json"):
        j = json.loads(reader(["--advise", "--json", fixture(f)]).stdout)
        for item in j["advice"] + j["notes"]:
            check(item["rule"] in names, "%s: rule %r is not in the table" % (f, item["rule"]))


# ---------------------------------------------------------------- B: lifetime on carved bytes

def t_lifetime_carved():
    """POOLMALLOC_LIFETIME=2 only when carved free bytes in pinned pages are a
    large share of RSS: not for never-carved tails (python3 with
    POOLMALLOC_POOL_SIZE=256K, a schema 1 report with tails), yes with the
    corrected counters; remote_pending_* make a note"""
    # a real python3 run (through pyenv's shims: bash, readlink...) with 256 KiB pages
    j = json.loads(reader(["--advise", "--json", fixture("python3-pool256k.json")]).stdout)
    check(j["pinned"]["bytes"] > 200 << 20, "fixture: pinned_bytes %d" % j["pinned"]["bytes"])
    check(j["pinned"]["carved_free_estimated"] is True, "schema 1 pinned_bytes not marked estimated")
    check(not [a for a in j["advice"] if a["rule"] == "lifetime"],
          "python3 POOL_SIZE=256K: lifetime advised for tails: %s" % j["advice"])
    r = reader(["--advise", fixture("python3-pool256k.json")])
    check("POOLMALLOC_LIFETIME" not in r.stdout, "python3 256K: %s" % r.stdout)
    # older counters: 24 MiB pinned of which 23.5 MiB tails
    j = json.loads(reader(["--advise", "--json", fixture("lifetime-tails.json")]).stdout)
    check(not [a for a in j["advice"] if a["rule"] == "lifetime"], "tails: %s" % j["advice"])
    check(j["pinned"]["carved_free_bytes"] == 512 << 10, "tails: carved %s" % j["pinned"])
    # corrected counters: 24 MiB carved free of 40 MiB RSS
    j = json.loads(reader(["--advise", "--json", fixture("lifetime-carved.json")]).stdout)
    lt = [a for a in j["advice"] if a["rule"] == "lifetime"]
    check(lt and lt[0]["value"] == 2 and lt[0]["figures"]["pinned_carved_free_bytes"] == 24 << 20
          and lt[0]["figures"]["pinned_carved_free_estimated"] is False, "carved: %s" % j["advice"])
    check(j["remote_pending"] == {"pages": 2, "bytes": 131072}, "remote_pending %s" % j["remote_pending"])
    r = reader(["--advise", fixture("lifetime-carved.json")])
    check(re.search(r"^  1\. POOLMALLOC_LIFETIME=2\b", r.stdout, re.M)
          and "24 MiB of free carved blocks" in flat(r.stdout), "carved text: %s" % r.stdout)
    # pages held only by remote frees: a note, no lifetime advice
    j = json.loads(reader(["--advise", "--json", fixture("remote-pending.json")]).stdout)
    check([n for n in j["notes"] if n["rule"] == "remote-pending"]
          and not [a for a in j["advice"] if a["rule"] == "lifetime"], "remote pending: %s" % j)


# ---------------------------------------------------------------- C: command lines

def t_cmdline():
    """the process table keeps what tells long command lines apart: seven
    cc1 rows of a make -j2 show their seven source files; short lines whole;
    no row wider than the column"""
    r = reader(["--top", "20", fixture("make-cc1.json")])
    table = r.stdout[r.stdout.index("processes by peak RSS"):].splitlines()[2:]
    rows = [l for l in table if re.match(r"^\s+\d+\s+[\d.]+ \w?i?B\s", l)]
    check(len(rows) == 7, "expected 7 process rows: %s" % r.stdout)
    progs = [l.split("%  ", 1)[1] for l in rows]
    check(len(set(progs)) == 7, "rows alike: %s" % progs)
    for i in range(1, 8):
        check(sum(1 for p in progs if re.search(r"\bm%d\.c\b" % i, p)) == 1, "m%d.c not in one row: %s" % (i, progs))
    for p in progs:
        check(p.startswith("cc1 ") and len(p) <= 60, "row %r" % p)
    sys.path.insert(0, os.path.dirname(os.path.realpath(READER)))
    from pmreport.cmdline import shorten
    short = "sort -n /tmp/x"
    long1 = "/usr/bin/python3 /srv/app/worker.py --queue q1 --log /var/log/app/worker-one.log --verbose"
    long2 = "/usr/bin/python3 /srv/app/worker.py --queue q2 --log /var/log/app/worker-two.log --verbose"
    s = shorten([short, long1, long2], 60)
    check(s[short] == short, "short line changed: %r" % s[short])
    check(s[long1] != s[long2] and "q1" in s[long1] and "q2" in s[long2], "workers: %r" % s)
    check(all(len(v) <= 60 for v in s.values()), "too wide: %r" % s)
    alone = shorten(["/usr/lib/gcc/x86_64-linux-gnu/12/cc1 -quiet " + "-fx " * 30 + "last.c"], 60)
    check(list(alone.values())[0].endswith("last.c"), "a lone row keeps its last argument: %r" % alone)


# ---------------------------------------------------------------- D: the heap profile

def t_no_profile():
    """reports without a profile (schema 1): nothing about sites, --flame and
    --pprof not written (a message), --sites says so, --json has no profile"""
    f = fixture("make-cc1.json")
    svg, prof = os.path.join(TMP, "none.svg"), os.path.join(TMP, "none.prof")
    r = reader(["--advise", "--sites", "--flame", svg, "--pprof", prof, f])
    check(not os.path.exists(svg) and not os.path.exists(prof), "files written without a profile")
    check("no report has a heap profile" in r.stderr, "stderr: %s" % r.stderr)
    check("no report has a heap profile" in r.stdout and "from the heap profile" not in r.stdout
          and "site " not in r.stdout, "stdout: %s" % r.stdout)
    j = json.loads(reader(["--advise", "--json", f]).stdout)
    check("profile" not in j and not [n for n in j["notes"] if n["rule"].startswith(("site-", "rss-"))],
          "--json: %s" % list(j))


def t_sites():
    """--sites peak|exit|alloc -n N: the top sites with their stacks"""
    f = fixture("python3-profile.json")
    out = reader(["--sites", "peak", "-n", "2", "--no-addr2line", f]).stdout
    part = out[out.index("top 2 sites"):]
    check("40.0%" in part and "450,000 blocks" in part, "peak: %s" % part)
    names = [l.strip() for l in part.splitlines()[2:5]]
    check(names == ["PyObject_Malloc", "_PyLong_New", "PyLong_FromLong"], "stack: %s" % names)
    check(part.count("python3.11 ×1") == 2, "two sites: %s" % part)
    out = reader(["--sites", "exit", "-n", "5", "--no-addr2line", f]).stdout
    part = out[out.index("top 2 sites"):]       # only two sites are live at exit
    check("PyList_Append" in part and "PyDict_SetItem" in part and "92.3%" in part, "exit: %s" % part)
    out = reader(["--sites", "alloc", "-n", "1", "--no-addr2line", f]).stdout
    check("PyBytes_FromStringAndSize" in out[out.index("top 1 sites"):], "alloc: %s" % out)
    # a frame of no module and no symbol: its address
    out = reader(["--sites", "alloc", "-n", "6", "--no-addr2line", f]).stdout
    check("0x7ffd00001234" in out, "address frame: %s" % out)
    j = json.loads(reader(["--json", "--no-addr2line", f]).stdout)
    p = j["profile"]
    check(p["processes"] == 1 and p["peak_bytes"] == 36000000 and p["exit_bytes"] == 6500000
          and p["top_sites"]["peak"][0]["peak_bytes"] == 14400000
          and p["top_sites"]["peak"][0]["short"][:2] == ["_PyLong_New", "PyLong_FromLong"],
          "--json profile: %s" % json.dumps(p)[:800])


def two_processes():
    """the python3 fixture twice, as two processes (another pid)"""
    with open(fixture("python3-profile.json")) as fh:
        rep = json.loads(fh.readline())
    other = json.loads(json.dumps(rep))
    other["poolmalloc"]["pid"] += 1
    path = os.path.join(TMP, "two.json")
    with open(path, "w") as f:
        f.write(json.dumps(rep) + "\n" + json.dumps(other) + "\n")
    return path


def t_flame():
    """--flame writes a standalone SVG that parses as XML: a root frame with
    all the bytes, frames above their callers, hover titles with name, bytes
    and percent, labels, no script; the same bytes twice; sums over reports"""
    f = fixture("python3-profile.json")
    svg = os.path.join(TMP, "f.svg")
    reader(["--flame", svg, "--no-addr2line", f])
    with open(svg, encoding="utf-8") as fh:
        data = fh.read()
    root = ET.fromstring(data)
    ns = "{http://www.w3.org/2000/svg}"
    check(root.tag == ns + "svg", "root element %s" % root.tag)
    check("<script" not in data and "http://" not in data.replace("http://www.w3.org/2000/svg", ""),
          "external references or scripts in the SVG")
    groups = root.findall(ns + "g")
    frames = {}
    for g in groups:
        title = g.find(ns + "title").text
        rect = g.find(ns + "rect")
        name, fig = title.split("\n")
        frames.setdefault(name, []).append((float(rect.get("x")), float(rect.get("y")),
                                            float(rect.get("width")), fig))
    check(frames["all"][0][3] == "34.3 MiB (36,000,000 B), 100.00%", "root: %s" % frames["all"])
    long_ = frames["_PyLong_New"]
    check(len(long_) == 1 and long_[0][3] == "13.7 MiB (14,400,000 B), 40.00%", "_PyLong_New: %s" % long_)
    # above its caller (smaller y), within its caller's width
    caller = frames["PyLong_FromLong"][0]
    check(long_[0][1] < caller[1] and caller[0] <= long_[0][0] <= caller[0] + caller[2],
          "_PyLong_New is not above PyLong_FromLong: %s %s" % (long_, caller))
    check(frames["Py_BytesMain"][0][1] > caller[1], "callers are not below")
    texts = [t.text for t in root.iter(ns + "text")]
    check("PyLong_FromLong" in texts and any(t.startswith("all (") for t in texts), "labels: %s" % texts[:20])
    svg2 = os.path.join(TMP, "f2.svg")
    reader(["--flame", svg2, "--no-addr2line", f])
    with open(svg2, encoding="utf-8") as fh:
        check(fh.read() == data, "two runs gave different SVG")
    # exit and alloc figures; two reports add up
    reader(["--flame", svg2, "--flame-of", "exit", "--no-addr2line", f])
    root = ET.parse(svg2).getroot()
    titles = [g.find(ns + "title").text for g in root.findall(ns + "g")]
    check("all\n6.2 MiB (6,500,000 B), 100.00%" in titles, "exit root: %s" % titles[:3])
    reader(["--flame", svg2, "--flame-of", "alloc", "--no-addr2line", two_processes()])
    root = ET.parse(svg2).getroot()
    titles = [g.find(ns + "title").text for g in root.findall(ns + "g")]
    check("all\n356.7 MiB (374,000,000 B), 100.00%" in titles, "two reports, alloc: %s" % titles[:3])


def objdump_returns(prog):
    """{function: [return addresses of its calls, as file vaddrs]} from objdump -d"""
    need("objdump")
    r = subprocess.run(["objdump", "-d", "--no-show-raw-insn", prog], capture_output=True, text=True,
                       timeout=60)
    check(r.returncode == 0, "objdump -d %s: %s" % (prog, r.stderr))
    out, fn, pending = {}, None, False
    for line in r.stdout.splitlines():
        m = re.match(r"^([0-9a-f]+) <([^>]+)>:$", line)
        if m:
            fn, pending = m.group(2), False
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(\S+)", line)
        if not m or fn is None:
            continue
        if pending:
            out.setdefault(fn, []).append(int(m.group(1), 16))
            pending = False
        if m.group(2).startswith("call"):
            pending = True
    return out


def marker_lines():
    with open(os.path.join(HERE, "profile_prog.c")) as fh:
        return {m.group(1): n for n, l in enumerate(fh, 1) for m in [re.search(r"PM_LINE_(\w+)", l)] if m}


def prog_report(prog, base, pid, symbols=True):
    """A schema 2 report whose sites are profile_prog's calls: table
    (main > make_table > leaf_alloc > [grow_buffer inlined] > malloc) and
    index (main > make_index > malloc). base: the module's load address."""
    sys.path.insert(0, os.path.dirname(os.path.realpath(READER)))
    from pmreport.profile import first_load_vaddr
    bias = first_load_vaddr(prog)
    check(bias is not None, "%s is not an ELF file" % prog)
    rets = objdump_returns(prog)
    for fn in ("leaf_alloc", "make_table", "make_index", "main"):
        check(rets.get(fn), "no call in %s of %s" % (fn, prog))

    def frame(fn, i):
        vaddr = rets[fn][i]
        off = vaddr - bias
        return {"address": "0x%x" % (base + off), "module": 0, "offset": "0x%x" % off,
                "symbol": "%s+0x%x" % (fn, 5) if symbols else None}
    # leaf_alloc: malloc is its first call; make_table: leaf_alloc; main: make_table, make_index
    table = [frame("leaf_alloc", 0), frame("make_table", 0), frame("main", 0)]
    index = [frame("make_index", 0), frame("main", 1)]
    sites = [
        {"frames": table, "peak_bytes": 3 << 20, "peak_blocks": 3000, "exit_bytes": 3 << 20,
         "exit_blocks": 3000, "alloc_bytes": 6 << 20, "alloc_blocks": 6000},
        {"frames": index, "peak_bytes": 1 << 20, "peak_blocks": 500, "exit_bytes": 3 << 19,
         "exit_blocks": 700, "alloc_bytes": 2 << 20, "alloc_blocks": 1000},
    ]
    with open(fixture("python3-profile.json")) as fh:
        rep = json.loads(fh.readline())
    r = rep["poolmalloc"]
    r["pid"], r["program"] = pid, prog
    r.pop("rss_account")
    r["profile"] = {"rate_bytes": 524288, "samples": 20, "stacks": 2, "stacks_dropped": 0,
                    "allocated_bytes": 8 << 20, "peak": {"bytes": 4 << 20, "time_ms": 10},
                    "exit": {"bytes": (3 << 20) + (3 << 19), "time_ms": 20},
                    "modules": [{"id": 0, "path": prog, "base": "0x%x" % base, "end": "0x%x" % (base + 0x5000)}],
                    "sites": sites}
    return rep


def t_addr2line():
    """frames named function (file:line) by addr2line from the module's debug
    information, the inlined function first, for a PIE and a non-PIE
    (first PT_LOAD at 0x400000) build; the report's symbol without addr2line;
    module+offset without either"""
    need("addr2line")
    lines = marker_lines()
    for prog, base in ((PPROG, 0x55d0c0000000), (PPROG_NOPIE, 0x400000)):
        path = os.path.join(TMP, "prog-%d.json" % base)
        with open(path, "w") as f:
            f.write(json.dumps(prog_report(prog, base, 5000 + base % 1000)) + "\n")
        out = reader(["--sites", "peak", path]).stdout
        part = out[out.index("top 2 sites"):].splitlines()
        stack = [l.strip() for l in part[2:7]]
        want = ["grow_buffer (profile_prog.c:%d)" % lines["GROW"],
                "leaf_alloc (profile_prog.c:%d)" % lines["LEAF"],
                "make_table (profile_prog.c:%d)" % lines["TABLE"],
                "main (profile_prog.c:%d)" % lines["MAIN"]]
        check(stack[:4] == want, "%s: stack\n%s\nexpected\n%s" % (prog, "\n".join(stack), "\n".join(want)))
        check("make_index (profile_prog.c:%d)" % lines["INDEX"] in out
              and "main (profile_prog.c:%d)" % lines["MAIN_INDEX"] in out, "%s: index site:\n%s" % (prog, out))
        # --no-addr2line: the report's symbols
        out = reader(["--sites", "peak", "--no-addr2line", path]).stdout
        check("        leaf_alloc\n        make_table\n        main\n" in out, "symbols: %s" % out)
    # neither debug information nor symbol: module+offset
    rep = prog_report(PPROG, 0x55d0c0000000, 6000, symbols=False)
    path = os.path.join(TMP, "nosym.json")
    with open(path, "w") as f:
        f.write(json.dumps(rep) + "\n")
    out = reader(["--sites", "peak", "--no-addr2line", path]).stdout
    off = rep["poolmalloc"]["profile"]["sites"][0]["frames"][0]["offset"]
    check("%s+%s" % (os.path.basename(PPROG), off) in out, "module+offset: %s" % out)


def pprof_total(args):
    r = subprocess.run(["google-pprof"] + args, capture_output=True, text=True, timeout=120,
                       env=base_env())
    check(r.returncode == 0, "google-pprof %s exited %d: %s" % (" ".join(args), r.returncode, r.stderr[-800:]))
    m = re.search(r"^Total: (\S+) (MB|objects)$", r.stdout, re.M)
    check(m, "google-pprof %s: no Total line:\n%s\n%s" % (" ".join(args), r.stdout[:800], r.stderr[-800:]))
    return m.group(1), r.stdout


def t_pprof():
    """--pprof writes a gperftools heap profile that google-pprof --text
    reads, with the JSON's totals (no re-scaling: heapprofile header), names
    from the binary on disk (MAPPED_LIBRARIES), for one process and summed
    over two"""
    need("google-pprof")
    # the test program: exit figures 3 MiB + 1.5 MiB, peak 4 MiB
    path = os.path.join(TMP, "prog.json")
    with open(path, "w") as f:
        f.write(json.dumps(prog_report(PPROG, 0x55d0c0000000, 7000)) + "\n")
    prof = os.path.join(TMP, "prog.prof")
    reader(["--pprof", prof, path])
    with open(prof) as fh:
        text = fh.read()
    check(text.startswith("heap profile: ") and "@ heapprofile\n" in text.splitlines()[0] + "\n"
          and "\nMAPPED_LIBRARIES:\n" in text, "format: %s" % text[:400])
    total, out = pprof_total(["--text", PPROG, prof])
    check(total == "4.5", "exit in-use total %s MB, expected 4.5:\n%s" % (total, out))
    for fn in ("leaf_alloc", "make_table", "make_index", "main"):
        check(re.search(r"\b%s\b" % fn, out), "google-pprof does not name %s:\n%s" % (fn, out))
    total, _ = pprof_total(["--text", "--inuse_objects", PPROG, prof])
    check(total == "3700", "in-use objects %s, expected 3700" % total)
    total, _ = pprof_total(["--text", "--alloc_space", PPROG, prof])
    check(total == "8.0", "alloc space %s, expected 8.0" % total)
    reader(["--pprof", prof, "--pprof-of", "peak", path])
    total, _ = pprof_total(["--text", PPROG, prof])
    check(total == "4.0", "peak in-use total %s MB, expected 4.0" % total)
    # python3.11 (stripped, non-PIE), two processes: figures add up
    reader(["--pprof", prof, two_processes()])
    total, out = pprof_total(["--text", "/usr/bin/python3.11" if os.path.exists("/usr/bin/python3.11")
                              else PPROG, prof])
    check(total == "%.1f" % (2 * 6500000 / 1048576.0), "two python3 reports: total %s:\n%s" % (total, out))
    total, _ = pprof_total(["--text", "--inuse_objects", PPROG, prof])
    check(total == "10002", "two python3 reports: objects %s, expected 10002" % total)


def t_advise_sites():
    """--advise with a profile: the top sites at the peak by their first
    frames that are not allocator wrappers, a site that leaks, what
    poolmalloc can do (POOLMALLOC_POOL_SIZE for a size that goes to
    jemalloc, POOLMALLOC_LIFETIME for pooled blocks that stay in a process
    with pinned pages), and the RSS account with the pymalloc remark"""
    f = fixture("python3-profile.json")
    r = reader(["--advise", "--no-addr2line", f])
    text = flat(r.stdout[r.stdout.index("from the heap profile:"):])
    check("site _PyLong_New < PyLong_FromLong < _PyEval_EvalFrameDefault holds 40% of the peak" in text,
          "peak site: %s" % text)
    check("site PyBytes_FromStringAndSize < _PyEval_EvalFrameDefault < PyEval_EvalCode holds 20% of the "
          "peak" in text and "POOLMALLOC_POOL_SIZE=131072 would pool them" in text, "too large site: %s" % text)
    check("site PyList_Append < _PyEval_EvalFrameDefault < PyEval_EvalCode leaks 5.7 MiB" in text,
          "leak: %s" % text)
    check("not from malloc 85.1 MiB (69%)" in text and "PYTHONMALLOC=malloc" in text
          and "pymalloc" in text, "rss account: %s" % text)
    j = json.loads(reader(["--advise", "--json", "--no-addr2line", f]).stdout)
    rules = [n["rule"] for n in j["notes"]]
    check(rules.count("site-peak") == 3 and rules.count("site-leak") == 1 and "rss-account" in rules,
          "notes: %s" % rules)
    peak = [n for n in j["notes"] if n["rule"] == "site-peak"][0]["figures"]
    check(peak["pct_of_peak"] == 40.0 and peak["stack"][0] == "_PyLong_New", "figures %s" % peak)
    # a pooled site live at exit in a process with pinned pages: POOLMALLOC_LIFETIME=2
    with open(f) as fh:
        rep = json.loads(fh.readline())
    r2 = rep["poolmalloc"]
    r2["counters"]["pinned_bytes"] = 8 << 20
    dict_site = r2["profile"]["sites"][3]
    dict_site["exit_bytes"], dict_site["exit_blocks"] = 4 << 20, 40000
    r2["profile"]["exit"]["bytes"] = 6000000 + (4 << 20)
    path = os.path.join(TMP, "pinned.json")
    with open(path, "w") as fh:
        fh.write(json.dumps(rep) + "\n")
    text = flat(reader(["--advise", "--no-addr2line", path]).stdout)
    check(re.search(r"site PyDict_SetItem < \S+ < \S+ leaks 4 MiB.*POOLMALLOC_LIFETIME=2 \(the default\) would learn this site",
                    text), "lifetime for a pinning site: %s" % text)
    # a small exit heap: no leak named
    rep["poolmalloc"]["profile"]["exit"]["bytes"] = 100000
    for s in rep["poolmalloc"]["profile"]["sites"]:
        s["exit_bytes"] = min(s["exit_bytes"], 50000)
    with open(path, "w") as fh:
        fh.write(json.dumps(rep) + "\n")
    check(" leaks " not in reader(["--advise", "--no-addr2line", path]).stdout, "leak named for 100 KB")


TESTS = {name[2:]: fn for name, fn in sorted(globals().items()) if name.startswith("t_")}


def main():
    global LIB, PROG, READER, PPROG, PPROG_NOPIE, TMP
    if len(sys.argv) == 2 and sys.argv[1] == "list":
        print("\n".join(TESTS))
        return 0
    if len(sys.argv) != 7 or sys.argv[1] not in TESTS:
        sys.stderr.write("usage: report_profile_tests.py {%s} LIB REPORT_PROG POOLMALLOC_REPORT "
                         "PROFILE_PROG PROFILE_PROG_NOPIE\n" % "|".join(TESTS))
        return 2
    name, LIB, PROG, READER, PPROG, PPROG_NOPIE = sys.argv[1:]
    for p in (LIB, PROG, READER, PPROG, PPROG_NOPIE):
        if not os.path.exists(p):
            sys.stderr.write("report_profile_tests: %s not found\n" % p)
            return 2
    TMP = tempfile.mkdtemp(prefix="pm-report-%s-" % name)
    try:
        TESTS[name]()
    except Skip as e:
        print("skip %s: %s" % (name, e))
        shutil.rmtree(TMP, ignore_errors=True)
        return SKIP
    except Fail as e:
        sys.stderr.write("FAIL %s: %s\n(files kept in %s)\n" % (name, e, TMP))
        return 1
    except (ValueError, KeyError, IndexError, TypeError, OSError, AttributeError,
            subprocess.TimeoutExpired, ET.ParseError) as e:
        import traceback
        traceback.print_exc()
        sys.stderr.write("FAIL %s: %s: %s\n(files kept in %s)\n" % (name, type(e).__name__, e, TMP))
        return 1
    shutil.rmtree(TMP, ignore_errors=True)
    print("ok %s: %s" % (name, TESTS[name].__doc__.split("\n")[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
