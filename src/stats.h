/* stats.h - the merged snapshot of every counter and figure.
 *
 * Counters are plain per-thread increments kept in the thread heap
 * (counters.h lists them); a snapshot merges every heap ever created
 * (heaps are recycled, never freed, so their counters are cumulative) plus
 * the shared counters of threads that have no heap, walks the page table
 * and asks jemalloc and /proc for the figures of PM_SNAPSHOT_FIGURES. */
#ifndef PM_STATS_H
#define PM_STATS_H

#include "counters.h"
#include "sizeclass.h"

typedef struct pm_figures {
  PM_SNAPSHOT_FIGURES(PM_FIELD_U64)
} pm_figures;

/* A merged view for reports and mallinfo. */
typedef struct pm_snapshot {
  pm_heap_stats heap; /* PM_HEAP_COUNTERS */
  pm_figures fig;     /* PM_SNAPSHOT_FIGURES */
  pm_class_stats cls[PM_NCLASSES];
  uint64_t too_large_log2[PM_LARGE_BUCKETS];
  uint64_t class_pages[PM_NCLASSES], class_pages_peak[PM_NCLASSES];
  uint64_t pages_free_cached;   /* emptied pages in the heaps' caches */
  uint64_t pages_free_resident; /* free pages whose memory is still resident */
  uint64_t threads_live, threads_peak, threads_total;
} pm_snapshot;

/* Fills *s from every heap and the global state. Racy by design (other
 * threads keep counting while we read); never allocates. */
void pm_stats_snapshot(pm_snapshot *s);

/* poolmalloc_get_totals (include/poolmalloc.h) */
struct poolmalloc_totals;
int pm_get_totals(struct poolmalloc_totals *out, size_t size);

#endif
