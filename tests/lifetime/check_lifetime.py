#!/usr/bin/env python3
"""Lifetime routing, end to end: runs lt_prog under the preload library with
a JSON report and checks what the report says about its two call sites.

usage: check_lifetime.py PRELOAD LT_PROG PLUGIN WORKDIR"""
import json
import os
import subprocess
import sys

preload, prog, plugin, work = sys.argv[1:5]
os.makedirs(work, exist_ok=True)
fast = {"POOLMALLOC_PROFILE_RATE": "1024", "POOLMALLOC_LIFETIME_THRESHOLD": "1280000"}
failures = []


def run(name, extra, args=()):
    report = os.path.join(work, name + ".json")
    if os.path.exists(report):
        os.unlink(report)
    env = dict(os.environ, POOLMALLOC_STATS="json", POOLMALLOC_STATS_FILE=report, **extra)
    plain = subprocess.run([prog, *args], capture_output=True, text=True, timeout=120)
    env["LD_PRELOAD"] = preload
    pre = subprocess.run([prog, *args], env=env, capture_output=True, text=True, timeout=120)
    if pre.returncode != 0 or pre.stdout != plain.stdout or pre.stderr:
        failures.append(f"{name}: exit {pre.returncode}, stdout {pre.stdout!r} "
                        f"(without preload {plain.stdout!r}), stderr {pre.stderr!r}")
        return None
    with open(report) as f:
        return json.load(f)["poolmalloc"]


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


# 1. the long-lived site is learned, named and routed; the short one is not
r = run("on", dict(fast, POOLMALLOC_LIFETIME="1"))
if r:
    lt = r["lifetime"]
    sites = lt["long_lived_sites"]
    longs = [s for s in sites if "lt_long_site" in s["site"]]
    shorts = [s for s in sites if "lt_short_site" in s["site"]]
    check(lt["samples"] > 0, f"no samples: {lt}")
    if check(longs, f"lt_long_site not in the report: {sites}"):
        s = longs[0]
        check(s["marked"], f"lt_long_site not marked: {s}")
        check(s["routed_blocks"] > 1000, f"lt_long_site routed too little: {s}")
        check("lt_prog" in s["site"], f"library name missing: {s}")
    check(not any(s["marked"] or s["routed_blocks"] for s in shorts),
          f"lt_short_site routed: {shorts}")
    check(r["counters"]["fallback_long_lived"] > 1000,
          f"fallback_long_lived {r['counters']['fallback_long_lived']}")

# 2. off: nothing sampled, nothing routed
r = run("off", dict(fast, POOLMALLOC_LIFETIME="0"))
if r:
    check(r["lifetime"]["samples"] == 0 and r["counters"]["fallback_long_lived"] == 0
          and not r["lifetime"]["long_lived_sites"], f"routing while off: {r['lifetime']}")
    check(r["options"]["LIFETIME"] in (0, "0", False, "off"), f"options: {r['options']}")

# 3. a site in a library that was dlclose'd before the report
r = run("dlclose", dict(fast, POOLMALLOC_LIFETIME="1"), [plugin])
if r:
    sites = r["lifetime"]["long_lived_sites"]
    gone = [s for s in sites if s["routed_blocks"] > 0 and "lt_long_site" not in s["site"]
            and "lt_short_site" not in s["site"]]
    if check(gone, f"the plugin's site is not in the report: {sites}"):
        check(gone[0]["site"].startswith("0x"), f"unloaded site named: {gone[0]}")

# 4. one call site for both (an allocation wrapper): judged per caller
r = run("wrapper", dict(fast, POOLMALLOC_LIFETIME="1"), ["--wrapper"])
if r:
    sites = r["lifetime"]["long_lived_sites"]
    wrap = [s for s in sites if "lt_wrap" in s["site"] and "caller" not in s]
    keep = [s for s in sites if "lt_keep_caller" in s.get("caller", "")]
    drop = [s for s in sites if "lt_drop_caller" in s.get("caller", "")]
    if check(wrap, f"lt_wrap not in the report: {sites}"):
        check(wrap[0].get("wrapper") is True and not wrap[0]["marked"],
              f"lt_wrap not a wrapper, or marked itself: {wrap[0]}")
    if check(keep, f"lt_wrap's caller lt_keep_caller not in the report: {sites}"):
        check(keep[0]["marked"] and keep[0]["routed_blocks"] > 1000
              and "lt_wrap" in keep[0]["site"], f"lt_keep_caller not routed: {keep[0]}")
    check(not any(s["marked"] or s["routed_blocks"] for s in drop),
          f"lt_drop_caller routed: {drop}")

if failures:
    print("FAIL:\n  " + "\n  ".join(failures))
    sys.exit(1)
print("lifetime routing: long-lived site routed and named, short-lived not; off routes "
      "nothing; a dlclose'd site is reported by address; a wrapper's callers are judged apart")
