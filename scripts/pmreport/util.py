"""pmreport.util - constants and formatting helpers shared by
poolmalloc-report and its modules."""

import collections
import os

FALLBACK_REASONS = [
    # (JSON counter, short name, explanation)
    ("fallback_too_large", "too large", "larger than POOLMALLOC_MAX_POOLED"),
    ("fallback_alignment", "alignment", "an alignment no pooled class serves"),
    ("fallback_disabled", "disabled", "POOLMALLOC_DISABLE=1"),
    ("fallback_region_full", "region full", "the pool region was exhausted"),
    ("fallback_no_heap", "no heap", "thread exiting or heap limit reached"),
    ("fallback_long_lived", "long-lived", "a call site learned to be long-lived (POOLMALLOC_LIFETIME)"),
    ("lifetime_samples", "lifetime sample", "sampled to learn lifetimes (POOLMALLOC_LIFETIME)"),
]

OPTION_DEFAULTS = {"POOL_SIZE": 65536, "MAX_POOLED": 32768, "DISABLE": 0,
                   "DECAY_MS": 1000, "REGION_SIZE": 32 << 30, "LIFETIME": 0}
POOL_SIZE_MIN, POOL_SIZE_MAX = 4096, 1 << 20
REGION_SIZE_MAX = 4 << 40

KiB, MiB = 1024, 1024 * 1024


def num(v, default=0):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else default


def cnt(v):
    """a count or size from a report: a non-negative int, else 0"""
    try:
        return max(0, int(num(v)))
    except (ValueError, OverflowError):    # NaN, Infinity
        return 0


def obj(v):
    return v if isinstance(v, dict) else {}


def program_name(cmd):
    first = (cmd or "").split(" ", 1)[0]
    return os.path.basename(first) or "?"

def pct(a, b):
    return 100.0 * a / b if b else 0.0


def human(v):
    v = float(v)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(v) < 1024 or unit == "EiB":
            if unit == "B":
                return "%d B" % v
            return ("%.1f %s" % (v, unit)).replace(".0 ", " ")
        v /= 1024


def size_range(b):
    """the sizes of too-large bucket b: (b/2, b], as '32-64 KiB'"""
    return size_span((b + 1) // 2 if b & (b + 1) == 0 else b // 2, b)


def size_span(lo, hi):
    """'32-64 KiB' (sizes above lo up to hi), one unit when both share it"""
    a, b = human(lo), human(hi)
    if a.split(" ")[1:] == b.split(" ")[1:]:
        return "%s\u2013%s" % (a.split(" ")[0], b)
    return "%s\u2013%s" % (a, b)


def fpct(v):
    """a percentage with as many decimals as a small one needs: 31, 2.9, 0.04"""
    if v >= 10 or v == 0:
        return "%.0f%%" % v
    if v >= 1:
        return "%.1f%%" % v
    return "%.2f%%" % v


def count(v):
    return "{:,}".format(int(v))


def mode(values):
    return collections.Counter(values).most_common(1)[0][0]



def wrap(text, first, rest=None, width=100):
    """text as lines of at most width columns: first, then rest as the indent."""
    rest = " " * len(first) if rest is None else rest
    lines, cur = [], first
    for word in text.split():
        if len(cur) + len(word) > width and cur.strip():
            lines.append(cur.rstrip())
            cur = rest
        cur += word + " "
    lines.append(cur.rstrip())
    return "\n".join(lines) + "\n"


def wrap_items(items, first, rest, width=100):
    """items joined by ', ' in lines of at most width columns, never
    breaking inside an item"""
    lines, cur = [], first
    for i, it in enumerate(items):
        piece = it + ("," if i < len(items) - 1 else "")
        if len(cur) + len(piece) > width and cur.strip():
            lines.append(cur.rstrip())
            cur = rest
        cur += piece + " "
    lines.append(cur.rstrip())
    return "\n".join(lines) + "\n"

