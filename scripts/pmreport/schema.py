"""pmreport.schema - the JSON fields poolmalloc-report reads, per schema.

FIELDS[schema] maps the path of every object in a report (inside the
top-level "poolmalloc" object; "[]" stands for the elements of an array) to
the keys the reader knows there. A key in OPTIONAL[schema] may be absent
(a report of an older library with the same schema, or an object the library
writes only when a feature is on); every other key is expected in a report
of the current library. tests/report/report_schema_tests.py runs the real
library and checks, with check_report(), that every key expected is present
and that every key written is known here: a new field must be added both in
the library and here (and read, or knowingly ignored, by the reader).
"""

_COUNTERS_1 = (
    "pages_fresh", "pages_reused", "pages_released", "pages_abandoned", "pages_adopted",
    "remote_frees", "fallback_too_large", "fallback_alignment", "fallback_disabled",
    "fallback_region_full", "fallback_no_heap", "fallback_long_lived", "long_lived_to_pages",
    "lifetime_samples", "large_bytes", "large_frees", "realloc_in_place", "realloc_moved",
    "pages_in_use", "pages_peak", "page_size", "live_block_bytes", "tail_bytes",
    "pinned_pages", "pinned_bytes", "purged_bytes", "region_committed", "jemalloc_allocated",
    "jemalloc_resident", "rss", "rss_peak",
    # pages held only by blocks freed by another thread and not yet collected
    # (added with the pinned_bytes fix: pinned_bytes then counts carved free
    # bytes only; older schema 1 reports lack both)
    "remote_pending_pages", "remote_pending_bytes",
)

_SCHEMA_1 = {
    "": ("schema", "version", "pid", "ppid", "forked_without_exec", "trigger", "program",
         "run_time_ms", "options", "threads", "counters", "too_large_sizes", "lifetime",
         "classes"),
    "options": ("POOL_SIZE", "MAX_POOLED", "DISABLE", "VERBOSE", "STATS", "STATS_FILE",
                "STATS_SIGNAL", "DECAY_MS", "CHECK", "LIFETIME", "LIFETIME_RATE",
                "LIFETIME_THRESHOLD", "REGION_SIZE"),
    "threads": ("total", "peak", "live"),
    "counters": _COUNTERS_1,
    "too_large_sizes[]": ("max_bytes", "count"),
    "lifetime": ("samples", "sites", "marked", "long_lived_sites"),
    "lifetime.long_lived_sites[]": ("site", "address", "marked", "block_sizes", "routed_blocks",
                                    "routed_bytes", "long_samples", "short_samples"),
    "classes[]": ("class", "block_size", "allocs", "frees", "requested_bytes", "live", "pages",
                  "peak_pages"),
}

_RSS_PARTS = ("rss", "pool_in_use", "pool_free_resident", "jemalloc_resident", "metadata", "other")

_SCHEMA_2 = dict(_SCHEMA_1)
_SCHEMA_2.update({
    # other_malloc: the name of another malloc found in the process (null:
    # none); other_malloc_binds: whether it serves the program's calls;
    # stats_signal_taken: POOLMALLOC_STATS_SIGNAL's signal already had a
    # handler. The reader reads none of them yet.
    "": _SCHEMA_1[""] + ("other_malloc", "other_malloc_binds", "stats_signal_taken", "profile",
                         "rss_account"),
    # lifetime_samples became samples (the one sampler feeds the profile and
    # lifetime routing; samples live on pool pages of their own)
    "counters": tuple(k if k != "lifetime_samples" else "samples" for k in _COUNTERS_1)
    + ("pages_in_use_bytes", "live_block_waste", "jemalloc_purged",
       # pieces of pinned pages given back to the OS (pm_page_trim, issue 14):
       # pages_trimmed and trimmed_bytes count each trim, returned_bytes is what
       # is given back now; pinned_bytes then counts only resident free blocks
       "pages_trimmed", "trimmed_bytes", "returned_bytes"),
    # LIFETIME_RATE gave way to PROFILE_RATE (bytes); LIFETIME_THRESHOLD is bytes
    "options": ("POOL_SIZE", "MAX_POOLED", "DISABLE", "VERBOSE", "STATS", "STATS_FILE",
                "STATS_SIGNAL", "DECAY_MS", "BACKGROUND", "CHECK", "PROFILE", "PROFILE_RATE", "UNWINDER",
                "LIFETIME", "LIFETIME_THRESHOLD", "REGION_SIZE"),
    # a site seen called from two callers (a wrapper) is judged per caller:
    # "wrapper" on its own entry, "caller"/"caller_address" on its callers'
    "lifetime.long_lived_sites[]": _SCHEMA_1["lifetime.long_lived_sites[]"]
    + ("caller", "caller_address", "wrapper",
       # the bytes allocated in all when the site was first marked (the
       # delay to its first routed block); only for sites ever marked
       "marked_after_bytes",
       # a marked site whose sizes are off the slow branch again: it
       # allocated nothing for a while (only for marked sites)
       "resting"),
    # rests: how often a marked site's sizes went back to the fast path
    "lifetime": _SCHEMA_1["lifetime"] + ("rests",),
    # the sampling heap profiler
    "profile": ("rate_bytes", "rate_min_bytes", "rate_max_bytes", "samples", "stacks", "stacks_dropped", "allocated_bytes", "peak",
                "exit", "modules", "sites"),
    # estimated_bytes: the live estimate at the look that counted the peak;
    # looks: how often the page table was counted for it
    "profile.peak": ("bytes", "time_ms", "estimated_bytes", "looks"),
    "profile.exit": ("bytes", "time_ms", "estimated_bytes"),
    "profile.modules[]": ("id", "path", "base", "end"),
    "profile.sites[]": ("frames", "peak_bytes", "peak_blocks", "exit_bytes", "exit_blocks",
                        "alloc_bytes", "alloc_blocks"),
    "profile.sites[].frames[]": ("address", "module", "offset", "symbol"),
    "rss_account": ("exit", "peak"),
    "rss_account.exit": _RSS_PARTS,
    "rss_account.peak": _RSS_PARTS,
})

FIELDS = {1: _SCHEMA_1, 2: _SCHEMA_2}

OPTIONAL = {
    1: {"counters.remote_pending_pages", "counters.remote_pending_bytes"},
    # the profile and the RSS account are written only when the profiler is
    # on (POOLMALLOC_PROFILE, with a report asked for)
    2: {"profile", "rss_account", "options.BACKGROUND", "counters.pages_trimmed",
        "counters.trimmed_bytes", "counters.returned_bytes",
        "lifetime.long_lived_sites[].caller", "lifetime.long_lived_sites[].caller_address",
        "lifetime.long_lived_sites[].wrapper", "lifetime.long_lived_sites[].marked_after_bytes",
        "lifetime.rests", "lifetime.long_lived_sites[].resting",
        "profile.peak.estimated_bytes", "profile.peak.looks",
        "profile.exit.estimated_bytes"},
}

KNOWN_SCHEMAS = tuple(sorted(FIELDS))


def check_report(rep):
    """rep: the object inside "poolmalloc". Returns (missing, unknown): the
    dotted paths of keys the reader expects that the report lacks, and of
    keys the report has that the reader does not know. An unknown schema
    is one unknown key, "schema"."""
    schema = rep.get("schema")
    if schema not in FIELDS or isinstance(schema, bool):
        return [], ["schema=%r" % (schema,)]
    fields, optional = FIELDS[schema], OPTIONAL[schema]
    missing, unknown = [], []

    def walk(path, value):
        if isinstance(value, list):
            for v in value:
                walk(path + "[]", v)
            return
        if not isinstance(value, dict) or path not in fields:
            return
        known = fields[path]
        for k in known:
            full = (path + "." if path else "") + k
            if k not in value and full not in optional:
                missing.append(full)
        for k, v in value.items():
            full = (path + "." if path else "") + k
            if k not in known:
                unknown.append(full)
            else:
                walk(full, v)

    walk("", rep)
    return sorted(set(missing)), sorted(set(unknown))


# The JSON type of the known containers, for shape_problems()
_OBJECTS = ("options", "threads", "counters", "lifetime", "profile", "profile.peak", "profile.exit",
            "rss_account", "rss_account.exit", "rss_account.peak")
_ARRAYS = ("too_large_sizes", "classes", "lifetime.long_lived_sites", "profile.modules",
           "profile.sites", "profile.sites[].frames")
_NUMBERS = ("threads", "counters", "too_large_sizes[]", "classes[]", "rss_account.exit",
            "rss_account.peak", "profile.peak", "profile.exit")


def shape_problems(rep):
    """The known fields of rep whose JSON type is not the documented one
    (an object that is an array, a counter that is a string...), as dotted
    paths. Used for schemas after 1: a report that names a schema the reader
    knows but does not have its shape is read as one of an unknown schema."""
    fields = FIELDS.get(rep.get("schema"), FIELDS[1])
    bad = []

    def at(path, value):
        if path in _OBJECTS and not isinstance(value, dict):
            bad.append(path)
            return
        if path in _ARRAYS:
            if not isinstance(value, list):
                bad.append(path)
                return
            for v in value:
                if not isinstance(v, dict):
                    bad.append(path + "[]")
                    return
                at(path + "[]", v)
            return
        if isinstance(value, dict) and path in fields:
            for k in fields[path]:
                if k not in value:
                    continue
                full = (path + "." if path else "") + k
                v = value[k]
                if path in _NUMBERS and (isinstance(v, bool) or not isinstance(v, (int, float))):
                    bad.append(full)
                else:
                    at(full, v)

    at("", rep)
    return sorted(set(bad))
