/* heap.h - the per-thread heap: one pool per size class.
 *
 * A thread's heap is reached through initial-exec TLS. For each class it
 * keeps the current page (the fast path pops from its free list), a list of
 * other pages with free blocks, the pages that were full and got only a few
 * blocks back (low), and it keeps pages without any free block on one full
 * list. Remote frees into a full page raise a hint the owner acts on in its
 * slow path. Heaps are never freed: a thread's exit abandons its
 * pages and recycles the heap for a later thread, so its counters remain
 * part of every later report. Heaps live in one mapped table, outside the
 * malloc heap, and are found by index. */
#ifndef PM_HEAP_H
#define PM_HEAP_H

#include "page.h"

extern pm_page pm_page_empty;
extern pm_heap pm_heap_empty;    /* a thread that has not allocated yet */
extern pm_heap pm_heap_jemalloc; /* everything to jemalloc (disabled, exiting thread) */
extern PM_TLS pm_heap *pm_tls_heap;

/* Counters of threads without a heap, added atomically. */
typedef struct pm_shared_stats {
#define PM_AFIELD(f, ...) _Atomic uint64_t f;
  PM_HEAP_COUNTERS(PM_AFIELD)
#undef PM_AFIELD
  _Atomic uint64_t too_large_log2[PM_LARGE_BUCKETS];
} pm_shared_stats;
/* Adds n to counter `field` of h: a plain add for a real heap, an atomic
 * one into pm_shared otherwise. */
extern pm_shared_stats pm_shared;

#define PM_STAT_ADD(h, field, n)                                                         \
  do {                                                                                   \
    if (likely((h)->kind == PM_HEAP_REAL))                                               \
      PM_COUNT((h)->stats.field += (n));                                                 \
    else                                                                                 \
      PM_COUNT(atomic_fetch_add_explicit(&pm_shared.field, (n), memory_order_relaxed));  \
  } while (0)

/* Maps the heap table; false if the OS refuses. */
bool pm_heaps_init(void);
/* A heap for a new thread, or NULL when the table is full. */
pm_heap *pm_heap_acquire(void);
/* A second heap for a thread's samples and routed long-lived blocks: its
 * pages are watched; not counted as a thread, released with its thread's
 * heap. */
pm_heap *pm_heap_acquire_aux(void);
/* Abandons h's pages and recycles it (thread exit). */
void pm_heap_release(pm_heap *h);
/* A page of class cls with a non-empty free list, made current; NULL when
 * the region is exhausted. */
pm_page *pm_heap_page_for(pm_heap *h, unsigned cls);
/* A same-thread free left pg's used count at or below its wake mark: an
 * empty available page, the first free into a full page, a low page an
 * eighth free (heap.c). */
void pm_heap_free_slow(pm_heap *h, pm_page *pg);
/* The tick's housekeeping (owner, at most every POOLMALLOC_DECAY_MS / 2):
 * returns the empty pieces of pages that sat on h's lists without an
 * allocation for POOLMALLOC_DECAY_MS (page.h, pm_page_trim). */
void pm_heap_trim_idle(pm_heap *h);
/* Empties h's page cache into the global free stack (malloc_trim). */
void pm_heap_flush_cache(pm_heap *h);
/* In a fork child: every heap but `self` belongs to a thread that is gone. */
void pm_heaps_after_fork(pm_heap *self);

/* Bytes requested of class c from heap h so far: the bytes counted down
 * since its last tick are part of it (alloc.c, count_request). */
pm_inline uint64_t pm_heap_requested(const pm_heap *h, unsigned c) {
  return h->req_bytes[c] - (uint64_t)h->countdown[c] - 1;
}

/* Bytes the program asked for in the pool blocks live now: each class's
 * live blocks (the page table's count, less remote frees not yet
 * collected) times the class's mean request so far, as the report's waste
 * estimate; by block size when counting is compiled out. A walk of the
 * page table and the current pages' free lists, racy like a report; the
 * profile counts its peak with it (sample.c, "The peak"). */
uint64_t pm_heaps_live_requested(void);

/* Iteration for statistics. */
uint32_t pm_heap_count(void);
pm_heap *pm_heap_at(uint32_t i);
extern _Atomic uint64_t pm_threads_live, pm_threads_peak, pm_threads_total;

#endif
