/* stats.h - the counter field lists (X-macros) and the merged snapshot.
 *
 * Counters are plain per-thread increments kept in the thread heap; a
 * report merges every heap ever created (heaps are recycled, never freed,
 * so their counters are cumulative) plus the shared counters of threads
 * that have no heap. The lists below generate the structs, the merge, the
 * text report and the JSON report, so the formats cannot drift. */
#ifndef PM_STATS_H
#define PM_STATS_H

#include "common.h"
#include "sizeclass.h"

/* "too large" requests are also counted by ceil(log2(size)), 0..63 */
#define PM_LARGE_BUCKETS 64

/* X(field, json_key, text label) */
#define PM_HEAP_COUNTERS(X)                                                              \
  X(pages_fresh, "pages_fresh", "pool pages carved from arenas")                         \
  X(pages_reused, "pages_reused", "pool pages reused after being emptied")               \
  X(pages_released, "pages_released", "pool pages emptied and released")                 \
  X(pages_abandoned, "pages_abandoned", "pages left behind by exiting threads")          \
  X(pages_adopted, "pages_adopted", "abandoned pages adopted by other threads")          \
  X(remote_frees, "remote_frees", "frees from a thread that does not own the page")      \
  X(fb_too_large, "fallback_too_large", "jemalloc: larger than POOLMALLOC_MAX_POOLED")   \
  X(fb_alignment, "fallback_alignment", "jemalloc: alignment a page cannot serve")       \
  X(fb_disabled, "fallback_disabled", "jemalloc: POOLMALLOC_DISABLE")                    \
  X(fb_region_full, "fallback_region_full", "jemalloc: pool region exhausted")           \
  X(fb_no_heap, "fallback_no_heap", "jemalloc: thread exiting or heap limit reached")    \
  X(fb_long_lived, "fallback_long_lived",                                                \
    "jemalloc: call site learned to be long-lived")                                      \
  X(lt_to_pages, "long_lived_to_pages",                                                  \
    "long-lived call site: to pool pages of its own")                                    \
  X(lt_samples, "lifetime_samples", "allocations sampled for lifetime (to jemalloc)")    \
  X(large_bytes, "large_bytes", "bytes requested from jemalloc")                         \
  X(large_frees, "large_frees", "blocks freed back to jemalloc")                         \
  X(realloc_in_place, "realloc_in_place", "realloc calls that kept the block")           \
  X(realloc_moved, "realloc_moved", "realloc calls that moved the block")

/* X(field, json_key) */
#define PM_CLASS_COUNTERS(X)                                                             \
  X(allocs, "allocs")                                                                    \
  X(frees, "frees")                                                                      \
  X(req_bytes, "requested_bytes")

typedef struct pm_class_stats {
#define PM_FIELD(f, ...) uint64_t f;
  PM_CLASS_COUNTERS(PM_FIELD)
} pm_class_stats;

typedef struct pm_heap_stats {
  PM_HEAP_COUNTERS(PM_FIELD)
#undef PM_FIELD
} pm_heap_stats;

/* A merged view for reports and mallinfo. */
typedef struct pm_snapshot {
  pm_heap_stats heap;
  pm_class_stats cls[PM_NCLASSES];
  uint64_t too_large_log2[PM_LARGE_BUCKETS];
  uint64_t class_pages[PM_NCLASSES], class_pages_peak[PM_NCLASSES];
  uint64_t pages_peak;
  uint64_t pages_in_use, pages_free_cached, pages_purged_total;
  uint64_t block_bytes_live; /* bytes of pool blocks handed out and not freed */
  uint64_t tail_bytes;       /* bytes of in-use pages never carved */
  uint64_t pinned_pages;     /* in-use pages at most a quarter occupied */
  uint64_t pinned_bytes;     /* the free bytes of those pages */
  uint64_t region_committed; /* bytes of arenas taken from the reservation */
  uint64_t threads_live, threads_peak, threads_total;
  uint64_t heaps;
  uint64_t rss, rss_peak;
} pm_snapshot;

/* every request that went to jemalloc, whatever the reason */
#define PM_JEMALLOC_REQUESTS(h)                                                          \
  ((h).fb_too_large + (h).fb_alignment + (h).fb_disabled + (h).fb_region_full +          \
   (h).fb_no_heap + (h).fb_long_lived + (h).lt_samples)

/* Fills *s from every heap and the global state. Racy by design (other
 * threads keep counting while we read); never allocates. */
void pm_stats_snapshot(pm_snapshot *s);

/* poolmalloc_get_totals (include/poolmalloc.h) */
struct poolmalloc_totals;
int pm_get_totals(struct poolmalloc_totals *out, size_t size);

#endif
