/* types.h - every core structure of poolmalloc, with a glossary.
 *
 * Glossary
 *   region     one reservation of address space (POOLMALLOC_REGION_SIZE,
 *              PROT_NONE) made at the first allocation; every pool block
 *              lies inside it, so `free` tells pool blocks from jemalloc's
 *              with one compare (pm_is_pool_ptr).
 *   arena      a slice of the region (PM_ARENA_MIN or 16 pages) a thread
 *              takes whole and commits; it carves pages from it with a
 *              bump pointer (arena.c).
 *   page       POOLMALLOC_POOL_SIZE bytes of an arena holding blocks of one
 *              size class; its descriptor (pm_page) lives in a table outside
 *              the region, indexed by (p - base) >> page_shift (page.c).
 *   block      what malloc returns. A free block holds an encoded link to
 *              the next free block and a tag that marks it free (pm_block).
 *   class      one of PM_NCLASSES block sizes (sizeclass.h).
 *   heap       a thread's pools: per class the current page, the other
 *              pages with free blocks, the full pages, and its counters
 *              (pm_heap, heap.c). Reached through initial-exec TLS.
 *   local/remote free   a free by the page's owner thread goes on the
 *              page's plain free list; a free by any other thread goes on
 *              the page's atomic remote list, collected by the owner.
 *   abandoned  a page whose owner thread exited with blocks still live; a
 *              later thread adopts it.
 *   fallback   the embedded jemalloc: large blocks, odd alignments, routed
 *              call sites (fallback.c).
 *
 * The layers, each using only those below it (tests/layering.sh checks the
 * includes):
 *   common/os/fmt/istack -> options/sizeclass/counters -> types -> arena ->
 *   page -> heap | fallback | lifetime -> alloc/aligned/stats -> report ->
 *   init -> override/glibc_compat */
#ifndef PM_TYPES_H
#define PM_TYPES_H

#include "common.h"
#include "counters.h"
#include "sizeclass.h"

/* ---- block ---- */

typedef struct pm_block {
  uintptr_t next; /* encoded link: the address XOR pm_g.key */
  uintptr_t tag;  /* pm_g.tag while free, 0 while allocated */
} pm_block;

/* ---- page descriptor ---- */

/* A remote list's head word is the newest block's address with the list's
 * length (saturating at PM_REMOTE_MAX) above it: the owner takes the whole
 * list without walking it (page.c, pm_page_collect). Every pool address is
 * below 2^PM_REMOTE_SHIFT (arena.c checks the region). */
#define PM_REMOTE_SHIFT 48
#define PM_REMOTE_MAX 0xffffu
#define PM_REMOTE_ADDR ((1ull << PM_REMOTE_SHIFT) - 1)

/* 128 bytes: the first cache line is the owner's, the second takes the
 * writes of other threads (remote frees). */
typedef struct pm_page {
  struct pm_block *free;         /* local free list (encoded links) */
  struct pm_heap *_Atomic owner; /* NULL when free or abandoned */
  int32_t room;                  /* used - wake - 1 (pm_page_used): the same-thread frees
                                  * left before the owner's slow path; malloc adds one,
                                  * free takes one and tests the sign */
  uint32_t bsize;                /* block size */
  uint64_t inv;                  /* the inverse of bsize's odd factor, mod 2^64: a block
                                  * start test without a divide (page.h) */
  uint64_t capacity;             /* blocks the page holds (64 bits: free's block-start
                                  * check compares a 64-bit index with it in memory) */
  uint8_t cls;
  uint8_t state;               /* PM_PAGE_* */
  uint8_t where;               /* PM_IN_* (owner's lists) */
  uint8_t dirty;               /* touched since the last purge */
  _Atomic uint32_t stack_next; /* link in a global stack (index + 1, istack.h) */
  uint64_t local_frees;        /* same-thread frees since init (statistics): the
                                * page's allocations are used + local_frees +
                                * remote_collected, so malloc counts nothing */
  uint8_t watched;             /* a page of an auxiliary heap: its blocks may be
                                * samples, so their frees look them up */
  uint8_t rot;                 /* log2 of bsize's power-of-two factor (page.h) */
  int32_t wake;                /* a same-thread free that leaves used <= wake calls
                                * the owner's slow path (set with `where`: -1 for
                                * the current page, 0 for an available one, see
                                * heap.c for full and low pages); written only by
                                * pm_page_set_wake, which keeps `room` */
  /* remote frees: the newest block, with the list's length in the bits
   * from PM_REMOTE_SHIFT up (page.h) */
  _Alignas(PM_CACHELINE) _Atomic(struct pm_block *) remote;
  _Atomic uint8_t full;        /* on the owner's full list (read by remote frees) */
  uint32_t touched;            /* bytes from the page's start known to be backed
                                * (a carve populates past it; 0 when fresh or
                                * purged; slow paths only) */
  uint64_t freed_ms;           /* when it went on the global free stack, or on
                                * its owner's available or low list */
  struct pm_page *next, *prev; /* owner's list links (slow paths only) */
  uint64_t remote_collected;   /* remote frees collected since init (statistics) */
  _Atomic uint64_t returned;   /* pieces given back to the OS while the page is in
                                * use (bit per piece, page.c: pm_page_trim); their
                                * blocks are free and on no list; written by the
                                * owner, read by checks in any thread */
  uint32_t trim_used;          /* used at the last trim (nothing new to give back
                                * while it stays) */
  uint32_t carved;             /* blocks bump-carved so far (slow paths only) */
} pm_page;
_Static_assert(sizeof(pm_page) == 2 * PM_CACHELINE, "page descriptor is two cache lines");

/* Blocks out (remote frees not yet collected count) of a page that is not
 * its class's current page. The page keeps used - wake - 1 instead, so that
 * free's wake test is one decrement and a sign test (uint32 arithmetic:
 * with wake = INT32_MAX, room is negative whatever the count).
 *
 * The current page is the only one malloc takes blocks from, and malloc
 * does not count them (a store fewer per allocation: bench_churn's pair
 * loop is bound by its stores). Its room is PM_ROOM_CURRENT, which frees
 * count down without reaching the sign for 2^30 of them (the slow path
 * then sets it again), or PM_ROOM_EVERY while it has returned pieces (every
 * free is checked). Its count is found when it stops being current, or for
 * a report: every carved block is handed out, on the free list or in a
 * returned piece (pm_page_count_used). */
#define PM_ROOM_CURRENT (INT32_MAX / 2)
#define PM_ROOM_EVERY (INT32_MIN / 2)
pm_inline uint32_t pm_page_used(const pm_page *pg) {
  return (uint32_t)pg->room + (uint32_t)pg->wake + 1u;
}
pm_inline void pm_page_add_used(pm_page *pg, int32_t n) {
  pg->room = (int32_t)((uint32_t)pg->room + (uint32_t)n);
}
pm_inline void pm_page_set_wake(pm_page *pg, int32_t wake) {
  uint32_t used = pm_page_used(pg);
  pg->wake = wake;
  pg->room = (int32_t)(used - (uint32_t)wake - 1u);
}

enum { PM_PAGE_FREE = 0, PM_PAGE_IN_USE = 1 };
enum { PM_IN_NONE = 0, PM_IN_CURRENT, PM_IN_AVAIL, PM_IN_FULL, PM_IN_CACHE, PM_IN_LOW };

/* ---- the process-wide read-mostly globals ---- */

/* The fields of the free fast path, in one cache line. */
typedef struct pm_globals {
  uintptr_t base;         /* region start (0 before init) */
  uintptr_t free_span;    /* what free's fast path compares with: size, or 0 with
                             POOLMALLOC_CHECK=full (every free is checked) */
  pm_page *pages;         /* descriptor table */
  unsigned page_shift;    /* log2(POOLMALLOC_POOL_SIZE) */
  uintptr_t page_mask;    /* POOLMALLOC_POOL_SIZE - 1 */
  uintptr_t key;          /* free-list link encoding */
  uintptr_t tag;          /* marks a freed block (double-free check) */
  size_t fast_max;        /* min(max_pooled, PM_SMALL_LOOKUP_MAX): malloc's one size
                             compare; the first cache line ends here: the fast paths' */
  size_t max_pooled;      /* largest request served from the pools */
  uintptr_t size;         /* region length (0 before init: every pointer is foreign) */
  _Atomic uint64_t *live; /* POOLMALLOC_CHECK=full: a bit per 16 bytes of the
                             region, set while a block starting there is live */
} pm_globals;

/* hidden (as every pm_ name), and said so here: an extern declaration is
 * otherwise reached through the GOT, and each fast path paid a register
 * load of its address (the linker relaxes that load into a lea) */
extern pm_globals pm_g __attribute__((aligned(PM_CACHELINE), visibility("hidden")));

pm_inline size_t pm_page_size(void) {
  return (size_t)1 << pm_g.page_shift;
}
pm_inline char *pm_page_start(const pm_page *pg) {
  return (char *)(pm_g.base + ((uintptr_t)(pg - pm_g.pages) << pm_g.page_shift));
}
pm_inline uint32_t pm_page_index(const pm_page *pg) {
  return (uint32_t)(pg - pm_g.pages);
}
pm_inline bool pm_is_pool_ptr(const void *p) {
  return (uintptr_t)p - pm_g.base < pm_g.size;
}
pm_inline pm_page *pm_page_of(const void *p) {
  return &pm_g.pages[((uintptr_t)p - pm_g.base) >> pm_g.page_shift];
}

/* ---- heap ---- */

enum { PM_HEAP_EMPTY = 0, PM_HEAP_REAL = 1, PM_HEAP_JEMALLOC = 2 };

#define PM_LT_ROUTES 64 /* power of two */
typedef struct pm_heap {
  pm_page *pages[PM_NCLASSES];     /* current page per class, &pm_page_empty if none */
  int64_t countdown[PM_NCLASSES];  /* bytes to the next slow-path tick of the class
                                      (fast path); -1 forces every allocation there */
  uint64_t req_bytes[PM_NCLASSES]; /* bytes requested per class + countdown + 1 (the
                                      countdown counts them: alloc.c) */
  pm_page *avail[PM_NCLASSES];     /* other pages of the class with free blocks */
  pm_page *low[PM_NCLASSES];       /* pages that were full and got a few blocks back,
                                      used before a new page (heap.c) */
  pm_page *full;                   /* pages without a free block */
  pm_page *full_cursor;            /* where the remote-free scan of `full` resumes */
  uint32_t nfull, scan_left;
  pm_page *cache; /* a few emptied pages kept for reuse without atomics */
  uint32_t ncache;
  int64_t sample_left[PM_NCLASSES];  /* bytes to the next sample of the class */
  int64_t large_left;                /* bytes to the next sample of a large block */
  uint32_t sample_rate[PM_NCLASSES]; /* the mean each class's distance was drawn with */
  uint32_t large_rate;               /* ... and the large blocks' */
  uint64_t armed;  /* classes (bit 63: large blocks) whose sample distance is drawn */
  uint64_t forced; /* classes whose countdown is held at 0 (diverted, checks) */
  uint64_t rng;    /* the sampler's random state */
  struct pm_heap *aux_heap;    /* this thread's heap of watched pages: samples and
                                  POOLMALLOC_LIFETIME=2 routed blocks (never pm_tls_heap) */
  uint8_t aux;                 /* an aux_heap: not a thread of its own */
  uint8_t kind;                /* PM_HEAP_* */
  char *arena_cur, *arena_end; /* bump range pages are carved from */
  uint64_t trim_ms;            /* the last pm_heap_trim_idle sweep */
  pm_heap_stats stats;
  uint64_t too_large_log2[PM_LARGE_BUCKETS]; /* jemalloc "too large" requests by
                                                ceil(log2(size)) */
  /* lifetime routing's last decisions for sites of diverted classes
   * (lifetime.c, pm_lt_route), valid while lt_epoch is the tables'; after
   * the fields the fast paths read, which keep their offsets */
  uint64_t lt_epoch;
  struct {
    uintptr_t site;
    uint32_t user;
  } lt_routes[PM_LT_ROUTES];
  _Atomic uint32_t stack_next; /* link in the stack of free heaps (istack.h) */
  _Alignas(PM_CACHELINE) _Atomic int remote_full_hint; /* written by other threads */
} pm_heap;

#endif
