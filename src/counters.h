/* counters.h - every figure of the report, declared once.
 *
 * Two lists, one per scope. Each entry names the struct field, the JSON
 * key, the unit, the text report's section and its label; the structs, the
 * merge of per-thread counters, the text report, the JSON report and the
 * reader's schema check (tests/report) all come from these lists, so a
 * figure cannot appear in one format and not in another. Adding a counter
 * is one line here plus the statement that counts it.
 *
 * Units: COUNT (events), BYTES (resident memory or bytes requested, as the
 * label says), RUNNING (a running total of bytes since the start), SPACE
 * (address space, not memory). A label says which one it is. */
#ifndef PM_COUNTERS_H
#define PM_COUNTERS_H

#include "common.h"

enum { PM_UNIT_COUNT, PM_UNIT_BYTES, PM_UNIT_RUNNING, PM_UNIT_SPACE };
/* text report sections */
enum { PM_SEC_REQUESTS, PM_SEC_POOL, PM_SEC_MEMORY };

/* Per-thread counters: plain increments in the thread's heap (atomic adds
 * into pm_shared for a thread without a heap), summed over every heap.
 * X(field, json_key, unit, section, label) */
#define PM_HEAP_COUNTERS(X)                                                              \
  X(pages_fresh, "pages_fresh", COUNT, POOL, "pool pages carved from arenas")            \
  X(pages_reused, "pages_reused", COUNT, POOL, "pool pages reused after being emptied")  \
  X(pages_released, "pages_released", COUNT, POOL, "pool pages emptied and released")    \
  X(pages_abandoned, "pages_abandoned", COUNT, POOL,                                     \
    "pages left behind by exiting threads")                                              \
  X(pages_adopted, "pages_adopted", COUNT, POOL,                                         \
    "abandoned pages adopted by other threads")                                          \
  X(pages_trimmed, "pages_trimmed", COUNT, POOL,                                         \
    "times a pinned page gave its empty pieces back to the OS")                          \
  X(trimmed_bytes, "trimmed_bytes", RUNNING, POOL,                                       \
    "bytes those pieces held (running total)")                                           \
  X(remote_frees, "remote_frees", COUNT, POOL,                                           \
    "frees from a thread that does not own the page")                                    \
  X(fb_too_large, "fallback_too_large", COUNT, REQUESTS,                                 \
    "jemalloc: larger than POOLMALLOC_MAX_POOLED")                                       \
  X(fb_alignment, "fallback_alignment", COUNT, REQUESTS,                                 \
    "jemalloc: alignment a page cannot serve")                                           \
  X(fb_disabled, "fallback_disabled", COUNT, REQUESTS, "jemalloc: POOLMALLOC_DISABLE")   \
  X(fb_region_full, "fallback_region_full", COUNT, REQUESTS,                             \
    "jemalloc: pool region exhausted")                                                   \
  X(fb_no_heap, "fallback_no_heap", COUNT, REQUESTS,                                     \
    "jemalloc: thread exiting or heap limit reached")                                    \
  X(fb_long_lived, "fallback_long_lived", COUNT, REQUESTS,                               \
    "jemalloc: call site learned to be long-lived")                                      \
  X(lt_to_pages, "long_lived_to_pages", COUNT, REQUESTS,                                 \
    "long-lived call site: to pool pages of their own")                                  \
  X(samples, "samples", COUNT, REQUESTS,                                                 \
    "allocations sampled (profile, lifetime routing)")                                   \
  X(large_bytes, "large_bytes", RUNNING, REQUESTS,                                       \
    "bytes requested from jemalloc (running total)")                                     \
  X(large_frees, "large_frees", COUNT, REQUESTS, "blocks freed back to jemalloc")        \
  X(realloc_in_place, "realloc_in_place", COUNT, REQUESTS,                               \
    "realloc calls that kept the block")                                                 \
  X(realloc_moved, "realloc_moved", COUNT, REQUESTS, "realloc calls that moved the block")

/* every request that went to jemalloc, whatever the reason */
#define PM_JEMALLOC_REQUESTS(h)                                                          \
  ((h).fb_too_large + (h).fb_alignment + (h).fb_disabled + (h).fb_region_full +          \
   (h).fb_no_heap + (h).fb_long_lived)

/* Figures computed when a report is made (page table walk, jemalloc,
 * /proc). X(field, json_key, unit, section, label) */
#define PM_SNAPSHOT_FIGURES(X)                                                           \
  X(pages_in_use, "pages_in_use", COUNT, POOL, "pool pages in use now")                  \
  X(pages_in_use_bytes, "pages_in_use_bytes", SPACE, POOL,                               \
    "size of the pool pages in use now")                                                 \
  X(pages_peak, "pages_peak", COUNT, POOL, "pool pages in use at once, at most")         \
  X(page_size, "page_size", SPACE, POOL, "bytes per pool page")                          \
  X(live_block_bytes, "live_block_bytes", BYTES, POOL,                                   \
    "pool blocks handed out and not freed now")                                          \
  X(live_block_waste, "live_block_waste", BYTES, POOL,                                   \
    "of which rounding up to the block size (estimated)")                                \
  X(tail_bytes, "tail_bytes", SPACE, POOL,                                               \
    "never-carved tails of pages in use (address space)")                                \
  X(pinned_pages, "pinned_pages", COUNT, POOL, "pages in use at most a quarter full")    \
  X(pinned_bytes, "pinned_bytes", BYTES, POOL,                                           \
    "carved free blocks in those pages, resident")                                       \
  X(returned_bytes, "returned_bytes", SPACE, POOL,                                       \
    "pieces of pages in use given back to the OS now")                                   \
  X(remote_pending_pages, "remote_pending_pages", COUNT, POOL,                           \
    "pages held only by other threads' frees not yet collected")                         \
  X(remote_pending_bytes, "remote_pending_bytes", BYTES, POOL,                           \
    "blocks freed by other threads, not yet collected")                                  \
  X(purged_bytes, "purged_bytes", RUNNING, POOL,                                         \
    "free pool pages returned to the OS (running total)")                                \
  X(region_committed, "region_committed", SPACE, MEMORY,                                 \
    "pool region committed (address space)")                                             \
  X(jemalloc_allocated, "jemalloc_allocated", BYTES, MEMORY,                             \
    "jemalloc: bytes in live blocks now")                                                \
  X(jemalloc_resident, "jemalloc_resident", BYTES, MEMORY,                               \
    "jemalloc: resident bytes now")                                                      \
  X(jemalloc_purged, "jemalloc_purged", RUNNING, MEMORY,                                 \
    "jemalloc: free pages returned to the OS (running total)")                           \
  X(rss, "rss", BYTES, MEMORY, "RSS now")                                                \
  X(rss_peak, "rss_peak", BYTES, MEMORY, "RSS at its peak")

/* Per-class counters. X(field, json_key) */
#define PM_CLASS_COUNTERS(X)                                                             \
  X(allocs, "allocs")                                                                    \
  X(frees, "frees")                                                                      \
  X(req_bytes, "requested_bytes")

#define PM_FIELD_U64(f, ...) uint64_t f;
typedef struct pm_heap_stats {
  PM_HEAP_COUNTERS(PM_FIELD_U64)
} pm_heap_stats;

typedef struct pm_class_stats {
  PM_CLASS_COUNTERS(PM_FIELD_U64)
} pm_class_stats;

/* "too large" requests are also counted by ceil(log2(size)), 0..63 */
#define PM_LARGE_BUCKETS 64

#endif
