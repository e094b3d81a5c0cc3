"""pmreport.advice - the --advise rules of poolmalloc-report.

Each rule is a function of one Context (the processes, the aggregate, and
add()/note() to emit items) listed in RULES with its name and a one-line
doc; advise() runs them in table order. A rule emits advice items (each
names one POOLMALLOC_ variable, a value and the figures behind it) and notes
(findings no setting changes). docs/report.md, "The advice rules", lists
them with their thresholds.
"""

import collections
import math

from .util import (KiB, MiB, OPTION_DEFAULTS, POOL_SIZE_MIN, POOL_SIZE_MAX, REGION_SIZE_MAX,
                   num, pct, human, size_range, size_span, fpct, count, mode)
from . import profile as prof


class Context:
    """What every rule sees: procs (the processes, after the fork
    subtraction), a (the aggregate), the most common pool settings, and
    add()/note(), which append to advice and notes."""

    def __init__(self, procs, a):
        self.procs = procs
        self.a = a
        self.advice = []
        self.notes = []
        self.requests = a["requests"]
        self.pool_size = mode(p.pool_size for p in procs)
        self.max_pooled = mode(p.max_pooled for p in procs)
        mixed = len({(p.pool_size, p.max_pooled) for p in procs}) > 1
        self.opts_note = " (the most common settings; the reports differ)" if mixed else ""
        self.pg = a["pages_at_exit"]

    def add(self, rule, variable, value, figures, text, weight=None):
        """weight(p): a process's part of the figure that triggered the rule;
        the programs with the largest parts are named."""
        item = collections.OrderedDict(
            [("rule", rule), ("variable", variable), ("value", value),
             ("figures", figures), ("text", text), ("programs", [])])
        if weight is not None:
            by = collections.Counter()
            for p in self.procs:
                by[p.name] += weight(p)
            total = sum(by.values())
            if total:
                item["programs"] = [{"program": n, "pct": round(pct(v, total), 1)}
                                    for n, v in by.most_common(3) if v]
        self.advice.append(item)

    def note(self, rule, figures, text):
        self.notes.append(collections.OrderedDict([("rule", rule), ("figures", figures),
                                                   ("text", text)]))


def rule_too_large(ctx):
    procs, a, requests = ctx.procs, ctx.a, ctx.requests
    max_pooled, pool_size = ctx.max_pooled, ctx.pool_size
    tl = a["jemalloc_by_reason"]["fallback_too_large"]["count"]
    # processes where most requests are too large, even if others dominate the total
    heavy = [p for p in procs if p.requests >= 1000
             and pct(p.fallback["fallback_too_large"], p.requests) >= 20]
    if not (requests and tl >= 100 and (pct(tl, requests) >= 5 or heavy)):
        return
    exact = a["too_large_sizes_complete"]

    def pooled_at(t):
        """the too-large requests a limit t (MAX_POOLED) would have
        pooled: exact from too_large_sizes (bucket B holds sizes in
        (B/2, B], so with t a power of two a bucket is in or out), or a
        lower bound for a report without them: every too-large request
        is larger than MAX_POOLED = M and their mean is at most
        large_bytes / fallback_too_large, so by Markov's inequality on
        (size - M) at least 1 - (mean - M) / (t - M) of them are <= t."""
        got = 0.0
        for p in procs:
            n = p.fallback["fallback_too_large"]
            if not n or t <= p.max_pooled:
                continue
            if p.too_large is not None:
                # a bucket at or below MAX_POOLED holds aligned requests
                # whose alignment, not size, was too large: not counted
                got += sum(k for b, k in p.too_large.items() if p.max_pooled < b <= t)
                continue
            mean = p.c.get("large_bytes", 0) / n
            f = 1.0 - max(0.0, mean - p.max_pooled) / (t - p.max_pooled)
            got += n * max(0.0, f)
        return got
    # the limits a setting can give: powers of two above MAX_POOLED up to
    # half the largest page (POOL_SIZE is a power of two, MAX_POOLED
    # may be any value below POOL_SIZE/2)
    cands = []
    t = 1
    while t <= max_pooled:
        t *= 2
    while t <= POOL_SIZE_MAX // 2:
        cands.append(t)
        t *= 2
    shares = [(t, pct(pooled_at(t), tl)) for t in cands]
    # exact sizes: the smallest limit that pools >= 80% of them, else the
    # smallest that pools >= 50%. Bounds only: >= 50%, else >= 20% at the largest
    goal, fallback_goal = (80, 50) if exact else (50, None)
    choice = next(((t, s) for t, s in shares if s >= goal), None)
    if choice is None and fallback_goal is not None:
        choice = next(((t, s) for t, s in shares if s >= fallback_goal), None)
    if choice is None and not exact and shares and shares[-1][1] >= 20:
        choice = shares[-1]
    mean_all = sum(p.c.get("large_bytes", 0) for p in procs if p.fallback["fallback_too_large"]) / tl
    figures = {"fallback_too_large": tl, "pct_of_requests": round(pct(tl, requests), 1),
               "max_pooled": max_pooled, "sizes_exact": exact}
    lead = ("%s of requests (%s of %s) were larger than POOLMALLOC_MAX_POOLED=%s%s and went to "
            "jemalloc (too large)"
            % (fpct(pct(tl, requests)), count(tl), count(requests), max_pooled, ctx.opts_note))
    if heavy and pct(tl, requests) < 5:
        worst = max(heavy, key=lambda p: p.fallback["fallback_too_large"])
        lead += (", %s in %s (pid %d)%s"
                 % (fpct(pct(worst.fallback["fallback_too_large"], worst.requests)), worst.name, worst.pid,
                    " and %d other process(es)" % (len(heavy) - 1) if len(heavy) > 1 else ""))
        figures["processes_mostly_too_large"] = len(heavy)
    if exact:
        sizes = a["too_large_sizes"]
        figures["sizes"] = [{"max_bytes": b["max_bytes"], "count": b["count"]} for b in sizes]
        shown = sorted(sizes, key=lambda b: -b["count"])[:4]
        lead += "; by size: " + ", ".join(
            "%s %s (%s)" % (size_range(b["max_bytes"]), count(b["count"]), fpct(pct(b["count"], tl)))
            for b in sorted(shown, key=lambda b: b["max_bytes"]))
        if len(sizes) > len(shown):
            lead += ", %s in %d other size ranges" % (
                count(sum(b["count"] for b in sizes if b not in shown)), len(sizes) - len(shown))
        aligned = sum(k for p in procs for b, k in (p.too_large or {}).items() if b <= p.max_pooled)
        if aligned:
            figures["aligned_not_size"] = aligned
            lead += ("; %s of them were not larger than MAX_POOLED themselves (an alignment "
                     "above it) and are counted as staying in jemalloc" % count(aligned))
    else:
        figures["mean_size_at_most"] = int(mean_all)
        lead += "; their mean size is at most %s" % human(mean_all)
    if choice:
        t, share = choice
        n_pooled = int(round(pooled_at(t)))
        if t <= pool_size // 2:
            var, val = "POOLMALLOC_MAX_POOLED", t
            how = "POOLMALLOC_MAX_POOLED=%d" % t
            cost = ("Cost: none in page size (pages stay %s); blocks up to %s take a larger "
                    "share of a page" % (human(pool_size), human(t)))
        else:
            var, val = "POOLMALLOC_POOL_SIZE", 2 * t
            how = "POOLMALLOC_POOL_SIZE=%d (MAX_POOLED follows at half, %s)" % (2 * t, human(t))
            factor = 2 * t // pool_size
            cost = ("Cost: pool pages %s in size (%s -> %s), so each thread's partly used "
                    "page of every size class it uses is that much larger; how many bytes of "
                    "a page of that size would stay never carved (tail) these reports cannot "
                    "tell (tails are address space, not RSS, until carved)"
                    % ("double" if factor == 2 else "grow %d times" % factor,
                       human(pool_size), human(2 * t)))
        figures.update({"new_max_pooled": t, "pooled_pct": round(share, 1),
                        "pooled_requests": n_pooled,
                        "pooled_pct_of_requests": round(pct(n_pooled, requests), 2)})
        if exact:
            inside = [b["max_bytes"] for b in a["too_large_sizes"] if max_pooled < b["max_bytes"] <= t]
            lo = max(max_pooled, min(inside) // 2) if inside else max_pooled
            text = ("%s. %s of requests (%s, %.0f%% of the too-large ones) were %s and went to "
                    "jemalloc; %s would pool them (a pooled allocation skips jemalloc's slower "
                    "path)%s. %s"
                    % (lead, fpct(pct(n_pooled, requests)), count(n_pooled), share,
                       size_span(lo, t), how,
                       "" if n_pooled >= tl else "; the other %s stay in jemalloc" % count(tl - n_pooled),
                       cost))
        else:
            text = ("%s, so at least %.0f%% of them are at most %s: %s would pool those "
                    "(a pooled allocation skips jemalloc's slower path; the reports have no "
                    "too_large_sizes, so this is a bound). %s"
                    % (lead, share, human(t), how, cost))
            figures["pooled_at_least_pct"] = round(share, 1)
        ctx.add("too-large", var, val, figures, text,
                weight=lambda p: p.fallback["fallback_too_large"])
    else:
        best = shares[-1][1] if shares else 0.0
        ctx.note("too-large", dict(figures, pooled_pct_at_largest=round(best, 1)),
                 "%s: most are beyond what the pools can take (%s%.0f%% at POOLMALLOC_POOL_SIZE=%d, "
                 "MAX_POOLED %s), nothing to set"
                 % (lead, "" if exact else "at least ", best, POOL_SIZE_MAX, human(POOL_SIZE_MAX // 2)))


def rule_empty_pages(ctx):
    # Only carved blocks cost RSS (tails are never touched), and a smaller
    # page helps only when few blocks survive per page: then pages can empty
    # and be reused. Older reports have no per-class page count (and this
    # rule does not use the newer "pages" yet), so the survivors per page of
    # a class are estimated from its survival ratio live/allocs (blocks
    # assumed spread evenly over the pages they were carved in; a class
    # counts as sparse below 4 survivors per page and 10% survival), and the
    # pages they pin from min(live, pages its allocations filled) minus the
    # pages its live blocks need; the estimate is capped by the process's
    # measured free carved bytes.
    procs, a, pg, pool_size = ctx.procs, ctx.a, ctx.pg, ctx.pool_size
    rss_now = sum(p.c.get("rss", 0) for p in procs)
    pinned_total = 0
    sparse = collections.defaultdict(lambda: {"allocs": 0, "live": 0, "pinned": 0})
    for p in procs:
        P = p.c["page_size"]
        est = {}
        for k in p.classes:
            b, n = k["block_size"], k["allocs"]
            live = k["live"]
            if b <= 0 or n <= 0 or live < 16:
                continue
            per_page = live / n * (P / b)
            if per_page >= 4 or live / n > 0.1:
                continue
            filled = math.ceil(n * b / P)
            need = math.ceil(live * b / P)
            pinned = max(0, min(live, filled) - need) * P
            if pinned:
                est[b] = (n, live, pinned)
        cap = max(0, p.page_bytes - p.c.get("live_block_bytes", 0) - p.c.get("tail_bytes", 0))
        total = sum(v[2] for v in est.values())
        scale = min(1.0, cap / total) if total else 0
        for b, (n, live, pinned) in est.items():
            sp = sparse[b]
            sp["allocs"] += n
            sp["live"] += live
            sp["pinned"] += pinned * scale
        pinned_total += total * scale
    empty_figures = {"page_bytes": pg["page_bytes"], "live_block_bytes": pg["live_block_bytes"],
                     "tail_bytes": pg["tail_bytes"], "carved_free_bytes": pg["carved_free_bytes"],
                     "rss": rss_now, "pinned_estimate": int(pinned_total)}
    if not (pinned_total >= 4 * MiB and pct(pinned_total, rss_now) >= 10 and pool_size > POOL_SIZE_MIN):
        return
    worst_b = max(sparse, key=lambda b: sparse[b]["pinned"])
    w = sparse[worst_b]
    survive = w["live"] / w["allocs"]
    pooled = a["pooled"] or 1
    new = pool_size // 2
    while new // 2 >= POOL_SIZE_MIN and survive * new / worst_b > 0.5:
        new //= 2
    # class sizes are aligned to powers of two, so every request of a
    # class larger than new/2 is larger than the new MAX_POOLED
    moved = sum(m["allocs"] for m in a["classes"] if m["block_size"] > new // 2)
    while pct(moved, pooled) > 1 and new * 2 < pool_size:
        new *= 2
        moved = sum(m["allocs"] for m in a["classes"] if m["block_size"] > new // 2)
    figures = dict(empty_figures, pool_size=pool_size, block_size=worst_b,
                   class_allocs=w["allocs"], class_live=w["live"],
                   allocs_moving_to_jemalloc=moved)
    ctx.add("empty-pages", "POOLMALLOC_POOL_SIZE", new, figures,
            "pages were mostly empty: %s blocks kept %s of %s allocations (%.2f%%), about %.1f "
            "per %s page, so an estimated %s of pool pages (%.0f%% of RSS at exit, %s) stay in use "
            "for few live blocks (free carved blocks at exit: %s in all). Try a smaller "
            "POOLMALLOC_POOL_SIZE=%d (from %d): about %.2f survivors per page, so most pages can "
            "empty and be reused; %s pooled allocations (%.1f%%) larger than %s would move to "
            "jemalloc. Compare peak RSS before keeping it"
            % (human(worst_b), count(w["live"]), count(w["allocs"]), 100 * survive,
               survive * pool_size / worst_b, human(pool_size), human(pinned_total),
               pct(pinned_total, rss_now), human(rss_now), human(pg["carved_free_bytes"]),
               new, pool_size, survive * new / worst_b, count(moved), pct(moved, pooled),
               human(new // 2)),
            weight=lambda p: sum(k["live"] for k in p.classes if k["block_size"] == worst_b))


def rule_remote_frees(ctx):
    # no setting makes them local (smaller pages were measured and did not
    # lower peak RSS; docs/report.md); the useful step is an A/B run
    a = ctx.a
    fr = a["frees"]
    if not (fr["remote_frees"] >= 10000 and fr["remote_pct_of_pool_frees"] >= 10):
        return
    figures = {"remote_frees": fr["remote_frees"], "pool_frees": fr["pool_frees"],
               "remote_pct": fr["remote_pct_of_pool_frees"],
               "pages_abandoned": a["pages"]["pages_abandoned"],
               "pages_adopted": a["pages"]["pages_adopted"]}
    ctx.add("remote-frees", "POOLMALLOC_DISABLE", 1, figures,
            "many remote frees: %s of %s pool frees (%.0f%%) came from a thread that does not own "
            "the page (producer/consumer). Each is an atomic push, and the block is reused only "
            "after the owning thread collects it when it next runs out of that class. No "
            "POOLMALLOC_ setting makes them local: run once with POOLMALLOC_DISABLE=1 (jemalloc "
            "for everything) and keep poolmalloc only if its peak RSS and run time are not worse"
            % (count(fr["remote_frees"]), count(fr["pool_frees"]), fr["remote_pct_of_pool_frees"]),
            weight=lambda p: p.c.get("remote_frees", 0))


def rule_class_waste(ctx):
    a = ctx.a
    total_block = a["waste"]["block_bytes"]
    for m in sorted(a["classes"], key=lambda m: -m["waste_bytes"]):
        if not (m["waste_pct"] > 15 and m["waste_bytes"] >= 64 * KiB
                and pct(m["block_bytes"], total_block) >= 5):
            continue
        # the class below in the fixed spacing: 16 B steps to 128, then 4 per doubling
        b = m["block_size"]
        if b <= 128:
            lower = b - 16
        else:
            g = (b - 1).bit_length() - 1          # 2^g < b <= 2^(g+1)
            lower = b - (1 << (g - 2))
        why = ("requests average %s B in %s blocks" % (count(round(m["mean_request"])), human(b)))
        if m["mean_request"] < lower:
            why += (" — below the class's own lower bound (%s), so most of them are "
                    "aligned allocations (memalign/posix_memalign/aligned_alloc) that "
                    "take the first class that is a multiple of the alignment" % human(lower))
        ctx.note("class-waste",
                 {"block_size": b, "waste_pct": m["waste_pct"], "waste_bytes": m["waste_bytes"],
                  "mean_request": m["mean_request"], "allocs": m["allocs"]},
                 "internal waste above 15%% in class %d (%s blocks): %.1f%% (%s of %s); %s. "
                 "No POOLMALLOC_ setting changes the class spacing, nothing to set"
                 % (m["class"], human(b), m["waste_pct"], human(m["waste_bytes"]),
                    human(m["block_bytes"]), why))


def rule_short_lived(ctx):
    procs = ctx.procs
    short = [p for p in procs if p.run_ms < 10 and p.requests < 10000]
    if not (len(procs) >= 2 and pct(len(short), len(procs)) >= 50):
        return
    names = collections.Counter(p.name for p in short).most_common(5)
    share = pct(sum(p.requests for p in short), ctx.requests)
    figures = {"short_processes": len(short), "processes": len(procs),
               "requests_pct": round(share, 1),
               "programs": [{"program": n, "processes": k} for n, k in names]}
    ctx.add("short-lived", "POOLMALLOC_DISABLE", 1, figures,
            "most processes live < 10 ms and allocate little: %d of %d ran under 10 ms with fewer "
            "than 10,000 allocations (%.1f%% of all requests; %s). poolmalloc brings them nothing: "
            "preload it only into the long-running program, or set POOLMALLOC_DISABLE=1 for these"
            % (len(short), len(procs), share,
               ", ".join("%s ×%d" % (n, k) for n, k in names)),
            weight=lambda p: 1 if (p.run_ms < 10 and p.requests < 10000) else 0)


def rule_region_full(ctx):
    procs, a = ctx.procs, ctx.a
    rf = a["jemalloc_by_reason"]["fallback_region_full"]["count"]
    if not rf:
        return
    region = mode(num(p.options.get("REGION_SIZE"), OPTION_DEFAULTS["REGION_SIZE"]) for p in procs)
    new = min(REGION_SIZE_MAX, region * 4)
    committed = max(p.c.get("region_committed", 0) for p in procs)
    if new == region:
        ctx.note("region-full", {"fallback_region_full": rf, "region_size": region},
                 "%s requests went to jemalloc because the pool region (%s, the largest) was "
                 "exhausted: nothing to set" % (count(rf), human(region)))
    else:
        ctx.add("region-full", "POOLMALLOC_REGION_SIZE", new,
                {"fallback_region_full": rf, "region_size": region, "region_committed_max": committed},
                "%s requests went to jemalloc because the pool region was exhausted "
                "(REGION_SIZE %s, up to %s of it taken by arenas): POOLMALLOC_REGION_SIZE=%d "
                "reserves more address space (nothing is committed until used)"
                % (count(rf), human(region), human(committed), new),
                weight=lambda p: p.fallback["fallback_region_full"])


def rule_alignment(ctx):
    a, requests, pool_size, max_pooled = ctx.a, ctx.requests, ctx.pool_size, ctx.max_pooled
    al = a["jemalloc_by_reason"]["fallback_alignment"]["count"]
    if not (al >= 100 and pct(al, requests) >= 1):
        return
    if max_pooled < pool_size // 2:
        var, val = "POOLMALLOC_MAX_POOLED", pool_size // 2
    else:
        var, val = "POOLMALLOC_POOL_SIZE", min(POOL_SIZE_MAX, pool_size * 2)
    if val == (pool_size if var.endswith("POOL_SIZE") else max_pooled):
        ctx.note("alignment", {"fallback_alignment": al, "pool_size": pool_size},
                 "%s requests (%.1f%%) went to jemalloc for their alignment, and the pools are "
                 "already at their largest: nothing to set" % (count(al), pct(al, requests)))
    else:
        ctx.add("alignment", var, val,
                {"fallback_alignment": al, "pct_of_requests": round(pct(al, requests), 1),
                 "max_pooled": max_pooled},
                "%s requests (%.1f%%) went to jemalloc because the smallest class that is a "
                "multiple of their alignment is larger than MAX_POOLED (%s): %s=%d raises that limit"
                % (count(al), pct(al, requests), human(max_pooled), var, val),
                weight=lambda p: p.fallback["fallback_alignment"])


def rule_disabled(ctx):
    procs, a = ctx.procs, ctx.a
    dis = [p for p in procs if num(p.options.get("DISABLE")) or p.fallback["fallback_disabled"]]
    if not dis:
        return
    ctx.add("disabled", "POOLMALLOC_DISABLE", 0,
            {"processes": len(dis), "fallback_disabled": a["jemalloc_by_reason"]["fallback_disabled"]["count"]},
            "POOLMALLOC_DISABLE=1 was in effect in %d process(es): their %s requests all went to "
            "jemalloc and these reports say nothing about the pools; unset it (POOLMALLOC_DISABLE=0) "
            "to measure poolmalloc" % (len(dis), count(a["jemalloc_by_reason"]["fallback_disabled"]["count"])),
            weight=lambda p: 1 if p in dis else 0)


def rule_decay(ctx):
    procs, a = ctx.procs, ctx.a
    purged = ctx.pg["purged_bytes"]
    reused = sum(p.c.get("pages_reused", 0) * p.c["page_size"] for p in procs)
    refault = min(purged, reused)
    if not (refault >= 64 * MiB and refault >= a["rss_peak"]["sum"] // 2):
        return
    decay = mode(num(p.options.get("DECAY_MS"), 1000) for p in procs)
    new = min(3600000, max(1000, decay * 4))
    ctx.add("decay", "POOLMALLOC_DECAY_MS", new,
            {"purged_bytes": purged, "reused_page_bytes": reused, "decay_ms": decay,
             "rss_peak_sum": a["rss_peak"]["sum"]},
            "%s of free pages went back to the OS while %s of pages were reused: up to %s may have "
            "been faulted in again (more than half the summed peak RSS, %s). "
            "POOLMALLOC_DECAY_MS=%d (from %d) keeps free pages longer"
            % (human(purged), human(reused), human(refault), human(a["rss_peak"]["sum"]), new, decay),
            weight=lambda p: p.c.get("purged_bytes", 0))


def rule_lifetime(ctx):
    # Only carved free blocks in pinned pages cost RSS: pinned_bytes of
    # older reports also counts never-carved tails (address space), so for
    # them the reader uses pinned_bytes less the process's tails
    # (Proc.pinned_carved). Reports with remote_pending_* count carved bytes.
    procs, a = ctx.procs, ctx.a
    pinned = a["pinned"]["carved_free_bytes"]
    rss_sum = sum(p.c.get("rss", 0) for p in procs)
    off = [p for p in procs if not num(p.options.get("LIFETIME"))]
    if not (pinned >= 4 * MiB and pct(pinned, rss_sum) >= 10 and off):
        return
    estimated = a["pinned"]["carved_free_estimated"]
    ctx.add("lifetime", "POOLMALLOC_LIFETIME", 2,
            {"pinned_bytes": a["pinned"]["bytes"], "pinned_carved_free_bytes": pinned,
             "pinned_carved_free_estimated": estimated,
             "pinned_pages": a["pinned"]["pages"], "rss_sum": rss_sum},
            "%s of free carved blocks sit in %s pool pages that are at most a quarter full (%s of "
            "the summed RSS%s): a few live blocks keep those pages. POOLMALLOC_LIFETIME=2 (the "
            "default, turned off in these processes) learns the call sites of long-lived blocks "
            "and gives their requests pool pages of their own, so the pages around them can empty "
            "and go back to the OS"
            % (human(pinned), count(a["pinned"]["pages"]), fpct(pct(pinned, rss_sum)),
               "; at least: these reports count never-carved tails in pinned_bytes, so their "
               "tails were taken off" if estimated else ""),
            weight=lambda p: p.pinned_carved if p in off else 0)


def rule_remote_pending(ctx):
    rp = ctx.a.get("remote_pending", {})
    rss_sum = sum(p.c.get("rss", 0) for p in ctx.procs)
    b = rp.get("bytes", 0)
    if not (b >= 4 * MiB and pct(b, rss_sum) >= 10):
        return
    ctx.note("remote-pending", {"remote_pending_pages": rp.get("pages", 0),
                                "remote_pending_bytes": b, "rss_sum": rss_sum},
             "%s pool pages (%s, %s of the summed RSS) were held at the report only by blocks "
             "freed by another thread that their owner had not collected yet: the owning thread "
             "collects them when it next needs a block of that class; a thread that allocates "
             "little after handing its blocks over keeps them (see the remote-frees rule)"
             % (count(rp.get("pages", 0)), human(b), fpct(pct(b, rss_sum))))


def rule_long_lived_sites(ctx):
    routed = [m for m in ctx.a["long_lived_sites"] if m["marked"] or m["routed_blocks"]]
    if not routed:
        return
    ctx.note("long-lived-sites", {"sites": routed[:5]},
             "call sites learned to be long-lived (their requests went to jemalloc): " +
             "; ".join("%s: %s blocks, %s%s" % (m["site"], count(m["routed_blocks"]),
                                                human(m["routed_bytes"]),
                                                " (resting at the report: it had allocated "
                                                "nothing for a while)" if m.get("resting") else "")
                       for m in routed[:5]) +
             ". A program can give such objects an arena of their own")


def rule_conflict(ctx):
    values = collections.defaultdict(set)
    for item in ctx.advice:
        values[item["variable"]].add(item["value"])
    for var, vals in sorted(values.items()):
        if len(vals) > 1:
            ctx.note("conflict", {"variable": var, "values": sorted(vals)},
                     "%s is advised with different values (%s) by rules that fire on different "
                     "processes: set it in each program's own environment, not for the whole run"
                     % (var, ", ".join(str(v) for v in sorted(vals))))


def rule_abandoned(ctx):
    ab, ad = ctx.a["pages"]["pages_abandoned"], ctx.a["pages"]["pages_adopted"]
    if ab >= 64 and ad * 2 < ab:
        ctx.note("abandoned", {"pages_abandoned": ab, "pages_adopted": ad},
                 "%s pages were left with live blocks by exiting threads and only %s adopted: "
                 "short-lived threads that keep memory alive; no POOLMALLOC_ setting changes this, "
                 "nothing to set" % (count(ab), count(ad)))


# ---- rules on the heap profile (schema 2 reports with "profile"/"rss_account")

SITE_PEAK_PCT = 10          # a site named when it holds this share of the summed peak
SITE_LEAK_MIN = 1 * MiB     # live at exit: at least this much for a site
EXIT_HEAP_MIN = 1 * MiB     # a process's exit live heap is significant from this...
EXIT_HEAP_PCT = 10          # ...and this share of its peak live heap


def blocks(n):
    return "%s block%s" % (count(n), "" if n == 1 else "s")


def _stack_text(frames):
    return " < ".join(prof.short_stack(frames))


def _tier_hint(ctx, s, live_key):
    """what poolmalloc can do for a site, from the mean size of its blocks:
    a size above MAX_POOLED goes to jemalloc (a larger POOL_SIZE pools it);
    pooled blocks that stay live in processes with pinned pages suggest
    POOLMALLOC_LIFETIME=1. (text, figures)"""
    live_blocks = s[live_key.replace("bytes", "blocks")]
    if s["alloc_blocks"]:
        size = s["alloc_bytes"] / s["alloc_blocks"]
    else:
        size = s[live_key] / live_blocks if live_blocks else 0
    fig = {"mean_block_bytes": int(size)}
    if not size:
        return "", fig
    if size > ctx.max_pooled:
        t = 1
        while t < size:
            t *= 2
        # pages at most 4 times larger: beyond that a pool page per class
        # and thread costs more than jemalloc's handling of large blocks
        if t <= ctx.pool_size // 2 or 2 * t <= min(POOL_SIZE_MAX, 4 * ctx.pool_size):
            var = ("POOLMALLOC_MAX_POOLED=%d" % t if t <= ctx.pool_size // 2
                   else "POOLMALLOC_POOL_SIZE=%d" % (2 * t))
            fig["pooled_by"] = var
            return ("; its blocks (%s on average) are larger than MAX_POOLED=%s and go to "
                    "jemalloc: %s would pool them" % (human(size), human(ctx.max_pooled), var)), fig
        return ("; its blocks (%s on average) are larger than MAX_POOLED=%s and go to jemalloc, "
                "where blocks that large belong" % (human(size), human(ctx.max_pooled))), fig
    pinned = [p for p in ctx.procs if p.name in s["programs"] and p.pinned_carved >= 1 * MiB
              and not num(p.options.get("LIFETIME"))]
    if pinned and live_key == "exit_bytes":
        fig["lifetime"] = 2
        return ("; its blocks (%s on average) are pooled and stay live, and %s of free carved "
                "blocks sit in mostly empty pages of %s: POOLMALLOC_LIFETIME=2 (the default) would "
                "learn this site and give its requests pool pages of their own, so those pages can "
                "empty"
                % (human(size), human(sum(p.pinned_carved for p in pinned)),
                   ", ".join(sorted({p.name for p in pinned})))), fig
    return "; its blocks (%s on average) are pooled" % human(size), fig


def rule_site_peak(ctx):
    have = prof.profiled(ctx.procs)
    total = sum(p.profile.peak_bytes for p in have)
    if not total:
        return
    sites = prof.merged_sites(ctx.procs)
    top = [s for s in prof.top_sites(sites, "peak", 3) if pct(s["peak_bytes"], total) >= SITE_PEAK_PCT]
    prof.prepare_names(top)
    for s in top:
        hint, fig = _tier_hint(ctx, s, "peak_bytes")
        fig.update({"peak_bytes": s["peak_bytes"], "peak_blocks": s["peak_blocks"],
                    "pct_of_peak": round(pct(s["peak_bytes"], total), 1), "peak_sum": total,
                    "stack": prof.short_stack(s["frames"]),
                    "programs": dict(sorted(s["programs"].items()))})
        ctx.note("site-peak", fig,
                 "site %s holds %s of the peak (%s of %s, %s, in %s)%s"
                 % (_stack_text(s["frames"]), fpct(pct(s["peak_bytes"], total)), human(s["peak_bytes"]),
                    human(total), blocks(s["peak_blocks"]),
                    ", ".join(sorted(s["programs"])), hint))


def rule_site_leak(ctx):
    leaky = [p for p in prof.profiled(ctx.procs)
             if p.profile.exit_bytes >= EXIT_HEAP_MIN
             and pct(p.profile.exit_bytes, p.profile.peak_bytes or p.profile.exit_bytes) >= EXIT_HEAP_PCT]
    if not leaky:
        return
    exit_sum = sum(p.profile.exit_bytes for p in leaky)
    sites = [s for s in prof.merged_sites(leaky)]
    top = [s for s in prof.top_sites(sites, "exit", 3)
           if s["exit_bytes"] >= SITE_LEAK_MIN and pct(s["exit_bytes"], exit_sum) >= SITE_PEAK_PCT]
    prof.prepare_names(top)
    for s in top:
        hint, fig = _tier_hint(ctx, s, "exit_bytes")
        fig.update({"exit_bytes": s["exit_bytes"], "exit_blocks": s["exit_blocks"],
                    "pct_of_exit": round(pct(s["exit_bytes"], exit_sum), 1), "exit_sum": exit_sum,
                    "stack": prof.short_stack(s["frames"]),
                    "programs": dict(sorted(s["programs"].items()))})
        ctx.note("site-leak", fig,
                 "site %s leaks %s: %s still live at exit (%s of the %s live at exit in %s)%s"
                 % (_stack_text(s["frames"]), human(s["exit_bytes"]), blocks(s["exit_blocks"]),
                    fpct(pct(s["exit_bytes"], exit_sum)), human(exit_sum),
                    ", ".join(sorted(s["programs"])), hint))


def rule_rss_account(ctx):
    procs = [p for p in ctx.procs if p.rss_account]
    if not procs:
        return
    when = "peak" if all("peak" in p.rss_account for p in procs) else "exit"
    parts = collections.OrderedDict((k, sum(p.rss_account.get(when, {}).get(k, 0) for p in procs))
                                    for k in ("rss",) + prof.RSS_PARTS)
    rss = parts["rss"]
    if not rss:
        return
    label = {"pool_in_use": "pool pages in use", "pool_free_resident": "free pool pages still resident",
             "jemalloc_resident": "jemalloc", "metadata": "poolmalloc's metadata",
             "other": "not from malloc"}
    text = ("RSS at the %s: %s%s = %s. What is not from malloc is the program's code and data, "
            "thread stacks and memory it maps itself"
            % ("peak" if when == "peak" else "report", human(rss),
               " summed over %d processes" % len(procs) if len(procs) > 1 else "",
               ", ".join("%s %s (%s)" % (label[k], human(parts[k]), fpct(pct(parts[k], rss)))
                         for k in prof.RSS_PARTS)))
    py = sorted({p.name for p in procs if p.name.startswith("python")})
    if py:
        text += ("; for %s that includes pymalloc's arenas: Python's small-object allocator takes "
                 "memory in arenas it maps itself, which poolmalloc never sees. PYTHONMALLOC=malloc "
                 "sends those objects through malloc, so that poolmalloc (and this report) see them"
                 % ", ".join(py))
    ctx.note("rss-account", dict(parts, when=when, processes=len(procs),
                                 other_pct=round(pct(parts["other"], rss), 1)), text)


# (name, function, one-line doc), run in this order; the order is the order
# of the items in the output. "conflict" looks at the advice of the rules
# before it.
RULES = [
    ("too-large", rule_too_large,
     "many requests above MAX_POOLED: the smallest POOL_SIZE/MAX_POOLED that pools most of them"),
    ("empty-pages", rule_empty_pages,
     "pages kept by a few surviving blocks of sparse classes: a smaller POOL_SIZE"),
    ("remote-frees", rule_remote_frees,
     "many frees by a thread that does not own the page: an A/B run with POOLMALLOC_DISABLE=1"),
    ("class-waste", rule_class_waste,
     "note: a class that wastes > 15% of its block bytes (rounding or alignment)"),
    ("short-lived", rule_short_lived,
     "most processes ran < 10 ms and allocated little: POOLMALLOC_DISABLE=1 for them"),
    ("region-full", rule_region_full,
     "the pool region was exhausted: a larger POOLMALLOC_REGION_SIZE"),
    ("alignment", rule_alignment,
     "alignments no pooled class serves: a larger MAX_POOLED or POOL_SIZE"),
    ("disabled", rule_disabled,
     "POOLMALLOC_DISABLE=1 was in effect: unset it to measure the pools"),
    ("decay", rule_decay,
     "pages returned to the OS and taken back: a longer POOLMALLOC_DECAY_MS"),
    ("lifetime", rule_lifetime,
     "carved free blocks in pages at most a quarter full are much of RSS: POOLMALLOC_LIFETIME=2"),
    ("remote-pending", rule_remote_pending,
     "note: pages held only by remote frees not yet collected are much of RSS"),
    ("long-lived-sites", rule_long_lived_sites,
     "note: the call sites lifetime routing learned to be long-lived"),
    ("conflict", rule_conflict,
     "note: one variable advised with different values by different rules"),
    ("abandoned", rule_abandoned,
     "note: pages left with live blocks by exiting threads and not adopted"),
    ("site-peak", rule_site_peak,
     "note (heap profile): the sites that hold >= 10% of the summed peak live heap"),
    ("site-leak", rule_site_leak,
     "note (heap profile): sites live at exit in processes whose exit live heap is significant"),
    ("rss-account", rule_rss_account,
     "note (heap profile): RSS by where it comes from, and what is not from malloc"),
]


def advise(procs, a):
    """Returns (advice, notes). Every advice item names a setting."""
    if not procs:
        return [], []
    ctx = Context(procs, a)
    for _name, fn, _doc in RULES:
        fn(ctx)
    return ctx.advice, ctx.notes
