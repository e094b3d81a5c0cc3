#!/usr/bin/env python3
"""unwind_check.py PRELOAD PROG UNWINDER - the unwinder allocates inside the
sampler (unwind_alloc.c): the run ends (no hang: a 60 s timeout fails it)
and no sampled stack passes through the unwinder itself, i.e. the
allocations the unwinder makes are never sampled (their unwinds would
re-enter it: libgcc's object mutex, libunwind's half-made cache)."""
import json
import os
import subprocess
import sys
import tempfile

preload, prog, unwinder = sys.argv[1:4]
out = os.path.join(tempfile.mkdtemp(), "r.json")
env = dict(os.environ, LD_PRELOAD=preload, POOLMALLOC_STATS="json", POOLMALLOC_STATS_FILE=out,
           POOLMALLOC_PROFILE_RATE="16", POOLMALLOC_UNWINDER=unwinder)
try:
    r = subprocess.run([prog], env=env, capture_output=True, text=True, timeout=60)
except subprocess.TimeoutExpired:
    sys.exit("FAIL: %s hung (60 s) with POOLMALLOC_UNWINDER=%s" % (prog, unwinder))
if r.returncode == 77:
    print(r.stdout.strip())
    sys.exit(77)
if r.returncode != 0 or "unwind_alloc: done" not in r.stdout:
    sys.exit("FAIL: exit %d, stdout %r, stderr %r" % (r.returncode, r.stdout, r.stderr[-500:]))
with open(out) as f:
    p = json.load(f)["poolmalloc"]["profile"]
mods = {m["id"]: os.path.basename(m["path"]) for m in p["modules"]}
inside = [s for s in p["sites"]
          if any(mods.get(fr["module"], "").startswith(("libgcc_s", "libunwind")) for fr in s["frames"])]
if inside:
    fr = inside[0]["frames"]
    sys.exit("FAIL: %d sampled stacks pass through the unwinder, e.g. %s" % (
        len(inside), " <- ".join("%s(%s)" % (x["symbol"], mods.get(x["module"], "?")) for x in fr[:6])))
print("unwinder %s: %d samples, %d stacks, none inside the unwinder" % (unwinder, p["samples"], p["stacks"]))
