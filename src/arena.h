/* arena.h - the reserved region, page descriptors, arenas and free pages.
 *
 * At the first allocation poolmalloc reserves one large range of address
 * space (POOLMALLOC_REGION_SIZE, PROT_NONE). It is cut into arenas of
 * PM_ARENA_SIZE bytes that threads take whole (one atomic add) and commit
 * (one mprotect); a thread carves pool pages from its arena with a bump
 * pointer. Every page has a descriptor in a table outside the region,
 * indexed by (p - base) >> page_shift, so `free` decides ownership with one
 * compare and no allocator state ever sits next to user data.
 *
 * Pages freed by their heap go on a global lock-free stack; after
 * POOLMALLOC_DECAY_MS their memory is returned with madvise(MADV_DONTNEED).
 * Pages left by exiting threads go on the abandoned stack for adoption. */
#ifndef PM_ARENA_H
#define PM_ARENA_H

#include "common.h"

struct pm_heap;

/* Page descriptor, 128 bytes: the first cache line is the owner's, the
 * second takes the writes of other threads (remote frees). */
typedef struct pm_page {
  struct pm_block *free;         /* local free list (encoded links) */
  struct pm_heap *_Atomic owner; /* NULL when free or abandoned */
  uint32_t used;                 /* blocks out, remote frees not yet collected count */
  uint32_t bsize;                /* block size */
  uint64_t magic;                /* ceil(2^40 / bsize): off / bsize without a divide */
  uint32_t capacity;             /* blocks the page holds */
  uint32_t carved;               /* blocks bump-carved so far */
  uint8_t cls;
  uint8_t state;               /* PM_PAGE_* */
  uint8_t where;               /* PM_IN_* (owner's lists) */
  uint8_t dirty;               /* touched since the last purge */
  _Atomic uint32_t stack_next; /* link in a global stack (index + 1) */
  uint64_t local_frees;        /* same-thread frees since init (statistics): the
                                * page's allocations are used + local_frees +
                                * remote_collected, so malloc counts nothing */
  _Alignas(PM_CACHELINE) _Atomic(struct pm_block *) remote; /* remote frees */
  _Atomic uint8_t full;        /* on the owner's full list (read by remote frees) */
  uint64_t freed_ms;           /* when it went on the global free stack */
  struct pm_page *next, *prev; /* owner's list links (slow paths only) */
  uint64_t remote_collected;   /* remote frees collected since init (statistics) */
  char pad1[PM_CACHELINE - 6 * sizeof(uint64_t)];
} pm_page;
_Static_assert(sizeof(pm_page) == 2 * PM_CACHELINE, "page descriptor is two cache lines");

enum { PM_PAGE_UNUSED = 0, PM_PAGE_FREE = 1, PM_PAGE_IN_USE = 2 };
enum { PM_IN_NONE = 0, PM_IN_CURRENT, PM_IN_AVAIL, PM_IN_FULL, PM_IN_CACHE };

/* Read-mostly globals of the free fast path, in one cache line. */
typedef struct pm_globals {
  uintptr_t base;         /* region start (0 before init) */
  uintptr_t free_span;    /* what free's fast path compares with: size, or 0 with
                             POOLMALLOC_CHECK=full (every free is checked) */
  pm_page *pages;         /* descriptor table */
  unsigned page_shift;    /* log2(POOLMALLOC_POOL_SIZE) */
  uintptr_t page_mask;    /* POOLMALLOC_POOL_SIZE - 1 */
  uintptr_t key;          /* free-list link encoding */
  uintptr_t tag;          /* marks a freed block (double-free check) */
  size_t max_pooled;      /* the first cache line ends here: the fast paths' fields */
  uintptr_t size;         /* region length (0 before init: every pointer is foreign) */
  _Atomic uint64_t *live; /* POOLMALLOC_CHECK=full: a bit per 16 bytes of the
                             region, set while a block starting there is live */
} pm_globals;

extern pm_globals pm_g __attribute__((aligned(PM_CACHELINE)));

#define PM_ARENA_MIN (4u << 20)

/* Reserves the region and the descriptor table; false if the OS refuses.
 * Uses pm_opt. */
bool pm_arena_init(void);

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

/* Takes a fresh arena: [*start, *end) committed read/write. false when the
 * region is exhausted. */
bool pm_arena_take(char **start, char **end);
size_t pm_arena_size(void);

/* Global stacks of pages (lock-free, ABA-safe by tag). */
void pm_pages_push_free(pm_page *pg); /* a page nobody uses */
pm_page *pm_pages_pop_free(void);
void pm_pages_push_abandoned(pm_page *pg); /* a page with live blocks, no owner */
pm_page *pm_pages_pop_abandoned(void);
/* Returns the memory of free pages older than the decay delay (or all of
 * them when `all`); returns the bytes purged. Never blocks. */
size_t pm_pages_purge(bool all);
/* Runs pm_pages_purge when the decay clock says it is due. */
void pm_pages_maybe_purge(void);

/* Figures for reports (racy reads, no locks). */
uint64_t pm_arena_committed(void);
uint64_t pm_pages_purged_total(void);

#endif
