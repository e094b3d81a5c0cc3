/* stats.c - merging per-thread counters and page state into a snapshot.
 *
 * Other threads keep counting while this runs; the figures are as exact
 * as a report of a running program can be, like jemalloc's at-exit merge.
 * Nothing here allocates or takes a lock. */
#include "stats.h"
#include "fallback.h"
#include "heap.h"
#include "os.h"
#include "poolmalloc.h"
#include "sample.h"

#include <string.h>

static void add_heap(pm_snapshot *s, const pm_heap *h) {
#define PM_ADD(f, ...) s->heap.f += h->stats.f;
  PM_HEAP_COUNTERS(PM_ADD)
#undef PM_ADD
  /* the bytes counted down since the last tick are part of the figure
   * (alloc.c, count_request); a heap not yet set up counts nothing */
  if (h->kind == PM_HEAP_REAL)
    for (unsigned c = 0; c < PM_NCLASSES; c++)
      PM_COUNT(s->cls[c].req_bytes += pm_heap_requested(h, c));
  s->pages_free_cached += h->ncache;
  for (unsigned i = 0; i < PM_LARGE_BUCKETS; i++)
    s->too_large_log2[i] += h->too_large_log2[i];
}

/* one descriptor of the page table */
static void add_page(pm_snapshot *s, pm_page *pg) {
  pm_figures *f = &s->fig;
  if (pg->state != PM_PAGE_IN_USE) {
    if (pg->dirty) s->pages_free_resident++;
    return;
  }
  f->pages_in_use++;
  /* remote frees are counted where they are collected, and while pending
   * here (the freeing thread counts nothing: alloc.c, free_remote) */
  uint32_t used, pending;
  pm_page_count_out(pg, &used, &pending);
  s->cls[pg->cls].frees += pg->local_frees + pg->remote_collected + pending;
  s->heap.remote_frees += pg->remote_collected + pending;
  s->cls[pg->cls].allocs += pm_page_allocs(pg, used);
  uint64_t carved = (uint64_t)pg->carved * pg->bsize;
  f->tail_bytes += pm_page_size() - carved;
  uint64_t held = (uint64_t)used * pg->bsize;
  uint64_t returned =
      (uint64_t)__builtin_popcountll(pm_page_returned(pg)) * pm_page_piece();
  f->returned_bytes += returned;
  if (used > 0 && 4 * held <= pm_page_size() && carved > held) {
    f->pinned_pages++;
    /* carved free blocks, not tails, less the pieces given back */
    if (carved > held + returned) f->pinned_bytes += carved - held - returned;
  }
  /* blocks other threads freed count in used until the owner collects
   * them: a page whose every used block is such is held only by them */
  if (pending > 0) {
    f->remote_pending_bytes += (uint64_t)pending * pg->bsize;
    if (pending >= used) f->remote_pending_pages++;
  }
}

void pm_stats_snapshot(pm_snapshot *s) {
  memset(s, 0, sizeof *s);
  uint32_t n = pm_heap_count();
  for (uint32_t i = 0; i < n; i++)
    add_heap(s, pm_heap_at(i));
#define PM_ADDS(f, ...)                                                                  \
  s->heap.f += atomic_load_explicit(&pm_shared.f, memory_order_relaxed);
  PM_HEAP_COUNTERS(PM_ADDS)
#undef PM_ADDS
  for (unsigned c = 0; c < PM_NCLASSES; c++) {
    uint64_t remote =
        atomic_load_explicit(&pm_class_remote_frees[c], memory_order_relaxed);
    s->cls[c].frees += remote;
    s->heap.remote_frees += remote;
    s->cls[c].frees +=
        atomic_load_explicit(&pm_class_local_frees[c], memory_order_relaxed);
    s->cls[c].allocs +=
        atomic_load_explicit(&pm_class_allocs_retired[c], memory_order_relaxed);
  }
  for (unsigned i = 0; i < PM_LARGE_BUCKETS; i++)
    s->too_large_log2[i] +=
        atomic_load_explicit(&pm_shared.too_large_log2[i], memory_order_relaxed);
  pm_figures *f = &s->fig;
  if (pm_g.size != 0) {
    f->page_size = pm_page_size();
    uint64_t committed = pm_arena_committed();
    uint64_t npages = committed >> pm_g.page_shift;
    for (uint64_t i = 0; i < npages; i++)
      add_page(s, &pm_g.pages[i]);
    f->region_committed = committed;
    f->pages_in_use_bytes = f->pages_in_use * f->page_size;
  }
  for (unsigned c = 0; c < PM_NCLASSES; c++) {
    const pm_class_stats *k = &s->cls[c];
    if (k->allocs <= k->frees) continue;
    uint64_t live = k->allocs - k->frees, bsize = pm_class_size(c);
    f->live_block_bytes += live * bsize;
    /* the rounding of the live blocks, from the class's mean request */
    uint64_t mean = k->req_bytes / k->allocs;
    if (mean < bsize) f->live_block_waste += live * (bsize - mean);
  }
  for (unsigned c = 0; c < PM_NCLASSES; c++) {
    s->class_pages[c] = atomic_load_explicit(&pm_class_pages[c], memory_order_relaxed);
    s->class_pages_peak[c] =
        atomic_load_explicit(&pm_class_pages_peak[c], memory_order_relaxed);
  }
  f->pages_peak = atomic_load_explicit(&pm_pages_peak, memory_order_relaxed);
  f->purged_bytes = pm_pages_purged_total();
  s->threads_live = atomic_load(&pm_threads_live);
  s->threads_peak = atomic_load(&pm_threads_peak);
  s->threads_total = atomic_load(&pm_threads_total);
  pm_fallback_figures(&f->jemalloc_allocated, &f->jemalloc_resident);
  f->jemalloc_purged = pm_fallback_purged();
  /* the heap table, the descriptors of the committed region, the sampler */
  s->metadata_bytes = (uint64_t)pm_heap_count() * sizeof(pm_heap) +
                      (f->region_committed >> (pm_g.size ? pm_g.page_shift : 0)) *
                          sizeof(pm_page) * (pm_g.size != 0) +
                      pm_sample_metadata_bytes();
  size_t rss, peak;
  pm_os_rss(&rss, &peak);
  f->rss = rss;
  f->rss_peak = peak;
}

int pm_get_totals(poolmalloc_totals *out, size_t size) {
  if (out == NULL || size < 2 * sizeof(unsigned)) return -1;
  pm_snapshot s;
  pm_stats_snapshot(&s);
  poolmalloc_totals t;
  memset(&t, 0, sizeof t);
  t.version = POOLMALLOC_TOTALS_VERSION;
  for (unsigned c = 0; c < PM_NCLASSES; c++) {
    t.pooled_allocations += s.cls[c].allocs;
    t.frees += s.cls[c].frees;
  }
  t.jemalloc_allocations = PM_JEMALLOC_REQUESTS(s.heap);
  t.allocations = t.pooled_allocations + t.jemalloc_allocations;
  t.live_pool_bytes = s.fig.live_block_bytes;
  t.pool_pages = s.fig.pages_in_use;
  t.pool_pages_peak = s.fig.pages_peak;
  t.page_size = s.fig.page_size;
  t.remote_frees = s.heap.remote_frees;
  t.jemalloc_bytes = s.fig.jemalloc_allocated;
  t.threads_live = s.threads_live;
  t.threads_peak = s.threads_peak;
  t.rss = s.fig.rss;
  t.rss_peak = s.fig.rss_peak;
  size_t n = size < sizeof t ? size : sizeof t;
  t.size = (unsigned)n;
  memcpy(out, &t, n);
  return 0;
}
