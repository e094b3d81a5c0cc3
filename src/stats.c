/* stats.c - merging per-thread counters and page state into a snapshot.
 *
 * Other threads keep counting while this runs; the figures are as exact
 * as a report of a running program can be, like jemalloc's at-exit merge.
 * Nothing here allocates or takes a lock. */
#include "stats.h"
#include "arena.h"
#include "fallback.h"
#include "heap.h"
#include "os.h"

#include <string.h>

static void add_heap(pm_snapshot *s, const pm_heap *h) {
#define PM_ADD(f, ...) s->heap.f += h->stats.f;
  PM_HEAP_COUNTERS(PM_ADD)
#undef PM_ADD
  for (unsigned c = 0; c < PM_NCLASSES; c++) {
#define PM_ADDC(f, ...) s->cls[c].f += h->cstats[c].f;
    PM_CLASS_COUNTERS(PM_ADDC)
#undef PM_ADDC
  }
  s->pages_free_cached += h->ncache;
  for (unsigned i = 0; i < PM_LARGE_BUCKETS; i++) s->too_large_log2[i] += h->too_large_log2[i];
}

void pm_stats_snapshot(pm_snapshot *s) {
  memset(s, 0, sizeof *s);
  uint32_t n = pm_heap_count();
  for (uint32_t i = 0; i < n; i++) add_heap(s, pm_heap_at(i));
#define PM_ADDS(f, ...) s->heap.f += atomic_load_explicit(&pm_shared.f, memory_order_relaxed);
  PM_HEAP_COUNTERS(PM_ADDS)
#undef PM_ADDS
  for (unsigned c = 0; c < PM_NCLASSES; c++)
    s->cls[c].frees += atomic_load_explicit(&pm_shared.class_frees[c], memory_order_relaxed);
  for (unsigned i = 0; i < PM_LARGE_BUCKETS; i++)
    s->too_large_log2[i] += atomic_load_explicit(&pm_shared.too_large_log2[i], memory_order_relaxed);
  if (pm_g.size != 0) {
    uint64_t committed = pm_arena_committed();
    uint64_t npages = committed >> pm_g.page_shift;
    for (uint64_t i = 0; i < npages; i++) {
      const pm_page *pg = &pm_g.pages[i];
      if (pg->state != PM_PAGE_IN_USE) continue;
      s->pages_in_use++;
      s->tail_bytes += pm_page_size() - (uint64_t)pg->carved * pg->bsize;
    }
    s->region_committed = committed;
  }
  for (unsigned c = 0; c < PM_NCLASSES; c++)
    if (s->cls[c].allocs > s->cls[c].frees)
      s->block_bytes_live += (s->cls[c].allocs - s->cls[c].frees) * pm_class_size(c);
  s->pages_purged_total = pm_pages_purged_total();
  s->threads_live = atomic_load(&pm_threads_live);
  s->threads_peak = atomic_load(&pm_threads_peak);
  s->threads_total = atomic_load(&pm_threads_total);
  s->heaps = n;
  size_t rss, peak;
  pm_os_rss(&rss, &peak);
  s->rss = rss;
  s->rss_peak = peak;
}
